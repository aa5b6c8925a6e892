"""An embedder that loads its model on first use, so work that needs no vectors never pays for it."""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import numpy as np

from bot.retrieval.embeddings import Embedder


class LazyEmbedder:
    def __init__(self, name: str, factory: Callable[[], Embedder]):
        self.name = name
        self._factory = factory
        self._real: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def real(self) -> Embedder:
        if self._real is None:
            with self._lock:
                if self._real is None:
                    self._real = self._factory()
        return self._real

    @property
    def dimension(self) -> int:
        return self.real.dimension

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.embed(texts)
