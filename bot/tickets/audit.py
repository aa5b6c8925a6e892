"""The audit log: what admins and supervisors did outside a ticket's own history, kept in the database.

Uploads, removals and re-ingests of documents, invites made and revoked, staff
deactivated and passwords reset, tickets reassigned or closed: who, when, what.
The application log rotates away; this stays for the district's own checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.tickets.models import AuditEvent
from bot.tickets.sla import utcnow

ACTION_LABELS = {"kb_upload": "上传文件", "kb_remove": "删除文件", "kb_reingest": "重新导入知识库",
                 "invite": "生成邀请码", "invite_revoke": "撤销邀请码", "staff_deactivate": "停用工作人员",
                 "password_reset": "重置密码", "ticket_assign": "派单/改派", "ticket_dismiss": "关闭工单",
                 "question_handled": "处理居民问题", "kb_restore": "恢复文件的历史版本",
                 "curated_save": "保存标准答复", "curated_retire": "停用标准答复", "duty_set": "排班",
                 "ticket_file": "代居民登记工单", "visit_save": "登记走访", "case_open": "受理调解案件",
                 "case_close": "调解结案"}


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow):
        self.sessions = sessions
        self.clock = clock

    def record(self, actor: str, action: str, target: str = "", detail: str = "") -> None:
        with self.sessions.begin() as s:
            s.add(AuditEvent(at=self.clock(), actor=actor[:64], action=action[:32], target=target[:200],
                             detail=detail[:2000]))

    def recent(self, limit: int = 200) -> list[AuditEvent]:
        with self.sessions() as s:
            rows = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)))
            for row in rows:
                s.expunge(row)
            return rows
