"""Incremental ingest into a real on-disk index (Chroma folder, BM25), with the hashing embedder."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np
import pytest

from bot.errors import IndexError_

# How ingest cites the sample documents of tests/conftest.py (paths as given: docs_dir + name).
MEAL = "knowledge/elderly-meal.md"
HEATING = "knowledge/heating.txt"
RULES = "knowledge/property-rules.txt"


def sources(hits) -> list[str]:
    return [h.source for h in hits]


def entries_of(kb) -> list[dict]:
    snapshot = kb.index.snapshot()
    return snapshot.entries if snapshot else []


@pytest.fixture
def config(tmp_path, make_config, sample_docs):
    return make_config(tmp_path)


def test_first_run_adds_every_file_and_makes_each_searchable(config, open_kb):
    kb = open_kb(config)

    report = kb.ingest()

    assert (report.added, report.updated, report.unchanged, report.removed, report.failed) == (3, 0, 0, 0, [])
    assert report.embedded == report.chunks > 0
    assert sources(kb.retriever.search("老人食堂的助餐卡在哪办"))[0] == MEAL
    assert sources(kb.retriever.search("暖气片不热放气阀要放气吗"))[0] == HEATING
    assert sources(kb.retriever.search("物业擅自停水停电罚款多少"))[0] == RULES


def test_gbk_text_file_is_indexed_as_readable_chinese(config, open_kb):
    kb = open_kb(config)
    kb.ingest()

    top = kb.retriever.search("家里暖气不热找谁")[0]

    assert top.source == HEATING
    assert "网格员2小时内联系您" in " ".join(h.text for h in kb.retriever.search("网格员多久联系", 10))
    assert top.title == "供暖季暖气不热怎么反映"  # a plain text file without front matter: its first line


def test_hits_carry_title_section_and_date_of_their_document(config, open_kb):
    kb = open_kb(config)
    kb.ingest()

    penalty = next(h for h in kb.retriever.search("擅自停水停电罚款", 10) if "五万元以下罚款" in h.text)
    meal = next(h for h in kb.retriever.search("助餐卡怎么办", 10) if "身份证原件" in h.text)

    assert penalty.section.startswith("第三章 法律责任 > 第十二条")
    assert (meal.title, meal.date) == ("老人家食堂助餐服务指南", "2025-03-01")
    assert meal.section == "一、谁能来吃至三、补贴标准"  # short sibling sections share one chunk


def test_second_run_over_unchanged_folder_embeds_nothing(config, open_kb):
    first = open_kb(config).ingest()

    second = open_kb(config).ingest()

    assert second.embedded == 0
    assert second.summary() == "added 0, updated 0, unchanged 3, removed 0, failed 0"
    assert second.generation == first.generation
    assert second.chunks == first.chunks


def test_changed_file_is_updated_and_only_its_new_chunks_are_embedded(tmp_path, make_config, sample_docs, open_kb):
    config = make_config(tmp_path, chunk_chars=80, chunk_overlap=0)  # one chunk per section
    kb = open_kb(config)
    kb.ingest()
    before = {e["id"]: e for e in entries_of(kb)}
    meal = sample_docs["meal"]
    meal.write_text(meal.read_text("utf-8").replace("80周岁以上每餐补贴4元", "80周岁以上每餐补贴5元"), "utf-8")

    report = kb.ingest()

    after = {e["id"]: e for e in entries_of(kb)}
    new_ids = after.keys() - before.keys()
    assert report.summary() == "added 0, updated 1, unchanged 2, removed 0, failed 0"
    assert report.embedded == len(new_ids) >= 1
    assert {after[i]["source"] for i in new_ids} == {MEAL}
    assert report.embedded < sum(1 for e in after.values() if e["source"] == MEAL)
    assert any("补贴5元" in after[i]["text"] for i in new_ids)
    texts = " ".join(h.text for h in kb.retriever.search("80岁老人吃饭补贴几块钱", 10))
    assert "补贴5元" in texts and "补贴4元" not in texts


def test_deleted_file_is_removed_and_its_chunks_leave_search(config, open_kb, sample_docs):
    kb = open_kb(config)
    kb.ingest()
    assert HEATING in sources(kb.retriever.search("暖气不热放气阀", 50))

    sample_docs["heating"].unlink()
    report = kb.ingest()

    assert report.summary() == "added 0, updated 0, unchanged 2, removed 1, failed 0"
    assert report.embedded == 0
    assert HEATING not in sources(kb.retriever.search("暖气不热放气阀", 50))
    assert all(e["source"] != HEATING for e in entries_of(kb))


def test_broken_file_among_good_ones_fails_alone_with_name_and_reason(config, open_kb, write_doc, tmp_path):
    write_doc(tmp_path / "knowledge", "scan-of-notice.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pa")

    kb = open_kb(config)
    report = kb.ingest()

    assert (report.added, len(report.failed)) == (3, 1)
    name, reason = report.failed[0]
    assert name == "knowledge/scan-of-notice.pdf"
    assert "PDF" in reason and "损坏" in reason
    assert {e["source"] for e in entries_of(kb)} == {MEAL, HEATING, RULES}


def test_indexed_file_that_becomes_broken_keeps_its_old_chunks_searchable(config, open_kb, sample_docs):
    kb = open_kb(config)
    kb.ingest()
    sample_docs["rules"].write_bytes(os.urandom(6000))  # overwritten by a bad copy

    report = kb.ingest()

    assert report.failed and report.failed[0][0] == RULES
    assert (report.updated, report.removed) == (0, 0)
    hits = kb.retriever.search("物业擅自停水停电罚款多少", 50)
    assert hits[0].source == RULES and "五万元以下罚款" in hits[0].text
    # still broken next time: reported again, and still nothing lost
    again = open_kb(config).ingest()
    assert [name for name, _ in again.failed] == [RULES]
    assert open_kb(config).retriever.search("物业擅自停水停电罚款多少")[0].source == RULES


def test_broken_file_that_is_fixed_is_indexed_again(config, open_kb, sample_docs):
    kb = open_kb(config)
    kb.ingest()
    good = sample_docs["rules"].read_text("utf-8")
    sample_docs["rules"].write_bytes(b"")
    assert kb.ingest().failed
    sample_docs["rules"].write_text(good.replace("五万元", "十万元"), "utf-8")

    report = kb.ingest()

    assert report.failed == []
    assert "十万元以下罚款" in kb.retriever.search("物业擅自停水停电罚款多少")[0].text


def test_identical_paragraph_in_two_files_is_stored_once_listing_the_other_source(tmp_path, make_config, write_doc, open_kb):
    notice = "冬季供暖期间，家中室温低于18度的，请拨打供热热线或者告诉本网格的网格员，网格员24小时内上门测温。"
    write_doc(tmp_path / "knowledge", "a-street-notice.md", f"# 街道通知\n\n## 供暖\n\n{notice}\n")
    write_doc(tmp_path / "knowledge", "b-community-notice.md", f"# 社区通知\n\n## 供暖\n\n{notice}\n")
    kb = open_kb(make_config(tmp_path))

    kb.ingest()

    holding = [e for e in entries_of(kb) if e["text"] == notice]
    assert len(holding) == 1
    assert holding[0]["source"] == "knowledge/a-street-notice.md"
    assert holding[0]["also"] == ["knowledge/b-community-notice.md"]
    top = kb.retriever.search("室温低于18度打什么电话", 10)
    assert [h.text for h in top].count(notice) == 1
    assert next(h for h in top if h.text == notice).also == ("knowledge/b-community-notice.md",)


def test_hit_source_is_the_path_as_given_to_ingest(tmp_path, make_config, sample_docs, open_kb):
    kb = open_kb(make_config(tmp_path))

    kb.ingest([Path("knowledge/elderly-meal.md"), sample_docs["heating"]])

    assert sources(kb.retriever.search("助餐卡怎么办", 1)) == ["knowledge/elderly-meal.md"]
    assert sources(kb.retriever.search("暖气不热放气阀", 1)) == [str(sample_docs["heating"])]


def test_ingesting_one_file_leaves_the_others_in_place(config, open_kb, sample_docs):
    kb = open_kb(config)
    kb.ingest()
    sample_docs["heating"].write_text("供暖季暖气不热怎么反映\n\n今年起测温改为48小时内上门。\n", "utf-8")

    report = kb.ingest([Path(HEATING)])

    assert report.summary() == "added 0, updated 1, unchanged 0, removed 0, failed 0"
    assert {e["source"] for e in entries_of(kb)} == {MEAL, HEATING, RULES}


def test_hidden_files_and_underscore_folders_are_not_ingested(tmp_path, make_config, write_doc, sample_docs, open_kb):
    write_doc(tmp_path / "knowledge", "_drafts/rent-subsidy.md", "# 租房补贴（草稿）\n\n还没定稿，别发给居民。\n")
    write_doc(tmp_path / "knowledge", ".~lock.notice.md", "锁文件")

    report = open_kb(make_config(tmp_path)).ingest()

    assert report.added == 3 and report.failed == []


def test_missing_path_given_to_ingest_is_reported_as_failed(config, open_kb):
    report = open_kb(config).ingest([Path("knowledge/no-such-notice.md")])

    assert report.failed == [("knowledge/no-such-notice.md", "文件或目录不存在")]


def test_second_ingest_while_one_runs_is_refused(config, open_kb, tmp_path):
    kb = open_kb(config)
    kb.layout.root.mkdir(parents=True, exist_ok=True)
    with open(kb.layout.lock_file, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running ingest does

        with pytest.raises(IndexError_, match="another ingest"):
            kb.ingest()
    assert kb.ingest().added == 3


def test_each_run_keeps_only_the_current_and_previous_generation(config, open_kb, sample_docs):
    kb = open_kb(config)
    original = sample_docs["meal"].read_text("utf-8")
    for fee in ("3元", "5元", "6元", "8元"):
        sample_docs["meal"].write_text(original.replace("配送费3元", f"配送费{fee}"), "utf-8")
        report = kb.ingest()

    gens = sorted(p.name for p in kb.layout.root.iterdir() if p.name.startswith("gen-"))
    assert gens == [f"gen-{report.generation - 1:06d}", f"gen-{report.generation:06d}"]
    assert kb.store.generations() == [report.generation - 1, report.generation]
    assert (kb.layout.root / "CURRENT").read_text("utf-8") == f"gen-{report.generation:06d}"


class ReversedHashingEmbedder:
    """Another 'model' of the same dimension: hashing vectors of the reversed text."""

    name = "reversed-hashing-256"
    dimension = 256

    def embed(self, texts):
        from bot.retrieval.embeddings import HashingEmbedder

        return HashingEmbedder(256).embed([t[::-1] for t in texts])


class Crash(Exception):
    pass


def crash_after_first_batch(stage, done, total):
    if stage == "embed":
        raise Crash


def test_rerun_after_a_crash_reuses_the_stored_vectors_of_the_same_model(config, open_kb, sample_docs, write_doc, tmp_path):
    kb = open_kb(config)
    kb.ingest()
    write_doc(tmp_path / "knowledge", "rent-subsidy.md", "# 公租房租金补贴\n\n低保家庭租金补贴按月发放，每月10号前到账。\n")
    with pytest.raises(Crash):
        kb.ingester.run([Path("knowledge")], base=tmp_path, on_progress=crash_after_first_batch)
    assert kb.layout.current() == 1

    report = kb.ingest()

    assert report.added == 1 and report.embedded == 0
    assert kb.retriever.search("公租房租金补贴几号到账", 1)[0].source == "knowledge/rent-subsidy.md"


def test_vectors_left_by_a_crashed_run_of_another_model_are_not_reused(config, sample_docs, write_doc, tmp_path):
    from bot.app import build_knowledge
    from bot.retrieval.ingest import indexed_text
    from bot.settings import load_settings

    settings = load_settings(config)
    build_knowledge(settings).ingest()
    write_doc(tmp_path / "knowledge", "rent-subsidy.md", "# 公租房租金补贴\n\n低保家庭租金补贴按月发放，每月10号前到账。\n")
    with pytest.raises(Crash):  # the old model crashes half way through generation 2
        build_knowledge(settings).ingester.run([Path("knowledge")], base=tmp_path, on_progress=crash_after_first_batch)
    other = ReversedHashingEmbedder()
    kb = build_knowledge(settings, embedder=other)  # the admin switches models and reruns

    report = kb.ingest()

    snapshot = kb.index.snapshot()
    assert report.embedded == len(snapshot.entries)
    expected = other.embed([indexed_text(e) for e in snapshot.entries])
    assert np.allclose(snapshot.vectors, expected, atol=1e-5)


def test_plain_text_notice_is_found_by_the_words_of_its_first_line_alone(tmp_path, make_config, write_doc, open_kb):
    # The body never says 助餐 or 申领; only the first line, the notice's title, does.
    write_doc(tmp_path / "knowledge", "notice-0457.txt",
              "老年人助餐补贴申领办法\n年满60周岁的本区户籍老人，每餐补贴3元，到社区服务站登记。\n")
    write_doc(tmp_path / "knowledge", "notice-0458.txt",
              "社区服务站开放时间\n社区服务站周一至周五8:30-17:30开放，老人可以登记各类补贴。\n")
    kb = open_kb(make_config(tmp_path))
    kb.ingest()

    top = kb.retriever.search("助餐补贴怎么申领")[0]

    assert (top.source, top.title) == ("knowledge/notice-0457.txt", "老年人助餐补贴申领办法")
    assert "助餐" not in top.text  # found by its title, cited with it, not repeated in the passage


def test_a_policy_is_cited_only_between_its_effective_and_expiry_days(tmp_path, make_config, write_doc, open_kb):
    folder = tmp_path / "knowledge"
    write_doc(folder, "subsidy-2025.md", "---\ntitle: 2025年冬季取暖补贴\nexpires: 2025-12-31\n---\n"
              "冬季取暖补贴每户每季发放600元，到社区服务站申请。\n")
    write_doc(folder, "subsidy-2026.md", "---\ntitle: 2026年冬季取暖补贴\neffective: 2026-01-01\n---\n"
              "冬季取暖补贴每户每季发放800元，到社区服务站申请。\n")
    kb = open_kb(make_config(tmp_path))
    kb.ingest()
    retriever = kb.retriever

    def cited(day: str) -> set[str]:
        retriever.today = lambda: day
        return {h.title for h in retriever.search("冬季取暖补贴发多少钱", 10)}

    assert cited("2025-12-31") == {"2025年冬季取暖补贴"}  # the 2026 one is not yet in force
    assert cited("2026-01-01") == {"2026年冬季取暖补贴"}  # the 2025 one has expired
    assert cited("2026-06-30") == {"2026年冬季取暖补贴"}


def test_staff_documents_by_front_matter_or_folder_are_searched_only_for_staff(tmp_path, make_config, write_doc,
                                                                                 open_kb):
    folder = tmp_path / "knowledge"
    write_doc(folder, "guide.md", "# 入户走访指南\n网格员定期入户走访，了解居民需求。\n")
    write_doc(folder, "handbook.md", "---\ntitle: 走访手册\naudience: staff\n---\n独居老人每月至少走访一次。\n")
    write_doc(folder / "staff", "rules.txt", "调解工作规程\n调解前先分别听取双方意见，背靠背谈话。\n")
    kb = open_kb(make_config(tmp_path))
    kb.ingest()

    def titles(query: str, audience: str) -> set[str]:
        return {h.title for h in kb.retriever.search(query, 10, audience=audience)}

    assert "走访手册" in titles("独居老人多久走访一次", "staff")
    assert "调解工作规程" in titles("调解前要先做什么", "staff")
    assert not {"走访手册", "调解工作规程"} & (titles("独居老人多久走访一次", "public") | titles("调解前要先做什么", "public"))
    explained = kb.retriever.explain("独居老人多久走访一次", audience="public")
    assert explained and all(p.hit.audience == "public" for p in explained)


def test_a_passage_in_a_public_and_a_staff_file_stays_two_passages(tmp_path, make_config, write_doc, open_kb):
    """A handbook that quotes a public guide must neither show up among the guide's sources nor take its passage."""
    folder = tmp_path / "knowledge"
    body = "老人家食堂每天11:00开始供应午餐，80周岁以上老人每餐补贴4元。\n"
    write_doc(folder, "meals.md", "# 老人家食堂指南\n" + body)
    write_doc(folder, "staff/handbook.md", "# 老人家食堂指南\n" + body)
    kb = open_kb(make_config(tmp_path))
    kb.ingest()

    public = kb.retriever.search("老人家食堂几点供应午餐", 10)
    staff = kb.retriever.search("老人家食堂几点供应午餐", 10, audience="staff")

    assert [(h.source, h.also) for h in public] == [("knowledge/meals.md", ())]
    assert {h.source for h in staff} == {"knowledge/meals.md", "knowledge/staff/handbook.md"}


def test_a_file_indexed_before_audiences_existed_is_read_again(tmp_path, make_config, write_doc, open_kb):
    import json

    write_doc(tmp_path / "knowledge", "handbook.md", "---\ntitle: 走访手册\naudience: staff\n---\n独居老人每月至少走访一次。\n")
    kb = open_kb(make_config(tmp_path))
    kb.ingest()
    manifest_path = kb.layout.root / f"gen-{kb.layout.current():06d}" / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    for entry in manifest["files"].values():  # as an older version wrote it
        entry.pop("audience")
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")

    report = kb.ingest()

    assert report.updated == 1 and report.unchanged == 0
    assert kb.retriever.search("独居老人多久走访一次", 10) == []
