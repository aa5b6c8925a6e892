"""`python -m bot.retrieval.search`: one JSON object per query, from the argument or stdin."""

from __future__ import annotations

import json

import pytest

HIT_KEYS = {"source", "title", "section", "score", "text"}


@pytest.fixture(scope="module")
def config(tmp_path_factory, make_config, write_samples, open_kb):
    """An index of the three sample documents, top_k 3, built once for the module."""
    root = tmp_path_factory.mktemp("search-cli")
    config = make_config(root, top_k=3)
    write_samples(root / "knowledge")
    assert open_kb(config).ingest().added == 3
    return config


def search(run_python, config, *args, input=None):
    return run_python("-m", "bot.retrieval.search", "--config", str(config), *args, input=input,
                      cwd=config.parent.parent)


def test_json_query_prints_one_object_with_the_query_and_its_hits(config, run_python):
    result = search(run_python, config, "--json", "老人家食堂", "助餐卡怎么办")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert answer["query"] == "老人家食堂 助餐卡怎么办"
    assert len(answer["hits"]) == 3  # knowledge.top_k
    for hit in answer["hits"]:
        assert HIT_KEYS <= hit.keys()
        assert isinstance(hit["score"], float) and 0.0 <= hit["score"] <= 1.0
    top = answer["hits"][0]
    assert top["source"] == "knowledge/elderly-meal.md"
    assert top["title"] == "老人家食堂助餐服务指南"
    assert "身份证原件" in top["text"]
    assert "助餐卡" in top["text"] and top["section"].startswith("一、谁能来吃")


def test_without_query_reads_one_query_per_line_and_answers_each_in_order(config, run_python):
    queries = ["暖气片不热咋整", "", "物业乱停水停电罚多少钱", "80岁老人吃饭补贴几块"]

    result = search(run_python, config, "--json", "-k", "1", input="\n".join(queries) + "\n")

    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["query"] for a in answers] == ["暖气片不热咋整", "物业乱停水停电罚多少钱", "80岁老人吃饭补贴几块"]
    assert [len(a["hits"]) for a in answers] == [1, 1, 1]
    assert [a["hits"][0]["source"] for a in answers] == [
        "knowledge/heating.txt", "knowledge/property-rules.txt", "knowledge/elderly-meal.md"]


def test_plain_output_cites_title_section_and_source(config, run_python):
    result = search(run_python, config, "-k", "1", "擅自停水停电")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("? 擅自停水停电\n")
    assert "第三章 法律责任 > 第十二条" in result.stdout
    assert "(knowledge/property-rules.txt, " in result.stdout


def test_k_below_one_is_a_usage_error(config, run_python):
    result = search(run_python, config, "-k", "0", "暖气")

    assert result.returncode == 2
    assert "-k must be at least 1" in result.stderr


def test_empty_index_exits_2_telling_to_run_ingest(tmp_path, make_config, run_python):
    result = search(run_python, make_config(tmp_path, ingest_on_start=False), "--json", "暖气不热")

    assert result.returncode == 2
    assert "run python ingest.py first" in result.stderr
    assert result.stdout == ""


def test_missing_config_exits_2_with_one_line(tmp_path, run_python):
    result = search(run_python, tmp_path / "missing.toml", "--json", "暖气不热")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"search: config file not found: {tmp_path / 'missing.toml'}"]


def test_a_staff_only_document_is_searched_only_with_staff(tmp_path, make_config, write_doc, run_python, open_kb):
    config = make_config(tmp_path)
    write_doc(tmp_path / "knowledge", "handbook.md", "---\ntitle: 走访手册\naudience: staff\n---\n独居老人每月至少走访一次。\n")
    write_doc(tmp_path / "knowledge", "guide.md", "# 入户走访指南\n网格员定期入户走访。\n")
    open_kb(config).ingest()

    resident = search(run_python, config, "--json", "-k", "5", "独居老人多久走访一次")
    staff = search(run_python, config, "--json", "--staff", "-k", "5", "独居老人多久走访一次")

    assert "走访手册" not in resident.stdout
    assert json.loads(staff.stdout)["hits"][0]["title"] == "走访手册"
