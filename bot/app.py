"""Composition root: the one place that picks concrete adapters and wires them together."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from bot.retrieval.answerable import AnswerabilityParams
from bot.retrieval.embeddings import Embedder, build_embedder
from bot.retrieval.index import KnowledgeIndex
from bot.retrieval.ingest import Ingester, IngestReport
from bot.retrieval.layout import IndexLayout
from bot.retrieval.lazy import LazyEmbedder
from bot.retrieval.retriever import HybridRetriever, RetrievalParams
from bot.retrieval.vectors import ChromaVectors
from bot.errors import ConfigError, IndexError_
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class KnowledgeBase:
    """Everything that reads and writes the knowledge index."""

    settings: Settings
    layout: IndexLayout
    store: ChromaVectors
    embedder: Embedder
    index: KnowledgeIndex
    retriever: HybridRetriever
    ingester: Ingester

    def docs_dir(self) -> Path:
        return self.settings.resolve(self.settings.knowledge.docs_dir)

    def is_empty(self) -> bool:
        return self.layout.current() is None

    def ingest(self, paths: list[Path] | None = None, progress: bool | None = None,
               base: Path | None = None, on_progress=None) -> IngestReport:
        """Ingest the given paths (default: the knowledge folder, relative to the config file).

        Paths given by a person on a command line are relative to their working
        directory: pass ``base=Path.cwd()`` for those.
        """
        if paths is None:
            paths, base = [Path(self.settings.knowledge.docs_dir)], self.settings.base_dir
        return self.ingester.run(paths, base=base or self.settings.base_dir, progress=progress,
                                 on_progress=on_progress)

    def ensure_ingested(self) -> IngestReport | None:
        """Ingest the knowledge folder once when the index is still empty."""
        if not self.is_empty() or not self.settings.knowledge.ingest_on_start:
            return None
        log.info("knowledge index is empty: ingesting %s", self.docs_dir())
        try:
            report = self.ingest(progress=False)
        except IndexError_ as exc:  # another replica is ingesting the shared index: it will publish for all
            log.warning("not ingesting at start: %s", exc)
            return None
        log.info("first ingest: %s", report.summary())
        return report


def build_knowledge(settings: Settings, embedder: Embedder | None = None, serving: bool = False) -> KnowledgeBase:
    """Wire the knowledge base from settings; pass an embedder to share or replace the model.

    `serving` is true for the service (many residents at once) and false for batch work (ingest.py).
    """
    ks = settings.knowledge
    layout = _layout(settings)
    store = ChromaVectors(layout.chroma_dir, ks.chroma_url, ks.collection)
    if embedder is None:
        embedder = LazyEmbedder(settings.embedding.model if settings.embedding.backend != "hashing" else "hashing-256",
                                lambda: build_embedder(settings.embedding, serving))
    index = KnowledgeIndex(layout, store, load_vectors=ks.dense_search == "exact")
    # the topic check compares meanings: the model-free hashing backend has none to compare, so it keeps only
    # the named-item check there
    min_topic = ks.min_topic if settings.embedding.backend != "hashing" else 0.0
    answerability = AnswerabilityParams(min_topic, ks.topic_match_weight, ks.check_named_items) \
        if min_topic > 0 or ks.check_named_items else None
    params = RetrievalParams(min_relevance=ks.min_relevance, answerability=answerability)
    retriever = HybridRetriever(index, embedder, params, top_k=ks.top_k)
    ingester = Ingester(layout, store, embedder, ks.chunk_chars, ks.chunk_overlap)
    return KnowledgeBase(settings, layout, store, embedder, index, retriever, ingester)


class LazyKnowledge:
    """A knowledge base opened on first use: the law texts, which admin commands and most processes never read
    (opening one opens its Chroma folder)."""

    def __init__(self, factory):
        self._factory = factory
        self._kb: KnowledgeBase | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        if self._kb is None:
            with self._lock:
                if self._kb is None:
                    self._kb = self._factory()
        return getattr(self._kb, name)


def _layout(settings: Settings) -> IndexLayout:
    """This machine's index folder; with [cluster] shared_index, its copy of the index every replica shares."""
    root = settings.resolve(settings.knowledge.index_dir)
    if not settings.cluster.shared_index:
        return IndexLayout(root)
    if not settings.knowledge.chroma_url:
        raise ConfigError("[cluster] shared_index needs knowledge.chroma_url: the replicas' vectors live on one "
                          "Chroma server")
    from sqlalchemy.orm import sessionmaker

    from bot.retrieval.shared_layout import SharedIndexLayout
    from bot.storage.db import make_engine
    from bot.storage.migrate import upgrade

    db = settings.database
    # a pointer read every two seconds and an ingest's writes: three connections at most (README: the budget)
    engine = make_engine(db.url, settings.base_dir, db.busy_timeout_seconds, pool_size=1, max_overflow=2)
    upgrade(engine)  # ingest.py may run before the service ever started on this database
    return SharedIndexLayout(root, sessionmaker(engine, expire_on_commit=False), settings.knowledge.collection)


