"""The ticket lifecycle table: which action leads where, and what is refused."""

from __future__ import annotations

import re

import pytest

from bot.tickets.lifecycle import STATUS_LABELS, TRANSITIONS, TransitionError, target

ALLOWED = [
    ("assign", "new", "assigned"),
    ("assign", "assigned", "assigned"),  # re-dispatch to another worker
    ("accept", "assigned", "accepted"),
    ("resolve", "accepted", "resolved"),
    ("hand_back", "assigned", "new"),
    ("hand_back", "accepted", "new"),
    ("close", "resolved", "closed"),
    ("reopen", "resolved", "assigned"),
    ("reopen", "closed", "assigned"),
    ("cancel", "new", "cancelled"),
    ("cancel", "assigned", "cancelled"),
    ("cancel", "accepted", "cancelled"),
    ("merge", "new", "merged"),
    ("merge", "assigned", "merged"),
    ("take", "new", "assigned"),  # a worker takes a waiting ticket of their grid
    ("dismiss", "new", "cancelled"),  # a supervisor closes a duplicate or invalid ticket
    ("dismiss", "assigned", "cancelled"),
    ("dismiss", "accepted", "cancelled"),
]
ALLOWED_PAIRS = {(action, current) for action, current, _ in ALLOWED}
REFUSED = [(action, state) for action in TRANSITIONS for state in STATUS_LABELS if (action, state) not in ALLOWED_PAIRS]


@pytest.mark.parametrize("action, current, expected", ALLOWED)
def test_an_allowed_action_leads_to_its_state(action, current, expected):
    assert target(action, current) == expected


@pytest.mark.parametrize("action, current", REFUSED)
def test_every_other_action_is_refused_with_a_chinese_message(action, current):
    with pytest.raises(TransitionError) as refused:
        target(action, current)

    assert re.search(r"[\u4e00-\u9fff]", str(refused.value))
    assert STATUS_LABELS[current] in str(refused.value)


def test_the_table_has_exactly_the_documented_transitions():
    table = {(action, state) for action, rule in TRANSITIONS.items() for allowed in rule.values() for state in allowed}

    assert table == ALLOWED_PAIRS


def test_resolving_an_unaccepted_ticket_names_both_the_state_and_the_action():
    with pytest.raises(TransitionError, match="已派单.*办结反馈"):
        target("resolve", "assigned")


def test_closed_cancelled_and_merged_tickets_accept_nothing_but_a_reopen_of_closed():
    for final in ("cancelled", "merged"):
        assert all((action, final) not in ALLOWED_PAIRS for action in TRANSITIONS)
    assert [action for action in TRANSITIONS if (action, "closed") in ALLOWED_PAIRS] == ["reopen"]


def test_an_unknown_action_is_refused():
    with pytest.raises(TransitionError, match="未知操作"):
        target("teleport", "new")
