"""Intake (智能采集): collect what a worker needs, confirm it, file the ticket.

Only what is missing is asked for: a first message like
"景村里3号楼2单元暖气不热，电话139…，晚上联系我" already gives the place, the
phone, the time and the category. An answer is checked against the slot it
answers (a place must look like a place, a phone must parse); a correction in
words changes the slot it names at any step. What a message *is* (a question, a
cancel, a status question) is decided by the conversation before it gets here
(core/conversation.py). The unfinished report is an IntakeDraft in the dialogue
state, so it survives restarts.
"""

from __future__ import annotations

import re
from dataclasses import asdict

from bot.core.dialogue import IntakeDraft
from bot.core.messages import Button, Incoming, Reply
from bot.core.ports import Categorizer, PlaceMatch, Places, TicketDesk, TicketDraft
from bot.core.privacy import find_phone, mask
from bot.core.reading import Correction, clauses, contact_time, looks_like_place

ASK_PLACE = "请告诉我具体位置（小区/楼号/单元/门牌号），也可以直接发送定位。"
ASK_PHONE = "请留一个联系电话，方便网格员联系您（只有负责的工作人员能看到）。"
ASK_TIME = "什么时间方便联系您？"
ASK_WHAT = "请简单说说遇到了什么问题？"
ASK_DETAIL = "请问是{place}几号楼？楼号不清楚的话，说个大概位置也行（例如“北门口”“3号楼和5号楼之间”）。"
NOT_A_PLACE = "没太看懂这个位置。请告诉我小区和楼号，例如“景村里3号楼2单元”，也可以直接发送定位。"
BAD_PHONE = ("这个号码好像不对，请输入11位手机号或带区号的固定电话，例如 13812345678 或 022-28001234。"
             "不方便留电话的话，回复“不留电话”也可以。")
WHY_PHONE = ("留电话是为了让负责的网格员上门前或处理时能直接联系您、核实情况；号码只有负责的工作人员能看到，"
             "不会公开。不方便的话也可以不留，网格员会通过这个对话回复您。")
NO_PHONE_OK = "好的，不留电话也可以。网格员会通过这个对话回复您，处理进度也会在这里通知您。"
LANDLINE_OK = "固定电话也可以，请带上区号，例如 022-28001234。"
USE_BUTTONS = "请确认下面的内容：没问题就点“确认提交”，要改哪一项直接告诉我（例如“电话改成139…”），或点“修改”“取消”。"
NO_PHONE_BUTTON = Button("不留电话", "intake:no_phone")

TIME_BUTTONS = [Button("随时都可以", "intake:time:随时"), Button("工作日白天", "intake:time:工作日白天"),
                Button("晚上", "intake:time:晚上")]
CONFIRM_BUTTONS = [Button("确认提交", "intake:confirm"), Button("修改", "intake:change"),
                   Button("取消", "intake:cancel")]
CHANGE_BUTTONS = [Button("问题描述", "intake:edit:description"), Button("位置", "intake:edit:place"),
                  Button("电话", "intake:edit:phone"), Button("联系时间", "intake:edit:contact_time")]
SLOT_NAMES = {"description": "问题", "place": "位置", "phone": "电话", "contact_time": "联系时间"}
_PROMPTS = {"description": ASK_WHAT, "place": ASK_PLACE, "phone": ASK_PHONE, "contact_time": ASK_TIME}
_SOME_DIGITS = re.compile(r"[0-9]|[零〇幺一二三四五六七八九]{3,}")  # a try at a number, typed or said in words
_CONFIRM_WORDS = ("确认", "提交", "没问题", "对的", "对", "是的", "是", "好的", "好", "可以", "行", "ok", "OK", "嗯", "确定")


