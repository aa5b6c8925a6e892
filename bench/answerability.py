"""The retriever's answerability check at several operating points, and the indexes bench/answers.py asks.

An operating point is one AnswerabilityParams (or None: relevance alone decides).
Each question is scored once (HybridRetriever.score, then the relevance
threshold, as search does); every point then runs the product's own
HybridRetriever.hits over the same candidates, so the hits at a point are
the hits search would return with that setting (checked against search).

Indexes: the policy corpus without the documents that answer one fold of the
questions (--leave-out), and the project's sample knowledge/ folder (--near-domain).
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT, loose
from bench.retrieval import make_config
from bot.retrieval.answerable import AnswerabilityParams

TOPICS = (0.70, 0.72, 0.74, 0.75, 0.76, 0.78, 0.80)
SEED = 0  # fixed folds: each fold's index is cached, and runs compare
CHECKED = 10  # questions per index whose hits are compared with a plain search
ANSWERABILITY = ("min_topic", "topic_match_weight", "check_named_items")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- operating points ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    params: AnswerabilityParams | None  # None: answerability off
    shipped: bool = False

    @property
    def min_topic(self) -> float | None:
        return self.params.min_topic if self.params else None

    @property
    def items(self) -> bool | None:
        return self.params.check_items if self.params else None

    def label(self) -> str:
        if self.params is None:
            return f"{'off':>9s} {'-':>5s}"
        return f"{self.params.min_topic:>9.2f} {'on' if self.params.check_items else 'off':>5s}"


def operating_points(knowledge, shipped: AnswerabilityParams | None) -> list[Point]:
    """Off; min_topic over TOPICS with the configured match weight, items on; items off at the shipped min_topic."""
    weight = knowledge.topic_match_weight
    grid = [None, *(AnswerabilityParams(t, weight, True) for t in TOPICS),
            AnswerabilityParams(knowledge.min_topic, weight, False)]
    if shipped not in grid:
        grid.append(shipped)
    return [Point(p, p == shipped) for p in dict.fromkeys(grid)]


def hits_at(retriever, found, params: AnswerabilityParams | None) -> list:
    return [] if found is None else retriever.hits(found, params)


def hits_per_point(retriever, questions: list[dict], points: list[Point], what: str) -> list[list[list]]:
    """hits[p][q]: the hits of question q at point p, from one scoring of each question."""
    start = time.perf_counter()
    out: list[list[list]] = [[] for _ in points]
    for q in questions:
        cand = retriever.candidates(q["question"])
        # the first point embeds the passages' headings into the retriever's memo; the other points
        # (and a search after them) reuse those vectors, so all compare the same cosines
        for row, point in zip(out, points):
            row.append(hits_at(retriever, cand, point.params))
    log(f"{what}: {len(questions)} questions at {len(points)} points in {time.perf_counter() - start:.1f}s")
    return out


def check_same_as_search(retriever, questions: list[dict], got: list[list], searched: list[list] | None = None) -> None:
    """Hits at the shipped point must be search's own (given, or searched here for the first CHECKED questions)."""
    if searched is None:
        questions, got = questions[:CHECKED], got[:CHECKED]
        searched = [retriever.search(q["question"]) for q in questions]
    for q, mine, theirs in zip(questions, got, searched):
        ids = [h.chunk_id for h in mine], [h.chunk_id for h in theirs]
        assert ids[0] == ids[1], f"{q['question']!r}: hits at the shipped point {ids[0]} != search's {ids[1]}"


# --- indexes ------------------------------------------------------------------------------------

