"""The answer log: each question with what it got, residents' 👍/👎, and the admins' queue of questions to work through."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.reliability.support import Site


def payloads(replies) -> list[str]:
    return [b.payload for r in replies for b in r.buttons]


def test_an_answer_carries_votes_and_a_thumbs_down_with_its_reason_reaches_the_admins_queue(tmp_path):
    site = Site(tmp_path / "site")
    try:
        site.staff("a1", role="admin")
        [answer] = site.say("r1", "老人家食堂要带什么材料？我电话13812345678")
        vote_up, vote_down = (p for p in payloads([answer]) if p.startswith("fb:"))
        entry = int(vote_down.rsplit(":", 1)[1])

        stranger = site.say("r2", button=vote_down)  # someone else cannot vote on r1's answer
        asked = site.say("r1", button=vote_down)
        reasons = payloads(asked)
        thanks = site.say("r1", button=reasons[1])

        [logged] = site.service.answer_log.recent("all")
        assert stranger[0].intent == "feedback" and "过期" in stranger[0].text
        assert reasons == [f"fb:why:{entry}:没回答我的问题", f"fb:why:{entry}:内容过时", f"fb:why:{entry}:看不懂"]
        assert "谢谢" in thanks[0].text
        assert (logged.id, logged.vote, logged.reason) == (entry, "down", "内容过时")
        assert logged.sources and "13812345678" not in logged.question and "138****5678" in logged.question
        page = site.login("a1").get("/console/questions").text
        assert "老人家食堂要带什么材料" in page and "内容过时" in page and "r1" not in page
    finally:
        site.close()


def test_a_question_the_documents_do_not_cover_waits_in_the_queue_until_marked_handled(tmp_path):
    site = Site(tmp_path / "site", ingest=False)  # no documents: nothing is covered
    try:
        site.staff("a1", role="admin")
        [reply] = site.say("r1", "社区有没有免费的法律咨询？")
        admin = site.login("a1")
        queue = admin.get("/console/questions").text
        entry = site.service.answer_log.recent("queue")[0].id
        csrf = __import__("re").search(r'name="csrf" value="([^"]+)"', queue).group(1)

        done = admin.post(f"/console/questions/{entry}/handled", data={"csrf": csrf, "back": "?kind=queue"})

        assert not any(p.startswith("fb:") for p in payloads([reply]))  # nothing to vote on
        assert "社区有没有免费的法律咨询" in queue and "文件未覆盖" in queue
        assert done.status_code == 303
        assert site.service.answer_log.recent("queue") == []
        assert "社区有没有免费的法律咨询" in admin.get("/console/questions?kind=not_covered").text
        assert [e.action for e in site.service.staff.audit.recent()][0] == "question_handled"
        assert site.login("a1").get("/console/questions").status_code == 200
    finally:
        site.close()


def test_the_log_is_for_admins_only_and_is_erased_with_the_retention_period(tmp_path):
    site = Site(tmp_path / "site")
    try:
        site.staff("s1", role="supervisor", community="jingcun")
        site.say("r1", "老人家食堂几点开门")
        log = site.service.answer_log

        assert site.login("s1").get("/console/questions").status_code == 403
        assert log.erase_before(datetime.now(timezone.utc) - timedelta(days=1)) == 0
        assert log.erase_before(datetime.now(timezone.utc) + timedelta(days=1)) == 1 and log.recent("all") == []
    finally:
        site.close()


def test_the_statistics_show_the_questions_the_not_covered_and_the_thumbs_down_rates(tmp_path, run_python):
    site = Site(tmp_path / "site")
    try:
        site.staff("a1", role="admin")
        site.staff("s1", role="supervisor", community="jingcun")
        [answer] = site.say("r1", "老人家食堂要带什么材料")
        site.say("r1", button=next(b.payload for b in answer.buttons if b.payload.startswith("fb:down:")))
        site.say("r2", "老人家食堂几点开门")
        site.service.answer_log.record("web", "r3", "社区有没有免费法律咨询", [])  # as a not-covered answer logs it

        page = site.login("a1").get("/console/stats").text
        csv_text = site.login("a1").get("/console/stats.csv").content.decode("utf-8-sig")
        supervisor = site.login("s1").get("/console/stats").text
        cli = run_python("-m", "bot", "admin", "stats", "--config", str(site.config))

        qa = page[page.index('aria-label="问答"'):page.index('class="hint"')]
        assert ">3<" in qa and "1 / 3 条" in qa and "1 / 1 次评价" in qa
        assert "问答,问题数,3" in csv_text and "问答,未覆盖率,33.3%（1/3）" in csv_text
        assert 'aria-label="问答"' not in supervisor  # the district's questions: admins only
        assert "居民提问 3：未覆盖率 33.3%（1/3），“没用”率 100.0%（1/1），标准答复命中 0" in cli.stdout
        assert "问答,标准答复命中,0" in csv_text
    finally:
        site.close()


def test_a_curated_answer_takes_over_a_matching_question_and_not_an_unrelated_one(tmp_path):
    import re

    site = Site(tmp_path / "site")
    try:
        site.staff("a1", role="admin")
        admin = site.login("a1")
        page = admin.get("/console/curated?question=老人家食堂办卡要带什么材料").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        saved = admin.post("/console/curated", data={
            "csrf": csrf, "question": "老人家食堂办卡要带什么材料",
            "answer": "带本人身份证原件和一寸照片一张，到社区服务站办理（2026年起不再需要户口本）。",
            "source": "河西区老人家食堂助餐服务办理指南"})
        http = site.http()
        ask = lambda user, text: http.post("/api/chat", json={"user_id": user, "text": text}).json()["replies"]  # noqa: E731

        [taken] = ask("web-c1", "老人家食堂办卡要带什么材料？")
        [other] = ask("web-c2", "老人家食堂几点开门")
        [curated] = site.service.curated.all()
        retire = admin.post(f"/console/curated/{curated.id}/retire", data={"csrf": csrf})
        [after] = ask("web-c3", "老人家食堂办卡要带什么材料？")

        assert saved.status_code == 303
        assert "不再需要户口本" in taken["text"] and "来源：社区工作人员答复" in taken["text"]
        assert "依据：河西区老人家食堂助餐服务办理指南" in taken["text"]
        assert "fb:down:" in " ".join(b["payload"] for b in taken["buttons"])
        assert "户口本" not in other["text"] and other["citations"][0]["title"] != "工作人员答复"
        assert curated.hits == 1
        assert retire.status_code == 303 and "不再需要户口本" not in after["text"]
        audit = [e.action for e in site.service.staff.audit.recent()]
        assert "curated_save" in audit and "curated_retire" in audit
        listing = admin.get("/console/curated").text
        assert "命中 1 次" in listing and "已停用" in listing
        assert "问答,标准答复命中,1" in admin.get("/console/stats.csv").content.decode("utf-8-sig")
    finally:
        site.close()


def test_an_expired_document_is_not_cited_through_the_web_api(tmp_path):
    site = Site(tmp_path / "site", ingest=False)
    try:
        from tests.fakes import BATH_2024, BATH_2026

        (site.docs / "bath-2024.md").write_text(BATH_2024, "utf-8")
        (site.docs / "bath-2026.md").write_text(BATH_2026, "utf-8")
        site.service.knowledge.ingest(progress=False)
        http = site.http()

        replies = http.post("/api/chat", json={"user_id": "web-x", "text": "助浴车每周几来，收费多少"}).json()["replies"]

        cited = {c["title"] for r in replies for c in r["citations"]}
        assert cited and "2024年社区助浴服务" not in cited  # worded like the question, but expired
        assert "20元" not in replies[-1]["text"]
    finally:
        site.close()


def test_the_queue_keeps_an_old_unanswered_question_behind_many_answered_ones(tmp_path):
    site = Site(tmp_path / "site", ingest=False)
    try:
        log = site.service.answer_log
        old = log.record("web", "r0", "社区有没有免费法律咨询", [])
        for n in range(30):
            log.record("web", f"r{n + 1}", f"老人家食堂第{n}个问题", ["河西区老人家食堂助餐服务办理指南"])

        queue = log.recent("queue", limit=10)

        assert [r.id for r in queue] == [old] and log.queue_size() == 1
        assert len(log.recent("all", limit=10)) == 10
        assert [r.id for r in log.recent("all", source="助餐", limit=5)] == list(range(old + 30, old + 25, -1))
    finally:
        site.close()
