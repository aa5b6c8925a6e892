"""Incremental, atomic ingestion of knowledge files into a new index generation.

A file's SHA-256 decides whether it changed. Unchanged files keep their chunks;
vectors are reused by chunk id, so an unchanged folder embeds nothing and a
changed file embeds only its new chunks. Vectors of a run that crashed are
found in its unfinished collection and reused by the next run, which then
completes the job. A file that fails keeps whatever it had indexed before.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from bot.errors import BotError, IndexError_, LoadError
from bot.retrieval.bm25 import BM25Index
from bot.retrieval.chunking import CHUNKER_VERSION, split_document
from bot.retrieval.embeddings import Embedder, embed_documents
from bot.retrieval.layout import BM25, CHUNKS, MANIFEST, IndexLayout
from bot.retrieval.loaders import SUPPORTED_SUFFIXES, load_document
from bot.retrieval.retriever import calibrate_dense_floor
from bot.retrieval.tokenize import tokenize
from bot.retrieval.vectors import ChromaVectors

log = logging.getLogger(__name__)
EMBED_BATCH = 64  # vectors are stored after each batch, so a crash loses at most one batch


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0
    chunks: int = 0
    generation: int | None = None

    def summary(self) -> str:
        """The line `ingest.py` prints (a contract other tools parse: keep it as it is)."""
        return (
            f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
            f"removed {self.removed}, failed {len(self.failed)}"
        )

    def summary_zh(self) -> str:
        """The same counts for the people who read the console and the chat."""
        return (f"新增 {self.added} 个，更新 {self.updated} 个，未变 {self.unchanged} 个，"
                f"移除 {self.removed} 个，失败 {len(self.failed)} 个")


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    source: str  # as the admin gave it, for citations
    root: Path | None  # the folder it was found in (for removal detection), None for a single file


def discover(paths: Iterable[Path], base: Path) -> tuple[list[SourceFile], list[Path], list[tuple[str, str]]]:
    """Expand folders into supported files; return (files, scanned roots, problems)."""
    files: list[SourceFile] = []
    roots: list[Path] = []
    problems: list[tuple[str, str]] = []
    for given in paths:
        absolute = given if given.is_absolute() else (base / given)
        absolute = absolute.resolve()
        if absolute.is_dir():
            roots.append(absolute)
            for path in sorted(absolute.rglob("*")):
                rel = path.relative_to(absolute)
                if any(part.startswith((".", "_")) for part in rel.parts):
                    continue  # hidden files, editor backups, _drafts
                if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(SourceFile(path, str(given / rel), absolute))
        elif absolute.is_file():
            files.append(SourceFile(absolute, str(given), None))
        else:
            problems.append((str(given), "文件或目录不存在"))
    return files, roots, problems


STAFF_FOLDER = "staff"  # documents under <knowledge folder>/staff/ are for workers only, whatever their format


def in_staff_folder(src: SourceFile) -> bool:
    """A .docx or .pdf has no front matter: its folder says it is for workers only."""
    if src.root is None:
        return False
    return STAFF_FOLDER in (part.lower() for part in src.path.relative_to(src.root).parts[:-1])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Ingester:
    def __init__(self, layout: IndexLayout, vectors: ChromaVectors, embedder: Embedder,
                 chunk_chars: int = 420, overlap: int = 60):
        self.layout = layout
        self.vectors = vectors
        self.embedder = embedder
        self.chunk_chars = chunk_chars
        self.overlap = overlap

    def _chunking(self) -> dict:
        return {"chars": self.chunk_chars, "overlap": self.overlap, "version": CHUNKER_VERSION}

    def run(self, paths: Iterable[Path], base: Path, progress: bool | None = None,
            on_progress: Callable[[str, int, int], None] | None = None) -> IngestReport:
        """Ingest the given files and folders; hold the ingest lock while doing it."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with open(self.layout.lock_file, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IndexError_("another ingest is running on this index; try again when it ends") from exc
            with self.layout.exclusive():
                return self._run(list(paths), base, _want_progress(progress), on_progress)

    def _run(self, paths: list[Path], base: Path, progress: bool, on_progress) -> IngestReport:
        report = IngestReport()
        current = self.layout.current()
        old_files: dict[str, dict] = {}
        if current is not None:
            manifest = self.layout.read_json(current, MANIFEST)
            old_files = manifest["files"]
            if manifest.get("embedder") != self.embedder.name:
                log.warning("embedding model changed (%s -> %s): every chunk is embedded again",
                            manifest.get("embedder"), self.embedder.name)
                old_files = {k: {**v, "sha256": None} for k, v in old_files.items()}
                current_for_vectors = None
            else:
                current_for_vectors = current
            if manifest.get("chunking") != self._chunking():
                # new chunk sizes or a new chunker: every file is split again; vectors of
                # chunks whose text did not change are still reused by id
                log.warning("chunking changed: every file is split again")
                old_files = {k: {**v, "sha256": None} for k, v in old_files.items()}
        else:
            current_for_vectors = None
        found, roots, problems = discover(paths, base)
        report.failed.extend(problems)
        files = dict(old_files)
        changed = False
        seen: set[str] = set()
        for i, src in enumerate(_progress(found, progress, "读取文件")):
            key = str(src.path)
            seen.add(key)
            if on_progress:
                on_progress("load", i, len(found))
            digest = sha256(src.path)
            before = old_files.get(key)
            # an entry indexed before audiences existed is read again: its front matter may keep it from residents
            if before and before.get("sha256") == digest and before.get("status") == "indexed" \
                    and "audience" in before:
                report.unchanged += 1
                continue
            try:
                doc = load_document(src.path)
                chunks = split_document(doc.text, self.chunk_chars, self.overlap, title=doc.title)
                if not chunks:
                    raise LoadError("文件中没有可用的文字")
            except LoadError as exc:
                report.failed.append((src.source, str(exc)))
                kept = (before or {}).get("chunks", []) if (before or {}).get("status") == "indexed" or (before or {}).get("kept") else []
                files[key] = {**(before or {}), "source": src.source, "status": "failed", "error": str(exc),
                              "chunks": kept, "kept": bool(kept), "failed_at": _now()}
                changed = changed or before is None or before.get("status") != "failed"
                continue
            except Exception as exc:  # a loader bug must not stop the whole run
                log.exception("unexpected error reading %s", src.source)
                report.failed.append((src.source, f"读取时出错: {type(exc).__name__}"))
                continue
            if before and before.get("status") == "indexed":
                report.updated += 1
            else:
                report.added += 1
            changed = True
            files[key] = {
                "source": src.source, "sha256": digest, "status": "indexed", "error": None,
                "title": doc.title, "date": doc.date, "ingested_at": _now(),
                "effective": doc.effective, "expires": doc.expires, "ocr": doc.ocr,
                "audience": "staff" if doc.audience == "staff" or in_staff_folder(src) else "public",
                "chunks": [{"text": c.text, "section": c.section} for c in chunks],
            }
        for key, entry in old_files.items():
            path = Path(key)
            if key in seen:
                continue
            under_root = any(path.is_relative_to(root) for root in roots)
            explicitly_given = any(Path(p if Path(p).is_absolute() else base / p).resolve() == path for p in paths)
            if (under_root or explicitly_given) and not path.exists():
                del files[key]
                report.removed += 1
                changed = True
        if not changed and current is not None:
            report.generation = current
            report.chunks = len(self.layout.read_json(current, CHUNKS))
            return report
        self._publish(files, current, current_for_vectors, report, progress, on_progress)
        return report

    def _publish(self, files: dict[str, dict], current: int | None, current_for_vectors: int | None,
                 report: IngestReport, progress: bool, on_progress) -> None:
        generation = (current or 0) + 1
        entries = build_entries(files)
        ids = [e["id"] for e in entries]
        pool: dict[str, np.ndarray] = {}
        if current_for_vectors is not None:
            pool.update(self.vectors.vectors(current_for_vectors, ids))
        if self.vectors.has(generation) and self.vectors.embedder_of(generation) == self.embedder.name:
            pool.update(self.vectors.vectors(generation, ids))  # left by a crashed run of this model
        else:
            self.vectors.drop(generation)  # absent, or filled by another model: its vectors would mislead
            self.vectors.create(generation, embedder=self.embedder.name)
        todo = [e for e in entries if e["id"] not in pool]
        reused = [e for e in entries if e["id"] in pool]
        if reused:
            self.vectors.add(generation, [e["id"] for e in reused],
                             np.stack([pool[e["id"]] for e in reused]),
                             [e["text"] for e in reused], [_metadata(e) for e in reused])
        bar = _progress(range(0, len(todo), EMBED_BATCH), progress, "生成向量", total_items=len(todo))
        for start in bar:
            batch = todo[start : start + EMBED_BATCH]
            vecs = embed_documents(self.embedder, [indexed_text(e) for e in batch])
            self.vectors.add(generation, [e["id"] for e in batch], vecs,
                             [e["text"] for e in batch], [_metadata(e) for e in batch])
            report.embedded += len(batch)
            if on_progress:
                on_progress("embed", report.embedded, len(todo))
        stored = self.vectors.vectors(generation)
        extra = set(stored) - set(ids)
        if extra:
            self.vectors.delete_ids(generation, sorted(extra))
        matrix = np.stack([stored[i] for i in ids]) if ids else np.zeros((0, 1), dtype=np.float32)
        dense_floor = calibrate_dense_floor(matrix, self.embedder)
        bm25 = BM25Index.build([tokenize(indexed_text(e)) for e in entries])
        manifest = {"generation": generation, "embedder": self.embedder.name, "chunking": self._chunking(),
                    "dimension": self.embedder.dimension, "dense_floor": dense_floor, "created": _now(),
                    "files": files}
        self.layout.publish(generation, {
            MANIFEST: manifest,
            CHUNKS: entries,
            "bm25.npz": lambda target: bm25.save(target.with_name(BM25)),
        })
        report.generation = generation
        report.chunks = len(entries)
        keep = {generation} | ({current} if current is not None else set())
        self.layout.remove_stale(keep)
        for old in self.vectors.generations():
            if old not in keep:
                self.vectors.drop(old)


