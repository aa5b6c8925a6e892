"""Knowledge-base administration without a shell: list, upload, remove, re-ingest in the background.

Residents keep getting answers during a re-ingest: the Ingester writes a new
index generation beside the current one and switches to it atomically. Only one
ingest runs at a time: this class lets one job run per process, and the
Ingester's file lock refuses a second one from any other process (ingest.py); with
several replicas the shared index's lock does that across the cluster, and the job's
progress is kept on a board in the database so every replica's console shows it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot.core.district_time import DISTRICT_ZONE, district_today
from bot.errors import BotError
from bot.retrieval.ingest import STAFF_FOLDER, IngestReport
from bot.retrieval.layout import MANIFEST
from bot.retrieval.loaders import SUPPORTED_SUFFIXES
from bot.tickets.sla import local

log = logging.getLogger(__name__)
MAX_NAME = 120
KEEP_JOBS = 10  # finished jobs whose progress page still answers
STATUS_LABELS = {"indexed": "已导入", "failed": "导入失败", "pending": "待导入", "removed": "已删除，待重新导入"}
STAGES = {"queued": "排队中", "load": "读取文件", "embed": "生成向量", "done": "完成", "failed": "失败"}
_UNSAFE = re.compile(r"[^\w\-.()（）【】《》，、 ]", re.UNICODE)


class KbAdminError(BotError):
    """An upload or removal the console refuses; the message is shown as is."""


class KbBusy(KbAdminError):
    """Another ingest is running."""


BUSY = "已有一个导入任务正在进行（可能是命令行的 ingest.py），请等它结束后再试。"


def named_in_staff_folder(name: str) -> bool:
    """A listed name under the staff folder ("staff/手册.docx"): a document for workers only."""
    parts = (name or "").replace("\\", "/").split("/")
    return len(parts) > 1 and parts[0].lower() == STAFF_FOLDER


def safe_filename(name: str) -> str:
    """A file name safe to create in the knowledge folder: no folders, not hidden, Chinese kept.

    Raises KbAdminError for a name with nothing left or an unsupported type.
    """
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").split("/")[-1])
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")  # control and format characters
    base = _UNSAFE.sub("_", base).strip(" ._")  # leading dots hide a file; leading _ marks a draft
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        raise KbAdminError(f"文件“{name}”没有扩展名。支持的类型：{'、'.join(SUPPORTED_SUFFIXES)}")
    suffix = "." + suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise KbAdminError(f"不支持 {suffix} 文件。支持的类型：{'、'.join(SUPPORTED_SUFFIXES)}")
    stem = stem.strip(" ._")[: MAX_NAME - len(suffix)]
    if not stem:
        raise KbAdminError("文件名无效，请改一个有文字的文件名再上传。")
    return stem + suffix


@dataclass
class Document:
    """One knowledge file as admins see it."""

    name: str  # path relative to the knowledge folder, or the source for files ingested from elsewhere
    status: str  # indexed | failed | pending | removed
    size: int | None = None
    ingested_at: str = ""
    error: str = ""
    title: str = ""
    removable: bool = True
    passages: int | None = None  # how many passages the index holds of it (None: not indexed)
    in_force: str = ""  # 未生效 / 已过期 / N 天后过期 (front matter effective/expires), "" when always in force
    versions: list = field(default_factory=list)  # earlier versions, newest first
    ocr: bool = False  # its text was recognised from a scan or a photo
    staff_only: bool = False  # never cited to residents (front matter audience, or the staff/ folder)

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class Version:
    id: str  # "20261206-213015-a1b2c3": when it was set aside, and a tie-breaker
    saved_at: str
    size: int


VERSIONS = ".versions"  # inside the knowledge folder; hidden, so ingest and the listing skip it


def _version_time(version_id: str) -> str:
    day, clock = version_id.split("-")[:2]
    return f"{day[:4]}-{day[4:6]}-{day[6:]} {clock[:2]}:{clock[2:4]}"


@dataclass
class Job:
    """One re-ingest: its progress as the Ingester reports it, then the outcome."""

    id: str
    state: str = "running"  # running | done | failed
    stage: str = "queued"
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    summary: str = ""
    failed: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""

    @property
    def stage_label(self) -> str:
        return STAGES.get(self.stage, self.stage)

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total


class JobBoard(Protocol):
    """Where jobs' progress is kept for every replica to show (storage/jobs.SqlJobs); dicts of Job's fields."""

    def save(self, job: dict) -> None: ...

    def get(self, job_id: str) -> dict | None: ...

    def running(self) -> dict | None: ...


BEAT_SECONDS = 5.0  # how often a running job tells the board it is alive (and how fresh its progress is there)


class KbAdmin:
    def __init__(self, knowledge, max_upload_mb: float = 20, board: JobBoard | None = None):
        self.knowledge = knowledge
        self.max_mb = max_upload_mb
        self.max_bytes = int(max_upload_mb * 1024 * 1024)
        self._running = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._board = board  # None: progress lives in this process only (one process serves)
        self._digests: dict[tuple[str, int, int], str] = {}

    @property
    def docs_dir(self) -> Path:
        return self.knowledge.docs_dir().resolve()

    # -- listing ---------------------------------------------------------------------------
    def documents(self) -> list[Document]:
        """Every supported file of the knowledge folder and every file the index holds, with its status."""
        root = self.docs_dir
        indexed = self._manifest_files()
        out: list[Document] = []
        on_disk: set[str] = set()
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root)
                if any(part.startswith((".", "_")) for part in rel.parts) or not path.is_file() \
                        or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    continue  # what ingest skips is not listed either
                on_disk.add(str(path))
                entry = indexed.get(str(path))
                doc = self._describe(rel.as_posix(), path, entry)
                doc.versions = self.versions(doc.name)
                out.append(doc)
        for key, entry in sorted(indexed.items(), key=lambda kv: kv[1].get("source", "")):
            if key in on_disk:
                continue
            inside = Path(key).is_relative_to(root)
            name = Path(key).relative_to(root).as_posix() if inside else entry.get("source", key)
            out.append(Document(name, "removed" if inside else entry.get("status", "indexed"),
                                ingested_at=_short_time(entry.get("ingested_at")), error=entry.get("error") or "",
                                title=entry.get("title") or "", removable=False,
                                versions=self.versions(name) if inside else []))
        return out

    def _describe(self, name: str, path: Path, entry: dict | None) -> Document:
        size = path.stat().st_size
        if entry is None:
            return Document(name, "pending", size)
        doc = Document(name, entry.get("status", "indexed"), size, _short_time(entry.get("ingested_at")),
                       entry.get("error") or "", entry.get("title") or "",
                       passages=len(entry.get("chunks") or []) if entry.get("status", "indexed") == "indexed" else None)
        doc.in_force = in_force_note(entry.get("effective"), entry.get("expires"))
        doc.ocr = bool(entry.get("ocr"))
        doc.staff_only = entry.get("audience") == "staff"
        if doc.status == "failed":
            doc.ingested_at = _short_time(entry.get("failed_at"))
        if doc.status == "indexed" and entry.get("sha256") != self._sha256(path):
            doc.status = "pending"  # changed since it was ingested
        return doc

    def _manifest_files(self) -> dict[str, dict]:
        layout = self.knowledge.layout
        generation = layout.current()
        return layout.read_json(generation, MANIFEST)["files"] if generation is not None else {}

    def _sha256(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._digests:
            if len(self._digests) > 5000:
                self._digests.clear()
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            self._digests[key] = digest.hexdigest()
        return self._digests[key]

    # -- changing the folder -------------------------------------------------------------------
    def save(self, name: str, data: bytes, staff_only: bool = False) -> tuple[str, bool]:
        """Write an uploaded document into the knowledge folder (its staff/ folder when for workers only, or when
        the name already lies there); return (its name in the folder, whether it replaced one)."""
        if len(data) > self.max_bytes:
            raise KbAdminError(self.too_large_message(len(data)))
        if not data:
            raise KbAdminError("文件是空的。")
        safe = safe_filename(name)
        staff_only = staff_only or named_in_staff_folder(name)
        folder = self.docs_dir / STAFF_FOLDER if staff_only else self.docs_dir
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / safe
        rel = f"{STAFF_FOLDER}/{safe}" if staff_only else safe
        replaced = target.exists()
        if replaced:
            self._keep_version(rel)  # the previous text stays restorable
        tmp = folder / f".upload-{secrets.token_hex(6)}{target.suffix}"  # hidden: ingest skips it meanwhile
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("knowledge document %s %s (%d bytes)", rel, "replaced" if replaced else "added", len(data))
        return rel, replaced

    def too_large_message(self, size: int | None = None) -> str:
        got = f"（这个文件约 {size / 1024 / 1024:.1f} MB）" if size else ""
        return f"文件太大了：最大 {self.max_mb:g} MB{got}。请压缩或拆分后再上传。"

    def remove(self, name: str) -> str:
        """Delete one document of the knowledge folder by its listed name; the next ingest drops it from the index."""
        root = self.docs_dir
        target = (root / name).resolve()
        rel = target.relative_to(root) if target.is_relative_to(root) else None
        if rel is None or not rel.parts or any(p.startswith((".", "_")) for p in rel.parts) \
                or target.suffix.lower() not in SUPPORTED_SUFFIXES or not target.is_file():
            raise KbAdminError(f"知识库里没有文件“{name}”。")
        self._keep_version(rel.as_posix())  # a removal can be undone from the versions too
        target.unlink()
        log.info("knowledge document %s removed", rel.as_posix())
        return rel.as_posix()

    # -- versions ------------------------------------------------------------------------------
    def versions(self, name: str) -> list[Version]:
        """Earlier versions of a document (replaced by an upload, or removed), newest first."""
        folder = self._versions_of(name)
        if folder is None or not folder.is_dir():
            return []
        out = [Version(p.name, _version_time(p.name), p.stat().st_size) for p in folder.iterdir() if p.is_file()]
        return sorted(out, key=lambda v: v.id, reverse=True)

    def restore_version(self, name: str, version: str) -> str:
        """Put an earlier version back in place (what is there now becomes a version); the document's name."""
        folder = self._versions_of(name)
        if folder is None or not re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", version) \
                or not (folder / version).is_file():
            raise KbAdminError(f"“{name}”没有这个历史版本。")
        data = (folder / version).read_bytes()
        saved, _ = self.save(name, data)
        log.info("knowledge document %s restored to version %s", saved, version)
        return saved

    def _versions_of(self, name: str) -> Path | None:
        try:
            safe = safe_filename(name)
        except KbAdminError:
            return None
        # a staff-only document's versions are kept apart: restoring one must not publish it
        return self.docs_dir / VERSIONS / (STAFF_FOLDER if named_in_staff_folder(name) else "") / safe

    def _keep_version(self, name: str) -> None:
        current = self.docs_dir / name
        folder = self._versions_of(name)
        if folder is None or not current.is_file():
            return
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(DISTRICT_ZONE).strftime("%Y%m%d-%H%M%S")
        (folder / f"{stamp}-{secrets.token_hex(3)}").write_bytes(current.read_bytes())

    # -- ingesting -----------------------------------------------------------------------------
    def start_reingest(self) -> Job:
        """Re-ingest the knowledge folder in a background thread; raise KbBusy when one is running (here, or on
        another replica: the board says so)."""
        if not self._running.acquire(blocking=False):
            raise KbBusy(BUSY)
        try:
            if self._board is not None and self._board.running() is not None:
                raise KbBusy(BUSY)
            job = Job(id=secrets.token_hex(8))
            recent = sorted(self._jobs.values(), key=lambda j: j.started)[-(KEEP_JOBS - 1):]
            self._jobs = {j.id: j for j in recent} | {job.id: job}
            self._publish(job)
            thread = threading.Thread(target=self._run_job, args=(job,), name=f"reingest-{job.id}", daemon=True)
            thread.start()
        except BaseException:
            self._running.release()
            raise
        return job

    def run_now(self) -> IngestReport:
        """Re-ingest the knowledge folder in this thread (the chat's /reingest); raise KbBusy when one is running."""
        if not self._running.acquire(blocking=False):
            raise KbBusy(BUSY)
        try:
            return self._ingest(None)
        finally:
            self._running.release()

    def job(self, job_id: str) -> Job | None:
        if self._board is not None:
            found = self._board.get(job_id)
            return Job(**found) if found is not None else None
        return self._jobs.get(job_id)

    def running(self) -> Job | None:
        if self._board is not None:
            found = self._board.running()
            return Job(**found) if found is not None else None
        return next((j for j in list(self._jobs.values()) if j.state == "running"), None)

    def _publish(self, job: Job) -> None:
        if self._board is not None:
            self._board.save(asdict(job))

    def _run_job(self, job: Job) -> None:
        stop = threading.Event()
        beating = threading.Thread(target=self._beat, args=(job, stop), name=f"reingest-beat-{job.id}", daemon=True)
        if self._board is not None:
            beating.start()
        try:
            self._work(job)
        finally:
            stop.set()
            if beating.is_alive():
                beating.join()
            try:
                self._publish(job)  # the outcome, for every replica's progress page
            except Exception:
                log.exception("could not record the outcome of re-ingest %s", job.id)
            self._running.release()

    def _beat(self, job: Job, stop: threading.Event) -> None:
        """Publish the job's progress every few seconds: its liveness and what the page shows."""
        while not stop.wait(BEAT_SECONDS):
            try:
                self._publish(job)
            except Exception:  # the database away for a moment: the next beat tries again
                log.warning("could not record the progress of re-ingest %s", job.id)

    def _work(self, job: Job) -> None:
        try:
            report = self._ingest(job.progress)
            job.summary, job.failed = report.summary_zh(), list(report.failed)
            job.stage, job.state = "done", "done"
        except KbBusy as exc:
            job.error, job.stage, job.state = str(exc), "failed", "failed"
        except Exception as exc:  # shown on the progress page; the index keeps its last generation
            log.exception("background re-ingest failed")
            job.error, job.stage, job.state = f"导入出错：{exc}", "failed", "failed"
        finally:
            job.finished = time.time()

    def _ingest(self, on_progress) -> IngestReport:
        from bot.errors import IndexError_

        try:
            return self.knowledge.ingest(progress=False, on_progress=on_progress)
        except IndexError_ as exc:
            if "another ingest" in str(exc):
                raise KbBusy(BUSY) from exc
            raise


EXPIRY_WARNING_DAYS = 30


def in_force_note(effective: str | None, expires: str | None, today: str | None = None) -> str:
    """What admins must know about a document's days in force: not yet, expired, or expiring within 30 days."""
    from datetime import date

    today = today or district_today()
    if effective and today < effective:
        return f"{effective} 起生效，之前不会被引用"
    if expires and today > expires:
        return f"已于 {expires} 过期，不再被引用"
    if expires:
        left = (date.fromisoformat(expires) - date.fromisoformat(today)).days
        if left <= EXPIRY_WARNING_DAYS:
            return f"{left} 天后过期（{expires}），请及时更新"
    return ""


def _short_time(value: str | None) -> str:
    """An ingest time ('2026-11-29T00:15:02+0000', the server's zone) in the district's zone: '2026-11-29 08:15'."""
    if not value:
        return ""
    try:
        return local(datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z"))
    except ValueError:
        return value.replace("T", " ")[:16]
