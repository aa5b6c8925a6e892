"""Hybrid retrieval: BM25 over jieba tokens and dense cosine similarity, fused by z-score.

Measured on the policy corpus, the laws and colloquial questions (bench/retrieval.py):
- formal questions share their words with the documents, and BM25 beats the dense
  model on them; colloquial ones ("隔壁装修电钻从早响到晚有人管吗") share few, and the
  dense model wins by far. A fixed 50/50 mix loses on both.
- so the weight of the dense half follows how well BM25 matches this query:
  ``match = best BM25 score / the query's IDF mass`` (about 1 when a passage holds
  every query word, 1.5 and more when it repeats them, under 0.6 for colloquial
  questions). Below ``DENSE_ONLY_BELOW`` the dense half decides alone, above
  ``BM25_LEADS_ABOVE`` BM25 weighs 1 - ``MIN_DENSE_WEIGHT``, linear in between.
  The three points are chosen by 5-fold cross-validation over formal and colloquial
  questions weighed equally (bench/fusion.py); the same choice made on four folds
  and measured on the fifth beats a fixed weight, reciprocal-rank fusion and
  either half alone on both kinds of question.
- each half is a z-score over all passages, so a half that is sure of its best
  passage (far above its usual scores) weighs more than min-max scaling would let it.

Identical passages are stored once (see ingest), so a notice reprinted many times
cannot flood the top ranks.

Relevance (the 0..1 ``score`` of a hit) is absolute: a passage is relevant when
its dense cosine or its BM25 match is high. Below ``min_relevance`` (0.5) a hit is
dropped, so an off-topic question gets no hits and the bot says the documents do
not cover it. The cut points are calibrated for m3e-small on the benchmark sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bot.core.ports import PUBLIC, STAFF, Hit
from bot.retrieval.answerable import AnswerabilityParams, TopicSimilarity, head_of, items, named_in_context, topic_score
from bot.retrieval.embeddings import Embedder, embed_documents
from bot.retrieval.index import KnowledgeIndex, Snapshot
from bot.core.chinese import simplified
from bot.core.district_time import district_today  # a policy's first and last day are the district's days
from bot.retrieval.tokenize import tokenize, words

CANDIDATES = 50
DENSE_ONLY_BELOW = 0.2
BM25_LEADS_ABOVE = 1.5
MIN_DENSE_WEIGHT = 0.4
# relevance 0.5 at these points: the dense floor calibrated for the index (see
# calibrate_dense_floor; this constant only for an index built before calibration),
# and the BM25 match defined above
DENSE_RELEVANT = 0.75
MATCH_RELEVANT = 0.8
PROBES = Path(__file__).resolve().parent / "data" / "offtopic_probes.txt"
PROBE_QUANTILE = 0.95


@dataclass
class RetrievalParams:
    min_relevance: float = 0.5
    mode: str = "hybrid"  # hybrid | bm25 | dense (the last two for measurement)
    dense_weight: float | None = None  # fixed weight instead of the adaptive one (for measurement)
    answerability: AnswerabilityParams | None = None  # None: relevance alone decides (for measurement)


@dataclass(frozen=True)
class Candidates:
    """A query's passages above the relevance threshold, with what the answerability check reads."""

    query: str  # as searched (simplified characters)
    qvec: np.ndarray | None
    snap: Snapshot
    scored: list["Scored"]


@dataclass(frozen=True)
class Scored:
    row: int
    fused: float
    bm25: float
    dense: float
    match: float  # this passage's BM25 score / the query's IDF mass
    relevance: float


@dataclass(frozen=True)
class Explained:
    """One passage of a search as the console's 问答 page shows it."""

    hit: Hit
    dense: float  # cosine with the question
    match: float  # BM25 score / the question's IDF mass
    # cited | off_topic (relevant, but not about the question) | weak (below min_relevance) | beyond (after top_k)
    verdict: str


