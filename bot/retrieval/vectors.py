"""Dense vectors kept in Chroma: a local folder by default, a Chroma server when configured.

Each index generation has its own collection (``kb_g000042``) so that a new
generation is filled completely before readers switch to it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlparse

import numpy as np

from bot.errors import ConfigError, IndexUnavailable

DEFAULT_NAMESPACE = "kb"
_BATCH = 2000  # below Chroma's maximum batch size


def collection_name(generation: int, namespace: str = DEFAULT_NAMESPACE) -> str:
    return f"{namespace}_g{generation:06d}"


class ChromaVectors:
    """Thin wrapper that translates Chroma errors into IndexUnavailable."""

    def __init__(self, folder: Path, url: str = "", namespace: str = DEFAULT_NAMESPACE):
        # Several indexes may share one Chroma server: each keeps to its own collection names.
        self.namespace = namespace
        self._folder = folder
        self._url = url
        if url and not urlparse(url).hostname:
            raise ConfigError(f"knowledge.chroma_url is not a URL: {url!r}")
        self._connected = None
        self._connect_lock = threading.Lock()
        self.location = url or str(folder)
        if not url:
            _ = self._client  # a local folder is always there: open it now, so a broken one is reported at start

    @property
    def _client(self):
        """The Chroma client, connected on first use: a server that is down when the service starts
        must not stop it (questions say "暂时无法查询" until the server is back; see server.warm_up)."""
        if self._connected is not None:
            return self._connected
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        with self._connect_lock:
            if self._connected is not None:
                return self._connected
            settings = ChromaSettings(anonymized_telemetry=False)
            try:
                if self._url:
                    parsed = urlparse(self._url)
                    self._connected = chromadb.HttpClient(
                        host=parsed.hostname,
                        port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                        ssl=parsed.scheme == "https",
                        settings=settings,
                    )
                else:
                    self._folder.mkdir(parents=True, exist_ok=True)
                    self._connected = chromadb.PersistentClient(path=str(self._folder), settings=settings)
            except Exception as exc:
                raise IndexUnavailable(f"cannot reach the vector store: {exc}") from exc
            return self._connected

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise IndexUnavailable(f"vector store failed to {what}: {exc}") from exc

    def generations(self) -> list[int]:
        names = self._call("list collections", self._client.list_collections)
        found = []
        for item in names:
            name = item if isinstance(item, str) else item.name
            prefix = f"{self.namespace}_g"
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                found.append(int(name[len(prefix):]))
        return sorted(found)

    def create(self, generation: int, embedder: str | None = None):
        """Open a generation's collection, creating it (tagged with the embedder's name) when missing."""
        return self._call(
            "create a collection",
            self._client.get_or_create_collection,
            collection_name(generation, self.namespace),
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": embedder} if embedder else None,
            embedding_function=None,
        )

    def embedder_of(self, generation: int) -> str | None:
        """The embedder a collection was created for (None when untagged)."""
        return (self._collection(generation).metadata or {}).get("embedder")

    def _collection(self, generation: int):
        return self._call(
            "open a collection", self._client.get_collection, collection_name(generation, self.namespace), embedding_function=None
        )

    def add(self, generation: int, ids: Sequence[str], vectors: np.ndarray, texts: Sequence[str], metadatas: Sequence[dict]) -> None:
        collection = self.create(generation)
        for start in range(0, len(ids), _BATCH):
            end = start + _BATCH
            self._call(
                "store vectors",
                collection.upsert,
                ids=list(ids[start:end]),
                embeddings=vectors[start:end],
                documents=list(texts[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    def vectors(self, generation: int, ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Stored vectors by chunk id (all of them when ids is None); missing ids are left out."""
        collection = self._collection(generation)
        wanted = None if ids is None else list(ids)
        out: dict[str, np.ndarray] = {}
        chunks = [None] if wanted is None else [wanted[i : i + _BATCH] for i in range(0, len(wanted), _BATCH)]
        for part in chunks:
            if part is not None and not part:
                continue
            if part is None:
                total = self._call("count", collection.count)
                for offset in range(0, total, _BATCH):
                    got = self._call("read vectors", collection.get, include=["embeddings"], limit=_BATCH, offset=offset)
                    out.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
            else:
                got = self._call("read vectors", collection.get, ids=part, include=["embeddings"])
                out.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
        return out

    def query(self, generation: int, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Approximate nearest neighbours from Chroma's HNSW index: (id, cosine similarity)."""
        collection = self._collection(generation)
        got = self._call(
            "search", collection.query, query_embeddings=[vector], n_results=n, include=["distances"]
        )
        return [(i, 1.0 - float(d)) for i, d in zip(got["ids"][0], got["distances"][0])]

    def drop(self, generation: int) -> None:
        try:
            self._client.delete_collection(collection_name(generation, self.namespace))
        except Exception:
            pass  # already gone: dropping is cleanup, never an error for the caller

    def has(self, generation: int) -> bool:
        return generation in self.generations()


def _delete_ids(self: ChromaVectors, generation: int, ids: Sequence[str]) -> None:
    collection = self._collection(generation)
    for start in range(0, len(ids), _BATCH):
        self._call("delete vectors", collection.delete, ids=list(ids[start : start + _BATCH]))


ChromaVectors.delete_ids = _delete_ids  # type: ignore[attr-defined]
