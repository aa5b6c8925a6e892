"""The service's embedder: loads its model on first use and remembers recent single texts.

Loading lazily means work that needs no vectors (an unchanged ingest, admin
commands) never pays for the model. One resident message is embedded by the
intent model, the retriever and the ticket categorizer: the small LRU memo
makes that one forward pass instead of three. Single texts (queries, messages)
are cut to QUERY_CHARS: a long rant's first lines carry its meaning, and the
model's cost grows with length.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

from bot.retrieval.embeddings import Embedder, embed_documents

QUERY_CHARS = 256
MEMO_SIZE = 2048


class LazyEmbedder:
    def __init__(self, name: str, factory: Callable[[], Embedder]):
        self.name = name
        self._factory = factory
        self._real: Embedder | None = None
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_lock = threading.Lock()

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

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Documents are embedded whole and in full precision, a batch of one included."""
        return embed_documents(self.real, texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) != 1:
            return self.real.embed(texts)  # batches (ingest) are never repeated
        text = texts[0][:QUERY_CHARS]
        with self._memo_lock:
            hit = self._memo.get(text)
            if hit is not None:
                self._memo.move_to_end(text)
                return hit[None, :]
        vector = self.real.embed([text])[0]
        with self._memo_lock:
            self._memo[text] = vector
            if len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        return vector[None, :]
