"""The staff console in-process: a real service (SQLite, hashing embedder, the repo's district) behind TestClient."""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from bot.app import build_service
from bot.channels.web import create_web_app
from bot.console.app import create_console_router
from bot.console.auth import ConsoleAuth, ConsoleAuthError, set_password
from bot.console.chat import ADMIN_ONLY, ConsoleLinkCommand, KnowledgeChatAdmin, console_base_url
from bot.console.cli import password_command
from bot.console.kb_admin import KbAdmin, KbAdminError, safe_filename
from bot.core import texts
from bot.core.dialogue import DialogueState
from bot.core.messages import Incoming
from bot.core.ports import TicketDraft
from bot.nlu.keywords import KeywordModel
from bot.settings import load_settings
from bot.tickets.organisation import PlaceResolver
from bot.tickets.store import Actor
from tests.integration.db import CATEGORIES, DISTRICT, FakeClock

PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
BATH_MD = """\
# 社区助浴服务预约指南

## 一、谁可以预约
失能、半失能的老年人，由家属或本人预约。

## 二、怎么预约
助浴车每周三上午到景村社区服务站，提前一天打电话给社区服务站登记，每次收费20元（示例）。
"""


@dataclass(frozen=True)
class DocumentIncoming(Incoming):
    """Incoming with the proposed `document` field (file id, file name) that the Telegram channel would fill."""

    document: tuple[str, str] | None = None


class Site:
    def __init__(self, tmp_path: Path, write_samples, ingest: bool):
        self.folder = tmp_path
        write_samples(tmp_path / "knowledge")
        config = tmp_path / "config.toml"
        config.write_text("\n".join([
            "[knowledge]", 'docs_dir = "knowledge"', 'index_dir = "index"', "min_relevance = 0.0",
            "ingest_on_start = false", "[embedding]", 'backend = "hashing"', "[database]", 'url = "sqlite:///bot.db"',
            "[tickets]", f'organisation_file = "{DISTRICT.as_posix()}"', f'categories_file = "{CATEGORIES.as_posix()}"',
            "[console]", "max_upload_mb = 0.05", 'public_url = "https://shegong.example.org/"']) + "\n", "utf-8")
        self.clock = FakeClock()
        # keyword intents: these tests are about the console, and training the learned model costs a second each
        self.service = build_service(load_settings(config), clock=self.clock, intent_model=KeywordModel())
        if ingest:
            self.service.knowledge.ingest(progress=False)
        settings = self.service.settings
        self.auth = ConsoleAuth(self.service.sessions, settings.console, clock=self.clock)
        self.kb = KbAdmin(self.service.knowledge, settings.console.max_upload_mb)
        router = create_console_router(self.service, self.auth, self.kb)
        self.app = create_web_app(self.service.conversation, settings.web, self.service.outbox, extra_routes=[router])
        self.link = ConsoleLinkCommand(self.auth, self.service.staff, console_base_url(settings))
        self.places = PlaceResolver(self.service.store.org)

    @property
    def docs(self) -> Path:
        return self.folder / "knowledge"

    def staff(self, user: str, role: str = "worker", grids=("jingcun-01",), community=None, name: str = ""):
        code = self.service.staff.create_invite(role, list(grids) if role == "worker" else [], community,
                                                name or user)
        return self.service.staff.bind(code, "telegram", user)

    def file(self, text: str = "景村里3号楼2单元暖气不热，屋里才十五度", phone: str = "13812345678", user: str = "r1"):
        place = self.places.resolve(text)
        category = self.service.categorizer.classify(text)
        ticket, _ = self.service.store.file(TicketDraft(
            channel="telegram", user_id=user, description=text, category=category.name, sla_class=category.sla_class,
            place=place.text, building_id=place.building_id, grid_id=place.grid_id, phone=phone, contact_time="晚上"))
        return ticket

    def client(self) -> TestClient:
        return TestClient(self.app, raise_server_exceptions=True, follow_redirects=False)

    def login_link(self, user: str) -> str:
        [reply] = self.link.handle(Incoming("telegram", user, "/console"), DialogueState("telegram", user))
        return re.search(r"https://shegong\.example\.org(/console/login/\S+)", reply.text).group(1)

    def login(self, user: str) -> TestClient:
        client = self.client()
        path = self.login_link(user)
        response = client.post(path, data={"csrf": csrf_of(client.get(path))})
        assert response.status_code == 303, response.text
        return client


def csrf_of(response) -> str:
    return CSRF.search(response.text).group(1)


def post(client: TestClient, path: str, page: str, **data):
    """Submit a form the way the browser does: with the CSRF token of the page it is on."""
    return client.post(path, data={"csrf": csrf_of(client.get(page)), **data})


@pytest.fixture
def site(tmp_path, write_samples) -> Site:
    return Site(tmp_path, write_samples, ingest=False)


@pytest.fixture
def kb_site(tmp_path, write_samples) -> Site:
    return Site(tmp_path, write_samples, ingest=True)


# -- logging in --------------------------------------------------------------------------------------

