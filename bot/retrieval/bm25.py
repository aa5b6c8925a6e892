"""Okapi BM25 over pre-tokenised chunks, as a sparse matrix that saves to one .npz file."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import sparse


class BM25Index:
    """Term weights precomputed per (term, chunk); a query is one sparse product."""

    def __init__(self, vocabulary: dict[str, int], weights: sparse.csr_matrix, idf: np.ndarray):
        self.vocabulary = vocabulary
        self.weights = weights  # terms x chunks
        self.idf = idf

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> "BM25Index":
        vocabulary: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(documents), dtype=np.float32)
        for col, tokens in enumerate(documents):
            lengths[col] = len(tokens)
            for term, tf in Counter(tokens).items():
                rows.append(vocabulary.setdefault(term, len(vocabulary)))
                cols.append(col)
                tfs.append(tf)
        n_docs = max(len(documents), 1)
        avg = float(lengths.mean()) if len(documents) else 1.0
        rows_a = np.asarray(rows, dtype=np.int64)
        cols_a = np.asarray(cols, dtype=np.int64)
        tf_a = np.asarray(tfs, dtype=np.float32)
        df = np.bincount(rows_a, minlength=len(vocabulary)).astype(np.float32)
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1 - b + b * lengths[cols_a] / max(avg, 1e-6))
        values = idf[rows_a] * tf_a * (k1 + 1) / (tf_a + norm)
        weights = sparse.csr_matrix(
            (values, (rows_a, cols_a)), shape=(len(vocabulary), len(documents)), dtype=np.float32
        )
        return cls(vocabulary, weights, idf)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for the query."""
        ids = [self.vocabulary[t] for t in query_tokens if t in self.vocabulary]
        if not ids:
            return np.zeros(self.weights.shape[1], dtype=np.float32)
        counts = Counter(ids)
        rows = np.fromiter(counts.keys(), dtype=np.int64)
        mult = np.fromiter(counts.values(), dtype=np.float32)
        return np.asarray(self.weights[rows].T @ mult).ravel()

    def query_mass(self, query_tokens: Sequence[str]) -> float:
        """The IDF mass of the query's distinct words; an unknown word counts as the rarest word.

        A chunk's BM25 score divided by this says how much of the query it matches,
        comparable across queries of any length.
        """
        rarest = float(self.idf.max(initial=1.0))
        return sum(float(self.idf[self.vocabulary[t]]) if t in self.vocabulary else rarest
                   for t in set(query_tokens))

    def save(self, path: Path) -> None:
        sparse.save_npz(path.with_suffix(".npz"), self.weights)
        np.save(path.with_suffix(".idf.npy"), self.idf)
        path.with_suffix(".vocab.json").write_text(json.dumps(self.vocabulary, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, path: Path) -> "BM25Index":
        weights = sparse.load_npz(path.with_suffix(".npz")).tocsr()
        idf = np.load(path.with_suffix(".idf.npy"))
        vocabulary = json.loads(path.with_suffix(".vocab.json").read_text("utf-8"))
        return cls(vocabulary, weights, idf)