def build_kb(work: Path, knowledge, folders: list[Path], min_relevance: float, embedder=None):
    """The product's knowledge base over work/docs/..., ingested (incrementally), with the project's settings."""
    from bot.app import build_knowledge
    from bot.settings import load_settings

    settings = load_settings(make_config(work, work / "index", knowledge.chunk_chars, knowledge.chunk_overlap))
    # make_config writes no answerability keys: carry config.toml's, and build_knowledge wires them as in the service
    wanted = {name: getattr(knowledge, name) for name in ANSWERABILITY}
    settings = settings.model_copy(update={"knowledge": settings.knowledge.model_copy(update=wanted)})
    kb = build_knowledge(settings, embedder)
    start = time.perf_counter()
    report = kb.ingest(folders, progress=sys.stderr.isatty())
    log(f"index {work.name}: {report.summary()}; {report.chunks} chunks, {report.embedded} embedded "
        f"in {time.perf_counter() - start:.1f}s")
    kb.retriever.params.min_relevance = min_relevance
    kb.retriever.top_k = knowledge.top_k
    return kb


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_symlink():
        path.symlink_to(target.resolve(), target_is_directory=target.is_dir())


def sample_kb(knowledge, min_relevance: float):
    """The project's sample knowledge base (knowledge/) in its own cached index."""
    key = f"{ROOT / 'knowledge'}|{knowledge.chunk_chars}|{knowledge.chunk_overlap}"
    tag = hashlib.sha1(key.encode()).hexdigest()[:10]
    work = CACHE / f"sample-kb-{tag}"
    link(work / "docs", ROOT / "knowledge")
    return build_kb(work, knowledge, [Path("docs")], min_relevance)


def folds(n: int, k: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    return [sorted(order[i::k]) for i in range(k)]



def answering_docs(corpus: list[dict], questions: list[dict]) -> set[str]:
    """doc_ids of the documents whose text holds a gold answer of these questions, ignoring whitespace.

    Reprints of such a document hold the same answer, so they are among them.
    """
    golds = [loose(q["answer"]) for q in questions if q["answer"].strip()]
    return {row["doc_id"] for row in corpus if any(g in loose(row["text"]) for g in golds)}


class KnownVectors:
    """The full index's vectors for the chunks a fold index ingests again: a fold embeds (almost) nothing.

    Anything else (queries, headings, the probe questions of the dense floor, a batch
    with a chunk the full index lacks) goes to the service's embedder by the same path
    the service takes (queries: embed; documents and headings: embed_documents).
    """

    def __init__(self, embedder, snap):
        from bot.retrieval.ingest import indexed_text

        self.embedder = embedder
        self.name = embedder.name  # the manifest's model check: the vectors are this model's
        self.known = {indexed_text(e): v for e, v in zip(snap.entries, snap.vectors)}
        self.served = 0

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def embed(self, texts):
        return self.embedder.embed(texts)  # queries and probe questions: the service's own path

    def embed_documents(self, texts):
        """Chunks the full index holds come from its table; headings and new chunks take the document path."""
        from bot.retrieval.embeddings import embed_documents

        if texts and all(t in self.known for t in texts):
            self.served += len(texts)
            return np.stack([self.known[t] for t in texts])
        return embed_documents(self.embedder, texts)


def fold_kb(full_kb, corpus_file: Path, laws: Path, knowledge, fold: int, k: int, dropped: set[str],
            min_relevance: float):
    """The full index's policy files but the dropped ones, and the laws, in the fold's own cached index."""
    corpus_hash = hashlib.sha1(corpus_file.read_bytes()).hexdigest()
    # the dropped ids stand for the questions file, which decides them with the fold
    tag = hashlib.sha1(f"{corpus_hash}|{laws.resolve()}|{k}|{fold}|{SEED}|{knowledge.chunk_chars}|"
                       f"{knowledge.chunk_overlap}|{sorted(dropped)}".encode()).hexdigest()[:10]
    work = CACHE / f"leave-out-{tag}"
    policy = work / "docs" / "policy"
    policy.mkdir(parents=True, exist_ok=True)
    source = full_kb.settings.base_dir / "docs" / "policy"  # written by write_policy_docs, one file per notice
    for path in sorted([*source.glob("*.md"), *source.glob("*.txt")]):
        if path.stem not in dropped:
            link(policy / path.name, path)
    link(work / "docs" / "laws", laws)
    vectors = KnownVectors(full_kb.embedder, full_kb.index.snapshot())
    kb = build_kb(work, knowledge, [Path("docs/policy"), Path("docs/laws")], min_relevance, vectors)
    if vectors.served:
        log(f"  {vectors.served} of the chunks embedded took their vectors from the full index")
    return kb
