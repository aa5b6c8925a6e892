"""Ticket states and the transitions allowed between them.

    new ──assign──▶ assigned ──accept──▶ accepted ──resolve──▶ resolved ──close──▶ closed
     ▲                │  ▲                  │                     │
     └───hand back────┘  └──── reopen ──────┴─────────────────────┘ (rating ≤ 2 / 没解决)
    new/assigned/accepted ──cancel──▶ cancelled;  new/assigned ──merge──▶ merged
    new/assigned/accepted ──dismiss──▶ cancelled (a supervisor closes a duplicate or invalid ticket, with a reason)
    new ──take──▶ assigned (a worker takes an unassigned ticket of their own grid)
"""

from __future__ import annotations

from bot.core.ports import DESK_CHANNEL  # noqa: F401 - re-exported for the ticket layer
from bot.errors import BotError

STATUS_LABELS = {"new": "待派单", "assigned": "已派单", "accepted": "处理中", "resolved": "已处理待确认",
                 "closed": "已办结", "cancelled": "已关闭", "merged": "已合并"}
OPEN_STATES = ("new", "assigned", "accepted", "resolved")
# how a report came in; a worker files all but the first for a resident who came, called or was visited
SOURCE_LABELS = {"chat": "线上", "window": "窗口", "phone": "电话", "visit": "走访"}

TRANSITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # action: to-state <- allowed from-states
    "assign": {"assigned": ("new", "assigned")},
    "take": {"assigned": ("new",)},
    "accept": {"accepted": ("assigned",)},
    "resolve": {"resolved": ("accepted",)},
    "hand_back": {"new": ("assigned", "accepted")},
    "close": {"closed": ("resolved",)},
    "reopen": {"assigned": ("resolved", "closed")},
    "cancel": {"cancelled": ("new", "assigned", "accepted")},
    "merge": {"merged": ("new", "assigned")},
    "dismiss": {"cancelled": ("new", "assigned", "accepted")},
}


class TransitionError(BotError):
    """An action that the ticket's current state does not allow."""


class TicketNotFound(BotError):
    """No ticket with that id (or not visible to the caller)."""


class PermissionDenied(BotError):
    """The caller's role does not allow this action on this ticket."""


def target(action: str, current: str) -> str:
    """The state an action leads to from the current one; TransitionError if not allowed."""
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise TransitionError(f"未知操作 {action}")
    (to_state, allowed), = rule.items()
    if current not in allowed:
        raise TransitionError(
            f"工单当前状态为“{STATUS_LABELS.get(current, current)}”，不能执行“{ACTION_LABELS.get(action, action)}”。"
        )
    return to_state


ACTION_LABELS = {"assign": "派单", "accept": "接单", "resolve": "办结反馈", "hand_back": "退回", "close": "办结",
                 "reopen": "重新打开", "cancel": "取消", "merge": "合并",
                 "take": "网格员接单", "dismiss": "关闭（重复/无效）"}
DISMISS_REASONS = {"duplicate": "重复工单", "invalid": "无效工单"}