def build_entries(files: dict[str, dict]) -> list[dict]:
    """One index entry per distinct chunk text; reprints in other files are listed in 'also'."""
    by_body: dict[tuple[str, str], dict] = {}
    for key in sorted(files, key=lambda k: files[k]["source"]):
        entry = files[key]
        if not entry.get("chunks"):
            continue
        audience = entry.get("audience") or "public"
        for ordinal, chunk in enumerate(entry["chunks"]):
            body = chunk["text"]
            # a passage of a staff-only file is never merged into a public one (or the reverse): a resident
            # must not be shown a staff file among its sources, nor lose a public passage a handbook quotes
            existing = by_body.get((audience, body))
            if existing is not None:
                if entry["source"] not in existing["also"] and entry["source"] != existing["source"]:
                    existing["also"].append(entry["source"])
                    # the passage is in force whenever one of the files holding it is
                    existing["effective"] = _earliest(existing["effective"], entry.get("effective"))
                    existing["expires"] = _latest(existing["expires"], entry.get("expires"))
                continue
            record = {
                "source": entry["source"], "title": entry.get("title") or "", "date": entry.get("date") or "",
                "section": chunk["section"], "text": body, "ordinal": ordinal, "also": [],
                "effective": entry.get("effective"), "expires": entry.get("expires"),
            }
            if audience == "staff":
                record["audience"] = "staff"  # public passages keep their ids (and vectors) of before
            record["id"] = hashlib.sha1((audience_tag(record) + indexed_text(record)).encode("utf-8")).hexdigest()[:24]
            by_body[(audience, body)] = record
    return list(by_body.values())


def audience_tag(entry: dict) -> str:
    """Part of a staff passage's id, so that it never shares an id (or a vector row) with a public one."""
    return "staff\n" if entry.get("audience") == "staff" else ""


def _earliest(a: str | None, b: str | None) -> str | None:
    """The earlier start of two validity windows; None (always) wins."""
    return None if a is None or b is None else min(a, b)


def _latest(a: str | None, b: str | None) -> str | None:
    """The later end of two validity windows; None (never ends) wins."""
    return None if a is None or b is None else max(a, b)


def indexed_text(entry: dict) -> str:
    """The text that is embedded and tokenised: title and section give the chunk its context."""
    head = " ".join(part for part in (entry.get("title"), entry.get("section")) if part)
    return f"{head}\n{entry['text']}" if head else entry["text"]


def _metadata(entry: dict) -> dict:
    return {"source": entry["source"], "title": entry["title"], "section": entry["section"],
            "date": entry["date"] or ""}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _want_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _progress(iterable, enabled: bool, desc: str, total_items: int | None = None):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="批" if total_items else "个", file=sys.stderr, leave=False)


__all__ = ["Ingester", "IngestReport", "BotError", "discover", "build_entries", "indexed_text"]
