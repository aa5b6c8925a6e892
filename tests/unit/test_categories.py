"""Categories from categories.toml, matched by their sharp keywords (the embedding half needs a model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.errors import ConfigError
from bot.tickets.categories import Category, CategoryClassifier, load_categories

CATEGORIES = Path(__file__).resolve().parents[2] / "categories.toml"


@pytest.fixture(scope="module")
def classifier() -> CategoryClassifier:
    return CategoryClassifier(load_categories(CATEGORIES))  # no embedder: keywords only


@pytest.mark.parametrize("text, category, sla_class", [
    ("暖气一点都不热，屋里才十四度", "供暖", "utility"),
    ("楼道堆了好多纸箱，老人下楼都绊脚", "楼道堆物", "general"),
    ("隔壁装修电钻从早响到晚", "噪音扰民", "general"),
    ("又停水了，啥时候来水啊", "供水", "utility"),
    ("楼下饭店的垃圾堆在门口臭死了", "环境卫生", "general"),
    ("老板拖欠工资三个月了", "就业服务", "complex"),
])
def test_a_keyword_in_the_message_picks_its_category(classifier, text, category, sla_class):
    match = classifier.classify(text)

    assert (match.name, match.sla_class) == (category, sla_class)


def test_a_message_with_no_keyword_and_no_model_falls_back_to_other(classifier):
    match = classifier.classify("你们能不能来看一下，这事我也说不清楚")

    assert (match.name, match.confidence) == ("其他", 0.0)


def test_the_sample_covers_every_category_the_issue_names():
    names = {c.name for c in load_categories(CATEGORIES)}

    assert {"供暖", "供水", "供电", "燃气", "排水", "电梯", "楼道堆物", "噪音扰民", "邻里纠纷", "物业管理", "环境卫生",
            "园林绿化", "路灯", "养老服务", "助残服务", "住房保障", "就业服务", "其他"} <= names


class OneHotEmbedder:
    """Embeds a text as the one-hot of the first listed word it contains: meaning without a model."""

    words = ("冷", "吵")
    name, dimension = "one-hot", 3

    def embed(self, texts):
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            rows[i, next((j for j, w in enumerate(self.words) if w in text), len(self.words))] = 1.0
        return rows


def test_without_a_keyword_the_nearest_examples_decide():
    categories = [Category("供暖", "屋里冷", "utility", "", ("暖气",), ("家里冷",)),
                  Category("噪音扰民", "太吵", "general", "", ("噪音",), ("楼下吵",)),
                  Category("其他", "", "general", "", (), ())]
    classifier = CategoryClassifier(categories, OneHotEmbedder())

    assert classifier.classify("屋里冷得像冰窖").name == "供暖"
    assert classifier.classify("晚上吵得睡不着").name == "噪音扰民"
    assert classifier.classify("说不清楚").name == "其他"


def test_keywords_of_two_categories_in_equal_number_are_decided_by_meaning():
    # 暖气 and 噪音 are both named once; the message is about the noise (吵)
    categories = [Category("供暖", "屋里冷", "utility", "", ("暖气",), ("家里冷",)),
                  Category("噪音扰民", "太吵", "general", "", ("噪音",), ("楼下吵",)),
                  Category("其他", "", "general", "", (), ())]
    classifier = CategoryClassifier(categories, OneHotEmbedder())

    assert classifier.classify("楼上暖气管敲得吵死了，噪音一晚上").name == "噪音扰民"
    assert classifier.classify("暖气不热，屋里冷，楼里还有噪音").name == "供暖"
    assert classifier.classify("暖气噪音暖气").name == "供暖"  # more keywords of one category still win


def test_a_match_by_keyword_is_sharp_and_one_by_meaning_alone_is_not():
    categories = [Category("供暖", "屋里冷", "utility", "", ("暖气",), ("家里冷",)),
                  Category("噪音扰民", "太吵", "general", "", ("噪音",), ("楼下吵",))]
    classifier = CategoryClassifier(categories, OneHotEmbedder(), min_similarity=0.0)

    assert classifier.classify("暖气不热").sharp is True
    assert classifier.classify("晚上吵得睡不着").sharp is False


def test_an_elderly_resident_named_in_a_report_is_not_a_keyword_of_elderly_care(classifier):
    # "电梯坏了，老人下不了楼" is about the lift; who suffers it is no category
    assert classifier.classify("老人下不了楼").name == "其他"
    assert classifier.classify("想给家里老人申请助餐").name == "养老服务"


def test_keywords_in_equal_number_without_a_model_go_to_the_longest_keyword():
    categories = [Category("供暖", "", "utility", "", ("暖气",), ()),
                  Category("噪音扰民", "", "general", "", ("噪音扰民",), ())]

    assert CategoryClassifier(categories).classify("暖气噪音扰民").name == "噪音扰民"


def test_an_unknown_sla_class_in_the_file_is_a_config_error(tmp_path):
    bad = tmp_path / "categories.toml"
    bad.write_text('[[category]]\nname = "供暖"\nsla_class = "urgent"\n', "utf-8")

    with pytest.raises(ConfigError, match="sla_class"):
        load_categories(bad)
