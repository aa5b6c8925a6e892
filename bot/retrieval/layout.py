"""Where an index generation lives on disk, and the atomic switch between generations.

    index_dir/
      CURRENT              name of the generation readers use ("gen-000007")
      gen-000007/          manifest.json, chunks.json, bm25.* (written completely, then renamed)
      chroma/              the local Chroma folder (unused with a Chroma server)
      ingest.lock          held by the one ingest that may run at a time

Readers see the old generation or the new one, never half of one: a new
generation is written under a temporary name, renamed, and only then named in
CURRENT through an atomic ``os.replace``.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CHUNKS = "chunks.json"
BM25 = "bm25"


class IndexLayout:
    def __init__(self, root: Path):
        self.root = root

    @property
    def chroma_dir(self) -> Path:
        return self.root / "chroma"

    @property
    def lock_file(self) -> Path:
        return self.root / "ingest.lock"

    def gen_dir(self, generation: int) -> Path:
        return self.root / f"gen-{generation:06d}"

    def current(self) -> int | None:
        """The generation readers should use, or None when nothing was ingested yet."""
        try:
            name = (self.root / "CURRENT").read_text("utf-8").strip()
        except FileNotFoundError:
            return None
        if not name.startswith("gen-") or not name[4:].isdigit():
            return None
        generation = int(name[4:])
        return generation if (self.gen_dir(generation) / MANIFEST).is_file() else None

    def current_marker(self) -> tuple[int, int] | None:
        """A cheap fingerprint of CURRENT (inode and mtime) to notice a switch."""
        try:
            st = (self.root / "CURRENT").stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def publish(self, generation: int, files: dict[str, Any]) -> None:
        """Write a complete generation, then point CURRENT at it atomically."""
        final = self.gen_dir(generation)
        tmp = final.with_name(final.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for name, content in files.items():
            target = tmp / name
            if callable(content):
                content(target)
            else:
                target.write_text(json.dumps(content, ensure_ascii=False), "utf-8")
        _fsync_dir_files(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        pointer = self.root / "CURRENT.tmp"
        pointer.write_text(final.name, "utf-8")
        with open(pointer, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer, self.root / "CURRENT")

    @contextmanager
    def exclusive(self):
        """Held around an ingest beside the lock file; a layout shared by replicas locks the whole cluster."""
        yield

    def read_json(self, generation: int, name: str) -> Any:
        return json.loads((self.gen_dir(generation) / name).read_text("utf-8"))

    def remove_stale(self, keep: set[int]) -> None:
        """Delete generation folders (and leftovers of crashed runs) not in keep."""
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if not entry.name.startswith("gen-"):
                continue
            number = entry.name[4:].removesuffix(".tmp")
            if entry.name.endswith(".tmp") or (number.isdigit() and int(number) not in keep):
                shutil.rmtree(entry, ignore_errors=True)


def _fsync_dir_files(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
