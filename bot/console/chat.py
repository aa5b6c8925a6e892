"""The console's chat commands: /console (a one-time login link), and for admins /reingest and document uploads.

Each handler has StaffChat's shape, ``handle(incoming, state) -> list[Reply] | None``
(None: not mine, the conversation goes on), and StaffCommandChain puts them
behind one another as the core's single ``staff`` handler.
"""

from __future__ import annotations

import logging
import re
from typing import Callable, MutableMapping

from bot.console.auth import ConsoleAuth
from bot.console.kb_admin import KbAdmin, KbAdminError, KbBusy, safe_filename
from bot.core import texts
from bot.core.messages import Incoming, Reply
from bot.retrieval.ingest import IngestReport

log = logging.getLogger(__name__)
ADMIN_ONLY = "只有管理员可以管理知识库。"
Fetch = Callable[[str], bytes]  # a channel's file id -> the file's bytes


def _command(incoming: Incoming) -> str:
    text = (incoming.text or "").strip()
    return text.split()[0].split("@")[0].lower() if text.startswith("/") else ""


def console_base_url(settings) -> str:
    """console.public_url, or http://web.host:web.port."""
    return settings.console.public_url.rstrip("/") or f"http://{settings.web.host}:{settings.web.port}"


class StaffCommandChain:
    """Ask each handler in turn; the first that answers wins."""

    def __init__(self, *handlers):
        self.handlers = handlers

    def handle(self, incoming: Incoming, state) -> list[Reply] | None:
        for handler in self.handlers:
            replies = handler.handle(incoming, state)
            if replies is not None:
                return replies
        return None

    def is_staff(self, channel: str, user_id: str) -> bool:
        return any(getattr(h, "is_staff", None) and h.is_staff(channel, user_id) for h in self.handlers)


class ConsoleLinkCommand:
    """/console: send a staff member a one-time link that logs them into the web console."""

    def __init__(self, auth: ConsoleAuth, directory, base_url: str):
        self.auth = auth
        self.directory = directory
        self.base_url = base_url.rstrip("/")

    def handle(self, incoming: Incoming, state) -> list[Reply] | None:
        if _command(incoming) != "/console":
            return None
        staff = self.directory.find(incoming.channel, incoming.user_id)
        if staff is None:
            log.warning("/console refused for non-staff %s/%s", incoming.channel, incoming.user_id)
            return [Reply(texts.STAFF_ONLY, intent="command")]
        token = self.auth.issue_login_token(staff.id)
        log.info("console login link sent to staff %s", staff.id)
        minutes = f"{self.auth.settings.login_link_minutes:g}"
        return [Reply(f"工作台登录链接（{minutes} 分钟内有效，只能用一次，请勿转发）：\n"
                      f"{self.base_url}/console/login/{token}", intent="staff")]


class KnowledgeChatAdmin:
    """Admins add a document to the knowledge base by sending it to the bot, and re-ingest with /reingest.

    A document arrives as ``Incoming(kind="file", document=(file_id, file_name))``;
    the bytes come from ``fetchers[incoming.channel](file_id)``, which the channel
    registers (Telegram: download through getFile).
    """

    def __init__(self, kb: KbAdmin, directory, fetchers: MutableMapping[str, Fetch] | None = None):
        self.kb = kb
        self.directory = directory
        self.fetchers: MutableMapping[str, Fetch] = {} if fetchers is None else fetchers

    def handle(self, incoming: Incoming, state) -> list[Reply] | None:
        document = getattr(incoming, "document", None)
        is_upload = incoming.kind == "file" and document is not None
        if _command(incoming) != "/reingest" and not is_upload:
            return None
        what = f"document {document[1]!r}" if is_upload else "/reingest"
        staff = self.directory.find(incoming.channel, incoming.user_id)
        if staff is None or staff.role != "admin":
            who = "non-staff" if staff is None else f"{staff.role} {staff.id}"
            log.warning("knowledge %s refused for %s %s/%s", what, who, incoming.channel, incoming.user_id)
            if staff is None and is_upload:
                return None  # a resident's file: the conversation answers what it can handle
            return [Reply(texts.STAFF_ONLY if staff is None else ADMIN_ONLY, intent="staff")]
        try:
            if is_upload:
                return [self._add(incoming, document, staff.id)]
            report = self.kb.run_now()
            self.directory.audit.record(f"staff:{staff.id}", "kb_reingest", "", report.summary_zh())
            return [Reply("知识库已重新导入：" + describe(report), intent="staff")]
        except KbAdminError as exc:
            return [Reply(str(exc), intent="staff")]

    def _add(self, incoming: Incoming, document: tuple[str, str], staff_id: int) -> Reply:
        file_id, file_name = document
        fetch = self.fetchers.get(incoming.channel)
        if fetch is None:
            return Reply("这个渠道暂时不能接收文件，请在工作台的“知识库”页面上传。", intent="staff")
        name = safe_filename(file_name)  # checked before downloading: an .exe is refused unfetched
        try:
            data = fetch(file_id)
        except Exception:
            log.exception("could not fetch document %s from %s", file_id, incoming.channel)
            return Reply("文件下载失败，请重新发送，或在工作台的“知识库”页面上传。", intent="staff")
        # a caption such as "内部" or "仅工作人员" keeps the document from residents, as the console's checkbox does
        staff_only = bool(re.search(r"内部|仅工作人员|仅限工作人员|staff", incoming.text or "", re.I))
        saved, replaced = self.kb.save(name, data, staff_only)
        log.info("admin %s/%s added knowledge document %s", incoming.channel, incoming.user_id, saved)
        self.directory.audit.record(f"staff:{staff_id}", "kb_upload", saved, "聊天中发送")
        try:
            report = self.kb.run_now()
        except KbBusy as exc:
            return Reply(f"已保存 {saved}。{exc}（发送 /reingest 导入）", intent="staff")
        verb = "已替换" if replaced else "已加入"
        return Reply(f"{verb}知识库：{saved}\n" + describe(report), intent="staff")


def describe(report: IngestReport) -> str:
    """The ingest summary line, then each failed file with its reason."""
    lines = [report.summary_zh()]
    lines += [f"· {source}：{reason}" for source, reason in report.failed[:10]]
    return "\n".join(lines)
