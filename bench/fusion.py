"""Cross-validated choice of how the retriever fuses its two halves (BM25 and dense).

    python bench/fusion.py [--folds 5] [--json]

Every choice of the fusion (its family and parameters) is made on k-1 folds of the
questions and measured on the fold left out; the figures are the mean over folds
("cv"), next to the in-sample figures of the setting the service ships ("shipped").
Formal questions (../shared/data/policy_qa_dev.jsonl) and colloquial ones
(bench/data/colloquial*.jsonl, residents' words) are split into folds separately and
weigh equally in the choice: one setting must serve both kinds.

Families measured (each a grid):
  ramp    the dense weight follows the query's best BM25 match (bot/retrieval/retriever.py):
          1 below `lo`, `wmin` above `hi`, linear between
  fixed   one dense weight for every query
  rrf     reciprocal-rank fusion, weighted
  dense   the dense half alone;  bm25  the BM25 half alone

Signals come from the product's own index (the cache bench/retrieval.py builds) and the
product's own scoring (HybridRetriever.score's halves), so a setting measured here
behaves the same in the service.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, corpus_arguments, loose, need_shared, read_jsonl  # noqa: E402


POOL = 100  # candidates from each half; the fused top 10 always lies in their union
SEED = 13


@dataclass
class Signals:
    """One question's candidates with both halves' scores, and which of them answer it."""

    zd: np.ndarray  # dense cosine as a z-score over all passages
    zb: np.ndarray  # BM25 as a z-score over all passages
    rank_d: np.ndarray  # 1-based rank in the dense half
    rank_b: np.ndarray
    match: float  # the query's best BM25 match (best score / the query's IDF mass)
    gold: np.ndarray  # bool: the candidate is (or repeats) the gold document
    answer: np.ndarray  # bool: the candidate's text holds the gold answer


def signals(kb, questions: list[dict], law_ids: dict[str, str]) -> list[Signals]:
    from bench.retrieval import doc_key
    from bot.core.chinese import simplified
    from bot.retrieval.retriever import _z
    from bot.retrieval.tokenize import tokenize

    snap = kb.index.snapshot()
    keys = [{doc_key(e["source"], law_ids)} | {doc_key(s, law_ids) for s in e.get("also", ())}
            for e in snap.entries]
    out = []
    for q in questions:
        query = simplified(q["question"])
        tokens = tokenize(query)
        bm25 = snap.bm25.scores(tokens)
        mass = snap.bm25.query_mass(tokens) or 1.0
        dense = snap.vectors @ kb.embedder.embed([query])[0]
        order_d = np.argsort(-dense)
        order_b = np.argsort(-bm25)
        pool = np.union1d(order_d[:POOL], order_b[:POOL])
        rank_d = np.empty(len(dense), dtype=np.int32)
        rank_d[order_d] = np.arange(1, len(dense) + 1)
        rank_b = np.empty(len(bm25), dtype=np.int32)
        rank_b[order_b] = np.arange(1, len(bm25) + 1)
        answer = q.get("answer") or ""
        out.append(Signals(
            zd=_z(dense)[pool], zb=_z(bm25)[pool], rank_d=rank_d[pool], rank_b=rank_b[pool],
            match=float(bm25.max()) / mass,
            gold=np.array([q["doc_id"] in keys[row] for row in pool]),
            answer=np.array([bool(answer) and loose(answer) in loose(snap.entries[row]["text"]) for row in pool]),
        ))
    return out


# -- the fusion families -----------------------------------------------------------------


def ramp_weight(match: float, lo: float, hi: float, wmin: float) -> float:
    if match <= lo:
        return 1.0
    if match >= hi:
        return wmin
    return 1.0 + (wmin - 1.0) * (match - lo) / (hi - lo)


def fused(s: Signals, setting: tuple) -> np.ndarray:
    family, *p = setting
    if family == "dense":
        return s.zd
    if family == "bm25":
        return s.zb
    if family == "fixed":
        return p[0] * s.zd + (1 - p[0]) * s.zb
    if family == "ramp":
        w = ramp_weight(s.match, *p)
        return w * s.zd + (1 - w) * s.zb
    if family == "rrf":
        k, w = p
        return w / (k + s.rank_d) + (1 - w) / (k + s.rank_b)
    raise ValueError(family)


def grid() -> dict[str, list[tuple]]:
    ramps = [("ramp", lo, hi, wmin) for lo, hi, wmin in product(
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7), (0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0),
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)) if hi > lo]
    return {
        "ramp": ramps,
        "fixed": [("fixed", round(w, 2)) for w in np.arange(0.0, 1.01, 0.1)],
        "rrf": [("rrf", k, w) for k in (10, 30, 60) for w in (0.3, 0.4, 0.5, 0.6, 0.7)],
        "dense": [("dense",)],
        "bm25": [("bm25",)],
    }


# -- measuring ------------------------------------------------------------------------------


def per_question(sigs: list[Signals], setting: tuple) -> np.ndarray:
    """Rows of (R@5, MRR@10, answer_hit@5) for each question."""
    out = np.zeros((len(sigs), 3), dtype=np.float32)
    for i, s in enumerate(sigs):
        order = np.argsort(-fused(s, setting), kind="stable")[:10]
        hits = np.flatnonzero(s.gold[order])
        if len(hits):
            rank = int(hits[0]) + 1
            out[i, 0] = rank <= 5
            out[i, 1] = 1.0 / rank
        out[i, 2] = bool(s.answer[order[:5]].any())
    return out


def summary(rows: np.ndarray) -> dict:
    mean = rows.mean(axis=0) if len(rows) else np.zeros(3)
    return {"R@5": round(float(mean[0]), 4), "MRR@10": round(float(mean[1]), 4),
            "answer_hit@5": round(float(mean[2]), 4)}


def objective(tables: dict[str, np.ndarray], idx: dict[str, np.ndarray]) -> float:
    """Mean over the question sets (equal weight) of R@5 + MRR@10 + answer_hit@5 on the given questions."""
    values = []
    for name, table in tables.items():
        rows = table[idx[name]]
        if len(rows):
            values.append(float(rows.mean(axis=0).sum()))
    return float(np.mean(values))


def folds_of(n: int, k: int, seed: int = SEED) -> list[np.ndarray]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [np.array(sorted(order[i::k]), dtype=np.int64) for i in range(k)]


def cross_validate(sets: dict[str, list[Signals]], settings: list[tuple], k: int) -> tuple[dict, list[tuple]]:
    """Mean over folds of each set's figures, the setting chosen on the other folds each time."""
    tables = {}
    for setting in settings:
        for name, sigs in sets.items():
            tables[(setting, name)] = per_question(sigs, setting)
    splits = {name: folds_of(len(sigs), k) for name, sigs in sets.items()}
    held: dict[str, list[np.ndarray]] = {name: [] for name in sets}
    chosen = []
    for f in range(k):
        train = {name: np.concatenate([s for j, s in enumerate(splits[name]) if j != f]) for name in sets}
        best = max(settings, key=lambda st: objective({n: tables[(st, n)] for n in sets}, train))
        chosen.append(best)
        for name in sets:
            held[name].append(tables[(best, name)][splits[name][f]])
    cv = {name: summary_of_folds(held[name]) for name in sets}
    return cv, chosen


