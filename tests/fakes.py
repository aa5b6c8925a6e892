"""Honest in-memory fakes of the core's ports, for unit tests and channel tests."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

from bot.core.dialogue import DialogueState
from bot.core.intake import Intake
from bot.core.intents import IntentClassifier
from bot.core.ports import CategoryMatch, Hit, PlaceMatch, TicketDraft, TicketInfo
from bot.nlu.keywords import KeywordModel


class FakeRetriever:
    """Returns the given passages whose text shares a two-character word with the query."""

    def __init__(self, hits: list[Hit] | None = None):
        self.hits = hits or []
        self.queries: list[str] = []
        self.audiences: list[str] = []

    def search(self, query: str, k: int | None = None, audience: str = "public") -> list[Hit]:
        self.queries.append(query)
        self.audiences.append(audience)
        grams = {query[i:i + 2] for i in range(len(query) - 1)}
        found = [h for h in self.hits if any(g in h.text or g in h.title for g in grams if g.strip())
                 and (audience == "staff" or h.audience == "public")]
        return found[: k or 5]


class MemoryDialogueStore:
    def __init__(self):
        self.rows: dict[tuple[str, str], dict] = {}

    def load(self, channel: str, user_id: str) -> DialogueState:
        return DialogueState.from_json(channel, user_id, self.rows.get((channel, user_id)))

    def save(self, state: DialogueState) -> None:
        self.rows[(state.channel, state.user_id)] = state.to_json()


class FakePlaces:
    _BUILDING = re.compile(r"(景村里|华江里)?(\d+)号楼(\d+单元)?(\d+室|\d{3,4})?")

    def resolve(self, text: str) -> PlaceMatch | None:
        m = self._BUILDING.search(text)
        if not m:
            estate = re.search(r"景村里|华江里", text)  # an estate alone: known, but no building
            return PlaceMatch(estate.group(0), None, None, community="C1") if estate else None
        estate = m.group(1) or "景村里"
        return PlaceMatch(text=m.group(0) if m.group(1) else estate + m.group(0),
                          building_id=f"{estate}-{m.group(2)}", grid_id="G1", community="C1")

    def resolve_location(self, latitude: float, longitude: float) -> PlaceMatch | None:
        return None


class FakeCategorizer:
    RULES = [("暖气", "供暖", "utility"), ("漏水", "供水", "utility"), ("堆", "楼道堆物", "general"),
             ("吵", "噪音", "general"), ("噪音", "噪音", "general"), ("电梯", "电梯", "utility")]
    RESEMBLES = [("老人", "养老服务", "general")]  # by meaning alone, as the embedding half decides

    def classify(self, text: str) -> CategoryMatch:
        for word, name, sla in self.RULES:
            if word in text:
                return CategoryMatch(name, sla, 0.9, sharp=True)
        for word, name, sla in self.RESEMBLES:
            if word in text:
                return CategoryMatch(name, sla, 0.8)
        return CategoryMatch("其他", "general", 0.3)


class MemoryTicketDesk:
    def __init__(self):
        self.drafts: list[TicketDraft] = []
        self.tickets: dict[str, TicketInfo] = {}
        self.owners: dict[str, tuple[str, str]] = {}
        self.ratings: list[tuple[str, int, str]] = []
        self._ids = itertools.count(1)

    def file(self, draft: TicketDraft) -> TicketInfo:
        for tid, info in self.tickets.items():
            if self.owners[tid] == (draft.channel, draft.user_id) and info.category == draft.category \
                    and info.status not in ("closed", "cancelled"):
                return replace(info, linked=True)
        self.drafts.append(draft)
        tid = f"T{next(self._ids):08d}"
        from datetime import datetime

        from bot.core.district_time import DISTRICT_ZONE

        filed_at = datetime.now(DISTRICT_ZONE).strftime("%Y-%m-%d %H:%M")  # as the real desk writes it
        info = TicketInfo(tid, "assigned", draft.category, draft.description[:60], draft.place, filed_at)
        self.tickets[tid] = info
        self.owners[tid] = (draft.channel, draft.user_id)
        return info

    def tickets_of(self, channel: str, user_id: str) -> list[TicketInfo]:
        return [t for tid, t in self.tickets.items() if self.owners[tid] == (channel, user_id)]

    def rate(self, ticket_id: str, channel: str, user_id: str, stars: int, comment: str = "") -> TicketInfo:
        self.ratings.append((ticket_id, stars, comment))
        info = self.tickets[ticket_id]
        info = replace(info, status="closed" if stars > 2 else "assigned")
        self.tickets[ticket_id] = info
        return info


class MemoryIntentFeedback:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def record(self, channel: str, text: str, label: str, how: str) -> None:
        self.rows.append((channel, text, label, how))


class MemoryNotifier:
    def __init__(self):
        self.sent: list[tuple[str, str, object]] = []

    def notify(self, channel: str, user_id: str, reply) -> None:
        self.sent.append((channel, user_id, reply))


SAMPLE_HITS = [
    Hit(source="knowledge/elderly-meal-service.md", title="河西区老人家食堂助餐服务办理指南", section="三、需要带什么材料",
        date="2025-03-01", text="办理助餐卡需要带本人身份证和户口簿。80周岁以上老人每餐补贴4元。", score=0.8),
    Hit(source="knowledge/heating-complaints.md", title="供暖报修与室温不达标怎么办", section="一、室温标准",
        date="2025-10-15", text="供暖期间卧室、起居室温度不低于18℃。室温不达标可以拨打供热单位报修电话。", score=0.7),
]


def make_conversation(hits: list[Hit] | None = None, **overrides):
    """A Conversation wired to fakes; returns (conversation, fakes as a dict)."""
    from bot.core.conversation import Conversation

    fakes = dict(retriever=FakeRetriever(SAMPLE_HITS if hits is None else hits), dialogues=MemoryDialogueStore(),
                 desk=MemoryTicketDesk(), places=FakePlaces(), categorizer=FakeCategorizer(),
                 feedback=MemoryIntentFeedback())
    fakes.update(overrides)
    intake = Intake(fakes["desk"], fakes["places"], fakes["categorizer"])
    conversation = Conversation(IntentClassifier(KeywordModel()), fakes["retriever"], fakes["dialogues"], intake,
                                fakes["desk"], {"火警": "119", "急救": "120", "报警": "110", "燃气抢修": "96655（示例）"},
                                feedback=fakes["feedback"], answers=fakes.get("answers"), curated=fakes.get("curated"),
                                staff=fakes.get("staff"), duty=fakes.get("duty"))
    return conversation, fakes


def char_embedding(texts):
    """A model-free embedding for tests: normalised counts of each character (same words, same vector)."""
    import numpy as np

    rows = np.zeros((len(texts), 4096), dtype=np.float32)
    for i, text in enumerate(texts):
        for ch in text:
            rows[i, hash(ch) % 4096] += 1.0
        rows[i] /= max(float(np.linalg.norm(rows[i])), 1e-9)
    return rows


def sqlite_answer_stores(min_similarity: float = 0.95):
    """(SqlAnswerLog, SqlCuratedAnswers) on an in-memory SQLite database, for channel tests on fakes."""
    from datetime import timedelta

    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker
    from sqlalchemy.pool import StaticPool

    from bot.storage.answer_log import SqlAnswerLog
    from bot.storage.curated import SqlCuratedAnswers
    from bot.storage.db import Base

    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    return SqlAnswerLog(sessions, timedelta(days=365)), SqlCuratedAnswers(sessions, char_embedding, min_similarity)


# the expired notice is worded like the resident's question, its successor is not: without the dates, the
# expired one would be the answer
BATH_2024 = ("---\ntitle: 2024年社区助浴服务\nexpires: 2024-12-31\n---\n"
             "助浴车每周几来，收费多少？助浴车每周三上午来，收费20元。\n")
BATH_2026 = ("---\ntitle: 2026年社区助浴服务\neffective: 2026-01-01\n---\n"
             "自2026年起，助浴服务改在周四上午，费用25元。\n")


def real_retriever(folder, documents: dict[str, str]):
    """The real retriever (hashing embedder, real index on disk) over these documents (file name -> text)."""
    from bot.app import build_knowledge
    from bot.settings import load_settings

    (folder / "knowledge").mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (folder / "knowledge" / name).write_text(text, "utf-8")
    (folder / "config.toml").write_text('[knowledge]\ndocs_dir = "knowledge"\nindex_dir = "index"\nmin_relevance = 0.0\n'
                                        'check_named_items = false\n[embedding]\nbackend = "hashing"\n', "utf-8")
    kb = build_knowledge(load_settings(folder / "config.toml"))
    kb.ingest(progress=False)
    return kb.retriever


def lifecycle_retriever(folder):
    """A 2024 notice that has expired and its 2026 successor: what a channel test needs to show an expired
    document is never cited."""
    return real_retriever(folder, {"bath-2024.md": BATH_2024, "bath-2026.md": BATH_2026})


class KnownStaff:
    """StaffCommands that answers no command and knows which chat accounts are staff."""

    def __init__(self, accounts: set[tuple[str, str]]):
        self.accounts = accounts

    def handle(self, incoming, state):
        return None

    def is_staff(self, channel: str, user_id: str) -> bool:
        return (channel, user_id) in self.accounts


# a worker's handbook (staff only) and a public guide on the same topic; only the handbook answers the question
HANDBOOK = ("---\ntitle: 网格员走访手册（内部）\naudience: staff\n---\n"
            "独居老人多久走访一次？独居老人每月至少走访一次，寒潮天气增加电话问候。\n")
ELDERLY_GUIDE = ("---\ntitle: 老年人助餐服务指南\n---\n"
                 "独居老人可以申请助餐服务，由社区老人家食堂送餐上门，每餐收费8元。\n")
STAFF_QUESTION = "独居老人多久走访一次"


def audience_retriever(folder):
    """A staff-only handbook and a public guide: what a channel test needs to show a staff-only document reaches
    staff and never a resident."""
    return real_retriever(folder, {"handbook.md": HANDBOOK, "meals.md": ELDERLY_GUIDE})