def test_a_login_link_from_the_chat_works_once_and_sets_a_safe_cookie(site):
    site.staff("w1", name="王芳")
    client = site.client()
    path = site.login_link("w1")

    page = client.get(path)
    again = client.get(path)  # a link preview fetching the page must not use the link up
    response = client.post(path, data={"csrf": csrf_of(again)})

    assert page.status_code == 200 and "王芳" in page.text
    assert response.status_code == 303 and response.headers["location"] == "/console/tickets"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("dsw_console="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # console.secure_cookies is off in this config
    assert client.get("/console/tickets").status_code == 200
    stranger = site.client()
    refused = stranger.post(path, data={"csrf": csrf_of(stranger.get("/console/login"))})
    assert refused.status_code == 403 and "已经用过" in refused.text
    assert stranger.get("/console/tickets").status_code == 303


def test_a_login_link_expires_after_the_configured_minutes(site):
    site.staff("w1")
    client = site.client()
    path = site.login_link("w1")
    csrf = csrf_of(client.get(path))

    site.clock.advance(minutes=16)

    assert client.get(path).status_code == 403
    response = client.post(path, data={"csrf": csrf})
    assert response.status_code == 403 and "过期" in response.text


def test_a_made_up_login_link_is_refused(site):
    client = site.client()
    response = client.get("/console/login/not-a-real-token-at-all")
    forged = client.post("/console/login/not-a-real-token-at-all", data={"csrf": csrf_of(response)})

    assert response.status_code == 403 and "无效" in response.text
    assert forged.status_code == 403 and "dsw_console=" not in forged.headers.get("set-cookie", "")


def test_console_command_is_for_staff_only(site, caplog):
    with caplog.at_level(logging.WARNING):
        [reply] = site.link.handle(Incoming("telegram", "resident-1", "/console"), DialogueState("telegram", "r"))

    assert reply.text == texts.STAFF_ONLY and "login" not in reply.text
    assert "/console refused" in caplog.text


def test_a_password_set_by_the_admin_is_stored_as_scrypt_and_logs_in(site):
    staff = site.staff("w1", name="王芳")
    set_password(site.service, staff.id, "冬天暖气要热2026")
    client = site.client()

    response = post(client, "/console/login", "/console/login", name="王芳", password="冬天暖气要热2026")

    with site.service.sessions() as s:
        from bot.tickets.models import Staff
        stored = s.get(Staff, staff.id).password_hash
    assert stored.startswith("scrypt$16384$8$1$") and "冬天" not in stored
    assert response.status_code == 303
    assert client.get("/console/tickets").status_code == 200


def test_a_wrong_password_is_refused_and_the_sixth_try_is_throttled(site):
    staff = site.staff("w1", name="王芳")
    set_password(site.service, staff.id, "冬天暖气要热2026")
    client = site.client()

    wrong = [post(client, "/console/login", "/console/login", name="王芳", password=f"猜一猜{i}") for i in range(5)]
    throttled = post(client, "/console/login", "/console/login", name="王芳", password="冬天暖气要热2026")
    by_id = post(client, "/console/login", "/console/login", name=str(staff.id), password="冬天暖气要热2026")
    site.clock.advance(minutes=16)
    later = post(client, "/console/login", "/console/login", name="王芳", password="冬天暖气要热2026")

    assert [r.status_code for r in wrong] == [401] * 5 and "不正确" in wrong[0].text
    assert throttled.status_code == 429 and "15 分钟" in throttled.text
    assert by_id.status_code == 303  # the count is per name and address
    assert later.status_code == 303


def test_the_admin_command_reads_the_password_from_stdin_and_refuses_a_short_one(site):
    staff = site.staff("w1", name="王芳")
    out = io.StringIO()

    assert password_command(site.service, str(staff.id), io.StringIO("冬天暖气要热2026\n"), out) == 0
    with pytest.raises(ConsoleAuthError, match="至少 8"):
        password_command(site.service, "王芳", io.StringIO("1234567\n"), out)
    with pytest.raises(ConsoleAuthError, match="没有找到"):
        password_command(site.service, "不存在的人", io.StringIO("冬天暖气要热2026\n"), out)

    assert "已为 王芳" in out.getvalue()
    login = post(site.client(), "/console/login", "/console/login", name="王芳", password="冬天暖气要热2026")
    assert login.status_code == 303


def test_cookies_are_marked_secure_when_the_console_is_served_over_https(site):
    site.staff("w1")
    site.service.settings.console.secure_cookies = True
    client = site.client()
    path = site.login_link("w1")

    response = client.post(path, data={"csrf": csrf_of(client.get(path))})

    assert all("Secure" in c for c in response.headers.get_list("set-cookie"))


def test_posts_without_the_csrf_token_are_refused(site):
    site.staff("w1")
    ticket = site.file()
    client = site.login("w1")

    missing = client.post(f"/console/tickets/{ticket.id}/accept", data={"status": "assigned"})
    forged = client.post(f"/console/tickets/{ticket.id}/accept", data={"status": "assigned", "csrf": "0" * 64})
    logout = client.post("/console/logout")
    login = site.client().post("/console/login", data={"name": "w1", "password": "whatever1"})

    assert [r.status_code for r in (missing, forged, logout, login)] == [403, 403, 403, 403]
    assert site.service.store.get(ticket.id).status == "assigned"


def test_a_session_ends_on_logout_and_when_it_expires(site):
    site.staff("w1")
    client = site.login("w1")
    other = site.login("w1")

    assert post(client, "/console/logout", "/console/tickets").status_code == 303
    assert client.get("/console/tickets").status_code == 303
    site.clock.advance(hours=12, seconds=1)
    assert other.get("/console/tickets").headers["location"] == "/console/login"


# -- tickets -----------------------------------------------------------------------------------------

def test_a_worker_sees_their_tickets_by_deadline_then_accepts_and_resolves_one(site):
    site.staff("w1", name="王芳")
    general = site.file("景村里5号楼楼道里堆满了纸箱子，消防通道都堵了", phone="13900001111", user="r1")
    site.clock.advance(minutes=5)
    heating = site.file("景村里3号楼2单元暖气不热，屋里才十五度", phone="13812345678", user="r2")
    client = site.login("w1")

    listing = client.get("/console/tickets").text
    assert listing.index(heating.id) < listing.index(general.id)  # 2 h for heating before 24 h for the corridor
    detail = client.get(f"/console/tickets/{heating.id}")
    assert "13812345678" in detail.text and "接单" in detail.text
    accepted = post(client, f"/console/tickets/{heating.id}/accept", f"/console/tickets/{heating.id}",
                    status="assigned")
    resolved = post(client, f"/console/tickets/{heating.id}/resolve", f"/console/tickets/{heating.id}",
                    status="accepted", note="已联系供热站放气，室温恢复到20度")

    assert accepted.status_code == 303 and resolved.status_code == 303
    ticket = site.service.store.get(heating.id)
    assert ticket.status == "resolved" and ticket.resolution_note == "已联系供热站放气，室温恢复到20度"
    page = client.get(resolved.headers["location"]).text
    assert "已办结反馈" in page and "处理记录" in page and "王芳（网格员）" in page
    assert [e.action for e in site.service.store.events(heating.id)][-2:] == ["accept", "resolve"]


def test_resolving_without_a_note_or_twice_is_explained(site):
    site.staff("w1")
    ticket = site.file()
    client = site.login("w1")
    page = f"/console/tickets/{ticket.id}"
    post(client, f"{page}/accept", page, status="assigned")

    empty = post(client, f"{page}/resolve", page, status="accepted", note="  ")
    stale = post(client, f"{page}/accept", page, status="assigned")

    assert empty.status_code == 400 and "怎么处理" in empty.text
    assert stale.status_code == 409 and "处理中" in stale.text


def test_a_worker_cannot_open_or_act_on_another_grids_ticket(site):
    site.staff("w1", grids=("jingcun-01",))
    site.staff("w9", grids=("huajiang-01",))
    ticket = site.file()
    client = site.login("w9")

    page = client.get(f"/console/tickets/{ticket.id}")
    action = client.post(f"/console/tickets/{ticket.id}/accept",
                         data={"csrf": csrf_of(client.get("/console/tickets")), "status": "assigned"})

    assert page.status_code == 403 and "不在您负责的网格" in page.text
    assert action.status_code == 403
    assert site.service.store.get(ticket.id).status == "assigned"


def test_no_page_shows_a_worker_a_phone_number_that_is_not_theirs(site):
    site.staff("w1", grids=("jingcun-01",))
    site.staff("w9", grids=("huajiang-01",))
    mine = site.file("华江里2号楼暖气不热好几天了", phone="13700007777", user="r7")
    others = [site.file("景村里3号楼2单元暖气不热，电话13912345678", phone="13812345678", user="r1"),
              site.file("景村里5号楼楼道堆满纸箱子", phone="13900001111", user="r2")]
    site.staff("w2", grids=("jingcun-01",))  # same grid as w1, joined after the tickets went to w1
    pages = ["/console/tickets", "/console/tickets?closed=1", "/console/stats", "/console/stats.csv", "/console/kb",
             "/console/staff"] + [f"/console/tickets/{t.id}" for t in (mine, *others)]

    seen = {}
    for user in ("w9", "w2", "w1"):
        client = site.login(user)
        seen[user] = {phone for page in pages for phone in PHONE.findall(client.get(page).text)}

    assert seen["w9"] == {"13700007777"}
    assert seen["w2"] == set()
    assert seen["w1"] == {"13812345678", "13912345678", "13900001111"}  # the check does find phones
    w2 = site.login("w2").get(f"/console/tickets/{others[0].id}").text
    assert "138****5678" in w2 and "139****5678" in w2


def test_a_supervisor_reassigns_a_ticket_to_another_worker_of_the_community(site):
    site.staff("w1", grids=("jingcun-01",))
    second = site.staff("w2", grids=("jingcun-02",), name="李娜")
    far = site.staff("w9", grids=("huajiang-01",))
    site.staff("s1", role="supervisor", community="jingcun", name="赵书记")
    site.staff("s9", role="supervisor", community="huajiang")
    ticket = site.file()
    client = site.login("s1")
    page = f"/console/tickets/{ticket.id}"

    board = client.get("/console/tickets").text
    detail = client.get(page).text
    outsider = post(client, f"{page}/assign", page, status="assigned", assignee_id=str(far.id))
    done = post(client, f"{page}/assign", page, status="assigned", assignee_id=str(second.id))

    assert ticket.id in board and "13812345678" in detail and "李娜" in detail and far.name not in detail
    assert outsider.status_code == 400
    assert done.status_code == 303 and site.service.store.get(ticket.id).assignee_id == second.id
    assert "改派给 李娜" in [e.note for e in site.service.store.events(ticket.id)]
    assert site.login("s9").get(page).status_code == 403


def ticket_ids(page: str) -> list[str]:
    """The ticket ids a list page shows, in its order."""
    return list(dict.fromkeys(re.findall(r'href="/console/tickets/(T\d+)"', page)))


def test_the_board_searches_filters_sorts_and_pages(site):
    site.staff("a1", role="admin")
    heating = site.file("景村里3号楼2单元暖气不热", user="r1")
    site.clock.advance(minutes=10)
    corridor = site.file("景村里8号楼楼道堆满纸箱子", user="r2")
    site.clock.advance(minutes=10)
    huajiang = site.file("华江里2号楼楼道堆满纸箱子", user="r3")
    admin = site.login("a1")

    everything = admin.get("/console/tickets").text
    by_word = ticket_ids(admin.get("/console/tickets", params={"q": "纸箱"}).text)
    by_id = ticket_ids(admin.get("/console/tickets", params={"q": heating.id.lower()}).text)
    one_grid = ticket_ids(admin.get("/console/tickets", params={"grid": "jingcun-02"}).text)
    jingcun = ticket_ids(admin.get("/console/tickets", params={"community": "jingcun", "sort": "newest"}).text)
    category = ticket_ids(admin.get("/console/tickets", params={"category": "供暖"}).text)
    site.clock.advance(hours=3)  # the heating ticket's 2-hour contact deadline has passed
    overdue = ticket_ids(admin.get("/console/tickets", params={"overdue": "1"}).text)

    assert ticket_ids(everything)[0] == heating.id  # soonest deadline first
    assert "景村社区第一网格" in everything and "未派单" in everything  # grid and worker columns
    assert set(by_word) == {corridor.id, huajiang.id} and by_id == [heating.id]
    assert one_grid == [corridor.id] and jingcun == [corridor.id, heating.id] and category == [heating.id]
    assert overdue == [heating.id]


def test_the_board_splits_a_long_list_into_pages(site, monkeypatch):
    import bot.console.board as board

    monkeypatch.setattr(board, "PAGE_SIZE", 2)
    site.staff("a1", role="admin")
    for n in range(5):
        site.file(f"景村里{n + 1}号楼暖气不热", user=f"r{n}")
    admin = site.login("a1")

    pages = [ticket_ids(admin.get("/console/tickets", params={"page": p}).text) for p in (1, 2, 3)]

    assert [len(p) for p in pages] == [2, 2, 1] and len({t for p in pages for t in p}) == 5
    assert "第 1 / 3 页" in admin.get("/console/tickets").text


def test_a_supervisor_assigns_several_waiting_tickets_at_once(site):
    site.staff("s1", role="supervisor", community="jingcun")
    site.staff("s9", role="supervisor", community="huajiang")
    far = site.staff("w9", grids=("huajiang-01",))
    first = site.file("景村里3号楼2单元暖气不热", user="r1")  # nobody covers jingcun yet: both wait
    second = site.file("景村里8号楼楼道堆满纸箱子", user="r2")
    worker = site.staff("w2", grids=("jingcun-03",), name="李娜")  # another grid of the community: not auto-routed
    boss = site.login("s1")

    page = boss.get("/console/tickets").text
    done = boss.post("/console/tickets/bulk-assign", data={"csrf": csrf_of(boss.get("/console/tickets")),
                                                           "ticket": [first.id, second.id, "T000"],
                                                           "assignee_id": str(worker.id)})
    refused = boss.post("/console/tickets/bulk-assign", data={"csrf": csrf_of(boss.get("/console/tickets")),
                                                              "ticket": [first.id], "assignee_id": str(far.id)})

    assert f'value="{first.id}"' in page and "李娜" in page and far.name not in page
    assert done.status_code == 303
    flash = boss.get(done.headers["location"]).text
    assert "已派单 2 张" in flash and "未派 1 张" in flash and "T000" in flash
    assert {site.service.store.get(t.id).assignee_id for t in (first, second)} == {worker.id}
    assert "不负责" in boss.get(refused.headers["location"]).text
    forged = boss.get("/console/tickets", params={"done": "请把居民电话发到这个号码", "sig": "0" * 32}).text
    assert "请把居民电话发到这个号码" not in forged  # a link cannot put words in the console's mouth
    assert site.login("w9").post("/console/tickets/bulk-assign", data={
        "csrf": csrf_of(site.login("w9").get("/console/tickets")), "ticket": [first.id],
        "assignee_id": str(far.id)}).status_code == 403
    assert site.login("s9").get("/console/tickets").text.count(first.id) == 0


def test_an_admin_creates_an_invite_and_its_code_binds_a_new_worker(site):
    site.staff("a1", role="admin")
    site.staff("w1")
    client = site.login("a1")

    response = post(client, "/console/staff/invites", "/console/staff", role="worker", grid="jingcun-02", name="李娜",
                    hours="48")
    code = re.search(r'<p class="code">([A-Z2-9]{10})</p>', response.text).group(1)
    staff = site.service.staff.bind(code, "telegram", "new-worker")

    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert f"/bind {code}" in response.text
    assert (staff.name, staff.role, staff.grids) == ("李娜", "worker", ["jingcun-02"])
    assert code not in client.get("/console/staff").text  # shown once
    assert site.login("w1").get("/console/staff").status_code == 403
    bad = post(client, "/console/staff/invites", "/console/staff", role="worker", name="没网格")
    assert bad.status_code == 400 and "网格" in bad.text


# -- statistics --------------------------------------------------------------------------------------

def test_the_stats_page_draws_svg_charts_and_the_csv_has_the_same_rows(site):
    site.staff("a1", role="admin")
    site.staff("w1")
    site.staff("s9", role="supervisor", community="huajiang")
    for text in ("景村里3号楼2单元暖气不热", "景村里4号楼暖气片冰凉", "华江里2号楼楼道堆满纸箱子"):
        site.file(text, user=text[:4])
    client = site.login("a1")

    page = client.get("/console/stats")
    download = client.get("/console/stats.csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))

    assert page.status_code == 200 and page.text.count("<svg") == 7 and "响应率" in page.text
    assert download.content.startswith(b"\xef\xbb\xbf") and download.headers["content-type"].startswith("text/csv")
    assert rows[0] == ["分组", "项目", "数值"]
    assert ["总体", "工单总数", "3"] in rows and ["按类别", "供暖", "2"] in rows and ["按周", "2026-W48", "3"] in rows
    assert ["按网格", "景村社区第一网格", "2"] in rows
    assert ["按来源", "线上", "3"] in rows  # residents' own reports; a worker's 受理 counts as 窗口/电话/走访
    assert ["三率", "响应率", "—（尚无数据）"] in rows  # no deadline has passed yet: not judged
    assert ["总体", "待办", "3"] in rows and ["总体", "待派单", "1"] in rows  # 华江里 has no worker
    supervisor = site.login("s9").get("/console/stats.csv").content.decode("utf-8-sig")
    assert "总体,工单总数,1" in supervisor and "景村" not in supervisor
    assert site.login("w1").get("/console/stats").status_code == 403


def test_the_rates_show_what_they_rest_on_and_the_backlog_comes_first(site):
    from bot.tickets.store import Actor

    site.staff("a1", role="admin")
    worker = Actor.of(site.staff("w1"))
    first = site.file("景村里3号楼2单元暖气不热", user="r1")
    site.file("景村里4号楼暖气片冰凉", user="r2")
    site.file("华江里2号楼楼道堆满纸箱子", user="r3")
    site.service.store.transition(first.id, "accept", worker)
    site.clock.advance(hours=3)  # the heating tickets' dispatch deadlines (2 h) are gone: the second is overdue

    page = site.login("a1").get("/console/stats").text

    backlog = page[page.index('aria-label="待办"'):page.index('aria-label="三率"')]
    assert [int(n) for n in re.findall(r'class="num">(\d+)<', backlog)] == [3, 1, 1, 3]  # open, unassigned, overdue, all
    rates = page[page.index('aria-label="三率"'):page.index('class="hint"')]
    assert "响应率按周" in page and "W48（2张）" in page  # the trend: filed in week 48, two judged
    assert "50.0%" in rates and "1 / 2 张" in rates  # response: one of the two judged tickets, in time
    assert rates.count("尚无数据") == 2  # no ticket closed or rated yet


def test_the_ticket_export_has_a_row_a_ticket_no_phone_and_names_its_scope_and_dates(site):
    from openpyxl import load_workbook

    site.staff("a1", role="admin")
    site.staff("w1", name="王芳")
    site.staff("s1", role="supervisor", community="jingcun")
    site.file("景村里3号楼2单元301室暖气不热", phone="13812345678", user="r1")
    site.file("华江里2号楼楼道堆满纸箱子", phone="13900001111", user="r2")
    admin = site.login("a1")

    everything = admin.get("/console/stats/tickets.csv")
    rows = list(csv.reader(io.StringIO(everything.content.decode("utf-8-sig"))))
    jingcun = site.login("s1").get("/console/stats/tickets.xlsx?since=2026-11-01")
    sheet = load_workbook(io.BytesIO(jingcun.content)).active
    cells = [[c.value or "" for c in row] for row in sheet.iter_rows()]

    assert rows[0][:4] == ["工单号", "提交时间", "类别", "状态"] and len(rows) == 3
    assert {r[2] for r in rows[1:]} == {"供暖", "楼道堆物"} and "王芳" in rows[1] + rows[2]
    assert "13812345678" not in everything.text and "301室" not in everything.content.decode("utf-8-sig")
    assert "filename*=UTF-8''" + quote("工单明细_全区_最早至2026-11-23.csv") in everything.headers["content-disposition"]
    assert len(cells) == 2 and cells[1][2] == "供暖"  # the supervisor's community only
    assert quote("工单明细_景村社区_2026-11-01至2026-11-23.xlsx") in jingcun.headers["content-disposition"]
    assert admin.get("/console/stats/tickets.pdf").status_code == 404
    assert site.login("w1").get("/console/stats/tickets.csv").status_code == 403


# -- knowledge base ----------------------------------------------------------------------------------

def upload(client: TestClient, name: str, content: bytes, ingest: bool = True):
    data = {"csrf": csrf_of(client.get("/console/kb"))}
    if ingest:
        data["ingest"] = "1"
    return client.post("/console/kb/upload", data=data, files={"file": (name, content, "application/octet-stream")})


def wait_for_job(client: TestClient, location: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page = client.get(location).text
        if 'http-equiv="refresh"' not in page:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.05)


def test_an_uploaded_document_is_ingested_in_the_background_and_becomes_searchable(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")

    response = upload(client, "社区助浴服务（2025）.md", BATH_MD.encode())
    assert response.status_code == 303 and response.headers["location"].startswith("/console/kb/jobs/")
    page = wait_for_job(client, response.headers["location"])

    assert "完成" in page and "新增 1 个，更新 0 个，未变 3 个，移除 0 个，失败 0 个" in page
    assert (kb_site.docs / "社区助浴服务（2025）.md").read_text("utf-8") == BATH_MD
    [hit, *_] = kb_site.service.knowledge.retriever.search("助浴车什么时候来，怎么预约")
    assert hit.source.endswith("社区助浴服务（2025）.md") and hit.title == "社区助浴服务预约指南"
    listing = client.get("/console/kb").text
    assert "社区助浴服务（2025）.md" in listing and listing.count("已导入") == 4


def test_a_document_that_cannot_be_read_is_listed_as_failed_with_the_reason(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")

    page = wait_for_job(client, upload(client, "损坏的通知.pdf", b"%PDF-1.4 \x00\x01 broken").headers["location"])
    listing = client.get("/console/kb").text

    assert "失败 1 个" in page and "损坏的通知.pdf" in page
    entry = listing[listing.index("损坏的通知.pdf"):]
    assert "导入失败" in entry[:200] and "原因：" in entry[:400]


def test_a_progress_page_refreshes_while_the_ingest_runs(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")
    started, release = threading.Event(), threading.Event()
    real_run = kb_site.service.knowledge.ingester.run

    def slow_run(*args, on_progress=None, **kwargs):
        on_progress("load", 1, 3)
        started.set()
        release.wait(10)
        return real_run(*args, on_progress=on_progress, **kwargs)

    kb_site.service.knowledge.ingester.run = slow_run
    location = post(client, "/console/kb/reingest", "/console/kb").headers["location"]
    started.wait(10)
    running = client.get(location).text
    busy = post(client, "/console/kb/reingest", "/console/kb")
    release.set()
    done = wait_for_job(client, location)

    assert '<meta http-equiv="refresh" content="2">' in running and "读取文件" in running and "1/3" in running
    assert busy.status_code == 409 and "已有一个导入任务" in busy.text
    assert "完成" in done and "未变 3 个" in done
    assert kb_site.kb.running() is None


def test_a_reingest_while_ingest_py_holds_the_lock_says_so(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")
    with open(kb_site.service.knowledge.layout.lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        page = wait_for_job(client, post(client, "/console/kb/reingest", "/console/kb").headers["location"])

    assert "失败" in page and "已有一个导入任务正在进行" in page


def test_an_upload_named_with_a_path_lands_in_the_knowledge_folder(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")

    response = upload(client, "../../etc/passwd.md", "# 测试\n\n路径穿越的文件名".encode(), ingest=False)

    assert response.status_code == 303 and "passwd.md" in client.get(response.headers["location"]).text
    assert (kb_site.docs / "passwd.md").is_file()
    assert not (kb_site.folder.parent / "etc").exists()


@pytest.mark.parametrize("name, safe", [("../../etc/passwd.md", "passwd.md"), ("..\\..\\通知.TXT", "通知.txt"),
                                         (".hidden.md", "hidden.md"), ("_草稿.md", "草稿.md"),
                                         ("社区 助浴（2025）.md", "社区 助浴（2025）.md"), ("a<b>:c?.md", "a_b__c.md")])
def test_upload_names_are_made_safe_and_keep_chinese(name, safe):
    assert safe_filename(name) == safe


@pytest.mark.parametrize("name", ["..md", "evil.exe", "README", "/"])
def test_upload_names_without_a_usable_name_or_type_are_refused(name):
    with pytest.raises(KbAdminError):
        safe_filename(name)


def test_an_oversized_or_unsupported_upload_is_refused_with_a_clear_message(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")
    before = sorted(p.name for p in kb_site.docs.iterdir())

    big = upload(client, "大文件.md", ("很长的内容" * 20000).encode())
    over = upload(client, "稍大.md", b"#" * 60_000)  # over the limit, under the form's allowance
    exe = upload(client, "工具.exe", b"MZ\x90\x00")

    assert big.status_code == 413 and "文件太大了：最大 0.05 MB" in big.text
    assert over.status_code == 413 and "文件太大了" in over.text
    assert exe.status_code == 400 and "不支持 .exe 文件" in exe.text
    assert sorted(p.name for p in kb_site.docs.iterdir()) == before


def test_removing_a_document_drops_it_from_the_index_after_reingest(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")

    removed = post(client, "/console/kb/remove", "/console/kb", name="elderly-meal.md")
    listed = client.get(removed.headers["location"]).text
    outside = post(client, "/console/kb/remove", "/console/kb", name="../config.toml")
    page = wait_for_job(client, post(client, "/console/kb/reingest", "/console/kb").headers["location"])

    assert removed.status_code == 303 and not (kb_site.docs / "elderly-meal.md").exists()
    assert "已删除，待重新导入" in listed
    assert outside.status_code == 404 and (kb_site.folder / "config.toml").exists()
    assert "移除 1 个" in page
    assert all("elderly-meal" not in h.source for h in kb_site.service.knowledge.retriever.search("老人家食堂助餐卡"))


def test_the_knowledge_pages_are_for_admins_only(kb_site):
    kb_site.staff("w1")
    kb_site.staff("a1", role="admin")
    worker = kb_site.login("w1")
    admin = kb_site.login("a1")

    assert worker.get("/console/kb").status_code == 403
    assert upload(admin, "x.md", b"# x", ingest=False).status_code == 303
    no_csrf = admin.post("/console/kb/upload", files={"file": ("y.md", b"# y", "text/markdown")})
    assert no_csrf.status_code == 403 and not (kb_site.docs / "y.md").exists()


# -- administration from the chat -------------------------------------------------------------------

def chat_admin(site: Site, files: dict[str, bytes]) -> KnowledgeChatAdmin:
    fetched = []

    def fetch(file_id: str) -> bytes:
        fetched.append(file_id)
        return files[file_id]

    handler = KnowledgeChatAdmin(site.kb, site.service.staff, {"telegram": fetch})
    handler.fetched = fetched
    return handler


def send_document(handler, user: str, file_id: str, name: str, caption: str = ""):
    incoming = DocumentIncoming("telegram", user, caption, kind="file", document=(file_id, name))
    return handler.handle(incoming, DialogueState("telegram", user))


def test_an_admin_adds_a_document_by_sending_it_to_the_bot(kb_site):
    kb_site.staff("a1", role="admin")
    handler = chat_admin(kb_site, {"file-1": BATH_MD.encode()})

    [reply] = send_document(handler, "a1", "file-1", "社区助浴服务.md")

    assert reply.text.startswith("已加入知识库：社区助浴服务.md") and "新增 1 个" in reply.text
    assert kb_site.service.knowledge.retriever.search("助浴车怎么预约")[0].source.endswith("社区助浴服务.md")


def test_a_document_sent_with_the_caption_internal_is_for_staff_only(kb_site):
    kb_site.staff("a1", role="admin")
    handler = chat_admin(kb_site, {"file-1": BATH_MD.encode()})

    [reply] = send_document(handler, "a1", "file-1", "助浴规程.md", caption="内部资料")

    retriever = kb_site.service.knowledge.retriever
    assert reply.text.startswith("已加入知识库：staff/助浴规程.md")
    assert not any("助浴规程" in h.source for h in retriever.search("助浴车怎么预约", 10))
    assert retriever.search("助浴车怎么预约", 10, audience="staff")[0].source.endswith("staff/助浴规程.md")


def test_anyone_but_an_admin_is_refused_and_the_attempt_logged(kb_site, caplog):
    kb_site.staff("w1")
    handler = chat_admin(kb_site, {"file-1": BATH_MD.encode()})
    with caplog.at_level(logging.WARNING):
        [worker] = send_document(handler, "w1", "file-1", "社区助浴服务.md")
        resident = send_document(handler, "r1", "file-1", "社区助浴服务.md")
        [reingest] = handler.handle(Incoming("telegram", "r1", "/reingest"), DialogueState("telegram", "r1"))

    assert worker.text == ADMIN_ONLY and reingest.text == texts.STAFF_ONLY
    assert resident is None  # the conversation answers a resident's file as it always does
    assert handler.fetched == [] and not (kb_site.docs / "社区助浴服务.md").exists()
    assert caplog.text.count("refused") == 3


def test_an_admin_reingests_from_the_chat_and_an_unsupported_file_is_not_even_fetched(kb_site):
    kb_site.staff("a1", role="admin")
    handler = chat_admin(kb_site, {"file-9": b"MZ"})

    [done] = handler.handle(Incoming("telegram", "a1", "/reingest@shegong_bot"), DialogueState("telegram", "a1"))
    [exe] = send_document(handler, "a1", "file-9", "病毒.exe")

    assert done.text == "知识库已重新导入：新增 0 个，更新 0 个，未变 3 个，移除 0 个，失败 0 个"
    assert "不支持 .exe 文件" in exe.text and handler.fetched == []
    assert handler.handle(Incoming("telegram", "a1", "老人家食堂怎么报名"), DialogueState("telegram", "a1")) is None


# -- both databases ------------------------------------------------------------------------------------

def test_console_logins_work_on_sqlite_and_postgresql(database, tmp_path):
    service = build_service(load_settings(database.config(tmp_path / "service")), clock=database.clock,
                            intent_model=KeywordModel())
    try:
        auth = ConsoleAuth(service.sessions, service.settings.console, clock=database.clock)
        code = service.staff.create_invite("worker", ["jingcun-01"], name="王芳")
        staff = service.staff.bind(code, "telegram", "w1")
        token = auth.issue_login_token(staff.id)

        assert auth.redeem_login_token(token).id == staff.id
        with pytest.raises(ConsoleAuthError, match="已经用过"):
            auth.redeem_login_token(token)
        set_password(service, staff.id, "冬天暖气要热2026")
        for _ in range(5):
            with pytest.raises(ConsoleAuthError):
                auth.password_login("王芳", "不对的密码", "10.0.0.1")
        with pytest.raises(ConsoleAuthError, match="太多"):
            auth.password_login("王芳", "冬天暖气要热2026", "10.0.0.1")
        session = auth.open_session(staff.id, "password")
        assert auth.visit(session).staff.name == "王芳"
        database.clock.advance(hours=13)
        assert auth.visit(session) is None
    finally:
        service.engine.dispose()


# -- one clock ---------------------------------------------------------------------------------------

STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def test_every_time_on_every_console_page_is_the_districts_beijing_time(kb_site):
    from datetime import datetime, timedelta, timezone

    from bot.tickets.sla import local

    kb_site.staff("a1", role="admin")
    kb_site.staff("w1")
    ticket = kb_site.file()  # at the fake clock: 02:00 UTC, 10:00 in Beijing
    kb_site.clock.advance(minutes=17)
    kb_site.service.store.transition(ticket.id, "accept", Actor.of(kb_site.service.staff.find("telegram", "w1")))
    real_now = datetime.now(timezone.utc)  # ingest stamps its files with the real clock
    kb_site.service.knowledge.ingest(progress=False)
    stored = kb_site.service.store.get(ticket.id)
    allowed = {local(t) for t in (stored.created_at, stored.dispatch_due, stored.feedback_due, stored.accepted_at)}
    allowed |= {local(real_now + timedelta(minutes=m)) for m in range(-2, 3)}
    client = kb_site.login("a1")

    shown = {}
    for path in ("/console/tickets", f"/console/tickets/{ticket.id}", "/console/kb", "/console/stats",
                 "/console/staff"):
        page = client.get(path)
        assert page.status_code == 200, path
        shown[path] = set(STAMP.findall(page.text))

    assert "2026-11-23 10:00" in shown[f"/console/tickets/{ticket.id}"]
    assert shown["/console/kb"], "the knowledge page shows when each file was ingested"
    assert {path: stamps - allowed for path, stamps in shown.items() if stamps - allowed} == {}


# -- staff who leave, and what admins did ----------------------------------------------------------------

def test_deactivating_a_worker_ends_their_console_session_and_the_audit_page_says_who_did_it(kb_site):
    kb_site.staff("a1", role="admin", name="区管理员")
    worker = kb_site.staff("w1", name="王芳")
    theirs = kb_site.login("w1")
    assert theirs.get("/console/tickets").status_code == 200
    admin = kb_site.login("a1")
    upload(admin, "社区助浴服务.md", BATH_MD.encode(), ingest=False)

    done = post(admin, f"/console/staff/{worker.id}/deactivate", "/console/staff")

    assert done.status_code == 303
    assert "已停用“王芳”" in admin.get(done.headers["location"]).text
    assert theirs.get("/console/tickets").status_code in (303, 401)  # the session ended with the account
    audit = admin.get("/console/audit").text
    assert "停用工作人员" in audit and "王芳（工号" in audit and "区管理员（管理员）" in audit
    assert "上传文件" in audit and "社区助浴服务.md" in audit
    assert kb_site.login("a1").get("/console/staff").text.count("已停用（1）") == 1
    assert kb_site.client().get(kb_site.login_link("a1")).status_code == 200  # admins still log in
    assert post(admin, f"/console/staff/{worker.id}/deactivate", "/console/staff").status_code == 409


def test_the_audit_page_and_staff_actions_are_for_admins_only(kb_site):
    kb_site.staff("s1", role="supervisor", community="jingcun")
    worker = kb_site.staff("w1")
    boss = kb_site.login("s1")

    assert boss.get("/console/audit").status_code == 403
    assert boss.post(f"/console/staff/{worker.id}/deactivate",
                     data={"csrf": csrf_of(boss.get("/console/tickets"))}).status_code == 403
    assert kb_site.service.staff.find("telegram", "w1") is not None


def test_an_admin_revokes_an_unused_invite_from_the_staff_page(site):
    site.staff("a1", role="admin")
    code = site.service.staff.create_invite("worker", ["jingcun-01"], None, "陈静")
    admin = site.login("a1")
    page = admin.get("/console/staff").text
    invite_id = re.search(r"/console/staff/invites/(\d+)/revoke", page).group(1)

    done = post(admin, f"/console/staff/invites/{invite_id}/revoke", "/console/staff")

    assert done.status_code == 303 and "邀请码已撤销" in admin.get(done.headers["location"]).text
    assert "陈静" not in admin.get("/console/staff").text.split("未使用的邀请码")[1].split("</section>")[0]
    with pytest.raises(Exception, match="过期"):
        site.service.staff.bind(code, "telegram", "w-late")


def test_replacing_a_document_keeps_the_previous_version_which_can_be_restored(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")
    newer = BATH_MD.replace("每次收费20元", "每次收费25元")
    upload(client, "社区助浴服务.md", BATH_MD.encode(), ingest=False)
    upload(client, "社区助浴服务.md", newer.encode(), ingest=False)

    listing = client.get("/console/kb").text
    version = re.search(r'name="version" value="([^"]+)"', listing).group(1)
    bad = post(client, "/console/kb/restore", "/console/kb", name="社区助浴服务.md", version="../../config.toml")
    done = post(client, "/console/kb/restore", "/console/kb", name="社区助浴服务.md", version=version)

    assert "历史版本（1）" in listing
    assert bad.status_code == 404
    assert done.status_code == 303 and "已把“社区助浴服务.md”恢复" in client.get(done.headers["location"]).text
    assert (kb_site.docs / "社区助浴服务.md").read_text("utf-8") == BATH_MD
    assert "历史版本（2）" in client.get("/console/kb").text  # the newer text is kept too
    assert "恢复文件的历史版本" in client.get("/console/audit").text
    report = kb_site.service.knowledge.ingest(progress=False)
    assert not any(".versions" in source for source, _ in report.failed)
    assert not any(".versions" in h.source for h in kb_site.service.knowledge.retriever.search("助浴收费", 10))


@pytest.mark.slow
def test_a_scanned_pdf_is_ingested_answers_a_question_and_is_marked_as_read_by_ocr(kb_site):
    from tests.unit.test_loaders import notice_image

    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")
    scan = io.BytesIO()
    notice_image(["社区理发服务通知", "每月第一个周三上午，", "理发师在景村社区服务站为老人免费理发。"]).save(
        scan, "PDF", resolution=100)

    page = wait_for_job(client, upload(client, "理发通知扫描件.pdf", scan.getvalue()).headers["location"])
    [hit, *_] = kb_site.service.knowledge.retriever.search("老人免费理发是什么时候")

    assert "新增 1 个" in page
    assert hit.source.endswith("理发通知扫描件.pdf") and hit.title == "社区理发服务通知" and "周三" in hit.text
    listing = client.get("/console/kb").text
    row = listing[listing.index("理发通知扫描件.pdf"):][:1500]
    assert "文字由 OCR 识别" in row


def test_the_statistics_warn_when_working_day_deadlines_run_past_the_known_holidays(tmp_path, write_samples):
    site = Site(tmp_path, write_samples, ingest=False)
    site.service.settings.tickets.feedback_working_days["general"] = 3
    site.staff("a1", role="admin")

    page = site.login("a1").get("/console/stats").text
    from datetime import datetime

    from bot.tickets.sla import SHANGHAI
    from bot.tickets.workdays import unsupported_year

    missing = unsupported_year(datetime.now(SHANGHAI).date())  # 2027 with chinese-calendar 1.11 in 2026
    if missing is None:  # a newer package knows this year and the next: nothing to warn of
        assert "节假日数据不含" not in page
    else:
        assert f"节假日数据不含 {missing} 年" in page and "chinese-calendar" in page
    site.service.settings.tickets.feedback_working_days.clear()
    assert "节假日数据不含" not in site.login("a1").get("/console/stats").text  # hours only: nothing to warn of


# -- 受理, 值班 -------------------------------------------------------------------------------------------


def test_a_worker_files_a_walk_in_report_from_one_note_and_it_reaches_the_grid_workers_list(site):
    clerk = site.staff("clerk", grids=("jingcun-03",), name="窗口王芳")
    site.staff("w1", grids=("jingcun-01",), name="网格员李强")
    client = site.login("clerk")
    note = "景村里3号楼2单元王阿姨来电，暖气不热，电话13912345678，下午在家"

    read = post(client, "/console/file/read", "/console/file", note=note)
    form = {k: v for k, v in re.findall(r'<(?:input|textarea)[^>]*name="(\w+)"[^>]*?(?:value="([^"]*)")?', read.text)}
    filed = post(client, "/console/file", "/console/file", note=note, description="景村里3号楼2单元王阿姨来电，暖气不热，下午在家",
                 category="供暖", place="景村里3号楼2单元", phone="13912345678", contact_time="下午在家", source="phone")
    [ticket] = site.service.store.visible_to(Actor("staff", 2, "worker", grids=("jingcun-01",)))
    worker_list = site.login("w1").get("/console/tickets").text

    assert read.status_code == 200 and 'value="景村里3号楼2单元"' in read.text and 'value="13912345678"' in read.text
    assert "景村社区第一网格" in read.text and '<option value="供暖" selected>' in read.text
    assert '<option value="phone" selected>电话</option>' in read.text and "note" in form
    assert filed.status_code == 303 and filed.headers["location"] == f"/console/file?ok={ticket.id}"  # not clerk's grid
    assert (ticket.source, ticket.filed_by, ticket.channel, ticket.assignee_id) == ("phone", clerk.id, "desk", 2)
    assert ticket.id in worker_list
    assert f"已登记工单 {ticket.id}" in client.get(filed.headers["location"]).text
    detail = site.login("w1").get(f"/console/tickets/{ticket.id}").text
    assert "电话（窗口王芳代居民登记，居民没有在线对话，收不到通知）" in detail
    assert any(e.action == "ticket_file" for e in site.service.staff.audit.recent())


def test_a_walk_in_form_with_a_bad_phone_or_no_place_is_shown_again_with_the_reason(site):
    site.staff("clerk")
    client = site.login("clerk")
    fields = dict(note="暖气不热", description="暖气不热", category="供暖", contact_time="", source="window")

    no_place = post(client, "/console/file", "/console/file", place="", phone="", **fields)
    bad_phone = post(client, "/console/file", "/console/file", place="景村里3号楼", phone="12345", **fields)
    empty = post(client, "/console/file/read", "/console/file", note="   ")

    assert no_place.status_code == 400 and "请写明地点" in no_place.text and "暖气不热" in no_place.text
    assert bad_phone.status_code == 400 and "电话号码不对" in bad_phone.text
    assert empty.status_code == 400 and "请先写下居民反映的情况" in empty.text
    assert site.service.store.visible_to(Actor("admin", 0, "admin")) == []


def test_a_worker_files_for_a_resident_from_the_chat_with_file(site):
    site.staff("w1", name="网格员李强")
    conversation = site.service.conversation

    [summary] = conversation.handle(Incoming("telegram", "w1", "/file 景村里5号楼王大爷来电，楼道灯坏了，电话13812345678"))
    [done] = conversation.handle(Incoming("telegram", "w1", "", button=summary.buttons[0].payload, kind="button"))
    [again] = conversation.handle(Incoming("telegram", "w1", "", button=summary.buttons[0].payload, kind="button"))
    [refused] = conversation.handle(Incoming("telegram", "r1", "/file 景村里5号楼楼道灯坏了"))

    assert "地点：景村里5号楼" in summary.text and "电话：13812345678" in summary.text and "受理方式：电话" in summary.text
    ticket = site.service.store.get(done.ticket_id)
    assert (ticket.source, ticket.channel, ticket.grid_id) == ("phone", "desk", "jingcun-01")
    assert "过期" in again.text  # one confirm, one ticket
    assert refused.text == texts.STAFF_ONLY


def test_a_supervisor_sets_tomorrows_duty_and_a_report_from_an_off_duty_grid_routes_to_the_duty_worker(site):
    site.staff("boss", role="supervisor", community="jingcun")
    own = site.staff("w-own", grids=("jingcun-01",), name="张网格")
    duty = site.staff("w-duty", grids=("jingcun-03",), name="刘当班")
    site.staff("other-boss", role="supervisor", community="huajiang")
    client = site.login("boss")

    page = client.get("/console/duty").text
    saved = post(client, "/console/duty", "/console/duty", community="huajiang", day="2026-11-24",
                 staff=str(duty.id), start="2026-11-23")
    after = client.get(saved.headers["location"]).text
    site.clock.advance(days=1)
    ticket = site.file("景村里3号楼2单元暖气不热", user="r1")
    [reply] = site.service.conversation.handle(Incoming("web", "r9", "景村里今天谁值班"))

    assert "值班 · 景村社区" in page and "张网格" in page and "刘当班" in page and "华江里" not in page
    assert saved.status_code == 303 and "已保存排班" in after
    assert site.service.roster.week("jingcun", date(2026, 11, 24), 1)[date(2026, 11, 24)] == [duty.id]  # own community
    assert site.service.roster.week("huajiang", date(2026, 11, 24), 1)[date(2026, 11, 24)] == []
    assert ticket.assignee_id == duty.id != own.id
    assert "景村社区今日当班：刘当班" in reply.text and "13" not in reply.text.split("社区电话")[0]
    assert site.login("w-own").get("/console/duty").status_code == 403
    assert [e.action for e in site.service.staff.audit.recent()][0] == "duty_set"


def test_an_admin_chooses_the_community_and_cannot_plan_the_past(site):
    site.staff("a1", role="admin")
    site.staff("w9", grids=("huajiang-01",), name="华江网格员")
    client = site.login("a1")

    page = client.get("/console/duty?community=huajiang").text
    past = post(client, "/console/duty", "/console/duty?community=huajiang", community="huajiang",
                day="2026-11-01", staff="2")

    assert "值班 · 华江里社区" in page and "华江网格员" in page and '<option value="jingcun"' in page
    assert past.status_code == 400 and "过去的日子不能再排班" in past.text


def test_a_document_uploaded_for_staff_only_is_marked_never_reaches_residents_and_restores_in_place(kb_site):
    kb_site.staff("a1", role="admin")
    client = kb_site.login("a1")
    data = {"csrf": csrf_of(client.get("/console/kb")), "ingest": "1", "staff_only": "1"}
    handbook = "# 助浴工作规程\n\n助浴车每周三上午到站，工作人员提前一天电话回访预约老人。\n".encode()

    response = client.post("/console/kb/upload", data=data, files={"file": ("助浴规程.md", handbook, "text/markdown")})
    wait_for_job(client, response.headers["location"])
    listing = client.get("/console/kb").text
    retriever = kb_site.service.knowledge.retriever
    public = {h.source for h in retriever.search("助浴车什么时候到站", 10)}
    staff = {h.source for h in retriever.search("助浴车什么时候到站", 10, audience="staff")}
    kb_site.kb.save("staff/助浴规程.md", "# 助浴工作规程\n\n改为每周四。\n".encode())
    [version] = kb_site.kb.versions("staff/助浴规程.md")
    restored = kb_site.kb.restore_version("staff/助浴规程.md", version.id)

    assert (kb_site.docs / "staff" / "助浴规程.md").is_file() and not (kb_site.docs / "助浴规程.md").exists()
    entry = listing[listing.index("staff/助浴规程.md"):]
    assert "仅工作人员" in entry[:600]
    assert not any("助浴规程" in s for s in public) and any("助浴规程" in s for s in staff)
    assert restored == "staff/助浴规程.md" and not (kb_site.docs / "助浴规程.md").exists()
    assert "每周三" in (kb_site.docs / "staff" / "助浴规程.md").read_text("utf-8")


# -- 走访, 调解 -------------------------------------------------------------------------------------------


def test_a_worker_records_a_visit_from_one_note_files_the_problem_and_the_register_lists_the_person(site):
    site.staff("w1", name="网格员李强")
    client = site.login("w1")
    note = "今天走访景村里3号楼2单元501，王大爷82岁独居，腿脚不便，想申请送餐，家里楼道灯坏了"

    read = post(client, "/console/visits/read", "/console/visits/new", note=note)
    saved = post(client, "/console/visits", "/console/visits/new", note=note, place="景村里3号楼2单元501",
                 p0_name="王大爷", p0_age="82", p0_tags=["独居", "高龄"], p1_name="", p1_age="", needs="送餐上门",
                 q0_text="家里楼道灯坏了", q0_category="供电", q0_file="1")
    register = client.get("/console/visits").text
    csv_text = client.get("/console/visits.csv").content.decode("utf-8-sig")
    [ticket] = site.service.store.visible_to(Actor("admin", 0, "admin"))

    assert 'value="王大爷"' in read.text and 'value="82"' in read.text and 'value="独居" checked' in read.text
    assert "家里楼道灯坏了" in read.text and '<option value="供电" selected>' in read.text
    assert saved.status_code == 303 and ticket.id in saved.headers["location"]
    assert (ticket.source, ticket.category, ticket.grid_id) == ("visit", "供电", "jingcun-01")
    assert "王大爷" in register and "独居" in register and "送餐上门" in register
    assert "王大爷,82,独居、高龄,送餐上门" in csv_text.replace("景村社区第一网格,景村里3号楼2单元501室,", "")


def test_another_grids_worker_sees_neither_the_register_nor_the_case(site):
    site.staff("w1")
    site.staff("w2", grids=("jingcun-02",))
    actor = Actor.of(site.service.staff.find("telegram", "w1"))
    from bot.casework.mediation import PartyEntry
    from bot.casework.register import PersonEntry

    site.service.register.save_visit(actor, "走访", "景村里3号楼", "景村里-3", "jingcun-01", None,
                                     [PersonEntry("王大爷", 82, ["独居"])], [])
    case_id = site.service.mediation.open(actor, "楼上噪音纠纷", "jingcun-01", None,
                                          [PartyEntry("applicant", "王女士", "景村里3号楼401", "13812345678")])
    other = site.login("w2")

    assert "王大爷" not in other.get("/console/visits").text
    assert "王大爷" not in other.get("/console/visits.csv").content.decode("utf-8-sig")
    assert other.get(f"/console/cases/{case_id}").status_code == 404
    cases = other.get("/console/cases")
    assert cases.status_code == 200 and "王女士" not in cases.text and "楼上噪音纠纷" not in cases.text
    assert other.get("/console/visits").status_code == 200
    mine = site.login("w1").get(f"/console/cases/{case_id}").text
    assert "王女士" in mine and "13812345678" in mine


def test_a_dispute_ticket_becomes_a_case_that_ends_in_a_printable_agreement(site):
    site.staff("w1")
    site.staff("s1", role="supervisor", community="jingcun")
    ticket = site.file("景村里3号楼楼上每天半夜拖椅子，想请社区调解", user="r1")
    client = site.login("w1")

    detail = client.get(f"/console/tickets/{ticket.id}").text
    form = client.get(f"/console/cases/new?ticket={ticket.id}").text
    opened = post(client, "/console/cases", f"/console/cases/new?ticket={ticket.id}", summary="楼上半夜拖椅子",
                  grid="jingcun-01", ticket=ticket.id, a_name="王女士", a_place="景村里3号楼401", a_phone="13812345678",
                  r_name="赵先生", r_place="景村里3号楼501", r_phone="")
    case_url = opened.headers["location"].split("?")[0]
    session = post(client, case_url + "/session", case_url, held_at="2026-11-23T15:00", location="社区调解室",
                   attendees="王女士、赵先生、网格员", notes="双方陈述，赵先生同意夜间注意")
    agreed = post(client, case_url + "/agree", case_url, terms="一、赵先生家椅子脚加装软垫；二、晚十点后不拖动家具。")
    page = client.get(case_url).text
    printed = client.get(case_url + "/agreement").text
    stats = site.login("s1").get("/console/stats.csv").content.decode("utf-8-sig")

    assert "转为调解案件" in detail and 'value="13812345678"' in form
    assert session.status_code == 303 and agreed.status_code == 303
    assert "达成协议" in page and "打印调解协议书" in page and "2026-12-08" in page  # 回访 15 days on
    assert "人民调解协议书" in printed and "王女士" in printed and "椅子脚加装软垫" in printed
    assert "调解,调解成功率,100.0%（1/1）" in stats
    assert f"调解案件 #{case_url.rsplit('/', 1)[1]}" in client.get(f"/console/tickets/{ticket.id}").text


def test_a_visit_whose_address_matches_no_grid_cannot_file_its_problem_and_says_why(site):
    site.staff("a1", role="admin")
    client = site.login("a1")
    note = "在活动室门口遇到一位老人 九十岁 独居 说家里暖气不热"

    response = post(client, "/console/visits", "/console/visits/new", note=note, place="活动室门口",
                    p0_name="老人", p0_age="90", p0_tags="独居", q0_text="家里暖气不热", q0_category="供暖",
                    q0_file="1")

    assert response.status_code == 400 and "地址对应不到网格，不能生成工单" in response.text
    assert site.service.store.visible_to(Actor("admin", 0, "admin")) == []
