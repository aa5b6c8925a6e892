"""Composition root: the one place that picks concrete adapters and wires them together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bot.retrieval.embeddings import Embedder, build_embedder
from bot.retrieval.index import KnowledgeIndex
from bot.retrieval.ingest import Ingester, IngestReport
from bot.retrieval.layout import IndexLayout
from bot.retrieval.lazy import LazyEmbedder
from bot.retrieval.retriever import HybridRetriever, RetrievalParams
from bot.retrieval.vectors import ChromaVectors
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class KnowledgeBase:
    """Everything that reads and writes the knowledge index."""

    settings: Settings
    layout: IndexLayout
    store: ChromaVectors
    embedder: Embedder
    index: KnowledgeIndex
    retriever: HybridRetriever
    ingester: Ingester

    def docs_dir(self) -> Path:
        return self.settings.resolve(self.settings.knowledge.docs_dir)

    def is_empty(self) -> bool:
        return self.layout.current() is None

    def ingest(self, paths: list[Path] | None = None, progress: bool | None = None) -> IngestReport:
        """Ingest the given paths (default: the knowledge folder)."""
        if paths is None:
            paths = [Path(self.settings.knowledge.docs_dir)]
        return self.ingester.run(paths, base=self.settings.base_dir, progress=progress)

    def ensure_ingested(self) -> IngestReport | None:
        """Ingest the knowledge folder once when the index is still empty."""
        if not self.is_empty() or not self.settings.knowledge.ingest_on_start:
            return None
        log.info("knowledge index is empty: ingesting %s", self.docs_dir())
        report = self.ingest(progress=False)
        log.info("first ingest: %s", report.summary())
        return report


def build_knowledge(settings: Settings, embedder: Embedder | None = None) -> KnowledgeBase:
    """Wire the knowledge base from settings; pass an embedder to share or replace the model."""
    ks = settings.knowledge
    layout = IndexLayout(settings.resolve(ks.index_dir))
    store = ChromaVectors(layout.chroma_dir, ks.chroma_url)
    if embedder is None:
        embedder = LazyEmbedder(settings.embedding.model if settings.embedding.backend != "hashing" else "hashing-256",
                                lambda: build_embedder(settings.embedding))
    index = KnowledgeIndex(layout, store, load_vectors=ks.dense_search == "exact")
    params = RetrievalParams(dense_weight=ks.dense_weight, min_relevance=ks.min_relevance,
                             dense_search=ks.dense_search)
    retriever = HybridRetriever(index, embedder, params, top_k=ks.top_k)
    ingester = Ingester(layout, store, embedder, ks.chunk_chars, ks.chunk_overlap)
    return KnowledgeBase(settings, layout, store, embedder, index, retriever, ingester)
