"""Chinese text normalisation shared by the core and retrieval."""

from __future__ import annotations

_t2s = None


def simplified(text: str) -> str:
    """Traditional characters as simplified ones (租房補貼 -> 租房补贴): documents and models use simplified."""
    global _t2s
    if _t2s is None:
        from opencc_purepy import OpenCC

        _t2s = OpenCC("t2s")
    return _t2s.convert(text)
