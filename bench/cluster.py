"""Several replicas behind a proxy: nothing lost or doubled, a replica killed mid-load, an ingest picked up by all.

    bash scripts/cluster.sh start 3           # N replicas, a Chroma server, the proxy on :8080
    python bench/cluster.py [--residents 40] [--kill] [--json]
    bash scripts/cluster.sh stop

Against the running cluster (SHEGONG_CLUSTER_DIR, default data/cluster; its replica-*.toml, *.pid):
- residents file reports through the proxy at once (report, phone, time, confirm: four messages each);
  with --kill, one replica (not the first) is killed with SIGKILL half-way and restarted; a message the
  proxy could not deliver is sent again once, as the chat page does;
- WeChat's retry of a message is sent to a different replica than the first attempt;
- an ingest run on the first replica is then searched on every replica.
Printed: messages/s, p50/p95 of the answered messages, CPU seconds of the replicas per message, tickets
filed vs reports confirmed (lost, doubled), the WeChat message's answers (must be 1), and which replicas
answer from the new document. On 2 cores, 3 replicas share the same CPU: the total does not grow.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (FileNotFoundError, IndexError):
            pass
    return total


def replicas(folder: Path) -> list[tuple[int, int, Path]]:
    """(number, pid, config) of each replica the cluster script started."""
    out = []
    for config in sorted(folder.glob("replica-*.toml")):
        number = int(config.stem.split("-")[1])
        pid_file = folder / f"replica-{number}.pid"
        out.append((number, int(pid_file.read_text()) if pid_file.exists() else 0, config))
    return out


def port_of(config: Path) -> int:
    import tomllib

    return tomllib.loads(config.read_text("utf-8"))["web"]["port"]


async def report(client: httpx.AsyncClient, user: str, latencies: list[float], failures: list[str]) -> str | None:
    steps = [{"text": f"景村里{1 + hash(user) % 6}号楼2单元暖气不热，屋里才十五度"}, {"text": "13812345678"},
             {"button": "intake:time:随时"}, {"button": "intake:confirm"}]
    ticket = None
    for step in steps:
        # as the chat page does: a 503 (every replica saturated) is sent again after its Retry-After, three
        # times; a message the proxy could not deliver at all (a replica killed under it) once more
        for attempt in range(4):
            started = time.monotonic()
            try:
                answer = await client.post("/api/chat", json={"user_id": user, **step})
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)
                continue
            if answer.status_code == 503:
                failures.append("503 (shed, sent again)")
                await asyncio.sleep(float(answer.headers.get("Retry-After", "2")))
                continue
            if answer.status_code != 200:
                failures.append(f"HTTP {answer.status_code}")
                continue
            latencies.append(time.monotonic() - started)
            replies = answer.json()["replies"]
            ticket = next((r.get("ticket_id") for r in replies if r.get("ticket_id")), ticket)
            if ticket is None and step.get("button") == "intake:confirm":  # a retried confirm names the ticket
                ticket = next((m.group(0) for r in replies for m in [re.search(r"T\d{11}", r["text"])] if m), None)
            break
    return ticket


def tickets_in_database(config: Path, users: list[str]) -> dict[str, int]:
    from sqlalchemy import func, select

    from bot.settings import load_settings
    from bot.storage.db import make_engine
    from bot.tickets.models import Ticket

    settings = load_settings(config)
    engine = make_engine(settings.database.url, settings.base_dir)
    try:
        with engine.connect() as c:
            rows = c.execute(select(Ticket.user_id, func.count()).where(Ticket.user_id.in_(users))
                             .group_by(Ticket.user_id)).all()
    finally:
        engine.dispose()
    return dict(rows)


async def wechat_retry_elsewhere(ports: list[int], token: str) -> int:
    """One text message sent to the first replica and its retry to the second; answers produced (must be 1)."""
    openid = f"o-bench-{int(time.time())}"
    body = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[老人家食堂几点开门]]></Content><MsgId>{int(time.time() * 1000)}</MsgId></xml>")
    answered = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for port in ports[:2]:
            timestamp, nonce = str(int(time.time())), str(time.monotonic_ns())
            signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
            answer = await client.post(f"http://127.0.0.1:{port}/wechat", content=body.encode(),
                                       params={"signature": signature, "timestamp": timestamp, "nonce": nonce,
                                               "openid": openid})
            answered += answer.status_code == 200 and "<Content>" in answer.text
    return answered


def restart(folder: Path, number: int, config: Path) -> None:
    env = {**os.environ, "WECHAT_TOKEN": os.environ.get("WECHAT_TOKEN", "clustertoken"),
           "WECHAT_APP_SECRET": os.environ.get("WECHAT_APP_SECRET", "clustersecret"), "TELEGRAM_BOT_TOKEN": ""}
    log = open(folder / f"replica-{number}.log", "a")
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), "-m", "bot", "--config", str(config)],
                            stdout=log, stderr=log, env=env, start_new_session=True)
    (folder / f"replica-{number}.pid").write_text(str(proc.pid))


async def main_async(args) -> dict:
    folder = Path(args.cluster_dir)
    nodes = replicas(folder)
    if not nodes:
        sys.exit(f"no cluster in {folder}: run bash scripts/cluster.sh start N first")
    ports = [port_of(c) for _, _, c in nodes]
    users = [f"web-bench-{int(time.time())}-{i}" for i in range(args.residents)]
    latencies: list[float] = []
    failures: list[str] = []
    cpu_before = cpu_seconds([pid for _, pid, _ in nodes])
    started = time.monotonic()
    killed = None
    async with httpx.AsyncClient(base_url=args.proxy, timeout=120) as client:
        tasks = [asyncio.create_task(report(client, u, latencies, failures)) for u in users]
        if args.kill and len(nodes) > 1:
            await asyncio.sleep(args.kill_after)
            number, pid, config = nodes[-1]
            os.kill(pid, signal.SIGKILL)
            killed = number
            restart(folder, number, config)
        confirmed = [t for t in await asyncio.gather(*tasks)]
    elapsed = time.monotonic() - started
    cpu = cpu_seconds([pid for _, pid, _ in replicas(folder)]) - cpu_before
    in_db = tickets_in_database(nodes[0][2], users)
    latencies.sort()
    pct = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3) if latencies else None  # noqa: E731
    result = {
        "replicas": len(nodes), "residents": len(users), "messages": len(latencies), "seconds": round(elapsed, 2),
        "messages_per_second": round(len(latencies) / elapsed, 2), "p50": pct(0.5), "p95": pct(0.95),
        "replica_cpu_seconds_per_message": round(cpu / max(1, len(latencies)), 3) if not killed else None,
        "reports_confirmed": sum(1 for t in confirmed if t), "tickets_filed": sum(in_db.values()),
        "lost": sum(1 for u, t in zip(users, confirmed) if t and in_db.get(u, 0) == 0),
        "doubled": sum(1 for n in in_db.values() if n > 1),
        # filed, but the resident's confirm was answered by a retry after the replica that filed it died
        "filed_but_not_told": sum(1 for u, t in zip(users, confirmed) if not t and in_db.get(u, 0) > 0),
        "refused_or_failed_attempts": {kind: failures.count(kind) for kind in sorted(set(failures))},
        "killed_replica": killed,
    }
    if len(ports) > 1:
        result["wechat_retry_to_another_replica_answers"] = await wechat_retry_elsewhere(
            ports, os.environ.get("WECHAT_TOKEN", "clustertoken"))
    if args.ingest:
        note = folder / "knowledge" / "bench-notice.md"
        note.write_text("# 社区助浴车通知\n助浴车每周五上午到景村社区服务站，请提前一天电话预约。\n", "utf-8")
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "ingest.py"), "--config",
                        str(nodes[0][2])], check=True, capture_output=True)
        await asyncio.sleep(3)  # replicas read the shared pointer every two seconds
        seen = []
        async with httpx.AsyncClient(timeout=60) as client:
            for port in ports:
                answer = await client.post(f"http://127.0.0.1:{port}/api/chat",
                                           json={"user_id": f"web-bench-ingest-{port}", "text": "助浴车什么时候来"})
                seen.append("每周五" in answer.text)
        result["replicas_answering_from_the_new_document"] = f"{sum(seen)}/{len(seen)}"
        note.unlink()
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "ingest.py"), "--config",
                        str(nodes[0][2])], check=False, capture_output=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster-dir", default=os.environ.get("SHEGONG_CLUSTER_DIR", str(ROOT / "data" / "cluster")))
    parser.add_argument("--proxy", default="http://127.0.0.1:8080")
    parser.add_argument("--residents", type=int, default=40)
    parser.add_argument("--kill", action="store_true", help="SIGKILL the last replica mid-load, then restart it")
    parser.add_argument("--kill-after", type=float, default=3.0)
    parser.add_argument("--ingest", action="store_true", help="ingest a new document on the first replica")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:45} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