class Intake:
    def __init__(self, desk: TicketDesk, places: Places, categorizer: Categorizer):
        self.desk = desk
        self.places = places
        self.categorizer = categorizer

    def start(self, incoming: Incoming, kind: str = "request") -> tuple[IntakeDraft, list[Reply]]:
        """Begin a report from the resident's first message."""
        draft = IntakeDraft(kind=kind)
        if incoming.text and not incoming.text.startswith("/"):
            self._absorb_text(draft, incoming.text)
        self._absorb_attachments(draft, incoming)
        if kind == "emergency":
            draft.sla_class = "emergency"
        return draft, self._next(draft, incoming)

    def step(self, draft: IntakeDraft, incoming: Incoming) -> tuple[IntakeDraft | None, list[Reply]]:
        """Take the resident's next message as an answer to what was asked; None once finished."""
        if incoming.button:
            return self._button(draft, incoming)
        self._absorb_attachments(draft, incoming)
        text = (incoming.text or "").strip()
        if text:
            problem = self._answer_slot(draft, text)
            if problem:
                return draft, [problem]
        replies = self._next(draft, incoming)
        return (None if draft.filed else draft), replies

    def accepts(self, draft: IntakeDraft, text: str) -> bool:
        """Whether the message reads as an answer to the slot being asked (else it is something else)."""
        text = text.strip()
        match draft.asking:
            case "place":
                return self.places.resolve(text) is not None or looks_like_place(text) or bool(find_phone(text))
            case "phone":
                return bool(find_phone(text)) or bool(_SOME_DIGITS.search(text))
            case "contact_time":
                return bool(contact_time(text, asked=True)) or bool(find_phone(text))
            case "confirm":
                return text.rstrip("。！!~～ ") in _CONFIRM_WORDS
            case "place_detail":
                return not find_phone(text) and len(text) <= 40
            case _:
                return True

    def reprompt(self, draft: IntakeDraft) -> Reply:
        """The question the report is waiting on, asked again after an interruption."""
        if draft.asking == "confirm":
            return Reply("刚才的登记还没提交。\n" + self.summary(draft), buttons=CONFIRM_BUTTONS, intent=draft.kind)
        if draft.asking == "change":
            return Reply("刚才的登记还没提交。想修改哪一项？", buttons=CHANGE_BUTTONS, intent=draft.kind)
        prompt = ASK_DETAIL.format(place=draft.place) if draft.asking == "place_detail" else \
            _PROMPTS.get(draft.asking or "", ASK_WHAT)
        buttons = TIME_BUTTONS if draft.asking == "contact_time" else [NO_PHONE_BUTTON] if draft.asking == "phone" else []
        return Reply(f"刚才的登记还没提交。{prompt}", buttons=buttons, intent=draft.kind)

    def correct(self, draft: IntakeDraft, correction: Correction, incoming: Incoming) -> list[Reply]:
        """Change the slot a correction in words names ("电话写错了，是137…"), then go on where the report was."""
        value = correction.value
        slot = correction.slot
        if slot is None:  # "不对，是5号楼" / "不对，139…" / "我说错了，是楼道的窗户关不上": the value tells which
            if find_phone(value):
                slot = "phone"
            elif self._place_of(_with_estate(value, draft.place)) is not None:
                slot = "place"
            elif draft.asking in ("confirm", "description") and len(value) >= 4:
                slot = "description"  # a new problem in words: "楼道的窗户" names where, but the clause is what
            else:
                slot = draft.asking if draft.asking in _PROMPTS else None
        if slot == "phone":
            phone = find_phone(value)
            if not phone:
                draft.phone, draft.no_phone, draft.asking = "", False, "phone"
                return [Reply("好的，请告诉我正确的电话号码。", buttons=[NO_PHONE_BUTTON], intent=draft.kind)]
            draft.phone, draft.no_phone = phone, False
        elif slot == "place":
            if not (self._place_of(value) or looks_like_place(value)):
                _put_place(draft, "")
                draft.asking = "place"
                return [Reply("好的，请告诉我正确的位置（小区/楼号/单元）。", intent=draft.kind)]
            self._set_place(draft, self._keep_building(_with_estate(value, draft.place), draft.place))
        elif slot == "description":
            if not correction.given or len(value) < 3:
                draft.description, draft.problems, draft.asking = "", [], "description"
                return [Reply("好的，请重新说说遇到了什么问题。", intent=draft.kind)]
            self._describe(draft, value)
        elif slot == "contact_time":
            found = contact_time(value, asked=True)
            if not found:
                draft.contact_time, draft.asking = "", "contact_time"
                return [Reply(ASK_TIME, buttons=TIME_BUTTONS, intent=draft.kind)]
            draft.contact_time = found
        else:
            return [Reply("想改哪一项？", buttons=CHANGE_BUTTONS, intent=draft.kind)]
        note = Reply(f"已更正{SLOT_NAMES[slot]}。", intent=draft.kind)
        return [note, *self._next(draft, incoming)]

    def decline_phone(self, draft: IntakeDraft, incoming: Incoming) -> list[Reply]:
        draft.phone, draft.no_phone = "", True
        if draft.asking == "phone":
            draft.asking = None
        return [Reply(NO_PHONE_OK, intent=draft.kind), *self._next(draft, incoming)]

    def explain_phone(self, draft: IntakeDraft, landline: bool = False) -> list[Reply]:
        text = LANDLINE_OK if landline else WHY_PHONE
        buttons = [NO_PHONE_BUTTON] if draft.asking == "phone" else []
        return [Reply(text, buttons=buttons, intent=draft.kind)]

    # -- slots -----------------------------------------------------------------------
    def _answer_slot(self, draft: IntakeDraft, text: str) -> Reply | None:
        """Use the message for the slot asked; a Reply when it does not fit that slot."""
        match draft.asking:
            case "description":
                self._describe(draft, text)
            case "place":
                if self._place_of(text) is None and not looks_like_place(text):
                    self._absorb_text(draft, text)
                    return None if draft.place else Reply(NOT_A_PLACE, intent=draft.kind)
                self._set_place(draft, text)
                self._absorb_text(draft, text)
            case "phone":
                phone = find_phone(text)
                if not phone and not _SOME_DIGITS.search(text):  # "好的，那帮我申请一下": no number yet
                    return Reply(ASK_PHONE, buttons=[NO_PHONE_BUTTON], intent=draft.kind)
                if not phone:
                    return Reply(BAD_PHONE, buttons=[NO_PHONE_BUTTON], intent=draft.kind)
                draft.phone, draft.no_phone = phone, False
                self._absorb_text(draft, text)
            case "contact_time":
                draft.contact_time = contact_time(text, asked=True) or text[:40]
            case "place_detail":
                if find_phone(text):  # the number came first: the building stays unknown, the worker will ask
                    self._absorb_text(draft, text)
                else:
                    self._refine_place(draft, text)
            case "confirm":
                return Reply(USE_BUTTONS, buttons=CONFIRM_BUTTONS, intent=draft.kind)
            case _:
                self._absorb_text(draft, text)
        return None

    def absorb(self, draft: IntakeDraft, text: str) -> None:
        """Fill every empty slot a text gives (a worker's note of a walk-in report is read the same way)."""
        self._absorb_text(draft, text)

    def _absorb_text(self, draft: IntakeDraft, text: str) -> None:
        """Fill every empty slot the message gives, whatever was asked."""
        if not draft.description:
            self._describe(draft, text.strip()[:1000])
        if not draft.place:
            match = self._place_of(text)
            if match:
                _put_place(draft, match.text, match)
        if not draft.phone:
            phone = find_phone(text) or ""
            if phone:
                draft.phone, draft.no_phone = phone, False
        if not draft.contact_time:
            draft.contact_time = contact_time(text, asked=False)

    def _absorb_attachments(self, draft: IntakeDraft, incoming: Incoming) -> None:
        for photo in incoming.photos:
            if photo not in draft.photos and len(draft.photos) < 9:
                draft.photos.append(photo)
        if incoming.location is not None and not draft.building_id:
            draft.lat, draft.lon = incoming.location.latitude, incoming.location.longitude
            match = self.places.resolve_location(incoming.location.latitude, incoming.location.longitude)
            if match:
                _put_place(draft, match.text, match)
            elif not draft.place:
                draft.place = incoming.location.label or \
                    f"定位 {incoming.location.latitude:.5f},{incoming.location.longitude:.5f}"

    def _place_of(self, text: str):
        return self.places.resolve(text)

    def _keep_building(self, value: str, previous: str) -> str:
        """"小区说错了，是景村东里" corrects the estate, not the building given before: 景村东里 + 3号楼."""
        match = self._place_of(value)
        building = re.search(r"\d+号楼.*$", previous or "")
        if match is not None and match.building_id is None and building and not re.search(r"\d", value):
            return match.text + building.group(0)
        return value

    def refines_place(self, draft: IntakeDraft, text: str) -> bool:
        """"具体是3号楼门口" said after an estate alone: more of the place, not an answer to the phone."""
        return bool(draft.place) and not find_phone(text) and looks_like_place(text) and \
            draft.building_id is None and not any(ch.isdigit() for ch in draft.place)

    def refine(self, draft: IntakeDraft, text: str, incoming: Incoming) -> list[Reply]:
        self._refine_place(draft, text)
        return [Reply(f"已补充位置：{draft.place}。", intent=draft.kind), *self._next(draft, incoming)]

    def _refine_place(self, draft: IntakeDraft, text: str) -> None:
        """Add the building or the spot to an estate given alone: 景村东里 + 3号楼门口."""
        text = re.sub(r"^(具体是在|具体是|具体在|就是在|就是|是在|具体|在|是)", "", text.strip())
        combined = text if draft.place in text else draft.place + text
        match = self._place_of(combined)
        if match and (match.building_id or not draft.building_id):
            community = match.community or draft.community
            # a spot the resolver does not keep ("北门口") stays in the resident's words
            _put_place(draft, match.text if match.building_id or match.text == combined else combined[:100], match)
            draft.community = community
        else:
            draft.place = combined[:100]

    def _set_place(self, draft: IntakeDraft, text: str) -> None:
        match = self._place_of(text)
        _put_place(draft, match.text if match else text[:100], match)

    def _describe(self, draft: IntakeDraft, text: str) -> None:
        """The problem in the resident's words; two distinct problems in one message are listed apart."""
        draft.description = text[:1000]
        if draft.kind == "emergency":
            draft.problems = []
            return
        match = self.categorizer.classify(text)
        draft.category, draft.sla_class = match.name, match.sla_class
        draft.problems = self._problems(text)

    def _problems(self, text: str) -> list[str]:
        """The clauses that name problems of different categories ("暖气不热，楼道里还堆了纸箱"); [] for one problem."""
        found: dict[str, str] = {}
        for clause in clauses(text):
            place = self._place_of(clause)
            if place is not None and len(clause.replace(place.text, "")) < 2:
                continue  # "景村里2号楼" alone is where, not what
            if find_phone(clause) or contact_time(clause, asked=True) or len(clause) < 5:
                continue  # "电话139…", "下午都能打", "吓着小孩了": how to reach them, or a remark
            match = self.categorizer.classify(clause)
            # only a clause that names its problem counts as another one: one that merely resembles a
            # category is usually what the first problem causes ("电梯坏了，老人下不了楼")
            if match.sharp and match.name not in found and match.name != "其他":
                found[match.name] = clause
        return list(found.values()) if len(found) >= 2 else []

    # -- buttons -----------------------------------------------------------------------
    def _button(self, draft: IntakeDraft, incoming: Incoming):
        payload = incoming.button or ""
        if payload == "intake:cancel":
            return None, [Reply("已取消，本次没有提交。需要时随时再找我。", intent="request")]
        if payload == "intake:change":
            draft.asking = "change"
            return draft, [Reply("想修改哪一项？", buttons=CHANGE_BUTTONS, intent="request")]
        if payload == "intake:no_phone":
            return draft, self.decline_phone(draft, incoming)
        if payload.startswith("intake:edit:"):
            slot = payload.removeprefix("intake:edit:")
            if slot in SLOT_NAMES:
                setattr(draft, slot, "")
                if slot == "phone":
                    draft.no_phone = False
                if slot == "description":
                    draft.problems = []
                draft.asking = slot
                buttons = TIME_BUTTONS if slot == "contact_time" else [NO_PHONE_BUTTON] if slot == "phone" else []
                return draft, [Reply(_PROMPTS[slot], buttons=buttons, intent="request")]
        if payload.startswith("intake:time:"):
            draft.contact_time = payload.removeprefix("intake:time:")
            replies = self._next(draft, incoming)
            return (None if draft.filed else draft), replies
        if payload == "intake:confirm" and draft.asking == "confirm":
            return None, self._file(draft, incoming)
        return draft, self._next(draft, incoming)

    def confirm(self, draft: IntakeDraft, incoming: Incoming) -> list[Reply]:
        """The resident confirms the summary in words ("对，提交吧")."""
        return self._file(draft, incoming)

    # -- the next question ----------------------------------------------------------
    def _next(self, draft: IntakeDraft, incoming: Incoming) -> list[Reply]:
        """Ask for the first missing piece, or show the summary for confirmation."""
        if not draft.description:
            draft.asking = "description"
            return [Reply(ASK_WHAT, intent=draft.kind)]
        if not draft.place:
            draft.asking = "place"
            return [Reply(ASK_PLACE, intent=draft.kind)]
        if self._estate_only(draft) and not draft.detail_asked and draft.kind != "emergency":
            draft.detail_asked, draft.asking = True, "place_detail"  # asked once: a worker needs the building
            return [Reply(ASK_DETAIL.format(place=draft.place), intent=draft.kind)]
        if not draft.has_contact():
            draft.asking = "phone"
            return [Reply(ASK_PHONE, buttons=[NO_PHONE_BUTTON], intent=draft.kind)]
        if draft.kind == "emergency":  # no confirmation round-trip when every minute counts
            draft.asking = None
            return self._file(draft, incoming)
        if not draft.contact_time and not draft.no_phone:
            draft.asking = "contact_time"
            return [Reply(ASK_TIME, buttons=TIME_BUTTONS, intent=draft.kind)]
        draft.asking = "confirm"
        return [Reply(self.summary(draft), buttons=CONFIRM_BUTTONS, intent=draft.kind)]

    @staticmethod
    def _estate_only(draft: IntakeDraft) -> bool:
        """A place that names a known estate but no building or spot ("景村东里")."""
        return bool(draft.community) and draft.building_id is None and draft.lat is None and \
            not any(ch.isdigit() for ch in draft.place) and len(draft.place) <= 8

    @staticmethod
    def summary(draft: IntakeDraft) -> str:
        lines = ["请确认要提交的内容："]
        if draft.category:
            lines.append(f"类别：{draft.category}")
        if draft.problems:
            lines.append(f"问题（{len(draft.problems)}件，登记在同一张工单里，网格员会逐件处理）：")
            lines += [f"  {i}. {p[:100]}" for i, p in enumerate(draft.problems, 1)]
            lines.append(f"原话：{draft.description[:200]}")
        else:
            lines.append(f"问题：{draft.description[:200]}")
        lines.append(f"位置：{draft.place}")
        # the resident's own number, shown back to them only
        lines.append(f"电话：{draft.phone}" if draft.phone else "电话：不留（网格员通过这个对话回复您）")
        if draft.contact_time:
            lines.append(f"联系时间：{draft.contact_time}")
        if draft.photos:
            lines.append(f"照片：{len(draft.photos)} 张")
        return "\n".join(lines)

    def _file(self, draft: IntakeDraft, incoming: Incoming) -> list[Reply]:
        description = draft.description
        if draft.problems:
            description = "；".join(f"{i}. {p}" for i, p in enumerate(draft.problems, 1)) + f"（原话：{draft.description}）"
        if draft.no_phone:
            description += "（居民未留电话，请通过原渠道回复）"
        ticket = TicketDraft(
            channel=incoming.channel, user_id=incoming.user_id, description=description[:2000],
            category=draft.category or ("紧急情况" if draft.kind == "emergency" else "其他"),
            sla_class=draft.sla_class, place=draft.place, building_id=draft.building_id,
            grid_id=draft.grid_id, community=draft.community or "", phone=draft.phone,
            contact_time=draft.contact_time, photos=list(draft.photos), latitude=draft.lat, longitude=draft.lon,
            urgent=draft.kind == "emergency", kind=draft.kind,
        )
        info = self.desk.file(ticket)
        draft.filed = info.id
        if info.linked:
            text = (f"您之前已经反映过这个问题（工单 {info.id}，当前状态：{info.status_label or info.status}），"
                    "这次的补充已经记到同一张工单里，不会重复派单。")
        elif draft.kind == "emergency":
            text = f"已生成紧急工单 {info.id}，已立即通知网格员和社区负责人。请保持电话畅通。"
        else:
            text = (f"已提交，工单号 {info.id}。我们会派给负责的网格员，并按时限联系您；"
                    "发送 /my 可以随时查看进度。")
        return [Reply(text, intent=draft.kind, ticket_id=info.id)]


def _put_place(draft: IntakeDraft, text: str, match: PlaceMatch | None = None) -> None:
    """The place in words, with the building, grid and community it resolved to (none when it did not)."""
    draft.place = text
    draft.building_id = match.building_id if match else None
    draft.grid_id = match.grid_id if match else None
    draft.community = match.community if match else ""


def _with_estate(value: str, previous: str) -> str:
    """"5号楼" corrects the building, not the estate: keep the estate of the place given before (景村里5号楼)."""
    estate = re.match(r"^[^\d一二三四五六七八九十]+", previous or "")
    if value[:1].isdigit() and estate and not re.match(r"^[^\d]+", value):
        return estate.group(0) + value
    return value


def describe_draft(draft: TicketDraft) -> str:
    """A log-safe one-line description of a draft (personal data masked)."""
    data = asdict(draft)
    return mask(f"{data['category']} @ {data['place']} ({data['sla_class']})")
