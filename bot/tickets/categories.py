"""Ticket categories from a TOML file, and a classifier: sharp keywords first, then meaning.

The embedding half compares a message with each category's examples and
description (class centroids): it catches "屋里冷得像冰窖" for heating with no
keyword in it. Keywords win when they are unambiguous because they are exact.
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

    def keyword_match(self, text: str) -> str | None:
        """The category whose keywords occur most (longest keyword breaks ties); None when none does."""
        best, best_key = None, (0, 0)
        for c in self.categories:
            hits = [k for k in c.keywords if k in text]
            key = (len(hits), max((len(k) for k in hits), default=0))
            if hits and key > best_key:
                best, best_key = c.name, key
        return best

    def classify(self, text: str) -> CategoryMatch:
        name = self.keyword_match(text)
        if name is not None:
            return self._match(name, 0.9)
        self._ensure_centroids()
        if self._centroids is not None:
            sims = self._centroids @ self.embedder.embed([text])[0]
            i = int(np.argmax(sims))
            if sims[i] >= self.min_similarity:
                return self._match(self._names[i], float(sims[i]))
        return self._match(FALLBACK if FALLBACK in self.by_name else self.categories[-1].name, 0.0)

    def _match(self, name: str, confidence: float) -> CategoryMatch:
        c = self.by_name[name]
        return CategoryMatch(c.name, c.sla_class, confidence)
