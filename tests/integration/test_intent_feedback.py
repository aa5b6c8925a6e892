"""Residents' own question/request choices: kept masked in the database, pruned, exported for review."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.nlu.learned import read_examples
from bot.storage.intent_feedback import SqlIntentFeedback


def feedback_of(db, keep_days: float = 365) -> SqlIntentFeedback:
    return SqlIntentFeedback(db.sessions, timedelta(days=keep_days), clock=db.clock)


def test_choices_are_kept_in_order_with_phone_and_id_numbers_masked(database):
    feedback = feedback_of(database)

    feedback.record("web", "楼道灯坏了，我电话13812345678", "request", "chose")
    feedback.record("telegram", "  低保怎么申请，身份证120101199001011234  ", "question", "corrected")
    feedback.record("web", "随便按的", "maybe", "chose")  # not a label: ignored
    feedback.record("web", "   ", "question", "chose")  # nothing to learn from

    rows = list(feedback.examples())
    assert [(r["channel"], r["label"], r["how"]) for r in rows] == [("web", "request", "chose"),
                                                                  ("telegram", "question", "corrected")]
    assert "13812345678" not in rows[0]["text"] and rows[0]["text"].startswith("楼道灯坏了")
    assert "120101199001011234" not in rows[1]["text"] and rows[1]["text"].startswith("低保怎么申请")


def test_choices_older_than_the_retention_period_are_neither_exported_nor_kept(database):
    feedback = feedback_of(database, keep_days=30)
    feedback.record("web", "暖气不热", "request", "chose")
    database.clock.advance(days=20)
    feedback.record("web", "助餐卡怎么办", "question", "chose")
    database.clock.advance(days=15)

    exported = [r["text"] for r in feedback.examples()]  # nothing recorded since: the old one is still left out
    watch = database.watch(retention_days=30)
    watch.erasers.append(feedback.erase_before)
    report = watch.tick()

    assert exported == ["助餐卡怎么办"]
    assert report.erased == 1
    with database.sessions() as s:
        from sqlalchemy import func, select

        from bot.storage.intent_feedback import IntentFeedbackRow

        assert s.scalar(select(func.count()).select_from(IntentFeedbackRow)) == 1


def test_since_is_a_date_in_the_district_and_created_is_utc(database):
    from datetime import datetime, timezone

    from bot.admin import _since

    feedback = feedback_of(database)
    database.clock.now = datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc)  # 23:00 on 30 Nov in Shanghai
    feedback.record("web", "前一天晚上", "question", "chose")
    database.clock.now = datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)  # 04:00 on 1 Dec in Shanghai
    feedback.record("web", "当天清早", "request", "chose")

    rows = list(feedback.examples(since=_since("2026-12-01")))

    assert [r["text"] for r in rows] == ["当天清早"] and rows[0]["created"] == "2026-11-30T20:00:00+00:00"


def test_admin_intent_examples_writes_a_file_the_intent_model_reads_as_extra_examples(database, tmp_path, run_python):
    feedback = feedback_of(database)
    feedback.record("web", "3号楼楼道里堆满了纸箱，请尽快清理", "request", "chose")
    feedback.record("wechat", "老人家食堂助餐卡在哪里办", "question", "corrected")
    out = tmp_path / "reviewed.jsonl"

    done = run_python("-m", "bot", "admin", "intent-examples", "--config", str(database.config(tmp_path / "cli")),
                      "--out", str(out))

    assert done.returncode == 0, done.stderr
    assert "导出 2 条" in done.stderr and "查政策 1" in done.stderr and "反映问题 1" in done.stderr
    assert [json.loads(line)["how"] for line in out.read_text("utf-8").splitlines()] == ["chose", "corrected"]
    texts, labels = read_examples([out])
    assert texts == ["3号楼楼道里堆满了纸箱，请尽快清理", "老人家食堂助餐卡在哪里办"] and labels.tolist() == [True, False]


def test_admin_intent_examples_to_a_folder_that_does_not_exist_exits_2_with_one_line(database, tmp_path, run_python):
    done = run_python("-m", "bot", "admin", "intent-examples", "--config", str(database.config(tmp_path / "cli")),
                      "--out", str(tmp_path / "no" / "such" / "folder" / "x.jsonl"))

    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "x.jsonl" in done.stderr


def test_the_service_keeps_a_residents_correction(database, tmp_path):
    from bot.app import build_service
    from bot.core.messages import Incoming
    from bot.nlu.keywords import KeywordModel
    from bot.settings import load_settings

    service = build_service(load_settings(database.config(tmp_path / "svc")), intent_model=KeywordModel())
    try:
        [asked] = service.conversation.handle(Incoming("web", "r1", text="老人家食堂助餐卡到期了请尽快处理"))
        [payload] = [b.payload for b in asked.buttons if b.label == "只是咨询，不用派单"]
        service.conversation.handle(Incoming("web", "r1", button=payload, kind="button"))
        rows = list(service.intent_feedback.examples())
    finally:
        service.engine.dispose()

    assert [(r["text"], r["label"], r["how"]) for r in rows] == [("老人家食堂助餐卡到期了请尽快处理", "question", "corrected")]