class HybridRetriever:
    def __init__(self, index: KnowledgeIndex, embedder: Embedder, params: RetrievalParams | None = None,
                 top_k: int = 5, today: Callable[[], str] = district_today):
        self.index = index
        self.embedder = embedder
        self.params = params or RetrievalParams()
        self.top_k = top_k
        self.topics = TopicSimilarity(self._embed_heads)
        self.today = today
        # (generation, effective, expires) of the snapshot; None arrays when every passage is always in force
        self._windows: tuple[int, np.ndarray | None, np.ndarray | None] | None = None
        # (generation, which passages residents may see); None when every passage is public
        self._public: tuple[int, np.ndarray | None] | None = None

    def _embed_heads(self, heads: list[str]) -> np.ndarray:
        # always the document path: a heading's vector must not depend on how many were missing from the memo
        return embed_documents(self.embedder, heads)

    def search(self, query: str, k: int | None = None, audience: str = PUBLIC) -> list[Hit]:
        """Return passages that answer the query, best first; empty when the query is not covered.

        audience: PUBLIC (residents: staff-only documents are never searched) or STAFF (everything).
        """
        found = self.candidates(query, k, audience)
        return [] if found is None else self.hits(found, self.params.answerability)

    def candidates(self, query: str, k: int | None = None, audience: str = PUBLIC) -> "Candidates | None":
        """The top-k passages above the relevance threshold, before the answerability check."""
        snap = self.index.snapshot()
        if snap is None or not snap.entries or not query.strip():
            return None
        query = simplified(query)
        qvec = self._query_vector(query)
        scored = [s for s in self.score(query, snap, k or self.top_k, qvec, audience)
                  if s.relevance >= self.params.min_relevance]
        return Candidates(query, qvec, snap, scored)

    def explain(self, query: str, k: int = 10, audience: str = PUBLIC) -> list["Explained"]:
        """The k best passages with every signal and what became of each: why the bot answered as it did."""
        snap = self.index.snapshot()
        if snap is None or not snap.entries or not query.strip():
            return []
        query = simplified(query)
        qvec = self._query_vector(query)
        scored = self.score(query, snap, max(k, self.top_k), qvec, audience)
        # exactly what search() does: the top_k by fused score, above the threshold, that pass the check
        relevant = [s for s in scored[: self.top_k] if s.relevance >= self.params.min_relevance]
        answering = relevant
        if self.params.answerability is not None and relevant:
            answering = self.answerable(Candidates(query, qvec, snap, relevant), self.params.answerability)
        cited, near = {s.row for s in answering}, {s.row for s in relevant}
        out = []
        for s in scored[:k]:
            if s.row in cited:
                verdict = "cited"
            elif s.row in near:
                verdict = "off_topic"
            elif s.relevance < self.params.min_relevance:
                verdict = "weak"
            else:
                verdict = "beyond"  # relevant, ranked after the top_k
            out.append(Explained(self._hit(snap, s), s.dense, s.match, verdict))
        return out

    def hits(self, found: "Candidates", answerability: AnswerabilityParams | None) -> list[Hit]:
        """The candidates that pass the answerability check at this setting (None: all of them)."""
        scored = found.scored
        if answerability is not None and scored:
            scored = self.answerable(found, answerability)
        return [self._hit(found.snap, s) for s in scored]

    def answerable(self, found: "Candidates", params: AnswerabilityParams) -> list[Scored]:
        """The passages that answer the question, not merely sit near it (see retrieval/answerable.py)."""
        query, qvec, snap, scored = found.query, found.qvec, found.snap, found.scored
        named_items = items(words(query)) if params.check_items else []
        heads = [head_of(snap.entries[s.row]["title"], snap.entries[s.row]["section"]) for s in scored]
        if qvec is None or params.min_topic <= 0:  # no topic check (bm25-only measurement, or switched off)
            cosines = np.ones(len(scored), dtype=np.float32)
        else:
            cosines = self.topics.cosines(qvec, heads)
        kept = []
        for s, head, cosine in zip(scored, heads, cosines):
            entry = snap.entries[s.row]
            if any(not named_in_context(item, query, head, entry["text"]) for item in named_items):
                continue  # the question asks about a thing this passage never names
            if topic_score(cosine, s.match, params) < params.min_topic:
                continue  # near the question's words, about something else
            kept.append(s)
        return kept

    def _query_vector(self, query: str) -> np.ndarray | None:
        if self.params.mode == "bm25":
            return None
        return self.embedder.embed([query])[0]

    def score(self, query: str, snap: Snapshot, k: int, qvec: np.ndarray | None = None,
              audience: str = PUBLIC) -> list[Scored]:
        """Top-k passages with every signal, before the relevance threshold."""
        tokens = tokenize(query)
        bm25 = snap.bm25.scores(tokens)
        mass = snap.bm25.query_mass(tokens) or 1.0
        dense = self._dense(query, snap, qvec)
        match self.params.mode:
            case "bm25":
                fused = bm25
            case "dense":
                fused = dense
            case _:
                w = self.params.dense_weight
                if w is None:
                    w = dense_weight(float(bm25.max()) / mass)
                fused = w * _z(dense) + (1 - w) * _z(bm25)
        in_force = self._citable(snap, audience)
        if in_force is not None:
            # a policy not yet in force or expired is never cited, nor a staff-only document to a resident
            fused = np.where(in_force, fused, -np.inf)
        take = min(k, len(fused))
        top = np.argpartition(-fused, take - 1)[:take]
        top = top[np.argsort(-fused[top])]
        out = []
        for row in top.tolist():
            if in_force is not None and not in_force[row]:
                continue
            m = float(bm25[row]) / mass
            d = float(dense[row])
            out.append(Scored(row, float(fused[row]), float(bm25[row]), d, m, relevance(d, m, snap.dense_floor)))
        return out

    def _citable(self, snap: Snapshot, audience: str) -> np.ndarray | None:
        """Which passages this audience may be cited today; None when all may."""
        in_force = self._in_force(snap)
        if audience == STAFF:
            return in_force
        if self._public is None or self._public[0] != snap.generation:
            staff = np.array([e.get("audience") == STAFF for e in snap.entries], dtype=bool)
            self._public = (snap.generation, ~staff if staff.any() else None)
        public = self._public[1]
        if public is None:
            return in_force
        return public if in_force is None else (public & in_force)

    def _in_force(self, snap: Snapshot) -> np.ndarray | None:
        """Which passages may be cited today (front matter effective/expires); None when all may."""
        if self._windows is None or self._windows[0] != snap.generation:
            if any(e.get("effective") or e.get("expires") for e in snap.entries):
                effective = np.array([e.get("effective") or "" for e in snap.entries], dtype=object)
                expires = np.array([e.get("expires") or "9999-12-31" for e in snap.entries], dtype=object)
                self._windows = (snap.generation, effective, expires)
            else:
                self._windows = (snap.generation, None, None)
        _, effective, expires = self._windows
        if effective is None:
            return None
        today = self.today()
        return (effective <= today) & (expires >= today)

    def _dense(self, query: str, snap: Snapshot, qvec: np.ndarray | None = None) -> np.ndarray:
        if self.params.mode == "bm25":
            return np.zeros(len(snap.entries), dtype=np.float32)
        if qvec is None:
            qvec = self.embedder.embed([query])[0]
        if snap.vectors is not None:
            return snap.vectors @ qvec
        # hnsw mode: Chroma's approximate neighbours; the rest count as unrelated (cosine 0)
        out = np.zeros(len(snap.entries), dtype=np.float32)
        position = snap.position
        for chunk_id, sim in self.index.store.query(snap.generation, qvec, CANDIDATES):
            if chunk_id in position:
                out[position[chunk_id]] = sim
        return out

    @staticmethod
    def _hit(snap: Snapshot, s: Scored) -> Hit:
        e = snap.entries[s.row]
        return Hit(source=e["source"], title=e["title"], section=e["section"], date=e["date"] or "",
                   text=e["text"], score=round(s.relevance, 4), chunk_id=e["id"], also=tuple(e.get("also", ())),
                   audience=e.get("audience") or PUBLIC)


