"""Whether a passage answers the question, not merely sits near it.

The relevance score says a passage is *near* a question. Near-domain questions
the documents do not cover ("医保卡丢了怎么补办", "商品房维修基金怎么申请使用") are near
many passages of a district's documents (they share 申请, 材料, 补贴 and the
register of public services), and answering them from an unrelated guide is
worse than saying "not covered". Two checks, each measured on questions the
sample documents answer and near-domain ones they do not
(bench/data/sample_kb_questions.jsonl, bench/data/near_domain_uncovered.jsonl,
``python bench/answers.py --near-domain``):

1. **Named things must be named.** A question about a card, certificate, fund,
   fee, tax, allowance or insurance ("医保卡", "维修基金", "长寿补贴", "优待证")
   asks about *that* thing. If the passage never names it, even loosely (its
   characters in order within a short span, so 意外险 finds 意外伤害保险 and
   残疾证 finds 残疾人证), the passage answers something else.
2. **The question must be about what the document is about.** The cosine between
   the question and the passage's title and section (what the document says it is
   about), plus a share of the BM25 match (the passage literally holds the
   question's words), must reach a floor. A colloquial question about a guide
   ("我爸今年68去老人家食堂吃饭有补贴吗") is close to its title even when it shares few
   words; "身份证过期了怎么换" is close to no title, though a material list
   mentions 身份证.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

# What a question can ask about as a *thing*: the head of a noun phrase.
_ITEM_SUFFIXES = ("证明", "执照", "津贴", "补贴", "补助", "基金", "保险", "证", "卡", "金", "费", "税", "险", "照")
# Heads that name no particular thing on their own ("什么证件", "要交费吗").
_GENERIC_ITEMS = frozenset("""证件 证明 补贴 补助 津贴 基金 保险 费用 资金 金额 现金 押金 证书 卡 费 税 险 证 金 照 执照 按照 参照
依照 对照 拍照 交费 收费 免费 付费 缴费 花费 经费 自费 全费 证实 保证 论证 认证 验证 查证 凭证 见证 办证 领证 发证 换证 补证 拿证
开证 本金 奖金 黄金 五金 美金 基金会 刷卡 打卡 卡片 卡号""".split())
# Heads that need the word before them to name a thing: 长寿 补贴, 维修 基金, 记录 证明, 奖励 费.
_NEEDS_MODIFIER = frozenset("证明 补贴 补助 津贴 基金 保险 费 金 证 卡 险".split())
_CJK = re.compile(r"[\u4e00-\u9fff]")
# Words before a generic head that do not name a thing: question words and verbs of giving and getting
# ("如何补贴", "有何补助", "给予补贴", "领取补贴" ask about the allowance already named, if any).
_NOT_MODIFIERS = frozenset("""如何 有何 何种 什么 哪些 哪种 哪个 怎么 怎样 多少 是否 有无 有没有 能否 可否 给与 给予 发放 领取 申领 申请
享受 获得 取得 提供 拿到 领到 发给 给 有 是 等 和 及 或 与 相关 有关 其他 各类 各项 一次性 专项 新增 这个 那个 这项 该
查询 查 了解 咨询 办理 申报 报销 缴纳 交纳 退还 减免 落实 兑现 提高 增加 调整 取消 发布 出台 要求 规定 支付 使用 补办""".split())


@dataclass(frozen=True)
class AnswerabilityParams:
    # cosine(question, title + section) + MATCH_WEIGHT * min(BM25 match, 1) must reach this
    min_topic: float = 0.8
    match_weight: float = 0.3
    check_items: bool = True


def items(words: Sequence[str]) -> list[str]:
    """The named things a question asks about, from its words (jieba's precise cut).

    A head that says nothing alone (补贴, 基金, 证明) takes the content word before
    it, past a 的: 长寿 补贴 -> 长寿补贴, 以旧换新 的 补贴 -> 以旧换新补贴, 记录 证明 -> 记录证明.
    """
    out = []
    for i, word in enumerate(words):
        if not _CJK.search(word) or not word.endswith(_ITEM_SUFFIXES):
            continue
        if word.endswith("险") and len(word) < 3:
            continue  # 危险, 风险: adjectives and nouns of risk, not insurance
        if word in _GENERIC_ITEMS:
            if word not in _NEEDS_MODIFIER:
                continue
            j = i - 1
            if j >= 0 and words[j] == "的":
                j -= 1
            prev = words[j] if j >= 0 else ""
            if len(prev) >= 2 and _CJK.fullmatch(prev[-1]) and not prev.endswith(("了", "么", "啥")) \
                    and prev not in _NOT_MODIFIERS:
                out.append(prev + word)
            continue
        out.append(word)
    return out


def named(item: str, text: str, slack: int = 3) -> bool:
    """Whether text names item, allowing words in between: its characters in order within len+slack characters."""
    if item in text:
        return True
    first, span = item[0], len(item) + slack
    start = text.find(first)
    while start != -1:
        window = text[start:start + span]
        pos = 0
        for ch in item[1:]:
            pos = window.find(ch, pos + 1)
            if pos == -1:
                break
        else:
            return True
        start = text.find(first, start + 1)
    return False


_SENTENCE_END = re.compile(r"[。！？!?；;\n]")
_FILLER = re.compile(r"[的了吗呢吧啊呀么是在有和与我你他她它这那哪什怎请问一下能可以要想去得会还都就也该\s，。？！、,.?!]+")


def rest_of(question: str, item: str) -> set[str]:
    """The question's other words, as character pairs: what a sentence naming the item should also speak of."""
    rest = _FILLER.sub(" ", question.replace(item, " "))
    return {part[i:i + 2] for part in rest.split() for i in range(len(part) - 1)}


def named_in_context(item: str, question: str, head: str, text: str) -> bool:
    """The passage names the item as its subject: in its title or section, or in a sentence that also speaks
    of the rest of the question. "身份证过期了怎么换" is not answered by a material list naming 身份证."""
    if named(item, head):
        return True
    rest = rest_of(question, item)
    if not rest or any(pair in head for pair in rest):
        return named(item, text)  # the document is about the rest of the question: naming the item is enough
    return any(named(item, sentence) and any(pair in sentence for pair in rest)
               for sentence in _SENTENCE_END.split(text))


class TopicSimilarity:
    """Cosine between a question and passages' "title section" strings, with the heads' vectors memoised."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], size: int = 4096):
        self.embed = embed
        self.size = size
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def cosines(self, question_vector: np.ndarray, heads: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [h for h in dict.fromkeys(heads) if h not in self._memo]
        if missing:
            vectors = self.embed(missing)
            with self._lock:
                for head, vec in zip(missing, vectors):
                    self._memo[head] = vec
                while len(self._memo) > self.size:
                    self._memo.popitem(last=False)
        with self._lock:
            rows = [self._memo.get(h) for h in heads]
        rows = [r if r is not None else self.embed([h])[0] for r, h in zip(rows, heads)]  # evicted meanwhile
        return np.stack(rows) @ question_vector


def head_of(title: str, section: str) -> str:
    """What a passage says it is about: its document's title and its section path."""
    return f"{title} {section}".strip()


def topic_score(cosine: float, match: float, params: AnswerabilityParams) -> float:
    return float(cosine) + params.match_weight * min(float(match), 1.0)
