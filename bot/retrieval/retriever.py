"""Hybrid retrieval: BM25 over jieba tokens and dense cosine similarity, fused by score.

Why score fusion rather than a fixed 50/50 rank fusion: on formal questions BM25
wins, on colloquial ones the dense model wins; min-max normalised scores let
whichever half is confident dominate, and rank fusion could not tell a strong
first hit from a weak one. Identical passages are stored once (see ingest), so a
notice reprinted many times cannot flood the top ranks.

Relevance (the 0..1 ``score`` of a hit) is absolute, not relative to the other
candidates: the dense cosine and the share of the query's IDF mass the passage
covers. Below ``min_relevance`` a hit is dropped, so an off-topic question gets
no hits at all and the bot can say the documents do not cover it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.core.ports import Hit
from bot.retrieval.embeddings import Embedder
from bot.retrieval.index import KnowledgeIndex, Snapshot
from bot.retrieval.tokenize import tokenize

CANDIDATES = 50


@dataclass
class RetrievalParams:
    dense_weight: float = 0.5
    min_relevance: float = 0.5
    mode: str = "hybrid"  # hybrid | bm25 | dense (the last two for measurement)
    dense_search: str = "exact"


@dataclass(frozen=True)
class Scored:
    row: int
    fused: float
    bm25: float
    dense: float
    coverage: float
    relevance: float


class HybridRetriever:
    def __init__(self, index: KnowledgeIndex, embedder: Embedder, params: RetrievalParams | None = None,
                 top_k: int = 5):
        self.index = index
        self.embedder = embedder
        self.params = params or RetrievalParams()
        self.top_k = top_k

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """Return relevant passages, best first; empty when the query is not covered."""
        snap = self.index.snapshot()
        if snap is None or not snap.entries or not query.strip():
            return []
        scored = self.score(query, snap, k or self.top_k)
        return [self._hit(snap, s) for s in scored if s.relevance >= self.params.min_relevance]

    def score(self, query: str, snap: Snapshot, k: int) -> list[Scored]:
        """Top-k candidates with every signal, before the relevance threshold."""
        tokens = tokenize(query)
        bm25 = snap.bm25.scores(tokens)
        dense = self._dense(query, snap)
        n = len(snap.entries)
        take = min(CANDIDATES, n)
        cand = set(np.argpartition(-bm25, take - 1)[:take].tolist()) if bm25.any() else set()
        if self.params.mode != "bm25":
            cand |= set(np.argpartition(-dense, take - 1)[:take].tolist())
        rows = np.fromiter(cand, dtype=np.int64)
        b = bm25[rows]
        d = dense[rows]
        match self.params.mode:
            case "bm25":
                fused = b
            case "dense":
                fused = d
            case _:
                w = self.params.dense_weight
                fused = w * _minmax(d) + (1 - w) * (b / b.max() if b.max() > 0 else b)
        order = np.argsort(-fused)[:k]
        out = []
        for i in order:
            row = int(rows[i])
            coverage = snap.bm25.coverage(tokens, row)
            out.append(Scored(row, float(fused[i]), float(b[i]), float(d[i]), coverage,
                              relevance(float(d[i]), coverage)))
        return out

    def _dense(self, query: str, snap: Snapshot) -> np.ndarray:
        if self.params.mode == "bm25":
            return np.zeros(len(snap.entries), dtype=np.float32)
        qvec = self.embedder.embed([query])[0]
        if snap.vectors is not None:
            return snap.vectors @ qvec
        # hnsw mode: Chroma's approximate neighbours, the rest count as dissimilar
        out = np.full(len(snap.entries), -1.0, dtype=np.float32)
        position = {e["id"]: i for i, e in enumerate(snap.entries)}
        for chunk_id, sim in self.index.store.query(snap.generation, qvec, CANDIDATES):
            if chunk_id in position:
                out[position[chunk_id]] = sim
        return out

    @staticmethod
    def _hit(snap: Snapshot, s: Scored) -> Hit:
        e = snap.entries[s.row]
        return Hit(source=e["source"], title=e["title"], section=e["section"], date=e["date"] or "",
                   text=e["text"], score=round(s.relevance, 4), chunk_id=e["id"], also=tuple(e.get("also", ())))


def relevance(dense: float, coverage: float) -> float:
    """Absolute relevance in 0..1 from the dense cosine and the query's covered IDF share."""
    return float(np.clip(0.5 * dense + 0.5 * coverage, 0.0, 1.0))


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
