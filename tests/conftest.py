"""Shared fixtures: temporary configs, knowledge documents, and running the project's commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` run from another folder still imports the project
    sys.path.insert(0, str(ROOT))

from bot.settings import (ClusterSettings, DatabaseSettings, EmbeddingSettings, KnowledgeSettings,  # noqa: E402
                          WebSettings)

_SECTIONS = {
    "knowledge": KnowledgeSettings,
    "embedding": EmbeddingSettings,
    "database": DatabaseSettings,
    "web": WebSettings,
    "cluster": ClusterSettings,
}

# Defaults of a test config: a fast model-free embedder, and no relevance threshold or answerability
# check so that a test about the index is not decided by the retriever's tuning (which changes
# independently; tests/integration/test_retrieval_quality.py and test_answerability.py test that).
TEST_DEFAULTS = {"backend": "hashing", "min_relevance": 0.0, "check_named_items": False, "ingest_on_start": False}

# Samples the way the district's documents are written (examples, not real policy).
MEAL_SERVICE_MD = """\
---
title: 老人家食堂助餐服务指南
date: 2025-3-1
---

> 本文件为示例内容，地址、电话、价格均为示例值。

# 老人家食堂助餐服务指南

## 一、谁能来吃

年满60周岁、在本区居住的老年人都可以到老人家食堂就餐，不限户籍。80周岁以上老人、低保和特困老人可以申请送餐上门。

## 二、怎么办助餐卡

带本人身份证原件到社区服务站办理“老年人助餐卡”，当场就能办好，不收工本费。家属代办的，还要带上代办人的身份证。

## 三、补贴标准

60至79周岁每餐补贴2元，80周岁以上每餐补贴4元，每人每天最多补贴两餐。送餐上门每次收配送费3元。
"""

HEATING_TXT = """\
供暖季暖气不热怎么反映

每年11月15日到次年3月15日是供暖期，卧室、客厅白天室温低于18度就可以反映。

一、先自己查一查

看看家里进户阀门开没开，暖气片上面的放气阀放一放气，很多时候放完气就热了。

二、找谁反映

拨打供热公司热线022-2800-5566（示例），或者直接告诉网格员。网格员2小时内联系您，24小时内上门测温。
"""

PROPERTY_RULES_TXT = """\
某区物业管理办法（示例）

第一章 总则

第一条 为了规范物业管理活动，维护业主和物业服务人的合法权益，制定本办法。

第二条 本办法适用于本区行政区域内的物业管理活动及其监督管理。

第三章 法律责任

第十二条 物业服务人擅自停水、停电、停气的，由区住房城乡建设部门责令改正，处一万元以上五万元以下罚款。

第十三条 业主在楼道、消防通道堆放杂物，经物业服务人劝阻拒不改正的，由消防救援机构依法处理。
"""


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@pytest.fixture(scope="session")
def make_config() -> Callable[..., Path]:
    """Return factory(tmp_path, **overrides) -> path of a config.toml inside tmp_path.

    docs_dir is tmp_path/knowledge and index_dir tmp_path/index, written as relative paths
    so that they resolve against the config file. An override names a setting of any table
    (chunk_chars=200, backend="sentence-transformers", chroma_url=...).
    """

    def factory(tmp_path: Path, **overrides) -> Path:
        values = {"docs_dir": "knowledge", "index_dir": "index", **TEST_DEFAULTS, **overrides}
        tables: dict[str, dict] = {}
        for key, value in values.items():
            section = next((name for name, model in _SECTIONS.items() if key in model.model_fields), None)
            if section is None:
                raise KeyError(f"no setting named {key!r} in any config table")
            tables.setdefault(section, {})[key] = value
        lines = ["# written by tests/conftest.py"]
        for section, settings in tables.items():
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in settings.items())
        (tmp_path / "knowledge").mkdir(parents=True, exist_ok=True)
        config = tmp_path / "config.toml"
        config.write_text("\n".join(lines) + "\n", "utf-8")
        return config

    return factory


@pytest.fixture(scope="session")
def write_doc() -> Callable[..., Path]:
    """Return helper(folder, name, text_or_bytes, encoding="utf-8") -> the written file."""

    def helper(folder: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path

    return helper


@pytest.fixture(scope="session")
def write_samples(write_doc) -> Callable[[Path], dict[str, Path]]:
    """Return helper(folder) writing three knowledge documents (md, GBK txt, law-like txt) into it."""

    def helper(folder: Path) -> dict[str, Path]:
        return {
            "meal": write_doc(folder, "elderly-meal.md", MEAL_SERVICE_MD),
            "heating": write_doc(folder, "heating.txt", HEATING_TXT, encoding="gbk"),
            "rules": write_doc(folder, "property-rules.txt", PROPERTY_RULES_TXT),
        }

    return helper


@pytest.fixture
def sample_docs(tmp_path, write_samples) -> dict[str, Path]:
    """The three sample documents in tmp_path/knowledge (the docs_dir of make_config)."""
    return write_samples(tmp_path / "knowledge")


@pytest.fixture(scope="session")
def open_kb():
    """Return helper(config) -> a KnowledgeBase wired from that config."""
    from bot.app import build_knowledge
    from bot.settings import load_settings

    def helper(config: Path):
        return build_knowledge(load_settings(config))

    return helper


def _python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def python_env() -> Callable[..., dict[str, str]]:
    """Return helper(**extra) -> environment for running the project's commands from any folder."""
    return _python_env


@pytest.fixture(scope="session")
def run_python() -> Callable[..., subprocess.CompletedProcess]:
    """Return helper(*args, input=None, cwd=None, timeout=120) running `python *args` as the admin would."""

    def helper(*args: str, input: str | None = None, cwd: Path | None = None, timeout: float = 120):
        return subprocess.run(
            [sys.executable, *args], input=input, cwd=cwd, env=_python_env(), capture_output=True,
            text=True, encoding="utf-8", timeout=timeout,
        )

    return helper


# -- tickets: a real database, once on SQLite and once on PostgreSQL (tests/integration/db.py) --------


@pytest.fixture(scope="session")
def service_index(tmp_path_factory) -> Path:
    """An index folder for the services tests build; its sibling cache/ keeps the intent model's embeddings."""
    return tmp_path_factory.mktemp("service") / "index"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path, service_index):
    """A migrated, empty database with the ticket system wired on it and a fake clock (see tests/integration/db.py)."""
    from tests.integration.db import open_database

    with open_database(request.param, tmp_path, index_dir=service_index) as db:
        yield db
