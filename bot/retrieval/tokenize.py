"""Chinese word tokens for BM25: jieba's search-mode cut, minus stop words and punctuation."""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_jieba = None

# Question words and particles: frequent in residents' questions, useless for matching.
STOPWORDS = frozenset(
    """的 了 和 与 及 或 是 在 有 我 你 他 她 它 我们 你们 他们 这 那 这个 那个 这些 那些 哪 哪些 哪个 什么 怎么 怎样 如何 为什么
    吗 呢 吧 啊 呀 哦 嘛 么 请问 请 问 一下 一个 可以 能 能否 是否 会 要 需要 应该 还 也 都 就 但 但是 而 并 等 对 从 把 被 给 让
    向 为 以 之 于 其 中 上 下 里 多少 几 谁 么样 咋 咋办 啥 怎么办 怎么样 有没有 能不能 可不可以 是不是 想 知道 问问 谢谢 您好 你好""".split()
)
_WORD = re.compile(r"[\w\u4e00-\u9fff]")


def _load():
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def tokenize(text: str) -> list[str]:
    """Split text into lower-cased search tokens (overlapping sub-words included)."""
    jieba = _load()
    tokens = []
    for token in jieba.lcut_for_search(text.lower()):
        token = token.strip()
        if token and token not in STOPWORDS and _WORD.search(token):
            tokens.append(token)
    return tokens


def words(text: str) -> list[str]:
    """jieba's precise cut (no overlapping sub-words): the words of a phrase in order."""
    return _load().lcut(text)

