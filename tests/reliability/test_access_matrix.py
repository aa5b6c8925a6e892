"""Who may do what: every role × every action × both channels, run for real and compared with the expected matrix.

Channels: the chat (commands and buttons through the Conversation, as Telegram
delivers them) and the staff console over HTTP. Each cell gets its own ticket
(景村 community, grid jingcun-01, assigned to the grid's worker, its own phone
number), so that one cell's effect cannot hide another's. A cell "happened"
when its effect is observable: the ticket's card or list line was shown, the
status changed, the full phone number appeared, a statistics table of the
ticket's community came back, an invite row was created, a file landed in the
knowledge folder, an ingest ran.
"""

from __future__ import annotations

import secrets
import time

import pytest
from sqlalchemy import func, select

from bot.tickets.models import Invite
from tests.reliability.support import Site, count

ROLES = ["anonymous", "resident", "other_resident", "worker_other_grid", "grid_colleague", "worker_assigned",
         "supervisor", "supervisor_other", "admin"]
ACTIONS = ["read", "accept", "resolve", "phone", "stats", "invite", "upload", "reingest"]
STAFF = {"worker_other_grid": "w-far", "grid_colleague": "w-mate", "worker_assigned": "w-own", "supervisor": "s-own",
         "supervisor_other": "s-far", "admin": "a1"}

# Expected: who may. Residents follow their own tickets in the chat (/my) but never see the stored phone there;
# residents have no console accounts. Statistics and invites have no chat command at all.
ALLOWED = {
    "chat": {
        "read": {"resident", "grid_colleague", "worker_assigned", "supervisor", "admin"},
        "accept": {"worker_assigned"},
        "resolve": {"worker_assigned"},
        "phone": {"worker_assigned", "supervisor", "admin"},
        "stats": set(),
        "invite": set(),
        "upload": {"admin"},
        "reingest": {"admin"},
    },
    "console": {
        "read": {"grid_colleague", "worker_assigned", "supervisor", "admin"},
        "accept": {"worker_assigned"},
        "resolve": {"worker_assigned"},
        "phone": {"worker_assigned", "supervisor", "admin"},
        "stats": {"supervisor", "admin"},
        "invite": {"admin"},
        "upload": {"admin"},
        "reingest": {"admin"},
    },
}
# The chat once let supervisors and admins accept and resolve for the assignee; the module's last test keeps
# that fixed.


class World:
    def __init__(self, site: Site):
        self.site = site
        self.store = site.service.store
        site.staff("w-own", grids=("jingcun-01",), name="王芳")
        site.staff("w-mate", grids=("jingcun-01",), name="刘洋", on_duty=False)  # routing picks w-own
        site.staff("w-far", grids=("jingcun-02",), name="李娜")
        site.staff("s-own", role="supervisor", community="jingcun", name="赵书记")
        site.staff("s-far", role="supervisor", community="huajiang", name="钱主任")
        site.staff("a1", role="admin", name="孙管理")
        self.consoles = {role: site.login(user) for role, user in STAFF.items()}
        self.ingests = 0
        real_run = site.service.knowledge.ingester.run

        def counted_run(*args, **kwargs):
            self.ingests += 1
            return real_run(*args, **kwargs)

        site.service.knowledge.ingester.run = counted_run
        site.service.kb_chat.fetchers["telegram"] = lambda file_id: f"# {file_id}\n\n矩阵测试上传的文件。".encode()
        self.phones: dict[str, str] = {}
        self.cells = 0

    def ticket(self, cell: int, owner: str, accepted: bool) -> tuple[str, str]:
        phone = f"139{cell:08d}"
        ticket_id = self.site.file(owner, phone=phone)
        ticket = self.store.get(ticket_id)
        assert ticket.status == "assigned" and ticket.assignee_id == self.site.service.staff.find("telegram", "w-own").id
        if accepted:
            from bot.tickets.store import Actor

            self.store.transition(ticket_id, "accept", Actor.of(self.site.service.staff.find("telegram", "w-own")))
        self.phones[ticket_id] = phone
        return ticket_id, phone

    def invites(self) -> int:
        with self.site.service.sessions() as s:
            return s.scalar(select(func.count()).select_from(Invite))

    def wait_for_ingest(self) -> None:
        deadline = time.monotonic() + 15
        while self.site.service.kb_admin.running() is not None and time.monotonic() < deadline:
            time.sleep(0.02)


# -- one cell on each channel --------------------------------------------------------------------------

def chat_user(role: str, owner: str) -> str:
    return {"anonymous": f"anon-{secrets.token_hex(4)}", "resident": owner, "other_resident": "neighbour"}.get(
        role, STAFF.get(role, ""))