def build_laws(settings: Settings, embedder: Embedder) -> KnowledgeBase:
    """The law texts suggested to mediators: a knowledge base of its own (folder, index, collection), same model.

    Suggestions for a worker to read, not answers to a resident: no answerability check, a lower bar.
    """
    cw = settings.casework
    knowledge = settings.knowledge.model_copy(update={
        "docs_dir": cw.laws_dir, "index_dir": cw.laws_index_dir, "collection": cw.laws_collection,
        "min_relevance": min(settings.knowledge.min_relevance, 0.3), "min_topic": 0.0, "check_named_items": False,
        "top_k": 3, "chunk_chars": 200, "chunk_overlap": 0})  # an article a passage, cited by its number
    return build_knowledge(settings.model_copy(update={"knowledge": knowledge}), embedder)


@dataclass
class Service:
    """The whole application, wired: what channels and commands need."""

    settings: Settings
    knowledge: KnowledgeBase
    engine: object
    sessions: object
    dialogues: object
    outbox: object
    store: object
    desk: object
    staff: object
    conversation: object
    watch: object
    categorizer: object
    console_auth: object = None
    kb_admin: object = None
    kb_chat: object = None
    intent_feedback: object = None
    metrics: object = None
    answer_log: object = None
    curated: object = None
    roster: object = None
    intake: object = None
    register: object = None
    mediation: object = None
    laws: object = None


