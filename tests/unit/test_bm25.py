"""BM25 over jieba tokens: the passage that shares the query's words ranks first."""

from __future__ import annotations

import numpy as np
import pytest

from bot.retrieval.bm25 import BM25Index
from bot.retrieval.tokenize import tokenize

PASSAGES = [
    "年满60周岁、在本区居住的老年人都可以到老人家食堂就餐，80周岁以上每餐补贴4元。",
    "供暖期室温低于18度可以反映，网格员2小时内联系您，24小时内上门测温。",
    "持有残疾人证的重度残疾人每户每年冬季取暖补贴600元，10月15日前到社区服务站申请。",
    "楼道和消防通道不得堆放杂物，电动自行车不得在楼道内充电。",
    "邻里纠纷可以找社区人民调解委员会，调解不收费。",
]


@pytest.fixture(scope="module")
def index() -> BM25Index:
    return BM25Index.build([tokenize(p) for p in PASSAGES])


@pytest.mark.parametrize("query, expected", [
    ("老人食堂吃饭有补贴吗", 0),
    ("家里暖气不热，室温才15度", 1),
    ("残疾人取暖补贴怎么申请", 2),
    ("电动车能在楼道充电不", 3),
    ("跟楼上邻居闹纠纷了找谁调解", 4),
])
def test_query_sharing_words_with_a_passage_ranks_it_first(index, query, expected):
    scores = index.scores(tokenize(query))

    assert int(np.argmax(scores)) == expected
    assert scores[expected] > 0


def test_query_of_unknown_words_scores_zero_everywhere(index):
    scores = index.scores(tokenize("量子计算机区块链"))

    assert scores.shape == (len(PASSAGES),)
    assert not scores.any()


def test_empty_query_scores_zero_everywhere(index):
    assert not index.scores([]).any()


def test_a_repeated_query_word_weighs_more(index):
    once = index.scores(["补贴"])
    twice = index.scores(["补贴", "补贴"])

    assert np.allclose(twice, 2 * once)


def test_a_rare_word_outweighs_a_common_one(index):
    common = index.idf[index.vocabulary["补贴"]]  # in two passages
    rare = index.idf[index.vocabulary["充电"]]  # in one

    assert rare > common > 0


def test_a_passage_matching_every_query_word_scores_near_the_query_mass(index):
    tokens = tokenize("残疾人 取暖 补贴")
    scores = index.scores(tokens)
    mass = index.query_mass(tokens)
    assert scores.max() / mass > 0.7
    assert scores.min() / mass < 0.3


def test_unknown_query_words_raise_the_mass_so_matches_count_for_less(index):
    tokens = tokenize("残疾人 取暖 补贴")
    assert index.query_mass(tokens + ["区块链"]) > index.query_mass(tokens)
