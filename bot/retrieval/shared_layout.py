"""An index every replica shares: one ingest serves them all, the others switch to it by themselves.

Vectors live on the Chroma server (`knowledge.chroma_url`); this keeps the rest of
a generation — manifest, passages, the BM25 arrays — and the pointer to the
current one in the database. Each replica keeps a local copy of a generation
(the layout on disk, as one process has it) and fetches one it lacks when the
shared pointer moves; the pointer is read at most every POINTER_TTL seconds. The
pointer and the files of a generation are written in one transaction, so a
replica never sees a pointer to a generation it cannot fetch. Generation numbers
come from the shared pointer and one ingest runs at a time in the whole cluster
(an advisory lock on PostgreSQL), so two replicas never write the same number.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Integer, LargeBinary, String, delete, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from bot.errors import IndexError_
from bot.retrieval.layout import MANIFEST, IndexLayout
from bot.storage.db import Base

POINTER_TTL = 2.0  # seconds a replica trusts its last read of the shared pointer


class IndexFile(Base):
    __tablename__ = "index_file"

    index_name: Mapped[str] = mapped_column(String(64), primary_key=True)  # the index's collection prefix: kb, laws
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class IndexPointer(Base):
    __tablename__ = "index_pointer"

    index_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    switched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SharedIndexLayout(IndexLayout):
    def __init__(self, root: Path, sessions: sessionmaker[Session], name: str = "kb"):
        super().__init__(root)
        self.sessions = sessions
        self.name = name  # several indexes share the tables (the documents, the law texts): each its own rows
        self._pointer: tuple[float, int | None] = (0.0, None)
        self._fetching = threading.Lock()

    def _shared_generation(self) -> int | None:
        read_at, generation = self._pointer
        if time.monotonic() - read_at < POINTER_TTL:
            return generation
        with self.sessions() as s:
            generation = s.scalar(select(IndexPointer.generation).where(IndexPointer.index_name == self.name))
        self._pointer = (time.monotonic(), generation)
        return generation

    def current_marker(self) -> tuple[int, int] | None:
        generation = self._shared_generation()
        return None if generation is None else (generation, 0)

    def current(self) -> int | None:
        generation = self._shared_generation()
        if generation is None:
            return None
        if not (self.gen_dir(generation) / MANIFEST).is_file():
            self._fetch(generation)
        return generation

    def _fetch(self, generation: int) -> None:
        """Copy a generation another replica published into the local folder (complete, then renamed)."""
        with self._fetching:
            final = self.gen_dir(generation)
            if (final / MANIFEST).is_file():
                return
            with self.sessions() as s:
                files = list(s.execute(select(IndexFile.name, IndexFile.content)
                                       .where(IndexFile.index_name == self.name, IndexFile.generation == generation)))
            if not any(name == MANIFEST for name, _ in files):
                raise IndexError_(f"index generation {generation} is not in the shared store")
            tmp = final.with_name(final.name + ".fetch")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for name, content in files:
                (tmp / name).write_bytes(content)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)

    def publish(self, generation: int, files: dict[str, Any]) -> None:
        super().publish(generation, files)  # this replica's copy first
        folder = self.gen_dir(generation)
        with self.sessions.begin() as s:
            s.execute(delete(IndexFile).where(IndexFile.index_name == self.name, IndexFile.generation == generation))
            for path in sorted(folder.iterdir()):
                s.add(IndexFile(index_name=self.name, generation=generation, name=path.name, content=path.read_bytes()))
            pointer = s.get(IndexPointer, self.name)
            now = datetime.now(timezone.utc)
            if pointer is None:
                s.add(IndexPointer(index_name=self.name, generation=generation, switched_at=now))
            else:
                pointer.generation, pointer.switched_at = generation, now
        self._pointer = (time.monotonic(), generation)

    def remove_stale(self, keep: set[int]) -> None:
        super().remove_stale(keep)
        with self.sessions.begin() as s:
            s.execute(delete(IndexFile).where(IndexFile.index_name == self.name, IndexFile.generation.not_in(sorted(keep))))

    @contextmanager
    def exclusive(self):
        """One ingest in the whole cluster: a PostgreSQL advisory lock (the lock file guards one machine)."""
        with self.sessions() as s:
            connection = s.connection()
            if connection.dialect.name != "postgresql":
                yield
                return
            key = zlib.crc32(f"shegong-ingest:{self.name}".encode())
            if not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                raise IndexError_("another ingest is running on the shared index; try again when it ends")
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
