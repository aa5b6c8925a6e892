"""bench/fusion.py: the fusion is chosen on the other folds and must serve formal and colloquial questions alike."""

from __future__ import annotations

import numpy as np

from bench.fusion import Signals, cross_validate, folds_of


def question(gold_by: str) -> Signals:
    """Two candidates; the gold one (first) leads in one half and trails a little in the other."""
    zd, zb = (np.array([2.0, 1.0]), np.array([0.5, 1.0])) if gold_by == "dense" else \
        (np.array([0.5, 1.0]), np.array([2.0, 1.0]))
    rank = lambda z: np.argsort(np.argsort(-z)) + 1  # noqa: E731
    return Signals(zd=zd, zb=zb, rank_d=rank(zd), rank_b=rank(zb), match=1.0,
                   gold=np.array([True, False]), answer=np.array([True, False]))


def test_folds_split_every_question_into_exactly_one_fold():
    parts = folds_of(23, 5)

    assert sorted(np.concatenate(parts).tolist()) == list(range(23))
    assert all(4 <= len(p) <= 5 for p in parts)


def test_a_setting_good_for_one_kind_only_loses_to_one_that_serves_both():
    sets = {"formal": [question("bm25") for _ in range(10)], "colloquial": [question("dense") for _ in range(10)]}
    settings = [("dense",), ("bm25",), ("fixed", 0.5)]

    cv, chosen = cross_validate(sets, settings, k=5)

    assert chosen == [("fixed", 0.5)] * 5
    assert cv["formal"]["MRR@10"] == cv["colloquial"]["MRR@10"] == 1.0


def test_the_held_out_fold_is_scored_with_the_choice_of_the_others():
    # one kind of question only: dense wins on every training split, and a held-out bm25 question pays for it
    questions = [question("dense") for _ in range(9)] + [question("bm25")]
    cv, chosen = cross_validate({"formal": questions}, [("dense",), ("bm25",)], k=5)

    assert chosen == [("dense",)] * 5
    assert cv["formal"]["MRR@10"] < 1.0