def build_service(settings: Settings, embedder: Embedder | None = None, clock=None,
                  intent_model=None) -> Service:
    """Wire every component from settings; the one place that picks concrete classes."""
    from datetime import timedelta

    from sqlalchemy.orm import sessionmaker

    from bot.core.conversation import Conversation
    from bot.core.durable import DurableConversation
    from bot.core.intake import Intake
    from bot.core.intents import IntentClassifier
    from bot.storage.db import is_outage, make_engine
    from bot.metrics import MeteredConversation, ServiceMetrics, StateCollector
    from bot.storage.journal import FileJournal
    from bot.storage.dialogue import SqlDialogueStore
    from bot.storage.answer_log import SqlAnswerLog
    from bot.storage.curated import SqlCuratedAnswers
    from bot.storage.intent_feedback import SqlIntentFeedback
    from bot.storage.migrate import upgrade
    from bot.storage.jobs import SqlJobs
    from bot.storage.outbox import SqlOutbox
    from bot.tickets.categories import CategoryClassifier, load_categories
    from bot.tickets.desk import ResidentDesk
    from bot.casework.mediation import MediationDesk
    from bot.storage.resident_locks import resident_locks
    from bot.casework.register import VisitRegister
    from bot.tickets.duty import DutyBoard, DutyRoster
    from bot.tickets.notifications import TicketNotifications
    from bot.tickets.organisation import PlaceResolver, load_organisation
    from bot.tickets.scheduler import DeadlineWatch
    from bot.tickets.sla import SlaPolicy, utcnow
    from bot.tickets.staff import StaffChat, StaffDirectory
    from bot.tickets.store import TicketStore

    knowledge = build_knowledge(settings, embedder, serving=True)
    db = settings.database
    engine = make_engine(db.url, settings.base_dir, db.busy_timeout_seconds, db.pool_size, db.max_overflow)
    upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    dialogues = SqlDialogueStore(sessions)
    outbox = SqlOutbox(sessions)
    ts = settings.tickets
    org = load_organisation(settings.resolve(ts.organisation_file))
    sla = SlaPolicy(dict(ts.dispatch_hours), dict(ts.feedback_hours), ts.remind_before_minutes,
                    dict(ts.dispatch_working_days), dict(ts.feedback_working_days))
    store = TicketStore(sessions, org, sla, clock=clock or utcnow)
    TicketNotifications(store, outbox, dialogues).attach()
    desk = ResidentDesk(store)
    directory = StaffDirectory(store)
    categorizer = CategoryClassifier(load_categories(settings.resolve(ts.categories_file)), knowledge.embedder)
    places = PlaceResolver(org)
    intake = Intake(desk, places, categorizer)
    roster = DutyRoster(sessions, org, clock=store.clock, audit=directory.audit)
    if intent_model is None:
        intent_model = build_intent_model(settings, knowledge.embedder)
    writer = None
    if settings.llm.provider != "none":
        from bot.llm import build_writer

        writer = build_writer(settings.llm)
    band = (settings.intents.unsure_low, settings.intents.unsure_high)
    from bot.console.auth import ConsoleAuth
    from bot.console.chat import ConsoleLinkCommand, KnowledgeChatAdmin, StaffCommandChain, console_base_url
    from bot.console.kb_admin import KbAdmin

    console_auth = ConsoleAuth(sessions, settings.console, clock=store.clock)
    kb_admin = KbAdmin(knowledge, settings.console.max_upload_mb, board=SqlJobs(sessions))
    kb_chat = KnowledgeChatAdmin(kb_admin, directory)
    from bot.core.walk_in import read_note

    staff_commands = StaffCommandChain(StaffChat(directory, lambda note: read_note(intake, note)),
                                       ConsoleLinkCommand(console_auth, directory, console_base_url(settings)), kb_chat)
    intent_feedback = SqlIntentFeedback(sessions, timedelta(days=ts.retention_days), clock=store.clock)
    answer_log = SqlAnswerLog(sessions, timedelta(days=ts.retention_days), clock=store.clock)
    curated = SqlCuratedAnswers(sessions, knowledge.embedder.embed, settings.knowledge.curated_min_similarity,
                                clock=store.clock)
    core = Conversation(IntentClassifier(intent_model, band), knowledge.retriever, dialogues, intake, desk,
                        dict(settings.emergency.numbers), staff=staff_commands, writer=writer,
                        feedback=intent_feedback, answers=answer_log, curated=curated,
                        duty=DutyBoard(roster, places), locks=resident_locks(engine, settings.web.max_in_flight + 4))
    metrics = ServiceMetrics()
    conversation = MeteredConversation(
        DurableConversation(core, FileJournal(settings.resolve(settings.database.journal_dir)), outbox, is_outage),
        metrics)
    watch = DeadlineWatch(store, timedelta(minutes=ts.remind_before_minutes), timedelta(days=ts.auto_close_days),
                          timedelta(days=ts.retention_days))
    watch.erasers.append(intent_feedback.erase_before)
    watch.erasers.append(answer_log.erase_before)
    cw = settings.casework
    register = VisitRegister(sessions, org, clock=store.clock, intervals=cw.visit_interval_days, notifier=outbox)
    mediation = MediationDesk(sessions, org, clock=store.clock, followup_days=cw.followup_days, notifier=outbox)
    watch.reminders += [register.remind_due, mediation.remind_followups]
    store.listeners.append(lambda ticket_id, action, actor: mediation.on_ticket(ticket_id, action, actor, store))
    watch.erasers += [register.erase_before, mediation.erase_before]
    service = Service(settings, knowledge, engine, sessions, dialogues, outbox, store, desk, directory, conversation,
                      watch, categorizer, console_auth=console_auth, kb_admin=kb_admin, kb_chat=kb_chat,
                      intent_feedback=intent_feedback, metrics=metrics, answer_log=answer_log, curated=curated,
                      roster=roster, intake=intake, register=register, mediation=mediation,
                      laws=LazyKnowledge(lambda: build_laws(settings, knowledge.embedder)))
    metrics.registry.register(StateCollector(service))
    return service


def build_intent_model(settings: Settings, embedder: Embedder):
    """The question-vs-request model chosen in [intents]; training takes seconds (embeddings are cached)."""
    from bot.nlu.keywords import KeywordModel

    if settings.intents.model == "keywords":
        return KeywordModel()
    from bot.nlu.learned import OWN_EXAMPLES, LearnedModel

    extra = [settings.resolve(p) for p in settings.intents.extra_examples]
    cache = settings.resolve(settings.knowledge.index_dir).parent / "cache"
    return LearnedModel.from_files([OWN_EXAMPLES, *extra], embedder, cache)
