"""The chat page in a real headless Chromium, against the web app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from bot.channels.web import create_web_app
from bot.core import texts
from bot.core.conversation import rating_buttons
from bot.core.messages import Reply
from bot.settings import WebSettings
from bot.storage.db import Base, make_engine
from bot.storage.outbox import SqlOutbox
from tests.fakes import make_conversation

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}

from playwright import sync_api  # noqa: E402

from tests.e2e.conftest import serving  # noqa: E402

expect = sync_api.expect


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The app on a free port in a background thread; yields (base_url, outbox, fakes)."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('web')}/web.db")
    Base.metadata.create_all(engine)
    outbox = SqlOutbox(sessionmaker(engine))
    conversation, fakes = make_conversation()
    app = create_web_app(conversation, WebSettings(), outbox=outbox)
    with serving(app) as base:
        yield base, outbox, fakes
    engine.dispose()


@pytest.fixture
def page(browser, site):
    """A fresh phone-sized page (its own localStorage, so its own anonymous resident) with the chat open."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(site[0] + "/")
    yield page
    context.close()


def send(page, text: str) -> None:
    page.get_by_label("输入消息").fill(text)
    page.get_by_label("输入消息").press("Enter")


def last_bot(page):
    return page.locator(".row.bot .bubble").last


def test_a_resident_asks_then_reports_a_problem_and_gets_a_ticket_number(page, site):
    send(page, "老人家食堂要带什么材料")
    expect(last_bot(page)).to_contain_text("身份证")
    expect(page.locator(".cite").last).to_have_text("来源：《河西区老人家食堂助餐服务办理指南 · 三、需要带什么材料》（2025-03-01）")
    expect(last_bot(page)).not_to_contain_text("来源：")  # shown once, under the answer
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "chat-answer.png"))

    send(page, "景村里3号楼2单元暖气不热")
    expect(last_bot(page)).to_contain_text("联系电话")
    send(page, "13812345678")
    page.get_by_role("button", name="随时都可以").click()
    expect(page.locator(".row.user .bubble").last).to_have_text("随时都可以")
    page.get_by_role("button", name="确认提交").click()
    expect(last_bot(page)).to_contain_text("工单号 T00000001")
    expect(page.get_by_role("button", name="确认提交")).to_be_disabled()

    page.screenshot(path=str(SCREENSHOTS / "chat.png"))
    [draft] = site[2]["desk"].drafts
    assert draft.channel == "web" and draft.user_id.startswith("web-") and draft.contact_time == "随时"


def test_markup_typed_by_a_resident_is_shown_as_text_and_never_runs(page):
    attack = "<img src=x onerror=alert(1)>"
    send(page, attack)

    expect(page.locator(".row.user .bubble").last).to_have_text(attack)
    expect(page.locator("#typing")).to_be_hidden()
    assert page.locator("#log img").count() == 0
    assert page.dialogs == []


def test_a_notification_arrives_by_polling_and_its_rating_chip_answers(page, site):
    _, outbox, fakes = site
    send(page, "华江里2号楼暖气不热好几天了，电话13912345678")
    page.get_by_role("button", name="晚上").click()
    page.get_by_role("button", name="确认提交").click()
    expect(last_bot(page)).to_contain_text("工单号")
    user_id = page.evaluate("localStorage.getItem('dsw-user-id')")
    ticket_id = fakes["desk"].tickets_of("web", user_id)[0].id

    outbox.notify("web", user_id, Reply(texts.RATE_PROMPT + "<script>alert(2)</script>",
                                         buttons=rating_buttons(ticket_id)))

    expect(last_bot(page)).to_contain_text("请为这次服务打分", timeout=12_000)
    expect(last_bot(page)).to_contain_text("<script>alert(2)</script>")
    page.get_by_role("button", name="5分").click()
    expect(last_bot(page)).to_contain_text(f"谢谢您的评价（5分），工单 {ticket_id} 已办结")
    assert page.dialogs == []


def test_the_resident_keeps_one_anonymous_id_across_reloads(page):
    first = page.evaluate("localStorage.getItem('dsw-user-id')")
    page.reload()

    assert first.startswith("web-") and len(first) == 36
    assert page.evaluate("localStorage.getItem('dsw-user-id')") == first


def test_a_long_unbroken_message_does_not_widen_a_375_px_screen(page):
    page.set_viewport_size({"width": 375, "height": 667})
    send(page, "我家的宽带账号是" + "8" * 120)

    expect(page.locator(".row.bot")).to_have_count(2)  # the welcome and the answer
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.evaluate("(log => log.scrollWidth <= log.clientWidth)(document.getElementById('log'))")


def test_a_refusal_from_the_server_is_shown_in_chinese_and_the_page_stays_usable(page):
    page.route("**/api/chat", lambda route: route.fulfill(
        status=429, content_type="application/json", headers={"Retry-After": "2"},
        body='{"error": "您发得太快了，请稍等一会儿再发（每分钟最多 30 条）。"}'))
    send(page, "你好")

    expect(page.get_by_role("alert")).to_have_text("您发得太快了，请稍等一会儿再发（每分钟最多 30 条）。")
    expect(page.get_by_label("发送")).to_be_enabled()
    expect(page.get_by_label("输入消息")).to_have_value("")