def dense_weight(match: float) -> float:
    """Weight of the dense half for a query whose best BM25 match is `match`."""
    if match <= DENSE_ONLY_BELOW:
        return 1.0
    if match >= BM25_LEADS_ABOVE:
        return MIN_DENSE_WEIGHT
    x = (match - DENSE_ONLY_BELOW) / (BM25_LEADS_ABOVE - DENSE_ONLY_BELOW)
    return 1.0 + (MIN_DENSE_WEIGHT - 1.0) * x


def relevance(dense: float, match: float, dense_floor: float | None = None) -> float:
    """Absolute relevance in 0..1: 0.5 where the cosine reaches the index's floor or the match MATCH_RELEVANT."""
    by_dense = 0.5 + (dense - (dense_floor or DENSE_RELEVANT)) / 0.3
    by_match = 0.5 + (match - MATCH_RELEVANT) / 1.0
    return float(np.clip(max(by_dense, by_match), 0.0, 1.0))


def _z(x: np.ndarray) -> np.ndarray:
    std = float(x.std())
    return (x - float(x.mean())) / std if std > 0 else np.zeros_like(x)


def probe_questions() -> list[str]:
    lines = PROBES.read_text("utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def calibrate_dense_floor(vectors: np.ndarray, embedder: Embedder) -> float:
    """The cosine that off-topic questions reach in this index: their 95th percentile of best matches.

    How high an unrelated question scores depends on the model and on the corpus
    (a few dozen short guides or thousands of notices), so the floor is measured
    for each index with questions no district document answers.
    """
    if len(vectors) == 0:
        return DENSE_RELEVANT
    best = (embedder.embed(probe_questions()) @ vectors.T).max(axis=1)
    return round(float(np.quantile(best, PROBE_QUANTILE)) + 0.01, 4)
