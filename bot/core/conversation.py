"""The conversation: one Incoming in, a list of Replies out, the same on every channel."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol, Sequence

from bot.core import texts
from bot.core.answer import compose
from bot.core.dialogue import DialogueState, IntakeDraft
from bot.core.district_time import DISTRICT_ZONE
from bot.core.intake import ASK_WHAT, Intake
from bot.core.intents import (ABOUT, COMMAND, DISPUTE, EMERGENCY, FOLLOWUP, GREETING, QUESTION, REQUEST, THANKS,
                              UNSURE, IntentClassifier)
from bot.core.reading import (after_cancel, asks_for_action, asks_who_is_on_duty, asks_why_phone, asks_will_you_act,
                              declines_phone, is_cancel, landline_only, looks_like_question, read_correction,
                              wants_confidentiality)
from bot.core.locks import KeyedLocks
from bot.core.messages import Button, Citation, Incoming, Reply
from bot.core.ports import (PUBLIC, STAFF, AnswerLog, AnswerWriter, CuratedAnswers, DialogueStore, DutyBoard,
                            IntentFeedback, Retriever, TicketDesk)
from bot.core.privacy import find_phone, mask
from bot.errors import BotError, IndexUnavailable

log = logging.getLogger(__name__)

HANDOFF_LABEL = "转给工作人员"
JUST_ASKING_LABEL = "只是咨询，不用派单"
# Below this probability of "request", a message in question form is answered when the documents answer
# it ("暖气不热自己在家能先查点啥"); above it, it is a report put as a question ("楼上漏水了怎么办").
QUESTION_FORM_OUTWEIGHS = 0.8
EXPIRED = "这个按钮已经过期了，请重新操作。"

MAX_TEXT = 2000  # longer messages are handled by their beginning; the rest is kept in the ticket text
_FOLLOW_UP_START = re.compile(r"^(那|那么|那个|它|这个|这|还有|另外|还要|还需要|需要|要|在哪|去哪|哪里|什么时候|多少|怎么|可以|能)")
# a question about "it" that names no subject: the hours or the price of what was just discussed
_ELLIPTIC = re.compile(r"(开|营业|上班|办公|关门|开放)到几点|几点(开|关|营业|上班|下班|开放)|(开不开|开门吗|关门吗)|"
                       r"(要|得)?(多少钱|收费吗|花钱吗|免费吗)$")
_STATUS_LABELS = {"new": "待派单", "assigned": "已派给网格员", "accepted": "网格员已联系处理中", "resolved": "已处理待您确认",
                  "closed": "已办结", "cancelled": "已关闭", "merged": "已合并"}


class StaffCommands(Protocol):
    def handle(self, incoming: Incoming, state: DialogueState) -> list[Reply] | None:
        """Replies for a staff command or button, or None when the message is not one."""
        ...

    def is_staff(self, channel: str, user_id: str) -> bool:
        """Whether this chat account is an active worker, supervisor or admin (who may read staff documents)."""
        ...


class Conversation:
    def __init__(self, classifier: IntentClassifier, retriever: Retriever, dialogues: DialogueStore,
                 intake: Intake, desk: TicketDesk, emergency_numbers: dict[str, str],
                 staff: StaffCommands | None = None, writer: AnswerWriter | None = None,
                 feedback: IntentFeedback | None = None, answers: AnswerLog | None = None,
                 curated: CuratedAnswers | None = None, duty: DutyBoard | None = None, locks=None):
        self.classifier = classifier
        self.retriever = retriever
        self.dialogues = dialogues
        self.intake = intake
        self.desk = desk
        self.emergency_numbers = emergency_numbers
        self.staff = staff
        self.writer = writer
        self.feedback = feedback
        self.answers = answers
        self.curated = curated
        self.duty = duty
        # one message of a resident at a time: in this process, or across replicas (storage/resident_locks.py)
        self._locks = locks or KeyedLocks()

    def handle(self, incoming: Incoming) -> list[Reply]:
        """Answer one message; dialogue state is loaded and saved around it.

        Messages of one user are handled one at a time (two browser tabs must not
        overwrite each other's dialogue state); different users run in parallel.
        """
        incoming = _sanitised(incoming)
        with self._locks.hold((incoming.channel, incoming.user_id)):
            state = self.dialogues.load(incoming.channel, incoming.user_id)
            state.audience = self._audience(incoming)
            replies = self._dispatch(incoming, state)
            self.dialogues.save(state)
        log.info("%s/%s %s -> %s", incoming.channel, incoming.user_id, incoming.kind,
                 ",".join(r.intent or "-" for r in replies))
        return replies

    def _audience(self, incoming: Incoming) -> str:
        """STAFF for a worker's own chat account, PUBLIC for everyone else (and when it cannot be told)."""
        if self.staff is None:
            return PUBLIC
        try:
            return STAFF if self.staff.is_staff(incoming.channel, incoming.user_id) else PUBLIC
        except Exception:  # noqa: BLE001 - unsure means resident: staff documents stay closed
            log.exception("staff lookup failed")
            return PUBLIC

    def offline_replies(self, incoming: Incoming) -> list[Reply]:
        """What can be said without storage while the message waits in the journal: the emergency numbers."""
        text = (_sanitised(incoming).text or "").strip()[:MAX_TEXT]
        if text and not incoming.button and self.classifier.classify(text).intent == EMERGENCY:
            return [Reply(texts.emergency(self.emergency_numbers), intent=EMERGENCY)]
        return []

    def _dispatch(self, incoming: Incoming, state: DialogueState) -> list[Reply]:
        if self.staff is not None:
            staff_replies = self.staff.handle(incoming, state)
            if staff_replies is not None:
                return staff_replies
        if incoming.kind in ("sticker", "voice", "video", "file", "other"):
            return [Reply(texts.UNSUPPORTED, intent="unsupported")]
        text = (incoming.text or "").strip()
        prefix: list[Reply] = []
        if len(text) > MAX_TEXT:
            prefix.append(Reply(texts.TOO_LONG, intent="notice"))
            incoming = _replace_text(incoming, text[:MAX_TEXT])
            text = incoming.text
        if text.startswith("/"):
            return prefix + self._command(incoming, state, text)
        if incoming.button:
            return prefix + self._button(incoming, state)
        if state.intake is not None:
            return prefix + self._during_intake(incoming, state, text)
        if state.rating_ticket and text:
            rated = self._rating_text(incoming, state, text)
            if rated is not None:
                return prefix + rated
        if not text:
            if incoming.photos:
                return prefix + self._start_intake(incoming, state, REQUEST, notice=texts.PHOTO_WITHOUT_REPORT)
            if incoming.location is not None:
                return prefix + self._start_intake(incoming, state, REQUEST, notice=texts.LOCATION_WITHOUT_REPORT)
            return prefix + [Reply(texts.EMPTY, intent="empty")]
        return prefix + self._first_message(incoming, state, text)

    def _first_message(self, incoming: Incoming, state: DialogueState, text: str) -> list[Reply]:
        """A message outside any report: what is it for?"""
        if self.duty is not None and asks_who_is_on_duty(text):
            return self._duty(text)
        result = self.classifier.classify(text)
        log.debug("intent %s (%.2f) for %s", result.intent, result.confidence, mask(text[:80]))
        if wants_confidentiality(text) and len(text) <= 30 and result.intent != EMERGENCY:
            return [Reply(texts.CONFIDENTIAL + "需要反映什么问题，直接告诉我就行。", intent=QUESTION)]
        if result.intent in (QUESTION, UNSURE) and asks_for_action(text):
            # "能不能有人上门送饭", "楼上漏水到我家了怎么办": someone must act; 只是咨询 is one tap away
            return self._start_intake(incoming, state, REQUEST, guessed=True)
        if result.intent in (REQUEST, DISPUTE, UNSURE) and self._reads_as_question(text, result):
            # "老人家食堂晚上开门吗", "暖气不热自己在家能先查点啥": a question, though it names a person or a
            # problem. Answered from the documents, or "not covered"; either way its 转给工作人员 button
            # turns it into a report with one tap.
            return self._answer(text, state)
        match result.intent:
            case "emergency":
                return [Reply(texts.emergency(self.emergency_numbers), intent=EMERGENCY)] + \
                    self._start_intake(incoming, state, EMERGENCY)
            case "greeting":
                return [Reply(texts.GREETING, intent=GREETING)]
            case "thanks":
                return [Reply(texts.THANKS, intent=THANKS)]
            case "about":
                return [Reply(texts.ABOUT, intent=ABOUT)]
            case "followup":
                return self._my_tickets(incoming, FOLLOWUP)
            case "request" | "dispute":
                return self._start_intake(incoming, state, result.intent, guessed=True)
            case "unsure":
                state.pending_text = text
                return [Reply(texts.UNSURE, buttons=[Button("查政策", "choose:question"),
                                                      Button("反映问题", "choose:request")], intent=UNSURE)]
            case _:
                return self._answer(text, state)

    @staticmethod
    def _reads_as_question(text: str, result) -> bool:
        """Question form outweighs a weak guess of "request"; a confident one ("楼上漏水了怎么办") stays a report."""
        if not looks_like_question(text):
            return False
        return result.intent == UNSURE or result.p_request is None or result.p_request < QUESTION_FORM_OUTWEIGHS

    # -- a report being taken --------------------------------------------------
    def _during_intake(self, incoming: Incoming, state: DialogueState, text: str) -> list[Reply]:
        """Read each message of a report for what it is before using it as the answer asked for."""
        draft = state.intake
        if not text:  # a photo or a location
            state.intake, replies = self.intake.step(draft, incoming)
            return replies
        result = self.classifier.classify(text)
        if result.intent == EMERGENCY and draft.kind != EMERGENCY:
            state.intake = None  # an emergency outranks the report being typed
            return [Reply(texts.emergency(self.emergency_numbers), intent=EMERGENCY)] + \
                self._start_intake(incoming, state, EMERGENCY)
        if draft.asking == "phone" and declines_phone(text) and not find_phone(text):
            return self.intake.decline_phone(draft, incoming)  # "那算了不留了" gives up the phone, not the report
        if is_cancel(text):
            state.intake = None
            rest = after_cancel(text)
            if len(rest) >= 6 and looks_like_question(rest):  # "算了先不说这个，我想问问社区有没有…培训"
                return [Reply(texts.REPORT_CANCELLED, intent=draft.kind)] + self._answer(rest, state)
            return [Reply(texts.REPORT_CANCELLED, intent=draft.kind)]
        if wants_confidentiality(text) and not find_phone(text):
            return [Reply(texts.CONFIDENTIAL, intent=draft.kind), self.intake.reprompt(draft)]
        if result.intent == FOLLOWUP:
            return self._my_tickets(incoming, FOLLOWUP) + [self.intake.reprompt(draft)]
        if asks_will_you_act(text) and not self.intake.accepts(draft, text):
            return [Reply(texts.WILL_ACT, intent=draft.kind), self.intake.reprompt(draft)]
        correction = read_correction(text)
        if correction is not None and self._is_correction(draft, correction):
            replies = self.intake.correct(draft, correction, incoming)
            state.intake = None if draft.filed else draft
            return replies
        if asks_why_phone(text):
            return self.intake.explain_phone(draft) + ([self.intake.reprompt(draft)] if draft.asking != "phone" else [])
        if landline_only(text) and not find_phone(text):
            return self.intake.explain_phone(draft, landline=True)
        if declines_phone(text) and not find_phone(text):
            return self.intake.decline_phone(draft, incoming)
        if draft.asking in ("phone", "contact_time", "confirm") and self.intake.refines_place(draft, text):
            replies = self.intake.refine(draft, text, incoming)
            state.intake = None if draft.filed else draft
            return replies
        if draft.asking == "confirm" and self.intake.accepts(draft, text):
            state.intake = None
            return self.intake.confirm(draft, incoming)
        if self.intake.accepts(draft, text) and not (draft.asking == "description" and looks_like_question(text)):
            state.intake, replies = self.intake.step(draft, incoming)
            return replies
        if result.intent == ABOUT:
            return [Reply(texts.ABOUT, intent=ABOUT), self.intake.reprompt(draft)]
        if result.intent in (GREETING, THANKS):
            return [self.intake.reprompt(draft)]
        if self.duty is not None and asks_who_is_on_duty(text):
            return self._duty(text) + [self.intake.reprompt(draft)]  # "今天谁值班" while reporting: told, report kept
        if looks_like_question(text) or result.intent == QUESTION:
            # a question in the middle of a report: answer it, keep the report, ask again what it waits for
            return self._answer(text, state, handoff=False) + [self.intake.reprompt(draft)]
        state.intake, replies = self.intake.step(draft, incoming)
        return replies

    @staticmethod
    def _is_correction(draft: IntakeDraft, correction) -> bool:
        """A correction of something already given ("电话写错了"), not words of a first answer ("温度不对")."""
        if correction.slot is not None:
            return correction.slot != draft.asking or draft.asking == "confirm" or not correction.given \
                or bool(getattr(draft, correction.slot, ""))
        return correction.given and draft.asking in ("phone", "contact_time", "confirm", "place")

    def _duty(self, text: str) -> list[Reply]:
        """今日我当班: the hall's hours and today's duty staff of the community the resident names."""
        days = self.duty.today(text)
        return [Reply(texts.duty(days, many=len(days) > 5), intent=QUESTION)]

    # -- questions ---------------------------------------------------------
    def _answer(self, text: str, state: DialogueState, handoff: bool = True, not_covered: bool = True) -> list[Reply]:
        """Answer from the documents; "not covered" when they do not answer it (or [] if not_covered is False)."""
        query = question = text
        follow_up = bool(state.topic) and len(text) <= 20 and bool(_FOLLOW_UP_START.search(text))
        if follow_up:
            query = f"{text} {state.topic}"  # "那需要带什么材料?" asks about the document just discussed
            if self.writer is not None:
                rewritten = self._safely(self.writer.rewrite, text, state.topic, state.last_question)
                if rewritten:
                    query = question = rewritten
        curated = self._curated(question if question != text else query)
        if curated is not None:
            return self._curated_reply(state, question, curated, handoff)
        try:
            hits = list(self.retriever.search(query, audience=state.audience))
            if not hits and not follow_up and state.topic and (len(text) <= 12 or
                                                               (len(text) <= 30 and _ELLIPTIC.search(text))):
                # a short question that finds nothing alone ("几点开门", "周三晚上开到几点") is about the last topic
                follow_up = True
                hits = list(self.retriever.search(f"{text} {state.topic}", audience=state.audience))
        except IndexUnavailable:
            log.warning("knowledge index unavailable")
            return [Reply(texts.UNAVAILABLE, intent=QUESTION)]
        if follow_up and state.topic_source:
            # a follow-up is answered from the document just discussed when it has the answer
            same = [h for h in hits if h.source == state.topic_source]
            hits = same + [h for h in hits if h.source != state.topic_source]
        # what this answer's handoff button files: the resident's words, with the topic a follow-up leans on
        filed = question if question != text else (f"{state.topic}：{text}" if follow_up else text)
        buttons = [self._handoff_button(state, filed, answered=bool(hits))] if handoff else []
        if not hits:
            if not not_covered:
                return []
            state.topic = state.topic_source = ""
            self._log_answer((state.channel, state.user_id), question, [])
            return [Reply(texts.NOT_COVERED if handoff else texts.NOT_COVERED_BRIEF, buttons=buttons, intent=QUESTION)]
        if follow_up and state.topic_source:
            # the topic's title in the query matches every passage of its document alike, so the search
            # cannot rank them by the follow-up's own words: the composer reads all of them that were found,
            # each weighed alike
            answer = compose(question, hits, passages=max(3, len(same)), ranked=not same)
        else:
            answer = compose(question, hits)
        if follow_up and not answer.matched and self.writer is None:
            # "今天几号" after a question about grid workers: the topic found passages, none speaks of it
            state.topic = state.topic_source = ""
            if not not_covered:
                return []
            self._log_answer((state.channel, state.user_id), question, [])
            return [Reply(texts.NOT_COVERED if handoff else texts.NOT_COVERED_BRIEF, buttons=buttons, intent=QUESTION)]
        body = answer.text
        citations = answer.citations
        if self.writer is not None:
            written = self._safely(self.writer.write, question, hits, answer.text)
            if written:
                body = written
                citations = _citations(hits)
        cited = citations[0] if citations else None
        state.topic = cited.title if cited else hits[0].title
        state.topic_source = cited.source if cited else hits[0].source
        state.last_question = question
        internal = {h.source for h in hits if h.audience == STAFF}
        # a worker forwards answers to residents: a staff-only source says so where it is cited
        sources = "\n".join(f"来源：{c.label()}" + (texts.INTERNAL_SOURCE if c.source in internal else "")
                            for c in citations)
        entry = self._log_answer((state.channel, state.user_id), question, [c.title for c in citations])
        if entry is not None:
            buttons = [*buttons, Button("👍 有用", f"fb:up:{entry}"), Button("👎 没用", f"fb:down:{entry}")]
        # The question-or-request guess is wrong for about one message in ten: a report read as a question
        # must be one tap from becoming a ticket, not a retyped /report.
        return [Reply(f"{body}\n\n{sources}", buttons=buttons, citations=citations, intent=QUESTION)]

    def _curated(self, question: str):
        """An admin's curated answer to a question like this one; a failing lookup falls back to the documents."""
        if self.curated is None:
            return None
        try:
            return self.curated.match(question)
        except Exception:  # noqa: BLE001 - the documents still answer
            log.exception("curated answer lookup failed")
            return None

    def _curated_reply(self, state: DialogueState, question: str, curated, handoff: bool) -> list[Reply]:
        written = curated.written_at.astimezone(DISTRICT_ZONE).strftime("%Y-%m-%d")
        rests_on = f"，依据：{curated.source}" if curated.source else ""
        citation = Citation("工作人员答复", "", written, "")
        state.topic = state.topic_source = ""
        state.last_question = question
        buttons = [self._handoff_button(state, question, answered=True)] if handoff else []
        entry = self._log_answer((state.channel, state.user_id), question, [f"工作人员答复 #{curated.id}"])
        if entry is not None:
            buttons += [Button("👍 有用", f"fb:up:{entry}"), Button("👎 没用", f"fb:down:{entry}")]
        body = f"{curated.answer}\n\n来源：社区工作人员答复（{written}{rests_on}）"
        return [Reply(body, buttons=buttons, citations=[citation], intent=QUESTION)]

    def _log_answer(self, who: tuple[str, str], question: str, sources: list[str]) -> int | None:
        """Log the question and what it got; a log that fails never costs the resident the answer."""
        if self.answers is None:
            return None
        try:
            return self.answers.record(who[0], who[1], question, sources)
        except Exception:  # noqa: BLE001 - the answer matters more than its log line
            log.exception("answer log failed")
            return None

    def _vote(self, incoming: Incoming, state: DialogueState, argument: str) -> list[Reply]:
        """fb:up:<id>, fb:down:<id>, then fb:why:<id>:<reason> after a 👎."""
        vote, _, rest = argument.partition(":")
        entry_id, _, reason = rest.partition(":")
        if self.answers is None or vote not in ("up", "down", "why") or not entry_id.isdigit():
            return [Reply(EXPIRED, intent="feedback")]
        recorded = self.answers.vote(int(entry_id), incoming.channel, incoming.user_id,
                                     "down" if vote == "why" else vote, reason[:100] if vote == "why" else "")
        if not recorded:
            return [Reply(EXPIRED, intent="feedback")]
        if vote == "up":
            return [Reply("谢谢您的反馈！", intent="feedback")]
        if vote == "down":
            why = [Button(label, f"fb:why:{entry_id}:{label}") for label in FEEDBACK_REASONS]
            return [Reply("抱歉没能帮上忙。是哪里不好？（选一个，或直接接着问）", buttons=why, intent="feedback")]
        return [Reply("谢谢，已记下，工作人员会据此改进答复。需要人工答复可以点上面的“转给工作人员”。", intent="feedback")]

    def _handoff_button(self, state: DialogueState, text: str, answered: bool) -> Button:
        """A handoff button for this answer alone: an older answer's button files that answer's question."""
        return Button(HANDOFF_LABEL, f"handoff:{state.keep_handoff(text, answered)}")

    def _learn(self, incoming: Incoming, text: str, label: str, how: str) -> None:
        """Keep the resident's own answer to "question or request?" for a reviewer (storage/intent_feedback.py)."""
        if self.feedback is not None and text:
            try:
                self.feedback.record(incoming.channel, text, label, how)
            except Exception:  # a lost example must never cost the resident the reply
                log.exception("could not keep the resident's choice as an intent example")

    @staticmethod
    def _safely(fn, *args):
        """A writer that fails must never cost the resident the answer: fall back to the extractive one."""
        try:
            return fn(*args)
        except Exception:
            log.exception("answer writer failed; using the extractive answer")
            return None

    # -- requests ----------------------------------------------------------
    def _start_intake(self, incoming: Incoming, state: DialogueState, kind: str, notice: str = "",
                      guessed: bool = False) -> list[Reply]:
        """Begin a report; `guessed` when the classifier, not the resident, chose it: then the first
        question carries a way back to a plain answer, since a question read as a report is the other
        half of the classifier's mistakes."""
        state.pending_text = ""
        draft, replies = self.intake.start(incoming, kind=kind if kind in (REQUEST, DISPUTE, EMERGENCY) else REQUEST)
        state.intake = draft
        if guessed and replies and not draft.filed:
            draft.guessed = state.next_key()  # this report's button only
            last = replies[-1]
            replies = replies[:-1] + [replace(last, buttons=[*last.buttons,
                                                              Button(JUST_ASKING_LABEL, f"ask_instead:{draft.guessed}")])]
        if notice:
            replies = [Reply(notice, intent=kind)] + [r for r in replies if r.text != ASK_WHAT]
        elif kind == DISPUTE:
            replies = [Reply("邻里之间的矛盾，社区可以组织调解（矛盾调处）。我先帮您登记，网格员会联系双方。", intent=DISPUTE)] + replies
        if draft.filed or draft.asking is None:
            state.intake = None  # filed at once (emergency with everything known)
        return replies

    def _my_tickets(self, incoming: Incoming, intent: str) -> list[Reply]:
        tickets = self.desk.tickets_of(incoming.channel, incoming.user_id)
        if not tickets:
            return [Reply(texts.NO_TICKETS, intent=intent)]
        lines = ["您反映的问题："]
        for t in tickets[:10]:
            label = _STATUS_LABELS.get(t.status, t.status)
            lines.append(f"· {t.id} {t.category}：{t.summary[:30]} —— {label}")
            if t.resolution_note and t.status in ("resolved", "closed"):
                lines.append(f"  处理结果：{t.resolution_note[:80]}")
        return [Reply("\n".join(lines), intent=intent)]

    def _handoff(self, incoming: Incoming, state: DialogueState, key: str) -> list[Reply]:
        if state.intake is not None:  # an old answer's button must not throw away the report being typed
            return [Reply("您正在登记一个问题，请先把它提交或取消（/cancel），再转其他问题。", intent=REQUEST)]
        entry = state.handoffs.pop(key, None)
        if entry is None:
            return [Reply(EXPIRED, intent="button")]
        if entry.answered:
            self._learn(incoming, entry.text, REQUEST, "corrected")  # answered, yet they want someone to act
        return self._start_intake(_replace_text(incoming, entry.text, button=None), state, REQUEST)

    def _just_asking(self, incoming: Incoming, state: DialogueState, token: str) -> list[Reply]:
        """The resident undoes a report the bot started on its own guess: nothing is filed, the message answered."""
        draft = state.intake
        if draft is None:
            return [Reply("这次的登记已经结束了。想查政策，直接提问就行。", intent=QUESTION)]
        if not token or draft.guessed != token or not draft.description:
            # a button of an earlier report: the one being typed now stays
            return [Reply("这个按钮已经过期了。正在登记的问题还在，继续回答就行，或发送 /cancel 取消。", intent=REQUEST)]
        self._learn(incoming, draft.description, QUESTION, "corrected")
        state.intake = None
        return self._answer(draft.description, state)

    # -- buttons and commands ----------------------------------------------
    def _button(self, incoming: Incoming, state: DialogueState) -> list[Reply]:
        """Every resident button is "<kind>:<argument>"; one handler per kind (BUTTONS below)."""
        kind, _, argument = (incoming.button or "").partition(":")
        handler = _BUTTONS.get(kind)
        if handler is None:
            return [Reply(EXPIRED, intent="button")]
        return handler(self, incoming, state, argument)

    def _intake_button(self, incoming: Incoming, state: DialogueState, argument: str) -> list[Reply]:
        if state.intake is None:
            filed = self._just_filed(incoming) if argument == "confirm" else None
            if filed is not None:
                # the confirm again (a double tap, or a retry whose first answer was lost): the ticket it filed,
                # named in words only: a reply carries a ticket_id when it files one, and this one files nothing
                return [Reply(f"这份登记已经提交了，工单号 {filed.id}（{filed.status_label or filed.status}）。"
                              "发送 /my 可以随时查看进度。", intent=REQUEST)]
            return [Reply("这次的登记已经结束了。需要反映新问题，请直接描述或发送 /report。", intent=REQUEST)]
        if argument == "edit:description":
            state.intake.guessed = ""  # the new description is the resident's, not a guess of ours
        state.intake, replies = self.intake.step(state.intake, incoming)
        return replies

    def _just_filed(self, incoming: Incoming):
        """The resident's ticket filed in the last few minutes, if any (what a repeated confirm refers to)."""
        tickets = self.desk.tickets_of(incoming.channel, incoming.user_id)
        if not tickets:
            return None
        newest = max(tickets, key=lambda t: t.created_at)
        try:
            created = datetime.strptime(newest.created_at, "%Y-%m-%d %H:%M").replace(tzinfo=DISTRICT_ZONE)
        except ValueError:
            return None
        return newest if datetime.now(DISTRICT_ZONE) - created <= timedelta(minutes=10) else None

    def _choose_button(self, incoming: Incoming, state: DialogueState, argument: str) -> list[Reply]:
        text = state.pending_text
        state.pending_text = ""
        if not text:
            return [Reply("请再说一遍您的问题。", intent=UNSURE)]
        self._learn(incoming, text, REQUEST if argument == "request" else QUESTION, "chose")
        if argument == "request":
            return self._start_intake(_replace_text(incoming, text, button=None), state, REQUEST)
        return self._answer(text, state)

    def _command(self, incoming: Incoming, state: DialogueState, text: str) -> list[Reply]:
        command = text.split()[0].split("@")[0].lower()
        handler = _COMMANDS.get(command)
        if handler is None:
            return [Reply(f"不认识的命令 {command}。{texts.HELP}", intent=COMMAND)]
        return handler(self, incoming, state, text[len(text.split()[0]):].strip())

    def _start_command(self, incoming: Incoming, state: DialogueState, rest: str) -> list[Reply]:
        state.intake = None
        return [Reply(texts.WELCOME, intent=COMMAND)]

    def _help_command(self, incoming: Incoming, state: DialogueState, rest: str) -> list[Reply]:
        return [Reply(texts.HELP, intent=COMMAND)]

    def _report_command(self, incoming: Incoming, state: DialogueState, rest: str) -> list[Reply]:
        return self._start_intake(_replace_text(incoming, rest), state, REQUEST)

    def _my_command(self, incoming: Incoming, state: DialogueState, rest: str) -> list[Reply]:
        return self._my_tickets(incoming, COMMAND)

    def _cancel_command(self, incoming: Incoming, state: DialogueState, rest: str) -> list[Reply]:
        had = state.intake is not None or bool(state.pending_text)
        state.intake, state.pending_text = None, ""
        return [Reply(texts.CANCELLED if had else texts.NOTHING_TO_CANCEL, intent=COMMAND)]

    # -- ratings -------------------------------------------------------------
    def _rate(self, incoming: Incoming, state: DialogueState, argument: str) -> list[Reply]:
        """A rating button: "<ticket id>:<1-5 | no>"."""
        ticket_id, _, value = argument.partition(":")
        stars = 1 if value == "no" else int(value) if value.isdigit() else 0
        if not 1 <= stars <= 5:
            return [Reply("请选择1到5分。", intent="rating")]
        return self._apply_rating(incoming, state, ticket_id, stars, "没解决" if value == "no" else "")

    def _rating_text(self, incoming: Incoming, state: DialogueState, text: str) -> list[Reply] | None:
        digits = re.fullmatch(r"\s*([1-5])\s*分?\s*", text)
        if digits:
            return self._apply_rating(incoming, state, state.rating_ticket, int(digits.group(1)), "")
        if re.search(r"没(有)?解决|没修好|还是不行|还没好", text):
            return self._apply_rating(incoming, state, state.rating_ticket, 1, text)
        return None

    def _apply_rating(self, incoming, state, ticket_id, stars: int, comment: str) -> list[Reply]:
        state.rating_ticket = None
        try:
            info = self.desk.rate(ticket_id, incoming.channel, incoming.user_id, stars, comment)
        except BotError as exc:  # a stale or double-tapped rating button, or someone else's ticket
            return [Reply(str(exc), intent="rating")]
        if info.status == "closed":
            return [Reply(f"谢谢您的评价（{stars}分），工单 {info.id} 已办结。", intent="rating", ticket_id=info.id)]
        return [Reply(f"很抱歉问题没有解决好。工单 {info.id} 已重新打开，网格员会再次联系您。", intent="rating",
                      ticket_id=info.id)]


# One table each for the resident's buttons and commands: payload kind / command -> handler.
_BUTTONS = {
    "intake": Conversation._intake_button,
    "choose": Conversation._choose_button,
    "handoff": Conversation._handoff,
    "ask_instead": Conversation._just_asking,
    "rate": Conversation._rate,
    "fb": Conversation._vote,
}
FEEDBACK_REASONS = ("没回答我的问题", "内容过时", "看不懂")
_COMMANDS = {
    "/start": Conversation._start_command,
    "/help": Conversation._help_command,
    "/report": Conversation._report_command,
    "/my": Conversation._my_command,
    "/cancel": Conversation._cancel_command,
}


def _sanitised(incoming: Incoming) -> Incoming:
    """Text that cannot be stored (lone surrogates) and coordinates that are not numbers never reach the core."""
    text = incoming.text.encode("utf-8", "replace").decode("utf-8") if incoming.text else incoming.text
    location = incoming.location
    if location is not None and not (math.isfinite(location.latitude) and math.isfinite(location.longitude)
                                     and abs(location.latitude) <= 90 and abs(location.longitude) <= 180):
        location = None
    if text == incoming.text and location is incoming.location:
        return incoming
    return replace(incoming, text=text, location=location)


def _citations(hits) -> list[Citation]:
    seen, out = set(), []
    for hit in hits:
        if (hit.source, hit.section) not in seen:
            seen.add((hit.source, hit.section))
            out.append(Citation(hit.title, hit.section, hit.date, hit.source))
    return out


def _replace_text(incoming: Incoming, text: str, button: str | None | bool = False) -> Incoming:
    if button is False:
        return replace(incoming, text=text)
    return replace(incoming, text=text, button=button)


def rating_buttons(ticket_id: str) -> list[Button]:
    return [Button(f"{i}分", f"rate:{ticket_id}:{i}") for i in (5, 4, 3, 2, 1)] + [Button("没解决", f"rate:{ticket_id}:no")]


__all__ = ["Conversation", "StaffCommands", "rating_buttons", "Sequence"]
