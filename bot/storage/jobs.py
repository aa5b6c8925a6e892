"""Background jobs' progress in the database, so the console shows it whichever replica answers.

A re-ingest runs on the replica whose admin started it; the progress page is asked
for by a browser behind a load balancer, so any replica must read the same row.
The running replica beats every few seconds; a running job whose beat stopped (its
replica was killed) is shown as interrupted, and no longer blocks the next one.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.storage.db import Base

STALE_BEAT = 60.0  # seconds without a beat after which a running job's replica is taken to be gone
INTERRUPTED = "导入中断：运行它的进程已停止（可能被重启）。请重新导入。"
KEEP = 50  # finished jobs kept


class JobRow(Base):
    __tablename__ = "background_job"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # running | done | failed
    stage: Mapped[str] = mapped_column(String(16))
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    started: Mapped[float] = mapped_column(Float, index=True)
    finished: Mapped[float | None] = mapped_column(Float, nullable=True)
    beat: Mapped[float] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text, default="")
    failed: Mapped[list] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")


FIELDS = ("id", "state", "stage", "done", "total", "started", "finished", "summary", "failed", "error")


class SqlJobs:
    """Stores jobs as dicts of FIELDS (the console's Job)."""

    def __init__(self, sessions: sessionmaker[Session], clock=time.time):
        self.sessions = sessions
        self.clock = clock

    def save(self, job: dict[str, Any]) -> None:
        values = {k: job[k] for k in FIELDS} | {"beat": self.clock()}
        values["failed"] = [list(pair) for pair in values["failed"]]
        with self.sessions.begin() as s:
            row = s.get(JobRow, job["id"])
            if row is None:
                s.add(JobRow(**values))
                s.flush()
                old = select(JobRow.id).where(JobRow.state != "running").order_by(JobRow.started.desc()).offset(KEEP)
                s.execute(delete(JobRow).where(JobRow.id.in_(old.scalar_subquery())))
            else:
                for key, value in values.items():
                    setattr(row, key, value)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.sessions() as s:
            row = s.get(JobRow, job_id)
            return self._view(row) if row is not None else None

    def running(self) -> dict[str, Any] | None:
        with self.sessions() as s:
            rows = s.scalars(select(JobRow).where(JobRow.state == "running").order_by(JobRow.started.desc()))
            return next((job for job in map(self._view, rows) if job["state"] == "running"), None)

    def _view(self, row: JobRow) -> dict[str, Any]:
        job = {k: getattr(row, k) for k in FIELDS}
        job["failed"] = [tuple(pair) for pair in job["failed"] or []]
        if job["state"] == "running" and self.clock() - row.beat > STALE_BEAT:
            job.update(state="failed", stage="failed", error=INTERRUPTED, finished=row.beat)
        return job
