"""The staff console in a real headless Chromium, against the whole service served by uvicorn on 127.0.0.1.

Residents use the chat API as the chat page does; staff get their login link from
the bot with /console and use the console like a phone browser would. Each
console page is saved to docs/screenshots/console-<page>.png.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import socket
from pathlib import Path

import httpx
import pytest

from bot.app import build_service
from bot.server import build_app
from bot.settings import load_settings
from tests.fakes import HANDBOOK, STAFF_QUESTION
from tests.integration.db import CATEGORIES, DISTRICT, FakeClock

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE_SIZE = {"width": 390, "height": 844}
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
BATH_MD = """\
# 社区助浴服务预约指南

## 一、谁可以预约
失能、半失能的老年人，由家属或本人预约。

## 二、怎么预约
助浴车每周三上午到景村社区服务站，提前一天打电话给社区服务站登记，每次收费20元（示例）。
"""

from playwright import sync_api  # noqa: E402

from tests.e2e.conftest import serving  # noqa: E402

expect = sync_api.expect


class Live:
    """The service on a free port, and helpers that talk to it as residents and staff do."""

    def __init__(self, base: str, service):
        self.base = base
        self.service = service
        self.api = httpx.Client(base_url=base, timeout=30)

    def say(self, user: str, text: str = "", button: str | None = None) -> list[dict]:
        response = self.api.post("/api/chat", json={"user_id": user, "text": text, "button": button})
        assert response.status_code == 200, response.text
        return response.json()["replies"]

    def report(self, user: str, text: str, phone: str) -> str:
        """File a ticket the way the chat page does: describe, give a phone, press the buttons."""
        assert "电话" in self.say(user, text)[-1]["text"]
        assert "随时" in [b["label"] for b in self.say(user, phone)[-1]["buttons"]][0]
        self.say(user, button="intake:time:随时")
        filed = self.say(user, button="intake:confirm")[-1]
        assert filed["ticket_id"], filed
        return filed["ticket_id"]

    def staff(self, user: str, role: str = "worker", grids=(), community=None, name: str = "") -> None:
        code = self.service.staff.create_invite(role, list(grids), community, name)
        assert "绑定成功" in self.say(user, f"/bind {code}")[-1]["text"]

    def login_link(self, user: str) -> str:
        text = self.say(user, "/console")[-1]["text"]
        return re.search(r"http://\S+/console/login/\S+", text).group(0)


@contextlib.contextmanager
def running_site(folder: Path, write_samples, clock=None):
    """The whole service on a free port over the sample documents and a staff-only handbook; yields Live."""
    write_samples(folder / "knowledge")
    (folder / "knowledge" / "staff").mkdir(parents=True, exist_ok=True)
    (folder / "knowledge" / "staff" / "handbook.md").write_text(HANDBOOK, "utf-8")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    (folder / "config.toml").write_text("\n".join([
        "[knowledge]", 'docs_dir = "knowledge"', 'index_dir = "index"', "min_relevance = 0.0",
        "[embedding]", 'backend = "hashing"', "[database]", 'url = "sqlite:///bot.db"',
        "[web]", 'host = "127.0.0.1"', f"port = {port}",  # login links point at this server
        "[tickets]", f'organisation_file = "{DISTRICT.as_posix()}"',
        f'categories_file = "{CATEGORIES.as_posix()}"']) + "\n", "utf-8")
    shutil.copytree(ROOT / "laws", folder / "laws")  # the law texts suggested to mediators
    settings = load_settings(folder / "config.toml")
    service = build_service(settings, clock=clock)
    service.knowledge.ingest(progress=False)
    service.laws.ingest(progress=False)
    with serving(build_app(service), sock) as base:
        yield Live(base, service)
    service.engine.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory, write_samples):
    with running_site(tmp_path_factory.mktemp("console"), write_samples) as site:
        yield site


@pytest.fixture
def phone(browser):
    """Return open(link) -> a phone-sized page logged in through that one-time link; CSP errors fail the test."""
    contexts, problems = [], []

    def open_as(link: str):
        context = browser.new_context(viewport=PHONE_SIZE, device_scale_factor=2, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" and "403" not in msg.text
                else None)
        page.goto(link)
        page.get_by_role("button", name="登录工作台").click()
        expect(page).to_have_url(re.compile(r"/console/tickets$"))
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def shot(page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=full_page)


def test_a_worker_logs_in_with_the_chat_link_and_resolves_the_ticket_a_resident_just_filed(live, phone, browser):
    live.staff("web-worker-wang", grids=["jingcun-01"], name="王芳")
    ticket_id = live.report("web-resident-1", "景村里3号楼2单元暖气不热", "13812345678")
    login = browser.new_page(viewport=PHONE_SIZE, device_scale_factor=2, locale="zh-CN")
    login.goto(live.base + "/console/login")
    expect(login.get_by_role("heading", name="工作人员登录")).to_be_visible()
    shot(login, "login")
    login.close()

    page = phone(live.login_link("web-worker-wang"))
    expect(page.get_by_role("heading", name="派给我的（1）")).to_be_visible()
    shot(page, "tickets")
    page.get_by_role("link", name=re.compile(ticket_id)).click()
    expect(page.get_by_text("13812345678")).to_be_visible()
    shot(page, "ticket")
    page.get_by_role("button", name="接单（已联系居民）").click()
    expect(page.get_by_role("status")).to_contain_text("已接单")
    page.get_by_label("办结说明（会发给居民）").fill("已联系供热站上门放气，室温恢复到20度")
    page.get_by_role("button", name="办结反馈").click()

    expect(page.get_by_role("status")).to_contain_text("已办结反馈")
    expect(page.locator(".meta .status")).to_have_text("已处理待确认")
    expect(page.locator(".events li")).to_have_count(4)  # filed, assigned, accepted, resolved
    told = live.api.get("/api/messages", params={"user_id": "web-resident-1"}).json()["replies"]
    assert any("已联系供热站上门放气" in r["text"] for r in told)


def test_a_worker_of_another_grid_gets_403_and_never_sees_the_residents_phone(live, phone):
    live.staff("web-worker-jing", grids=["jingcun-01"], name="景村网格员")
    live.staff("web-worker-hua", grids=["huajiang-01"], name="华江网格员")
    ticket_id = live.report("web-resident-2", "景村里5号楼楼道里堆满了纸箱子，消防通道都堵了", "13900001111")
    page = phone(live.login_link("web-worker-hua"))

    assert ticket_id not in page.content()
    response = page.goto(f"{live.base}/console/tickets/{ticket_id}")

    assert response.status == 403
    expect(page.get_by_role("heading", name="没有权限")).to_be_visible()
    assert not PHONE.search(page.content())


def test_an_admin_uploads_a_document_and_the_chat_answers_from_it(live, phone, tmp_path):
    live.staff("web-admin", role="admin", name="区管理员")
    document = tmp_path / "社区助浴服务.md"
    document.write_text(BATH_MD, "utf-8")
    page = phone(live.login_link("web-admin"))

    page.get_by_role("link", name="知识库").click()
    page.get_by_label(re.compile("选择文件")).set_input_files(str(document))
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("新增 1 个", timeout=15_000)  # the page refreshes itself
    page.get_by_role("link", name="← 返回知识库").click()
    expect(page.locator(".doc", has_text="社区助浴服务.md")).to_contain_text("已导入")
    shot(page, "kb")

    [answer] = live.say("web-resident-3", "助浴车什么时候来？怎么预约")
    assert answer["intent"] == "question", answer
    assert answer["citations"][0]["title"] == "社区助浴服务预约指南"
    assert answer["citations"][0]["source"].endswith("社区助浴服务.md") and "每周三" in answer["text"]


def test_an_admin_reads_the_statistics_and_invites_a_new_worker(live, phone):
    live.staff("web-admin-2", role="admin", name="统计管理员")
    live.staff("web-worker-li", grids=["jingcun-02"], name="李娜")
    live.report("web-resident-4", "景村里8号楼2门楼上漏水，天花板都湿了", "13700007777")
    page = phone(live.login_link("web-admin-2"))

    page.get_by_role("link", name="统计").click()
    expect(page.locator("svg.chart")).to_have_count(7)
    expect(page.get_by_role("img", name="按类别")).to_be_visible()
    shot(page, "stats", full_page=True)  # every chart, as a report would show them
    with page.expect_download() as download:
        page.get_by_role("link", name="导出 CSV").click()
    assert Path(download.value.path()).read_bytes().startswith("\ufeff分组,项目,数值".encode())
    backlog = page.get_by_role("region", name="待办")
    expect(backlog).to_contain_text("待派单")
    expect(page.get_by_role("region", name="三率")).to_contain_text(re.compile(r"\d+ / \d+ 张|尚无数据"))
    with page.expect_download() as download:
        page.get_by_role("link", name="工单明细 Excel").click()
    from openpyxl import load_workbook

    assert re.fullmatch(r"工单明细_全区_最早至\d{4}-\d{2}-\d{2}\.xlsx", download.value.suggested_filename)
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active  # the path has no suffix
    ids = [row[0].value for row in sheet.iter_rows(min_row=2)]
    assert len(ids) >= 1 and all(re.fullmatch(r"T\d{11}", i) for i in ids)
    assert not any(PHONE.search(str(c.value or "")) for row in sheet.iter_rows() for c in row)

    page.get_by_role("link", name="人员与邀请").click()
    page.get_by_label("姓名").fill("陈静")
    page.get_by_label("景村社区第三网格").check()
    page.get_by_role("button", name="生成邀请码").click()
    code = page.locator(".code").inner_text()
    shot(page, "staff")
    assert re.fullmatch(r"[A-Z2-9]{10}", code)
    assert "绑定成功" in live.say("web-worker-chen", f"/bind {code}")[-1]["text"]


def test_a_worker_takes_a_ticket_that_came_while_nobody_was_on_duty(live, phone):
    from sqlalchemy import update

    from bot.tickets.models import Staff

    live.staff("web-worker-an", grids=["anjiang-01"], name="安江网格员")
    with live.service.store.sessions.begin() as s:
        s.execute(update(Staff).where(Staff.user_id == "web-worker-an").values(on_duty=False))
    ticket_id = live.report("web-resident-5", "安江里3号楼门口的路灯坏了，晚上黑咕隆咚的", "13600006666")
    page = phone(live.login_link("web-worker-an"))

    page.get_by_role("link", name=re.compile(ticket_id)).click()
    expect(page.locator(".meta .status")).to_have_text("待派单")
    assert "13600006666" not in page.content()  # nobody's ticket yet: masked
    page.get_by_role("button", name="我来接这张工单").click()

    expect(page.get_by_role("status")).to_contain_text("已接下这张工单")
    expect(page.locator(".meta .status")).to_have_text("已派单")
    expect(page.get_by_text("13600006666")).to_be_visible()
    expect(page.get_by_role("button", name="接单（已联系居民）")).to_be_visible()
    told = live.api.get("/api/messages", params={"user_id": "web-resident-5"}).json()["replies"]
    assert any("已派给网格员" in r["text"] for r in told)


def test_a_supervisor_closes_a_duplicate_ticket_with_a_reason_the_resident_reads(live, phone):
    live.staff("web-boss-hua", role="supervisor", community="huajiang", name="华江里书记")
    ticket_id = live.report("web-resident-6", "华江里12号楼电梯又坏了，老人下不了楼", "13500005555")
    page = phone(live.login_link("web-boss-hua"))

    page.get_by_role("link", name=re.compile(ticket_id)).click()
    page.get_by_text("关闭工单（重复或无效）").click()
    page.get_by_label("原因").select_option(label="重复工单")
    page.get_by_label("理由（会告诉居民）").fill("与同楼邻居上午反映的电梯故障是同一问题，维保已在修")
    shot(page, "ticket-dismiss")
    page.get_by_role("button", name="关闭工单").click()

    expect(page.get_by_role("status")).to_contain_text("已关闭工单")
    expect(page.locator(".meta .status")).to_have_text("已关闭")
    expect(page.locator(".events li").last).to_contain_text("重复工单：与同楼邻居上午反映的电梯故障是同一问题")
    told = live.api.get("/api/messages", params={"user_id": "web-resident-6"}).json()["replies"]
    assert any(ticket_id in r["text"] and "维保已在修" in r["text"] for r in told)


def test_an_admin_deletes_a_document_only_after_confirming(live, phone):
    live.staff("web-admin-3", role="admin", name="文档管理员")
    page = phone(live.login_link("web-admin-3"))
    page.get_by_role("link", name="知识库").click()
    row = page.locator(".doc", has_text="property-rules.txt")
    expect(row).to_contain_text("段")  # passages per document

    row.get_by_text("删除", exact=True).click()  # opens the question, deletes nothing yet
    expect(row.get_by_role("button", name="确认删除")).to_be_visible()
    assert (live.service.knowledge.docs_dir() / "property-rules.txt").exists()
    shot(page, "kb-delete")
    row.get_by_role("button", name="确认删除").click()

    expect(page.get_by_role("status")).to_contain_text("已删除“property-rules.txt”")
    expect(page.locator(".doc", has_text="property-rules.txt")).to_contain_text("已删除，待重新导入")
    assert not (live.service.knowledge.docs_dir() / "property-rules.txt").exists()


def test_an_admin_deactivates_a_worker_who_left_and_their_ticket_goes_to_a_colleague(live, phone):
    live.staff("web-admin-4", role="admin", name="人事管理员")
    live.staff("web-worker-leaving", grids=["huajiang-02"], name="要离职的网格员")
    ticket_id = live.report("web-resident-7", "华江里15号楼楼道灯坏了一个多星期了", "13400004444")
    assert live.service.store.get(ticket_id).assignee_id is not None
    live.staff("web-worker-staying", grids=["huajiang-02"], name="接手的网格员")
    page = phone(live.login_link("web-admin-4"))
    page.get_by_role("link", name="人员与邀请").click()

    person = page.locator("li.person", has_text="要离职的网格员")
    person.get_by_text("停用", exact=True).click()
    expect(person.get_by_role("button", name="确认停用")).to_be_visible()
    shot(page, "staff-deactivate")
    person.get_by_role("button", name="确认停用").click()

    expect(page.get_by_role("status")).to_contain_text("已停用“要离职的网格员”")
    expect(page.locator("li.person", has_text="要离职的网格员")).to_have_count(0)
    page.goto(f"{live.base}/console/tickets/{ticket_id}")
    expect(page.locator("dl.facts")).to_contain_text("接手的网格员")
    expect(page.locator(".events li", has_text="已停用，重新派单")).to_have_count(1)
    page.get_by_role("link", name="操作记录").click()
    expect(page.locator(".events li").first).to_contain_text("停用工作人员")
    shot(page, "audit")


def test_a_supervisor_filters_the_board_and_assigns_the_waiting_tickets_at_once(live, phone):
    live.staff("web-boss-an", role="supervisor", community="anjiang", name="安江里书记")
    live.staff("web-worker-an2", grids=["anjiang-01"], name="安江二号网格员")
    from sqlalchemy import update

    from bot.tickets.models import Staff

    with live.service.store.sessions.begin() as s:  # nobody of 安江里 on duty: the reports wait
        s.execute(update(Staff).where(Staff.user_id.in_(("web-worker-an", "web-worker-an2"))).values(on_duty=False))
    first = live.report("web-resident-8", "安江里6号楼门口垃圾桶满了好几天没人收", "13300003333")
    second = live.report("web-resident-9", "安江里9号楼楼道堆满杂物，消防通道过不去", "13300003334")
    page = phone(live.login_link("web-boss-an"))

    page.get_by_label("搜索").fill("安江里9号楼")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("li.ticket")).to_have_count(1)
    expect(page.locator("li.ticket")).to_contain_text(second)
    page.get_by_label("搜索").fill("")
    page.get_by_label("状态").select_option(label="待派单")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("li.ticket")).to_have_count(2)
    page.get_by_label(f"选择 {first}").check()
    page.get_by_label(f"选择 {second}").check()
    page.get_by_label("把勾选的工单派给").select_option(label="安江二号网格员（不在岗）")
    shot(page, "tickets-board")
    page.get_by_role("button", name="批量派单").click()

    expect(page.get_by_role("status")).to_contain_text("已派单 2 张")
    expect(page.locator("li.ticket")).to_have_count(0)  # still filtered on 待派单: none left
    assert {live.service.store.get(t).status for t in (first, second)} == {"assigned"}


def test_an_admin_works_through_the_question_queue_and_writes_a_curated_answer(live, phone):
    live.staff("web-admin-5", role="admin", name="问答管理员")
    [answer] = live.say("web-resident-10", "助浴车什么时候来")
    down = next(b["payload"] for b in answer["buttons"] if b["label"] == "👎 没用")
    [why] = live.say("web-resident-10", button=down)
    live.say("web-resident-10", button=next(b["payload"] for b in why["buttons"] if b["label"] == "内容过时"))
    page = phone(live.login_link("web-admin-5"))

    page.get_by_role("link", name="问答记录").click()
    item = page.locator("ul.questions li", has_text="助浴车什么时候来")
    expect(item).to_contain_text("居民评：没用（内容过时）")
    shot(page, "questions")
    item.get_by_role("link", name="写标准答复").click()
    expect(page.get_by_label("问题")).to_have_value("助浴车什么时候来")
    page.get_by_label("答复", exact=True).fill("2026年12月起，助浴车改为每周四上午到景村社区服务站，请提前一天电话预约。")
    page.get_by_label("依据（文件或规定）").fill("景村社区服务站通知（2026-12-01）")
    shot(page, "curated")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_contain_text("已保存")

    [taken] = live.say("web-resident-11", "助浴车什么时候来")
    assert "每周四上午" in taken["text"] and "社区工作人员答复" in taken["text"]
    page.reload()
    expect(page.locator("ul.people li", has_text="助浴车什么时候来")).to_contain_text("命中 1 次")
    page.goto(f"{live.base}/console/questions")
    page.locator("ul.questions li", has_text="内容过时").get_by_role("button", name="标记已处理").click()
    expect(page.get_by_role("status")).to_contain_text("已标记为已处理")
    expect(page.locator("ul.questions li", has_text="内容过时")).to_have_count(0)


# -- the worker's desk: 问答, 受理, 值班 ---------------------------------------------------------------------


def test_a_worker_asks_in_the_console_and_sees_the_answer_and_the_ranked_passages(live, phone):
    live.staff("web-worker-ask", grids=["jingcun-02"], name="问答网格员")
    page = phone(live.login_link("web-worker-ask"))

    page.get_by_role("link", name="问答").click()
    page.get_by_label("问题").fill(STAFF_QUESTION)
    page.get_by_role("button", name="提问").click()

    answer = page.locator("section.answer")
    expect(answer).to_contain_text("每月至少走访一次")
    expect(answer).to_contain_text("内部，请勿转发居民")
    rows = page.locator("table.hits tbody tr")
    expect(rows.first).to_contain_text("网格员走访手册（内部）")
    expect(rows.first).to_contain_text("已引用")
    shot(page, "ask", full_page=True)
    page.get_by_label("以居民身份检索（不含内部文件）").check()
    page.get_by_role("button", name="提问").click()
    expect(page.locator("table.hits")).not_to_contain_text("网格员走访手册")
    [resident] = live.say("web-resident-ask", STAFF_QUESTION)
    assert "走访手册" not in resident["text"] and "每月至少走访" not in resident["text"]


def test_a_worker_files_a_walk_in_report_and_it_reaches_the_grid_workers_board(live, phone):
    live.staff("web-clerk", grids=["jingcun-03"], name="窗口社工")
    live.staff("web-worker-j1", grids=["jingcun-01"], name="一网格员")
    clerk = phone(live.login_link("web-clerk"))

    clerk.get_by_role("link", name="受理").click()
    clerk.get_by_label("居民反映的情况").fill("景村里3号楼2单元王阿姨来电，暖气片冰凉，电话13912340000，下午在家")
    clerk.get_by_role("button", name="识别").click()
    expect(clerk.get_by_label("地点")).to_have_value("景村里3号楼2单元")
    expect(clerk.get_by_label("联系电话")).to_have_value("13912340000")
    expect(clerk.get_by_label("受理方式")).to_have_value("phone")
    expect(clerk.get_by_text("网格：景村社区第一网格")).to_be_visible()
    clerk.get_by_label("方便联系的时间").fill("下午三点以后")  # the worker corrects what was read
    shot(clerk, "file", full_page=True)
    clerk.get_by_role("button", name="确认登记").click()
    expect(clerk.get_by_role("status")).to_contain_text("已登记工单")
    ticket_id = re.search(r"T\d{11}", clerk.get_by_role("status").inner_text()).group(0)

    ticket = live.service.store.get(ticket_id)
    with live.service.store.sessions() as s:  # the least-loaded worker of the grid (other tests add some)
        from bot.tickets.models import Staff

        assignee = s.get(Staff, ticket.assignee_id)
    assert ticket.grid_id == "jingcun-01" and "jingcun-01" in assignee.grids
    worker = phone(live.login_link(assignee.user_id))
    worker.get_by_role("link", name=re.compile(ticket_id)).click()
    expect(worker.locator("dl.facts")).to_contain_text("电话（窗口社工代居民登记")
    expect(worker.locator("dl.facts")).to_contain_text("下午三点以后")
    expect(worker.get_by_text("13912340000")).to_be_visible()  # the assigned worker sees the phone


@pytest.fixture
def live_with_clock(tmp_path, write_samples):
    """A site whose clock the test moves: Monday 2026-11-23 10:00 in the district."""
    clock = FakeClock()
    with running_site(tmp_path, write_samples, clock=clock) as site:
        yield site, clock


def test_a_supervisor_sets_tomorrows_duty_and_a_report_from_an_off_duty_grid_goes_to_the_duty_worker(
        live_with_clock, phone):
    live, clock = live_with_clock
    live.staff("web-boss-duty", role="supervisor", community="jingcun", name="景村书记")
    live.staff("web-worker-own", grids=["jingcun-01"], name="张网格")
    live.staff("web-worker-duty", grids=["jingcun-03"], name="刘当班")
    page = phone(live.login_link("web-boss-duty"))

    page.get_by_role("link", name="值班").click()
    tomorrow = page.locator("ul.duty-days li").nth(1)
    expect(tomorrow).to_contain_text("11月24日 周二")
    tomorrow.get_by_label("刘当班").check()
    tomorrow.get_by_role("button", name=re.compile("保存")).click()
    expect(page.get_by_role("status")).to_contain_text("已保存排班")
    expect(page.locator("ul.duty-days li").nth(1).get_by_label("刘当班")).to_be_checked()
    shot(page, "duty", full_page=True)

    clock.advance(days=1)
    ticket_id = live.report("web-resident-duty", "景村里3号楼2单元暖气不热，屋里才十五度", "13700007777")
    [who] = live.say("web-resident-duty-2", "景村里今天谁值班")

    ticket = live.service.store.get(ticket_id)
    people = {p.name: p.id for p in live.service.roster.members("jingcun")}
    assert ticket.assignee_id == people["刘当班"] != people["张网格"]
    assert "景村社区今日当班：刘当班" in who["text"] and "022-2800-2100" in who["text"]


def test_a_worker_records_a_visit_and_files_the_problem_seen_as_a_ticket(live, phone):
    live.staff("web-worker-visit", grids=["huajiang-02"], name="走访网格员")
    page = phone(live.login_link("web-worker-visit"))

    page.get_by_role("link", name="走访").click()
    page.get_by_role("link", name="登记走访").click()
    page.get_by_label("走访情况").fill("今天走访华江里15号楼2单元301 钱奶奶八十四岁 独居 耳朵背 想申请送餐 楼道灯坏了好几天")
    page.get_by_role("button", name="识别").click()
    expect(page.get_by_label("地址")).to_have_value("华江里15号楼2单元301室")
    expect(page.locator('input[name="p0_name"]')).to_have_value("钱奶奶")
    expect(page.locator('input[name="p0_age"]')).to_have_value("84")
    expect(page.locator('input[name="p0_tags"][value="独居"]')).to_be_checked()
    expect(page.locator('input[name="needs"][value="送餐上门"]')).to_be_checked()
    expect(page.locator('select[name="q0_category"]')).to_have_value("供电")
    shot(page, "visit", full_page=True)
    page.get_by_role("button", name="保存走访").click()

    expect(page.get_by_role("status")).to_contain_text("已保存走访记录，并生成工单")
    ticket_id = re.search(r"T\d{11}", page.get_by_role("status").inner_text()).group(0)
    person = page.locator("ul.register li", has_text="钱奶奶")
    expect(person).to_contain_text("独居")
    expect(person).to_contain_text("下次")
    shot(page, "visits", full_page=True)
    ticket = live.service.store.get(ticket_id)
    assert (ticket.source, ticket.grid_id, ticket.category) == ("visit", "huajiang-02", "供电")
    live.staff("web-worker-hua-visit", grids=["huajiang-01"], name="邻网格网格员")
    other = phone(live.login_link("web-worker-hua-visit"))
    other.goto(f"{live.base}/console/visits")
    expect(other.locator("ul.register")).not_to_contain_text("钱奶奶")


def test_a_whole_mediation_case_from_a_residents_dispute_to_the_follow_up(live_with_clock, phone):
    live, clock = live_with_clock
    live.staff("web-worker-med", grids=["jingcun-01"], name="调解网格员")
    opening = live.say("web-resident-med", "我要反映邻里纠纷，景村里3号楼楼上天天半夜拖椅子，想请社区调解")
    assert opening[0]["intent"] == "dispute" and "电话" in opening[-1]["text"]
    live.say("web-resident-med", "13611112222")
    live.say("web-resident-med", button="intake:time:晚上")
    filed = live.say("web-resident-med", button="intake:confirm")[-1]
    assert filed["ticket_id"], filed
    page = phone(live.login_link("web-worker-med"))

    page.get_by_role("link", name="调解", exact=True).click()
    page.locator("ul.cases a").first.click()
    expect(page.locator("ul.parties")).to_contain_text("申请人")
    expect(page.locator("ul.laws")).to_contain_text("第二百八十八条")
    page.get_by_label("时间").fill("2026-11-23T15:00")  # district time: shown back as 15:00
    page.get_by_label("参加人员").fill("王女士、赵先生、网格员")
    page.get_by_label("调解经过").fill("双方陈述各自情况，赵先生同意夜间注意")
    page.get_by_role("button", name="记录这次调解").click()
    expect(page.locator(".meta .status")).to_have_text("调解中")
    expect(page.locator("ol.sessions")).to_contain_text("2026-11-23 15:00")
    page.get_by_label("协议内容").fill("一、赵先生家椅子脚加装软垫；二、晚十点后不拖动家具。")
    shot(page, "case", full_page=True)
    page.get_by_role("button", name=re.compile("达成协议")).click()
    expect(page.get_by_role("status")).to_contain_text("到期会提醒回访")
    page.get_by_role("link", name="打印调解协议书").click()
    expect(page.get_by_role("heading", name="人民调解协议书")).to_be_visible()
    shot(page, "agreement", full_page=True)
    page.go_back()
    case_url = page.url

    clock.advance(days=15, minutes=1)
    assert live.service.watch.tick().reminded >= 1
    told = [r["text"] for r in live.api.get("/api/messages", params={"user_id": "web-worker-med"}).json()["replies"]]
    assert any("回访提醒" in t for t in told)
    page = phone(live.login_link("web-worker-med"))  # fifteen days on: a new login
    page.goto(case_url)
    page.get_by_label("回访情况").fill("协议已履行，夜间再无噪音")
    page.get_by_role("button", name="记录回访").click()
    expect(page.get_by_role("status")).to_contain_text("已记录回访情况")
    assert live.service.mediation.success_rate("jingcun") == (1, 1)
