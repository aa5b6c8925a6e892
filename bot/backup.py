"""Backup and restore: the database, the knowledge documents and the kept messages, in one archive.

    python -m bot admin backup --out FILE     (while the service runs)
    python -m bot admin restore FILE          (into an empty database; the index is rebuilt at start)

The database is copied by the tools made for it: SQLite's online backup API (a
consistent copy while the service writes) and pg_dump/pg_restore for PostgreSQL
(one snapshot, custom format). The knowledge folder goes in as files; the index
does not, since ingest rebuilds it from the documents on the first start. The
journal of messages kept while the database was away goes in too: they are not in
the database yet.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from bot.errors import BotError

FORMAT = 1


class BackupError(BotError):
    """A backup or restore that cannot be done, with the reason."""


def backup(settings, out: Path) -> dict:
    """Write the archive to `out` (atomically: a half-written archive never has the final name); its manifest."""
    from bot.storage.db import make_engine
    from bot.storage.migrate import status

    out = Path(out)
    engine = make_engine(settings.database.url, settings.base_dir, settings.database.busy_timeout_seconds)
    try:
        revision, _ = status(engine)
        kind = engine.dialect.name
        with tempfile.TemporaryDirectory() as tmp:
            dump = Path(tmp) / ("database.sqlite" if kind == "sqlite" else "database.dump")
            if kind == "sqlite":
                _sqlite_copy(Path(engine.url.database), dump)
            elif kind == "postgresql":
                _pg_dump(settings.database.url, dump)
            else:
                raise BackupError(f"不支持备份 {kind} 数据库")
            docs = settings.resolve(settings.knowledge.docs_dir)
            journal = settings.resolve(settings.database.journal_dir)
            manifest = {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "database": kind, "revision": revision,
                        "documents": sorted(p.relative_to(docs).as_posix() for p in _files(docs)),
                        "kept_messages": len(list(_files(journal)))}
            partial = out.with_name(f".{out.name}.partial")
            out.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(partial, "w:gz") as archive:
                _add_bytes(archive, "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1).encode())
                archive.add(dump, arcname=dump.name)
                for path in _files(docs):
                    archive.add(path, arcname=f"knowledge/{path.relative_to(docs).as_posix()}")
                for path in _files(journal):
                    archive.add(path, arcname=f"journal/{path.relative_to(journal).as_posix()}")
            os.chmod(partial, 0o600)  # it holds residents' phone numbers
            os.replace(partial, out)
        return manifest
    finally:
        engine.dispose()


def restore(settings, archive_path: Path) -> dict:
    """Restore an archive into this configuration's (empty) database and folders; the archive's manifest."""
    from bot.storage.db import make_engine

    archive_path = Path(archive_path)
    if not archive_path.is_file():
        raise BackupError(f"没有找到备份文件 {archive_path}")
    engine = make_engine(settings.database.url, settings.base_dir, settings.database.busy_timeout_seconds)
    try:
        if inspect(engine).get_table_names():
            raise BackupError("目标数据库不是空的：恢复只写入空数据库（请换一个新的数据库或空的数据文件夹），以免覆盖现有数据。")
        kind = engine.dialect.name
        database = Path(engine.url.database) if kind == "sqlite" else None
    finally:
        engine.dispose()
    with tarfile.open(archive_path, "r:gz") as archive, tempfile.TemporaryDirectory() as tmp:
        manifest = json.loads(archive.extractfile("manifest.json").read())
        if manifest.get("format") != FORMAT:
            raise BackupError(f"不认识的备份格式 {manifest.get('format')}")
        if manifest["database"] != kind:
            raise BackupError(f"备份来自 {manifest['database']} 数据库，不能恢复到 {kind}。")
        archive.extractall(tmp, filter="data")
        tmp = Path(tmp)
        if kind == "sqlite":
            database.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("-wal", "-shm"):  # an empty database's leftovers must not be replayed over the copy
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(tmp / "database.sqlite", database)
        else:
            _pg_restore(settings.database.url, tmp / "database.dump")
        for folder, setting in (("knowledge", settings.knowledge.docs_dir), ("journal", settings.database.journal_dir)):
            source, target = tmp / folder, settings.resolve(setting)
            for path in _files(source):
                destination = target / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
    return manifest


# -- the database tools ---------------------------------------------------------------------------------

def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while the service writes."""
    if not source.is_file():
        raise BackupError(f"数据库文件不存在：{source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq connection options and environment for pg_dump / pg_restore from the SQLAlchemy URL."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    args = ["--host", parsed.host or "127.0.0.1", "--port", str(parsed.port or 5432),
            "--username", parsed.username or "postgres", "--dbname", parsed.database or "postgres"]
    options = parsed.query.get("options")
    if options:  # e.g. -csearch_path=district: the service's tables live in that schema
        env["PGOPTIONS"] = options if isinstance(options, str) else " ".join(options)
    return args, env


def _schema_of(url: str) -> str | None:
    options = make_url(url).query.get("options") or ""
    options = options if isinstance(options, str) else " ".join(options)
    for part in options.split():
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0]
    return None


def _pg_dump(url: str, target: Path) -> None:
    args, env = _pg_args(url)
    schema = _schema_of(url)
    command = ["pg_dump", "--format=custom", "--no-owner", "--file", str(target), *args]
    if schema:
        command += ["--schema", schema]
    _run(command, env, "pg_dump")


def _pg_restore(url: str, dump: Path) -> None:
    args, env = _pg_args(url)
    _run(["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", *args, str(dump)], env, "pg_restore")


def _run(command: list[str], env: dict[str, str], tool: str) -> None:
    if shutil.which(tool) is None:
        raise BackupError(f"需要 PostgreSQL 的 {tool} 命令（apt-get install postgresql-client）")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise BackupError(f"{tool} 失败：{done.stderr.strip()[-500:]}")


# -- files ------------------------------------------------------------------------------------------------

def _files(folder: Path):
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            yield path


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(timezone.utc).timestamp())
    archive.addfile(info, io.BytesIO(data))
