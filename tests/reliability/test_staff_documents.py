"""Staff-only documents (front matter `audience: staff`, or the knowledge folder's staff/): cited to workers in
their chats and the console's 问答, never to a resident on any channel. Telegram and WeChat: tests/e2e/test_telegram.py
and tests/integration/test_wechat.py."""

from __future__ import annotations

import json
import re

from tests.reliability.support import Site

HANDBOOK = "网格员工作手册（内部）"  # knowledge/staff/worker-handbook.md, the sample staff-only document
QUESTION = "办结反馈要写哪些内容"


def cited(replies) -> set[str]:
    return {c.title for r in replies for c in r.citations}


def test_the_sample_handbook_is_indexed_as_staff_only(tmp_path):
    site = Site(tmp_path / "site")
    try:
        retriever = site.service.knowledge.retriever
        staff_titles = {h.title for h in retriever.search(QUESTION, k=10, audience="staff")}
        public = retriever.search(QUESTION, k=50)
        assert HANDBOOK in staff_titles
        assert all(h.audience == "public" and HANDBOOK not in h.title for h in public)
        assert not any("worker-handbook" in h.source for h in retriever.search("独居老人每月至少走访几次", k=50))
    finally:
        site.close()


def test_through_the_web_api_a_resident_never_gets_the_handbook_and_a_bound_worker_does(tmp_path):
    site = Site(tmp_path / "site")
    try:
        code = site.service.staff.create_invite("worker", ["jingcun-01"], None, "王芳")
        site.service.staff.bind(code, "web", "web-w1")
        http = site.http()
        ask = lambda user, text: http.post("/api/chat", json={"user_id": user, "text": text}).json()["replies"]  # noqa: E731

        resident = ask("web-r1", QUESTION)
        worker = ask("web-w1", QUESTION)

        titles = lambda replies: {c["title"] for r in replies for c in r["citations"]}  # noqa: E731
        assert HANDBOOK not in titles(resident) and "内部资料" not in json.dumps(resident, ensure_ascii=False)
        assert "做了什么、结果如何" not in json.dumps(resident, ensure_ascii=False)
        assert HANDBOOK in titles(worker)
        assert "内部资料，仅供工作人员参考" in worker[0]["text"]
    finally:
        site.close()


def test_a_deactivated_worker_is_a_resident_again_at_the_next_message(tmp_path):
    site = Site(tmp_path / "site")
    try:
        admin = site.staff("a1", role="admin")
        worker = site.staff("w1")
        before = site.say("w1", QUESTION)
        from bot.tickets.store import Actor

        site.service.staff.deactivate(worker.staff_id, Actor("staff", admin.staff_id, "admin"))
        after = site.say("w1", QUESTION)

        assert HANDBOOK in cited(before) and HANDBOOK not in cited(after)
    finally:
        site.close()


def test_on_the_console_channel_a_resident_never_gets_the_handbook_and_a_bound_worker_does(tmp_path, run_python):
    from tests.integration.db import write_config

    config = write_config(tmp_path / "service", "sqlite:///bot.db")
    invite = run_python("-m", "bot", "admin", "invite", "--role", "worker", "--grid", "jingcun-01", "--name", "王芳",
                        "--config", str(config))
    code = re.search(r"/bind (\w+)", invite.stdout).group(1)

    def chat(user: str, *lines: str) -> list[dict]:
        done = run_python("-m", "bot", "chat", "--config", str(config), "--json", "--user", user,
                          input="\n".join(lines) + "\n", timeout=300)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    resident = chat("r1", QUESTION)
    worker = chat("w1", f"/bind {code}", QUESTION)

    titles = lambda replies: {c["title"] for r in replies if r["message"] == QUESTION for c in r["citations"]}  # noqa: E731
    assert HANDBOOK not in titles(resident) and "内部资料" not in json.dumps(resident, ensure_ascii=False)
    assert HANDBOOK in titles(worker)


def test_the_console_ask_page_shows_the_hits_with_scores_and_the_resident_view_leaves_out_staff_documents(tmp_path):
    site = Site(tmp_path / "site")
    try:
        site.staff("w1")
        client = site.login("w1")

        page = client.get("/console/ask", params={"q": QUESTION}).text
        as_resident = client.get("/console/ask", params={"q": QUESTION, "as_resident": "1"}).text

        answer = page[page.index("<h2>回答</h2>"):page.index("<h2>检索到的段落</h2>")]
        table = page[page.index("<h2>检索到的段落</h2>"):]
        assert HANDBOOK in answer and "内部，请勿转发居民" in answer
        assert table.count("<tr class=\"verdict-") == 10 and "已引用" in table and "<th>相关度</th>" in table
        assert re.search(r"<td>0\.\d\d</td>", table)
        assert HANDBOOK not in as_resident and "内部" not in as_resident.split("<h2>回答</h2>")[1]
    finally:
        site.close()
