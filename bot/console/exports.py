"""Ticket-level exports of the statistics' scope (CSV and Excel), named after what they hold.

One row a ticket: enough to check every figure of the statistics page, and no
resident's phone or room number (the file leaves the console: it is masked the
way it is for staff who may not see personal data).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from urllib.parse import quote

from fastapi.responses import Response
from sqlalchemy import select

from bot.console.tickets_page import coarse_place
from bot.core.privacy import mask
from bot.tickets.lifecycle import SOURCE_LABELS, STATUS_LABELS
from bot.tickets.models import Staff, Ticket
from bot.tickets.sla import SHANGHAI, as_utc, local

HEADER = ["工单号", "提交时间", "类别", "状态", "社区", "网格", "网格员", "位置", "问题", "联系时限", "首次联系",
          "反馈时限", "办结反馈时间", "办结时间", "是否超时", "评分", "来源", "代登记人"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def ticket_rows(console, community: str | None, since: datetime | None) -> list[list[str]]:
    """The tickets of the scope, oldest first, as the export's rows (without the header)."""
    store, org = console.store, console.org
    now = store.clock()
    with store.sessions() as s:
        query = select(Ticket).order_by(Ticket.created_at)
        if since is not None:
            query = query.where(Ticket.created_at >= since)
        if community is not None:
            query = query.where(Ticket.community_id == community)
        tickets = list(s.scalars(query))
        people = {p.id: p.name for p in s.scalars(select(Staff))}
    rows = []
    for t in tickets:
        community_name = org.communities[t.community_id].name if t.community_id in org.communities else ""
        grid_name = org.grids[t.grid_id].name if t.grid_id in org.grids else "未匹配网格"
        rows.append([t.id, local(t.created_at), t.category, STATUS_LABELS.get(t.status, t.status), community_name,
                     grid_name, people.get(t.assignee_id, ""), coarse_place(t.place), coarse_place(mask(t.description))[:200],
                     local(t.dispatch_due), local(t.accepted_at), local(t.feedback_due), local(t.resolved_at),
                     local(t.closed_at), "是" if _late(t, now) else "否", str(t.rating or ""),
                     SOURCE_LABELS.get(t.source, t.source), people.get(t.filed_by, "")])
    return rows


def _late(t: Ticket, now: datetime) -> bool:
    """Contacted after the dispatch deadline, or still not contacted with the deadline gone."""
    if t.status in ("cancelled", "merged"):
        return False
    contacted = as_utc(t.accepted_at) if t.accepted_at is not None else None
    return (contacted or now) > as_utc(t.dispatch_due)


def file_name(what: str, scope_name: str, since: datetime | None, now: datetime, suffix: str) -> str:
    """'工单明细_景村社区_2026-11-01至2026-12-06.csv': what, of which tickets, from when to when."""
    start = since.astimezone(SHANGHAI).strftime("%Y-%m-%d") if since else "最早"
    end = as_utc(now).astimezone(SHANGHAI).strftime("%Y-%m-%d")
    return f"{what}_{scope_name}_{start}至{end}.{suffix}"


def csv_cell(value: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") and value != "—" else value


def as_csv(rows: list[list[str]], name: str, header: list[str] = HEADER) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([csv_cell(c) for c in row] for row in rows)
    # the BOM tells Excel the file is UTF-8; without it Chinese opens as mojibake
    return _download(("\ufeff" + out.getvalue()).encode("utf-8"), "text/csv; charset=utf-8", name)


def as_xlsx(rows: list[list[str]], name: str) -> Response:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "工单明细"
    sheet.append(HEADER)
    for row in rows:
        sheet.append([csv_cell(c) for c in row])
    sheet.freeze_panes = "A2"
    for column, width in zip("ABCDEFGHIJKLMNOP", (16, 17, 10, 12, 12, 18, 10, 20, 40, 17, 17, 17, 17, 17, 8, 6)):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return _download(out.getvalue(), XLSX, name)


def _download(body: bytes, media_type: str, name: str) -> Response:
    ascii_name = ("stats." if name.startswith("工单统计") else "tickets.") + name.rsplit(".", 1)[-1]
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})
