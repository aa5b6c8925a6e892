"""Operating the service: /metrics for Prometheus and /readyz for a load balancer."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.standins import TcpProxy
from tests.reliability.support import Site

HEATING = "景村里3号楼2单元暖气不热，屋里才十五度"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser: (name, labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_parse_and_move_when_a_message_is_handled(tmp_path):
    site = Site(tmp_path / "site")
    try:
        site.staff("w1")
        http = site.http()
        before = samples(http.get("/metrics").text)
        http.post("/api/chat", json={"user_id": "web-m1", "text": "老人家食堂要带什么材料"})
        site.report("r1")
        after = http.get("/metrics")

        now = samples(after.text)
        assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
        question = ("shegong_messages_total", (("channel", "web"), ("intent", "question")))
        assert before.get(question, 0) == 0 and now[question] == 1
        assert now[("shegong_reply_seconds_count", (("channel", "web"),))] == 1
        assert now[("shegong_tickets", (("status", "assigned"),))] == 1
        assert now[("shegong_tickets_unassigned", ())] == 0 and now[("shegong_outbox_backlog", ())] >= 1
        assert now[("shegong_index_generation", ())] >= 1 and now[("shegong_journal_backlog", ())] == 0
    finally:
        site.close()


def test_metrics_are_refused_to_other_addresses_without_the_token(tmp_path, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-scrape-token")
    site = Site(tmp_path / "site", extra="[metrics]\nallow = []\n")
    try:
        http = site.http()
        refused = http.get("/metrics")
        wrong = http.get("/metrics", headers={"Authorization": "Bearer guess"})
        allowed = http.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})

        assert refused.status_code == wrong.status_code == 403 and "shegong" not in refused.text
        assert allowed.status_code == 200 and "shegong_messages_total" in allowed.text
    finally:
        site.close()


@pytest.mark.postgres
def test_readyz_fails_while_postgresql_is_away_and_recovers(tmp_path, postgres_schema):
    _, schema = postgres_schema
    proxy = TcpProxy(5432).start()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{schema}" \
          f"&connect_timeout=2"
    site = Site(tmp_path / "site", database_url=url)
    try:
        http = site.http()
        assert http.get("/readyz").status_code == 200
        proxy.cut()
        away = http.get("/readyz")
        alive = http.get("/healthz")  # the process itself still lives: no restart wanted
        proxy.restore()
        deadline = time.monotonic() + 20
        while (back := http.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)

        assert away.status_code == 503 and "database" in away.json()["problems"]
        assert alive.status_code == 200
        assert back.status_code == 200 and back.json() == {"status": "ready"}
    finally:
        site.close()
        proxy.cut()


def test_readyz_fails_while_the_index_is_empty(tmp_path):
    site = Site(tmp_path / "site", ingest=False)
    try:
        http = site.http()
        empty = http.get("/readyz")
        site.service.knowledge.ingest(progress=False)

        assert empty.status_code == 503 and empty.json()["problems"] == {"index": "empty"}
        assert http.get("/readyz").status_code == 200
    finally:
        site.close()


def test_behind_the_proxy_the_service_sees_the_residents_address_not_the_proxys(tmp_path):
    import socket
    import threading

    import httpx
    import uvicorn

    from bot.server import uvicorn_config

    site = Site(tmp_path / "site")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(site.app, site.settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        direct = httpx.get(f"{base}/metrics")  # Prometheus on the same machine
        forwarded = httpx.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.7",
                                                          "X-Forwarded-Proto": "https"})
        assert direct.status_code == 200
        assert forwarded.status_code == 403  # someone outside, through the proxy: not the proxy's 127.0.0.1
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        site.close()
