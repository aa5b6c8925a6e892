"""The published index as readers see it, reloaded when ingest switches generations.

A search never blocks on an ingest: the loaded generation is an immutable
snapshot; a new one is loaded beside it and swapped in with one assignment.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from bot.errors import IndexError_
from bot.retrieval.bm25 import BM25Index
from bot.retrieval.layout import BM25, CHUNKS, MANIFEST, IndexLayout
from bot.retrieval.vectors import ChromaVectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    generation: int
    entries: list[dict]
    bm25: BM25Index
    vectors: np.ndarray | None  # rows align with entries; None in hnsw mode
    embedder: str
    files: dict[str, dict]
    dense_floor: float | None = None  # cosine reached by off-topic questions (manifest, from ingest)

    @property
    def position(self) -> dict[str, int]:
        """Row of each chunk id (built on first use; hnsw mode only needs it)."""
        cached = self.__dict__.get("_position")
        if cached is None:
            cached = {e["id"]: i for i, e in enumerate(self.entries)}
            object.__setattr__(self, "_position", cached)
        return cached


class KnowledgeIndex:
    def __init__(self, layout: IndexLayout, store: ChromaVectors, load_vectors: bool = True):
        self.layout = layout
        self.store = store
        self.load_vectors = load_vectors
        self._snapshot: Snapshot | None = None
        self._marker: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot | None:
        """The current generation, reloading it first when ingest has published a new one."""
        marker = self.layout.current_marker()
        if marker != self._marker or self._snapshot is None:
            with self._lock:
                if marker != self._marker or self._snapshot is None:
                    self._reload(marker)
        return self._snapshot

    def _reload(self, marker) -> None:
        generation = self.layout.current()
        if generation is None:
            self._snapshot, self._marker = None, marker
            return
        if self._snapshot is not None and self._snapshot.generation == generation:
            self._marker = marker
            return
        manifest = self.layout.read_json(generation, MANIFEST)
        entries = self.layout.read_json(generation, CHUNKS)
        bm25 = BM25Index.load(self.layout.gen_dir(generation) / BM25)
        vectors = None
        if self.load_vectors and entries:
            by_id = self.store.vectors(generation)
            missing = [e["id"] for e in entries if e["id"] not in by_id]
            if missing:
                raise IndexError_(f"index generation {generation} lacks {len(missing)} vectors; run ingest again")
            vectors = np.stack([by_id[e["id"]] for e in entries]).astype(np.float32)
        self._snapshot = Snapshot(generation, entries, bm25, vectors, manifest.get("embedder", ""), manifest["files"],
                                  manifest.get("dense_floor"))
        self._marker = marker
        log.info("knowledge index generation %d loaded: %d passages", generation, len(entries))
