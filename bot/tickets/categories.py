"""Ticket categories from a TOML file, and a classifier: sharp keywords first, then meaning.

The embedding half compares a message with each category's examples and
description (class centroids): it catches "屋里冷得像冰窖" for heating with no
keyword in it. Keywords win when they are unambiguous because they are exact; when
the keywords of several categories occur equally often, meaning decides among those.
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.core.ports import CategoryMatch
from bot.errors import ConfigError

SLA_CLASSES = ("emergency", "utility", "general", "complex")
FALLBACK = "其他"


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    sla_class: str
    responsible: str
    keywords: tuple[str, ...]
    examples: tuple[str, ...]


def load_categories(path: Path) -> list[Category]:
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"categories file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    out = []
    for item in raw.get("category", []):
        if item.get("sla_class", "general") not in SLA_CLASSES:
            raise ConfigError(f"{path}: category {item.get('name')}: sla_class must be one of {SLA_CLASSES}")
        out.append(Category(item["name"], item.get("description", ""), item.get("sla_class", "general"),
                            item.get("responsible", ""), tuple(item.get("keywords", [])), tuple(item.get("examples", []))))
    if not out:
        raise ConfigError(f"{path}: no [[category]] defined")
    return out


class CategoryClassifier:
    """Implements core.ports.Categorizer."""

    def __init__(self, categories: list[Category], embedder=None, min_similarity: float = 0.75):
        self.categories = categories
        self.by_name = {c.name: c for c in categories}
        self.embedder = embedder
        self.min_similarity = min_similarity
        self._centroids: np.ndarray | None = None
        self._names: list[str] = []
        self._lock = threading.Lock()

    def _ensure_centroids(self) -> None:
        if self._centroids is not None or self.embedder is None:
            return
        with self._lock:  # concurrent first reports must not all embed the examples at once
            if self._centroids is None:
                self._build_centroids()

    def warm_up(self) -> None:
        """Embed the examples now (at start), not on the first resident's report."""
        self._ensure_centroids()

    def _build_centroids(self) -> None:
        rows, names = [], []
        for c in self.categories:
            texts = [t for t in (c.description, *c.examples) if t.strip()]
            if not texts or c.name == FALLBACK:
                continue
            vectors = self.embedder.embed(texts)
            centroid = vectors.mean(axis=0)
            rows.append(centroid / (np.linalg.norm(centroid) or 1.0))
            names.append(c.name)
        self._centroids, self._names = np.stack(rows), names

    def keyword_matches(self, text: str) -> list[str]:
        """The categories whose keywords occur most often in the text (several on a tie; [] when none)."""
        counts = {c.name: sum(1 for k in c.keywords if k in text) for c in self.categories}
        most = max(counts.values(), default=0)
        return [name for name, count in counts.items() if most and count == most]

    def classify(self, text: str) -> CategoryMatch:
        tied = self.keyword_matches(text)
        if len(tied) == 1:
            return self._match(tied[0], 0.9, sharp=True)
        self._ensure_centroids()
        if self._centroids is not None:
            sims = self._centroids @ self.embedder.embed([text])[0]
            allowed = [i for i, name in enumerate(self._names) if not tied or name in tied]
            if allowed:
                i = max(allowed, key=lambda j: sims[j])
                # a tie of keywords (a message naming two categories' words once each) is decided
                # by meaning; bench/routing.py: 0.846 against 0.831 by the longest keyword, over
                # ten stratified halves of residents' messages
                if tied or sims[i] >= self.min_similarity:
                    return self._match(self._names[i], 0.9 if tied else float(sims[i]), sharp=bool(tied))
        if tied:
            return self._match(max(tied, key=self._longest_keyword_in(text)), 0.9, sharp=True)
        return self._match(FALLBACK if FALLBACK in self.by_name else self.categories[-1].name, 0.0)

    def _longest_keyword_in(self, text: str):
        return lambda name: max((len(k) for k in self.by_name[name].keywords if k in text), default=0)

    def _match(self, name: str, confidence: float, sharp: bool = False) -> CategoryMatch:
        c = self.by_name[name]
        return CategoryMatch(c.name, c.sla_class, confidence, sharp)