def chat_cell(world: World, role: str, action: str, cell: int) -> bool:
    site = world.site
    owner = f"owner-{cell}"
    ticket, phone = world.ticket(cell, owner, accepted=action == "resolve")
    who = chat_user(role, owner)

    def said(*messages) -> str:
        replies = []
        for message in messages:
            replies += site.say(who, **message) if isinstance(message, dict) else site.say(who, message)
        return "\n".join(r.text for r in replies)

    try:
        match action:
            case "read":
                shown = said(f"/ticket {ticket}", "/my")
                return f"工单 {ticket}｜" in shown or f"· {ticket} " in shown
            case "phone":
                return phone in said(f"/ticket {ticket}", "/my")
            case "accept":
                said({"button": f"t:accept:{ticket}"})
                return world.store.get(ticket).status == "accepted"
            case "resolve":
                said({"button": f"t:resolve:{ticket}"}, "已联系供热站放气，室温恢复到20度")
                return world.store.get(ticket).status == "resolved"
            case "stats":
                shown = said("/stats", "/stats jingcun")
                return "响应率" in shown or "满意率" in shown
            case "invite":
                before = world.invites()
                shown = said("/invite worker jingcun-01", "/invite --role worker --grid jingcun-01")
                return world.invites() > before
            case "upload":
                name = f"matrix-chat-{cell}.md"
                said({"kind": "file", "document": (f"file-{cell}", name)})
                return (site.docs / name).exists()
            case "reingest":
                before = world.ingests
                said("/reingest")
                return world.ingests > before
    finally:
        site.say(who, "/cancel")
    raise AssertionError(action)


def console_client(world: World, role: str, owner: str):
    if role in STAFF:
        return world.consoles[role]
    forged = {"resident": owner, "other_resident": secrets.token_urlsafe(32)}.get(role)
    return world.site.http(cookies={"dsw_console": forged} if forged else None)


def console_cell(world: World, role: str, action: str, cell: int) -> bool:
    owner = f"owner-{cell}"
    ticket, phone = world.ticket(cell, owner, accepted=action == "resolve")
    client = console_client(world, role, owner)
    page = f"/console/tickets/{ticket}"
    match action:
        case "read":
            response = client.get(page)
            return response.status_code == 200 and f"工单 {ticket}" in response.text
        case "phone":
            return any(phone in client.get(path).text for path in (page, "/console/tickets", "/console/tickets?closed=1"))
        case "accept":
            client.post(f"{page}/accept", data={"csrf": client.csrf, "status": "assigned"})
            return world.store.get(ticket).status == "accepted"
        case "resolve":
            client.post(f"{page}/resolve", data={"csrf": client.csrf, "status": "accepted", "note": "已修好"})
            return world.store.get(ticket).status == "resolved"
        case "stats":
            table = client.get("/console/stats.csv", params={"community": "jingcun"})
            page_ = client.get("/console/stats", params={"community": "jingcun"})
            return (table.status_code == 200 and "景村社区第一网格" in table.content.decode("utf-8-sig")) or \
                (page_.status_code == 200 and "景村社区第一网格" in page_.text)
        case "invite":
            before = world.invites()
            client.post("/console/staff/invites", data={"csrf": client.csrf, "role": "worker", "grid": "jingcun-01",
                                                        "name": f"矩阵{cell}", "hours": "72"})
            return world.invites() > before
        case "upload":
            name = f"matrix-console-{cell}.md"
            client.post("/console/kb/upload", data={"csrf": client.csrf},
                        files={"file": (name, "# 矩阵\n\n上传测试。".encode(), "text/markdown")})
            return (world.site.docs / name).exists()
        case "reingest":
            before = world.ingests
            client.post("/console/kb/reingest", data={"csrf": client.csrf})
            world.wait_for_ingest()
            return world.ingests > before
    raise AssertionError(action)


# -- the matrix -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("matrix"))
    yield World(site)
    site.close()


@pytest.mark.parametrize("channel, run", [("chat", chat_cell), ("console", console_cell)], ids=["chat", "console"])
def test_every_role_can_do_exactly_what_the_matrix_allows(world, channel, run):
    observed: dict[tuple[str, str], bool] = {}
    for role in ROLES:
        for action in ACTIONS:
            world.cells += 1
            observed[role, action] = run(world, role, action, world.cells)
    count(f"access matrix: {channel} cells checked", len(observed))

    violations = sorted((role, action) for (role, action), did in observed.items()
                        if did != (role in ALLOWED[channel][action]))
    count(f"access matrix: {channel} cells violating", len(violations))
    print(f"\n{channel}: {len(observed)} cells checked, {len(violations)} violations")
    assert violations == [], "\n".join(f"{channel} {r} {a}: {'did' if observed[r, a] else 'could not'}"
                                        for r, a in violations)


def test_notifications_carry_a_residents_phone_only_to_the_assigned_worker_and_the_supervisor(world):
    from bot.storage.outbox import OutboxRow

    with world.site.service.sessions() as s:
        rows = [(r.user_id, r.payload.get("text", "")) for r in s.scalars(select(OutboxRow))]
    checked = 0
    leaks = []
    for user, text in rows:
        for phone in world.phones.values():
            if phone in text:
                checked += 1
                if user not in ("w-own", "s-own"):
                    leaks.append((user, text[:80]))
    count("access matrix: notifications carrying a phone, checked", checked)
    assert checked and leaks == []


def test_only_the_assigned_worker_accepts_in_the_chat_as_on_the_console(make_site):
    site = make_site()
    site.staff("w-own")
    site.staff("s-own", role="supervisor", community="jingcun")
    ticket = site.file("r1")

    site.say("s-own", button=f"t:accept:{ticket}")

    assert site.service.store.get(ticket).status == "assigned"
