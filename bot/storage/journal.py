"""A journal of incoming messages on local disk, for the moments the database cannot take them.

It must work exactly when the database does not, so it is plain files: one JSON
file per message (readable by its owner only: it holds residents' words),
written to a temporary name, fsync'd and renamed, so a kill -9 leaves either the
whole entry or none. Names sort by arrival and carry a hash of the sender, so one
resident's entries are found without reading anyone else's, in order.

Claiming an entry renames it with the claiming host and process id. A claim left
by a process of this host that is gone is given back on the next start; a claim
of another host (a shared folder) only when it is older than STALE_CLAIM.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from bot.core.messages import Incoming, Location

log = logging.getLogger(__name__)

_SUFFIX = ".json"
_CLAIM = ".claimed-"
STALE_CLAIM = 600.0  # seconds after which another host's claim is taken to be abandoned
STALE_TMP = 60.0  # a half-written entry older than this belongs to a write that died


class FileJournal:
    """Implements core.ports.MessageJournal in a folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._last = 0
        self._owner = f"{_host()}-{os.getpid()}"
        self.recover(own_too=True)  # a claim with our pid at start belongs to an earlier process that had it

    def keep(self, incoming: Incoming) -> str:
        key = f"{self._stamp():020d}-{_sender(incoming.channel, incoming.user_id)}-{uuid.uuid4().hex[:8]}"
        data = json.dumps(_to_dict(incoming), ensure_ascii=False).encode("utf-8")
        tmp = self.folder / f".{key}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / f"{key}{_SUFFIX}")
        _fsync_dir(self.folder)
        return key

    def pending(self, channel: str | None = None, user_id: str | None = None) -> list[tuple[str, Incoming]]:
        pattern = f"*-{_sender(channel, user_id)}-*{_SUFFIX}" if channel is not None and user_id is not None \
            else f"*{_SUFFIX}"
        out = []
        for path in sorted(self.folder.glob(pattern)):
            try:
                incoming = _from_dict(json.loads(path.read_text(encoding="utf-8")))
            except FileNotFoundError:  # claimed by someone else meanwhile
                continue
            except (ValueError, TypeError, KeyError, AttributeError) as exc:  # one bad entry never blocks the rest
                _set_aside(path, exc)
                continue
            if (channel is None or incoming.channel == channel) and (user_id is None or incoming.user_id == user_id):
                out.append((path.name[: -len(_SUFFIX)], incoming))
        return out

    def has(self, channel: str, user_id: str) -> bool:
        """Whether this sender has anything kept, waiting or being handled by any process (cheap: names only)."""
        sender = _sender(channel, user_id)
        return any(self.folder.glob(f"*-{sender}-*{_SUFFIX}")) or any(self.folder.glob(f"*-{sender}-*{_CLAIM}*"))

    def claim(self, key: str) -> bool:
        claimed = self.folder / f"{key}{_CLAIM}{self._owner}"
        try:
            os.rename(self.folder / f"{key}{_SUFFIX}", claimed)
        except FileNotFoundError:
            return False
        try:  # a rename keeps the time the message was kept: the claim's age must count from now
            os.utime(claimed)
        except FileNotFoundError:
            pass
        return True

    def done(self, key: str) -> None:
        for path in self.folder.glob(f"{key}{_CLAIM}*"):
            path.unlink(missing_ok=True)
        (self.folder / f"{key}{_SUFFIX}").unlink(missing_ok=True)

    def release(self, key: str) -> None:
        claimed = self.folder / f"{key}{_CLAIM}{self._owner}"
        try:
            os.replace(claimed, self.folder / f"{key}{_SUFFIX}")
        except FileNotFoundError:
            pass

    def recover(self, own_too: bool = False) -> int:
        """Give back the claims of processes that are gone (killed while handling); return how many.

        Called at start and before every replay round, so with replicas sharing the folder (cluster) any
        of them hands on what one that died was handling, not only that one when it comes back.
        """
        given, host, now = 0, _host(), time.time()
        for path in self.folder.glob(f"*{_CLAIM}*"):
            key, _, owner = path.name.partition(_CLAIM)
            claim_host, _, pid = owner.rpartition("-")
            try:
                if claim_host == host and pid.isdigit():
                    if int(pid) == os.getpid() and not own_too:
                        continue  # being handled by another thread of this process
                    if int(pid) != os.getpid() and _alive(int(pid)):
                        continue
                elif now - path.stat().st_mtime < STALE_CLAIM:
                    continue  # another host's claim, maybe still being handled
                os.replace(path, self.folder / f"{key}{_SUFFIX}")
                given += 1
            except FileNotFoundError:
                continue
        for tmp in self.folder.glob(".*.tmp"):  # a write cut short: its sender got no "kept" reply either
            try:
                if now - tmp.stat().st_mtime > STALE_TMP:
                    tmp.unlink(missing_ok=True)
            except FileNotFoundError:
                continue
        return given

    def _stamp(self) -> int:
        with self._lock:  # strictly increasing within the process, so two quick messages keep their order
            self._last = max(self._last + 1, time.time_ns())
            return self._last


def _sender(channel: str | None, user_id: str | None) -> str:
    return hashlib.sha256(f"{channel}\x00{user_id}".encode("utf-8")).hexdigest()[:16]


def _set_aside(path: Path, exc: Exception) -> None:
    try:
        path.rename(path.with_name(path.name[: -len(_SUFFIX)] + ".unreadable"))
        log.error("journal entry %s unreadable, set aside: %s", path.name, type(exc).__name__)
    except FileNotFoundError:
        pass


def _to_dict(incoming: Incoming) -> dict:
    data = asdict(incoming)
    data["photos"] = list(incoming.photos)
    data["document"] = list(incoming.document) if incoming.document else None
    return data


def _from_dict(data: dict) -> Incoming:
    location = data.get("location")
    document = data.get("document")
    return Incoming(channel=data["channel"], user_id=data["user_id"], text=data.get("text") or "",
                    button=data.get("button"), photos=tuple(data.get("photos") or ()),
                    location=Location(**location) if location else None, kind=data.get("kind") or "text",
                    document=(document[0], document[1]) if document else None,
                    display_name=data.get("display_name") or "")


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
