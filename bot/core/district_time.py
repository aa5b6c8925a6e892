"""The district's clock: Beijing time (Asia/Shanghai), in which every deadline, date and page is read.

One constant for every layer (core, retrieval, tickets, storage, console), so a policy's
last day, a ticket's deadline and a curated answer's date are the same district day.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

DISTRICT_ZONE = ZoneInfo("Asia/Shanghai")


def district_today() -> str:
    """Today in the district, as an ISO date."""
    return datetime.now(DISTRICT_ZONE).date().isoformat()
