"""A journal of incoming messages on local disk, for the moments the database cannot take them.

It must work exactly when the database does not, so it is plain files: one JSON
file per message, written to a temporary name, fsync'd and renamed, so a
kill -9 leaves either the whole entry or none. Names sort by arrival, which
keeps each resident's messages in order. Claiming an entry renames it with the
claiming process's id; a claim left by a process that died is given back on
the next start.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from bot.core.messages import Incoming, Location

log = logging.getLogger(__name__)

_SUFFIX = ".json"
_CLAIM = ".claimed-"


class FileJournal:
    """Implements core.ports.MessageJournal in a folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._last = 0
        self.recover()

    def keep(self, incoming: Incoming) -> str:
        key = f"{self._stamp():020d}-{uuid.uuid4().hex[:8]}"
        data = json.dumps(_to_dict(incoming), ensure_ascii=False).encode("utf-8")
        tmp = self.folder / f".{key}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / f"{key}{_SUFFIX}")
        _fsync_dir(self.folder)
        return key

    def pending(self, channel: str | None = None, user_id: str | None = None) -> list[tuple[str, Incoming]]:
        out = []
        for path in sorted(self.folder.glob(f"*{_SUFFIX}")):
            try:
                incoming = _from_dict(json.loads(path.read_text(encoding="utf-8")))
            except FileNotFoundError:  # claimed by someone else meanwhile
                continue
            except (ValueError, TypeError, KeyError) as exc:  # never block the queue on one bad entry
                path.rename(path.with_suffix(".unreadable"))
                log.error("journal entry %s unreadable, set aside: %s", path.name, exc)
                continue
            if (channel is None or incoming.channel == channel) and (user_id is None or incoming.user_id == user_id):
                out.append((path.stem, incoming))
        return out

    def claim(self, key: str) -> bool:
        try:
            os.rename(self.folder / f"{key}{_SUFFIX}", self.folder / f"{key}{_CLAIM}{os.getpid()}")
            return True
        except FileNotFoundError:
            return False

    def done(self, key: str) -> None:
        for path in self.folder.glob(f"{key}{_CLAIM}*"):
            path.unlink(missing_ok=True)
        (self.folder / f"{key}{_SUFFIX}").unlink(missing_ok=True)

    def release(self, key: str) -> None:
        claimed = self.folder / f"{key}{_CLAIM}{os.getpid()}"
        if claimed.exists():
            os.replace(claimed, self.folder / f"{key}{_SUFFIX}")

    def recover(self) -> int:
        """Give back the claims of processes that are gone (killed while handling); return how many."""
        given = 0
        for path in self.folder.glob(f"*{_CLAIM}*"):
            key, _, pid = path.name.partition(_CLAIM)
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            os.replace(path, self.folder / f"{key}{_SUFFIX}")
            given += 1
        for tmp in self.folder.glob(".*.tmp"):  # a write cut short: the sender got no "kept" reply either
            tmp.unlink(missing_ok=True)
        return given

    def _stamp(self) -> int:
        with self._lock:  # strictly increasing within the process, so two quick messages keep their order
            self._last = max(self._last + 1, time.time_ns())
            return self._last


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
