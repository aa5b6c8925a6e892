"""The small Protocols the core uses to reach the outside world.

Each has a real implementation elsewhere (retrieval, tickets) and an honest
in-memory fake in tests. The core imports nothing else from outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Hit:
    """A passage of the knowledge base with what a citation needs."""

    source: str  # the ingested file's path as given to ingest
    title: str
    section: str
    date: str  # "" when the document has none
    text: str
    score: float  # relevance in 0..1; comparable across queries
    chunk_id: str = ""
    also: tuple[str, ...] = field(default_factory=tuple)  # other files that reprint this passage


class Retriever(Protocol):
    def search(self, query: str, k: int | None = None) -> Sequence[Hit]:
        """Return the passages relevant to the query, best first; empty when nothing is relevant."""
        ...