def summary_of_folds(parts: list[np.ndarray]) -> dict:
    """Mean over folds of each fold's figures."""
    figures = [summary(p) for p in parts if len(p)]
    return {key: round(float(np.mean([f[key] for f in figures])), 4) for key in figures[0]}


def in_sample(sets: dict[str, list[Signals]], setting: tuple) -> dict:
    return {name: summary(per_question(sigs, setting)) for name, sigs in sets.items()}


def shipped_setting() -> tuple:
    from bot.retrieval import retriever as r

    return ("ramp", r.DENSE_ONLY_BELOW, r.BM25_LEADS_ABOVE, r.MIN_DENSE_WEIGHT)


def colloquial_questions() -> list[dict]:
    rows = []
    for path in sorted((ROOT / "bench" / "data").glob("colloquial*.jsonl")):
        rows += read_jsonl(path)
    return rows


def report(kb, law_ids: dict[str, str], formal: list[dict], colloquial: list[dict], k: int) -> dict:
    """Everything the benches print about the fusion: shipped in-sample, cv per family and overall."""
    sets = {"formal": signals(kb, formal, law_ids)}
    if colloquial:
        sets["colloquial"] = signals(kb, colloquial, law_ids)
    families = grid()
    everything = [s for settings in families.values() for s in settings]
    cv, chosen = cross_validate(sets, everything, k)
    out = {
        "folds": k,
        "shipped": {"setting": list(shipped_setting()), **in_sample(sets, shipped_setting())},
        "cv": {**cv, "chosen_per_fold": [list(c) for c in chosen]},
        "families_cv": {},
    }
    for family, settings in families.items():
        fam_cv, fam_chosen = cross_validate(sets, settings, k)
        out["families_cv"][family] = {**fam_cv, "chosen_per_fold": [list(c) for c in fam_chosen]}
    best = max(everything, key=lambda st: objective(
        {n: per_question(s, st) for n, s in sets.items()}, {n: np.arange(len(s)) for n, s in sets.items()}))
    out["best_in_sample"] = {"setting": list(best), **in_sample(sets, best)}
    return out


def print_report(figures: dict) -> None:
    def row(label: str, values: dict) -> None:
        cells = "".join(f"  {name} R@5 {v['R@5']:.3f} MRR {v['MRR@10']:.3f} ans@5 {v['answer_hit@5']:.3f}"
                        for name, v in values.items() if isinstance(v, dict) and "R@5" in v)
        print(f"{label:32s}{cells}")

    print(f"fusion, {figures['folds']}-fold cross-validation (choice made on the other folds):")
    row(f"shipped {tuple(figures['shipped']['setting'])} in-sample", figures["shipped"])
    row("any family, cv", figures["cv"])
    for family, values in figures["families_cv"].items():
        row(f"  {family}, cv", values)
    row(f"best in-sample {tuple(figures['best_in_sample']['setting'])}", figures["best_in_sample"])
    print("chosen per fold:", ", ".join(str(tuple(c)) for c in figures["cv"]["chosen_per_fold"]))


def main() -> int:
    need_shared()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus_arguments(parser)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from bench.answerability import build_kb
    from bench.retrieval import corpus_work, law_doc_ids
    from bot.settings import load_settings

    knowledge = load_settings(ROOT / "config.toml").knowledge
    work = corpus_work(args.corpus, args.laws, knowledge.chunk_chars, knowledge.chunk_overlap)
    kb = build_kb(work, knowledge, [Path("docs/policy"), Path("docs/laws")], -1.0)
    figures = report(kb, law_doc_ids(args.laws), read_jsonl(args.queries), colloquial_questions(), args.folds)
    print_report(figures)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
