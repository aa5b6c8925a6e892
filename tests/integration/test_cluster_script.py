"""scripts/cluster.sh itself: two replicas on PostgreSQL behind the proxy, a Chroma server and the Bot API stand-in.

One run (about a minute: the first replica ingests the sample knowledge into the Chroma server with the
packaged model): a web report filed through the proxy, a Telegram webhook update answered once though sent
twice, a WeChat message answered once though retried on the other replica, a replica killed with SIGKILL
while the proxy keeps answering, the replica started again with `restart`, and `stop` leaving no process.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.integration.db import POSTGRES_SERVER, ROOT, _require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
WECHAT_TOKEN, TG_SECRET = "clustertoken", "cluster-secret"


def free_block(size: int) -> int:
    """A port p with p … p+size-1 all free."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + size < 65000 and all(_free(base + i) for i in range(size)):
            return base
    raise AssertionError("no block of free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


@pytest.fixture
def cluster(tmp_path):
    admin = _require_postgres()
    schema = f"c_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    base = free_block(3)
    env = {**os.environ, "SHEGONG_CLUSTER_DIR": str(tmp_path / "cluster"),
           "SHEGONG_DATABASE_URL": f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}",
           "SHEGONG_PROXY_PORT": str(base), "SHEGONG_CHROMA_PORT": str(free_block(1)),
           "SHEGONG_BOTAPI_PORT": str(free_block(1)), "WECHAT_TOKEN": WECHAT_TOKEN,
           "TELEGRAM_WEBHOOK_SECRET": TG_SECRET}

    def script(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(ROOT / "scripts" / "cluster.sh"), *args], env=env, capture_output=True,
                              text=True, timeout=900)

    try:
        yield script, env, tmp_path / "cluster"
    finally:
        script("stop")
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def wechat_post(port: int, body: str) -> httpx.Response:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(4)
    signature = hashlib.sha1("".join(sorted([WECHAT_TOKEN, timestamp, nonce])).encode()).hexdigest()
    return httpx.post(f"http://127.0.0.1:{port}/wechat", content=body.encode(), timeout=60,
                      params={"signature": signature, "timestamp": timestamp, "nonce": nonce})


def test_the_cluster_script_runs_replicas_that_share_the_work_and_survive_a_killed_one(cluster):
    script, env, folder = cluster
    started = script("start", "2")
    assert started.returncode == 0, started.stderr + "".join(p.read_text() for p in folder.glob("*.log"))
    proxy = f"http://127.0.0.1:{env['SHEGONG_PROXY_PORT']}"
    ports = [int(env["SHEGONG_PROXY_PORT"]) + i for i in (1, 2)]
    botapi = f"http://127.0.0.1:{env['SHEGONG_BOTAPI_PORT']}"

    with httpx.Client(base_url=proxy, timeout=60) as web:
        filed = None
        for step in [{"text": "景村里3号楼2单元暖气不热"}, {"text": "13812345678"}, {"button": "intake:time:随时"},
                     {"button": "intake:confirm"}]:
            answer = web.post("/api/chat", json={"user_id": "cluster-resident", **step})
            assert answer.status_code == 200
            filed = next((r["ticket_id"] for r in answer.json()["replies"] if r.get("ticket_id")), filed)

        update = {"update_id": 777001, "message": {"message_id": 1, "date": int(time.time()), "text": "/start",
                  "from": {"id": 5151, "is_bot": False, "first_name": "居民"},
                  "chat": {"id": 5151, "type": "private"},
                  "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}
        webhook = [web.post("/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
                   for _ in range(2)]  # round robin: the copy goes to the other replica
        telegram_sent = [m for m in httpx.get(f"{botapi}/_sent").json() if m["chat_id"] == "5151"]

        body = ("<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o-cluster]]></FromUserName>"
                f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                "<Content><![CDATA[老人家食堂几点开门]]></Content><MsgId>99001</MsgId></xml>")
        wechat = [wechat_post(port, body) for port in ports]

        victim = int((folder / "replica-2.pid").read_text())
        os.kill(victim, signal.SIGKILL)
        during = [web.post("/api/chat", json={"user_id": f"cluster-r{i}", "text": "你好"}).status_code
                  for i in range(4)]
        restarted = script("restart", "2")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{ports[1]}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        back = httpx.post(f"http://127.0.0.1:{ports[1]}/api/chat", json={"user_id": "cluster-r9", "text": "你好"},
                          timeout=60)

    pids = [int(p.read_text()) for p in folder.glob("*.pid")]
    stopped = script("stop")
    time.sleep(2)

    assert filed is not None and filed.startswith("T")
    assert [r.status_code for r in webhook] == [200, 200] and len(telegram_sent) == 1
    assert sorted("<Content>" in r.text for r in wechat) == [False, True]  # one answer, the copy told "success"
    assert during == [200, 200, 200, 200]  # the proxy skips the killed replica
    assert restarted.returncode == 0 and back.status_code == 200
    assert stopped.returncode == 0 and len(pids) == 5  # chroma, the stand-in, two replicas, the proxy
    assert not any(alive(pid) for pid in pids)
