"""Per-user locks that cost nothing once the user is idle."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Hashable


class KeyedLocks:
    """One lock per key (a user), created on demand and dropped when nobody holds or waits for it."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: Hashable):
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        with lock:
            try:
                yield
            finally:
                with self._guard:
                    lock, users = self._locks[key]
                    if users <= 1:
                        del self._locks[key]
                    else:
                        self._locks[key] = (lock, users - 1)
