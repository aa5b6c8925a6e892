"""A learned question-vs-request model: logistic regressions on character n-grams and on sentence embeddings.

Trained at start-up on the project's own labelled examples
(bot/core/data/intent_examples.jsonl) plus, optionally, a district's own
labelled history (``[intents] extra_examples``). The two views disagree in
useful ways (n-grams catch 请求/投诉 wording, embeddings the meaning of a rant),
so their probabilities are averaged with the keyword model's. Embeddings of
the training texts are cached on disk, keyed by the model and the texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from bot.nlu.keywords import KeywordModel

log = logging.getLogger(__name__)
OWN_EXAMPLES = Path(__file__).resolve().parent.parent / "core" / "data" / "intent_examples.jsonl"


def read_examples(paths: Iterable[Path]) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    if row.get("label") in ("question", "request"):
                        texts.append(row["text"])
                        labels.append(row["label"] == "request")
    return texts, np.asarray(labels, dtype=bool)


class LearnedModel:
    """Implements core.intents.QuestionRequestModel."""

    def __init__(self, texts: Sequence[str], labels: np.ndarray, embedder=None, cache_dir: Path | None = None,
                 weights: tuple[float, float, float] = (1.0, 1.0, 0.5)):
        # weights of (n-grams, embeddings, keywords), measured with bench/intent.py
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.embedder = embedder
        self.weights = weights
        self.keywords = KeywordModel()
        self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        grams = self.vectorizer.fit_transform(list(texts))
        self.by_grams = LogisticRegression(C=4.0, max_iter=3000).fit(grams, labels)
        self.by_meaning = None
        if embedder is not None:
            vectors = self._embed_cached(list(texts), cache_dir)
            self.by_meaning = LogisticRegression(C=2.0, max_iter=3000).fit(vectors, labels)

    @classmethod
    def from_files(cls, paths: Iterable[Path], embedder=None, cache_dir: Path | None = None) -> "LearnedModel":
        texts, labels = read_examples(paths)
        return cls(texts, labels, embedder, cache_dir)

    def _embed_cached(self, texts: list[str], cache_dir: Path | None) -> np.ndarray:
        if cache_dir is None:
            return self.embedder.embed(texts)
        digest = hashlib.sha256(("\n".join(texts) + "|" + self.embedder.name).encode("utf-8")).hexdigest()[:16]
        path = cache_dir / f"intent-vectors-{digest}.npy"
        if path.exists():
            return np.load(path)
        log.info("embedding %d intent examples once (cached in %s)", len(texts), path)
        vectors = self.embedder.embed(texts)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors

    def p_request(self, text: str) -> float:
        return float(self.p_request_many([text])[0])

    def p_request_many(self, texts: Sequence[str]) -> np.ndarray:
        w_grams, w_meaning, w_keywords = self.weights
        total = w_grams * self.by_grams.predict_proba(self.vectorizer.transform(list(texts)))[:, 1]
        weight = w_grams
        if self.by_meaning is not None and w_meaning:
            total += w_meaning * self.by_meaning.predict_proba(self.embedder.embed(list(texts)))[:, 1]
            weight += w_meaning
        if w_keywords:
            total += w_keywords * np.array([self.keywords.p_request(t) for t in texts])
            weight += w_keywords
        return total / weight
