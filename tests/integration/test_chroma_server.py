"""Vectors in a real Chroma server (`chroma run`) instead of the local folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.errors import IndexUnavailable

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    """A `chroma run` server on a free port of 127.0.0.1, stopped after the module."""
    executable = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert executable, "the chroma command is missing from the virtualenv"
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = open(folder / "server.log", "wb")
    server = subprocess.Popen([executable, "run", "--path", str(folder / "data"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (folder / "server.log").read_text("utf-8", "replace")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "chroma server did not answer within 30 s"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def server_collections(url: str) -> list[str]:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.HttpClient(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]),
                                 settings=Settings(anonymized_telemetry=False))
    return sorted(c if isinstance(c, str) else c.name for c in client.list_collections())


def test_ingest_stores_vectors_in_the_server_and_search_reads_them(tmp_path, make_config, sample_docs, open_kb,
                                                                  chroma_url):
    kb = open_kb(make_config(tmp_path, chroma_url=chroma_url))

    report = kb.ingest()

    assert report.summary() == "added 3, updated 0, unchanged 0, removed 0, failed 0"
    assert not (tmp_path / "index" / "chroma").exists()  # nothing stored in the local folder
    assert "kb_g000001" in server_collections(chroma_url)
    assert kb.retriever.search("暖气片不热放气阀", 1)[0].source == "knowledge/heating.txt"
    assert open_kb(make_config(tmp_path, chroma_url=chroma_url)).ingest().embedded == 0


def test_hnsw_search_asks_the_server_for_neighbours(tmp_path, make_config, write_samples, open_kb, chroma_url):
    write_samples(tmp_path / "knowledge")
    kb = open_kb(make_config(tmp_path, chroma_url=chroma_url, dense_search="hnsw"))
    # Indexes sharing a server share collection names (kb_g000001 here too), and an ingest deletes
    # the vectors it does not know: so this test indexes the same documents as the one above.
    kb.ingest()
    assert kb.index.snapshot().vectors is None  # nothing loaded locally in hnsw mode

    hits = kb.retriever.search("物业擅自停水停电罚款", 3)

    assert hits[0].source == "knowledge/property-rules.txt"
    assert "五万元以下罚款" in hits[0].text


def test_unreachable_server_is_reported_as_unavailable(tmp_path, make_config, open_kb):
    with pytest.raises(IndexUnavailable, match="vector store"):
        open_kb(make_config(tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}")).ingest()


@pytest.mark.postgres
def test_one_ingest_serves_every_replica_and_the_others_switch_to_a_new_one(tmp_path, make_config, write_doc,
                                                                             open_kb, chroma_url):
    import time

    from bot.errors import IndexError_
    from tests.integration.db import open_database

    with open_database("postgres", tmp_path / "db") as db:
        shared = dict(chroma_url=chroma_url, collection="cluster", url=db.url, shared_index=True)
        write_doc(tmp_path / "a" / "knowledge", "meals.md", "# 老人家食堂指南\n老人家食堂每天11:00开始供应午餐。\n")
        replica_a = open_kb(make_config(tmp_path / "a", **shared))
        replica_b = open_kb(make_config(tmp_path / "b", **shared))  # its own folders; never ingests

        assert replica_a.ingest().added == 1
        first = replica_b.retriever.search("老人家食堂几点供应午餐", 1)
        write_doc(tmp_path / "a" / "knowledge", "bath.md", "# 助浴服务\n助浴车每周三上午到景村社区服务站。\n")
        replica_a.ingest()
        time.sleep(2.1)  # the replicas read the shared pointer every two seconds
        second = replica_b.retriever.search("助浴车什么时候来", 1)
        with replica_a.layout.exclusive():
            with pytest.raises(IndexError_, match="another ingest"):
                replica_b.ingest()

    assert first[0].source == "knowledge/meals.md" and second[0].source == "knowledge/bath.md"
    assert (tmp_path / "b" / "index" / "gen-000002" / "manifest.json").is_file()  # fetched, not built


@pytest.mark.postgres
def test_two_indexes_share_the_tables_without_taking_each_others_generations(tmp_path, make_config, write_doc,
                                                                             open_kb, chroma_url):
    from tests.integration.db import open_database

    with open_database("postgres", tmp_path / "db") as db:
        write_doc(tmp_path / "docs" / "knowledge", "meals.md", "# 老人家食堂指南\n老人家食堂每天11:00开始供应午餐。\n")
        write_doc(tmp_path / "laws" / "knowledge", "civil.md", "# 民法典\n## 第二百八十八条\n相邻关系应当团结互助、公平合理。\n")
        docs = open_kb(make_config(tmp_path / "docs", chroma_url=chroma_url, collection="two_docs", url=db.url,
                                   shared_index=True))
        laws = open_kb(make_config(tmp_path / "laws", chroma_url=chroma_url, collection="two_laws", url=db.url,
                                   shared_index=True))
        docs.ingest()
        laws.ingest()
        docs.ingest()  # nothing changed: the documents' own generation, not the laws'

        assert {h.title for h in docs.retriever.search("午餐几点", 5)} == {"老人家食堂指南"}
        assert {h.title for h in laws.retriever.search("相邻关系", 5)} == {"民法典"}
