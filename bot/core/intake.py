"""Intake (智能采集): collect what a worker needs, confirm it, file the ticket.

Only what is missing is asked for: a first message like
"景村里3号楼2单元暖气不热" already gives the place and the category. The state
of an unfinished report lives in the dialogue state, so it survives restarts.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from bot.core.messages import Button, Incoming, Reply
from bot.core.ports import Categorizer, Places, TicketDesk, TicketDraft
from bot.core.privacy import find_phone, mask

ASK_PLACE = "请告诉我具体位置（小区/楼号/单元/门牌号），也可以直接发送定位。"
ASK_PHONE = "请留一个联系电话，方便网格员联系您（只有负责的工作人员能看到）。"
ASK_TIME = "什么时间方便联系您？"
ASK_WHAT = "请简单说说遇到了什么问题？"
_TIME = re.compile(r"随时|全天|上午|下午|中午|晚上|傍晚|白天|周末|工作日|\d{1,2}[点:：]\d{0,2}|早上|下班后|都可以|都行")
_PHONE_HINT = re.compile(r"\d{7,}")

TIME_BUTTONS = [Button("随时都可以", "intake:time:随时"), Button("工作日白天", "intake:time:工作日白天"),
                Button("晚上", "intake:time:晚上")]
CONFIRM_BUTTONS = [Button("确认提交", "intake:confirm"), Button("修改", "intake:change"),
                   Button("取消", "intake:cancel")]
CHANGE_BUTTONS = [Button("问题描述", "intake:edit:description"), Button("位置", "intake:edit:place"),
                  Button("电话", "intake:edit:phone"), Button("联系时间", "intake:edit:contact_time")]
SLOT_NAMES = {"description": "问题", "place": "位置", "phone": "电话", "contact_time": "联系时间"}


class Intake:
    def __init__(self, desk: TicketDesk, places: Places, categorizer: Categorizer):
        self.desk = desk
        self.places = places
        self.categorizer = categorizer

    def start(self, incoming: Incoming, kind: str = "request") -> tuple[dict[str, Any], list[Reply]]:
        """Begin a report from the resident's first message."""
        intake: dict[str, Any] = {"kind": kind, "description": "", "category": "", "sla_class": "general",
                                  "place": "", "building_id": None, "grid_id": None, "community": "", "phone": "",
                                  "contact_time": "", "photos": [], "lat": None, "lon": None, "asking": None}
        if incoming.text and not incoming.text.startswith("/"):
            self._absorb_text(intake, incoming.text, first=True)
        self._absorb_attachments(intake, incoming)
        if kind == "emergency":
            intake["sla_class"] = "emergency"
        return intake, self._next(intake, incoming)

    def step(self, intake: dict[str, Any], incoming: Incoming) -> tuple[dict[str, Any] | None, list[Reply]]:
        """Take the resident's next message; return the new intake state (None when finished)."""
        if incoming.button:
            return self._button(intake, incoming)
        self._absorb_attachments(intake, incoming)
        asking = intake.get("asking")
        text = incoming.text.strip()
        if text:
            if asking == "description":
                intake["description"] = text
                self._categorize(intake)
            elif asking == "place":
                self._set_place(intake, text)
            elif asking == "phone":
                phone = find_phone(text)
                if not phone:
                    return intake, [Reply("这个号码好像不对，请输入11位手机号或带区号的固定电话，例如 13812345678 或 022-28001234。",
                                          intent="request")]
                intake["phone"] = phone
            elif asking == "contact_time":
                intake["contact_time"] = text[:40]
            elif asking == "confirm":
                return intake, [Reply("请点击下面的按钮确认、修改或取消。", buttons=CONFIRM_BUTTONS, intent="request")]
            else:
                self._absorb_text(intake, text)
        replies = self._next(intake, incoming)
        return (None if intake.get("filed") else intake), replies

    def _button(self, intake, incoming):
        payload = incoming.button or ""
        if payload == "intake:cancel":
            return None, [Reply("已取消，本次没有提交。需要时随时再找我。", intent="request")]
        if payload == "intake:change":
            intake["asking"] = "change"
            return intake, [Reply("想修改哪一项？", buttons=CHANGE_BUTTONS, intent="request")]
        if payload.startswith("intake:edit:"):
            slot = payload.removeprefix("intake:edit:")
            if slot in SLOT_NAMES:
                intake[slot] = ""
                intake["asking"] = slot
                prompt = {"description": ASK_WHAT, "place": ASK_PLACE, "phone": ASK_PHONE, "contact_time": ASK_TIME}[slot]
                return intake, [Reply(prompt, buttons=TIME_BUTTONS if slot == "contact_time" else [], intent="request")]
        if payload.startswith("intake:time:"):
            intake["contact_time"] = payload.removeprefix("intake:time:")
            replies = self._next(intake, incoming)
            return (None if intake.get("filed") else intake), replies
        if payload == "intake:confirm" and intake.get("asking") == "confirm":
            return None, self._file(intake, incoming)
        return intake, self._next(intake, incoming)

    def _absorb_text(self, intake, text: str, first: bool = False) -> None:
        if not intake["description"]:
            intake["description"] = text.strip()[:1000]
            self._categorize(intake)
        if not intake["place"]:
            match = self.places.resolve(text)
            if match:
                intake.update(place=match.text, building_id=match.building_id, grid_id=match.grid_id,
                              community=match.community)
        if not intake["phone"]:
            intake["phone"] = find_phone(text) or ""
        if not intake["contact_time"] and not first:
            found = _TIME.search(text)
            if found:
                intake["contact_time"] = found.group(0)

    def _absorb_attachments(self, intake, incoming: Incoming) -> None:
        for photo in incoming.photos:
            if photo not in intake["photos"] and len(intake["photos"]) < 9:
                intake["photos"].append(photo)
        if incoming.location is not None and not intake["building_id"]:
            intake["lat"], intake["lon"] = incoming.location.latitude, incoming.location.longitude
            match = self.places.resolve_location(incoming.location.latitude, incoming.location.longitude)
            if match:
                intake.update(place=match.text, building_id=match.building_id, grid_id=match.grid_id,
                              community=match.community)
            elif not intake["place"]:
                intake["place"] = incoming.location.label or f"定位 {incoming.location.latitude:.5f},{incoming.location.longitude:.5f}"

    def _set_place(self, intake, text: str) -> None:
        match = self.places.resolve(text)
        if match:
            intake.update(place=match.text, building_id=match.building_id, grid_id=match.grid_id,
                              community=match.community)
        else:
            intake.update(place=text[:100], building_id=None, grid_id=None, community="")

    def _categorize(self, intake) -> None:
        if intake["kind"] == "emergency":
            return
        match = self.categorizer.classify(intake["description"])
        intake["category"], intake["sla_class"] = match.name, match.sla_class

    def _next(self, intake, incoming: Incoming) -> list[Reply]:
        """Ask for the first missing piece, or show the summary for confirmation."""
        emergency = intake["kind"] == "emergency"
        if not intake["description"]:
            intake["asking"] = "description"
            return [Reply(ASK_WHAT, intent=intake["kind"])]
        if not intake["place"]:
            intake["asking"] = "place"
            return [Reply(ASK_PLACE, intent=intake["kind"])]
        if not intake["phone"]:
            intake["asking"] = "phone"
            return [Reply(ASK_PHONE, intent=intake["kind"])]
        if emergency:  # no confirmation round-trip when every minute counts
            intake["asking"] = None
            return self._file(intake, incoming)
        if not intake["contact_time"]:
            intake["asking"] = "contact_time"
            return [Reply(ASK_TIME, buttons=TIME_BUTTONS, intent=intake["kind"])]
        intake["asking"] = "confirm"
        return [Reply(self.summary(intake), buttons=CONFIRM_BUTTONS, intent=intake["kind"])]

    @staticmethod
    def summary(intake) -> str:
        lines = ["请确认要提交的内容："]
        if intake.get("category"):
            lines.append(f"类别：{intake['category']}")
        lines.append(f"问题：{intake['description'][:200]}")
        lines.append(f"位置：{intake['place']}")
        lines.append(f"电话：{intake['phone']}")  # the resident's own number, shown back to them only
        lines.append(f"联系时间：{intake['contact_time']}")
        if intake["photos"]:
            lines.append(f"照片：{len(intake['photos'])} 张")
        return "\n".join(lines)

    def _file(self, intake, incoming: Incoming) -> list[Reply]:
        draft = TicketDraft(
            channel=incoming.channel, user_id=incoming.user_id, description=intake["description"],
            category=intake["category"] or ("紧急情况" if intake["kind"] == "emergency" else "其他"),
            sla_class=intake["sla_class"], place=intake["place"], building_id=intake["building_id"],
            grid_id=intake["grid_id"], community=intake.get("community") or "", phone=intake["phone"], contact_time=intake["contact_time"],
            photos=list(intake["photos"]), latitude=intake["lat"], longitude=intake["lon"],
            urgent=intake["kind"] == "emergency", kind=intake["kind"],
        )
        info = self.desk.file(draft)
        intake["filed"] = info.id
        if info.linked:
            text = (f"您之前已经反映过这个问题（工单 {info.id}，当前状态：{info.status_label or info.status}），"
                    "这次的补充已经记到同一张工单里，不会重复派单。")
        elif intake["kind"] == "emergency":
            text = f"已生成紧急工单 {info.id}，已立即通知网格员和社区负责人。请保持电话畅通。"
        else:
            text = (f"已提交，工单号 {info.id}。我们会派给负责的网格员，并按时限联系您；"
                    "发送 /my 可以随时查看进度。")
        return [Reply(text, intent=intake["kind"], ticket_id=info.id)]


def describe_draft(draft: TicketDraft) -> str:
    """A log-safe one-line description of a draft (personal data masked)."""
    data = asdict(draft)
    return mask(f"{data['category']} @ {data['place']} ({data['sla_class']})")
