"""Several replicas behind a proxy: nothing lost or doubled, a replica killed mid-load, an ingest picked up by all.

    python bench/cluster.py --replicas 3 [--residents 40] [--rate R] [--kill] [--ingest] [--json]
or against a cluster already running:
    bash scripts/cluster.sh start 3           # N replicas, a Chroma server, the proxy on :8080
    python bench/cluster.py [--residents 40] [--kill] [--json]
    bash scripts/cluster.sh stop

Against the running cluster (SHEGONG_CLUSTER_DIR, default data/cluster; its replica-*.toml, *.pid):
- residents file reports through the proxy at once (report, phone, time, confirm: four messages each), from
  the web API and as Telegram webhook updates (each sent again with its update_id until answered 200, as
  Telegram does; the Bot API stand-in of the cluster script records the answers);
  with --kill, one replica (not the first) is killed with SIGKILL half-way and restarted; a message the
  proxy could not deliver is sent again once, as the chat page does;
- WeChat messages, each with its retry sent at once to a different replica than the first attempt;
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


class Headers(dict):
    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


class Answer:
    def __init__(self, status_code: int, headers: Headers, body: bytes):
        self.status_code, self.headers, self.body = status_code, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class LightClient:
    """A bare HTTP/1.1 client, a connection per request. The load generator shares the machine's two cores
    with what it measures: httpx spends milliseconds per request (and per client), which saturates the
    bench's own event loop and is then counted as the service's latency; this costs a fraction of that."""

    def __init__(self, base_url: str):
        address = base_url.split("://", 1)[1].rstrip("/")
        self.host, _, port = address.partition(":")
        self.port = int(port or 80)

    async def post(self, path: str, json: dict | None = None, headers: dict | None = None) -> Answer:
        import json as jsonlib

        body = jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n")
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
        raw_head, _, payload = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        if not lines or len(lines[0].split()) < 2:
            raise ConnectionError("no HTTP answer (the replica closed the connection)")
        found = Headers((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
        if found.get("transfer-encoding") == "chunked":
            payload = _unchunk(payload)
        return Answer(int(lines[0].split()[1]), found, payload)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        n = int(size.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out, data = out + rest[:n], rest[n + 2:]
    return out


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
        if pid_file.exists():  # a config without a pid is a replica of an earlier, larger start
            out.append((number, int(pid_file.read_text()), config))
    return out


def port_of(config: Path) -> int:
    import tomllib

    return tomllib.loads(config.read_text("utf-8"))["web"]["port"]


async def report(client: LightClient, user: str, latencies: list[float], failures: list[str],
                 said: dict[str, list[str]] | None = None) -> str | None:
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
            except OSError as exc:  # refused or cut (a replica killed under the proxy)
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
            if said is not None:
                said.setdefault(user, []).extend(r["text"][:60] for r in replies)
            ticket = next((r.get("ticket_id") for r in replies if r.get("ticket_id")), ticket)
            if ticket is None and step.get("button") == "intake:confirm":  # a retried confirm names the ticket
                ticket = next((m.group(0) for r in replies for m in [re.search(r"T\d{11}", r["text"])] if m), None)
            break
    return ticket


TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_update_ids = iter(range(int(time.time()) % 1_000_000 * 1000, 10**12))


def telegram_update(chat_id: int, text: str | None = None, button: str | None = None) -> dict:
    """A Bot API update as Telegram posts it to the webhook: a text message, or a press of a button."""
    user = {"id": chat_id, "is_bot": False, "first_name": "居民", "language_code": "zh-hans"}
    chat = {"id": chat_id, "type": "private", "first_name": "居民"}
    if button is None:
        return {"update_id": next(_update_ids),
                "message": {"message_id": 1, "date": int(time.time()), "from": user, "chat": chat, "text": text}}
    message = {"message_id": 2, "date": int(time.time()), "from": {"id": 123456789, "is_bot": True,
                                                                    "first_name": "数字社工"}, "chat": chat, "text": "…"}
    return {"update_id": next(_update_ids), "callback_query": {"id": str(next(_update_ids)), "from": user,
                                                               "chat_instance": f"ci-{chat_id}", "data": button,
                                                               "message": message}}


async def telegram_report(client: LightClient, chat_id: int, secret: str, latencies: list[float],
                          failures: list[str]) -> bool:
    """The same report through the webhook; each update sent again until answered 200, as Telegram does
    (a 503 or a broken connection), with the same update_id. True when every step was answered."""
    steps = [telegram_update(chat_id, text=f"景村里{1 + chat_id % 6}号楼2单元暖气不热，屋里才十五度"),
             telegram_update(chat_id, text="13812345678"), telegram_update(chat_id, button="intake:time:随时"),
             telegram_update(chat_id, button="intake:confirm")]
    for update in steps:
        # Telegram keeps resending for hours; a copy that finds its update claimed by a killed replica is
        # answered 503 until the claim's lease (30 s) ends: a budget of 90 s covers that
        for attempt in range(90):
            started = time.monotonic()
            try:
                answer = await client.post("/telegram", json=update, headers={TELEGRAM_SECRET_HEADER: secret})
            except OSError as exc:
                failures.append(f"telegram {type(exc).__name__}")
                await asyncio.sleep(1)
                continue
            if answer.status_code != 200:
                failures.append(f"telegram HTTP {answer.status_code} (sent again)")
                await asyncio.sleep(1)
                continue
            latencies.append(time.monotonic() - started)
            break
        else:
            return False
    return True


async def sent_to(botapi: str, chat: int) -> list[str]:
    async with httpx.AsyncClient(timeout=30) as client:
        return [m["text"] for m in (await client.get(f"{botapi}/_sent")).json() if m["chat_id"] == str(chat)]


async def telegram_answers(botapi: str, chats: list[int]) -> dict[str, list[str]]:
    """What the replicas sent each chat, from the Bot API stand-in."""
    async with httpx.AsyncClient(timeout=30) as client:
        sent = (await client.get(f"{botapi}/_sent")).json()
    wanted = {str(c) for c in chats}
    out: dict[str, list[str]] = {c: [] for c in wanted}
    for message in sent:
        if message["chat_id"] in wanted:
            out[message["chat_id"]].append(message["text"])
    return out


WORKER_CHAT = 900000001  # the grid worker of the bench's reports, on Telegram (the Bot API stand-in)


def ensure_worker(config: Path) -> None:
    """A worker on Telegram for every grid of 景村 (where the bench reports), so each ticket is dispatched and
    its card is a notification some replica's outbox loop must send exactly once."""
    from datetime import datetime, timezone

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from bot.settings import load_settings
    from bot.storage.db import make_engine
    from bot.tickets.models import Staff
    from bot.tickets.organisation import load_organisation

    settings = load_settings(config)
    org = load_organisation(settings.resolve(settings.tickets.organisation_file))
    grids = [g.id for g in org.grids.values() if g.community_id == "jingcun"]
    engine = make_engine(settings.database.url, settings.base_dir)
    try:
        with Session(engine) as s, s.begin():
            found = s.scalars(select(Staff).where(Staff.channel == "telegram",
                                                  Staff.user_id == str(WORKER_CHAT))).first()
            if found is None:
                s.add(Staff(name="压测网格员", role="worker", channel="telegram", user_id=str(WORKER_CHAT),
                            grids=grids, on_duty=True, created_at=datetime.now(timezone.utc)))
    finally:
        engine.dispose()


def worker_cards(sent: list[str], tickets: set[str]) -> dict[str, int]:
    """How many "新工单" cards the worker got for each of these tickets."""
    counts = {t: 0 for t in tickets}
    for text in sent:
        found = re.search(r"工单 (T\d{11})", text)
        if text.startswith("新工单") and found and found.group(1) in counts:
            counts[found.group(1)] += 1
    return counts


def ticket_ids(config: Path, users: list[str]) -> set[str]:
    from sqlalchemy import select

    from bot.settings import load_settings
    from bot.storage.db import make_engine
    from bot.tickets.models import Ticket

    settings = load_settings(config)
    engine = make_engine(settings.database.url, settings.base_dir)
    try:
        with engine.connect() as c:
            return set(c.scalars(select(Ticket.id).where(Ticket.user_id.in_(users))))
    finally:
        engine.dispose()


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


async def wechat_retry_elsewhere(ports: list[int], token: str, messages: int) -> list[int]:
    """Text messages each sent to one replica and, as WeChat's retry, at once to the next one; per message
    the answers carrying content (must be 1: the other copy is told "success", WeChat's "no reply")."""
    stamp = int(time.time() * 1000)

    async def one(client: httpx.AsyncClient, i: int) -> int:
        openid = f"o-bench-{stamp}-{i}"
        body = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
                f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[老人家食堂几点开门]]></Content><MsgId>{stamp + i}</MsgId></xml>")

        async def post(port: int) -> bool:
            timestamp, nonce = str(int(time.time())), str(time.monotonic_ns())
            signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
            answer = await client.post(f"http://127.0.0.1:{port}/wechat", content=body.encode(),
                                       params={"signature": signature, "timestamp": timestamp, "nonce": nonce,
                                               "openid": openid})
            return answer.status_code == 200 and "<Content>" in answer.text

        first, retry = ports[i % 2], ports[(i + 1) % 2]  # never the replica the kill test stops (the last)
        return sum(await asyncio.gather(post(first), post(retry)))

    async with httpx.AsyncClient(timeout=60) as client:
        return list(await asyncio.gather(*(one(client, i) for i in range(messages))))


def restart(folder: Path, number: int) -> None:
    """Start a killed replica again, exactly as the cluster script started it."""
    subprocess.run(["bash", str(ROOT / "scripts" / "cluster.sh"), "restart", str(number)], check=True,
                   env={**os.environ, "SHEGONG_CLUSTER_DIR": str(folder)})


async def main_async(args) -> dict:
    folder = Path(args.cluster_dir)
    nodes = replicas(folder)
    if not nodes:
        sys.exit(f"no cluster in {folder}: run bash scripts/cluster.sh start N first")
    ports = [port_of(c) for _, _, c in nodes]
    ensure_worker(nodes[0][2])
    stamp = int(time.time())
    users = [f"web-bench-{stamp}-{i}" for i in range(args.residents)]
    chats = [stamp % 100_000 * 1000 + i for i in range(args.telegram_residents)]
    latencies: list[float] = []
    failures: list[str] = []
    cpu_before = cpu_seconds([pid for _, pid, _ in nodes])
    started = time.monotonic()
    killed = None
    secret = os.environ.get("TELEGRAM_WEBHOOK_SECRET", "cluster-secret")
    async def paced(i: int, job):
        # an offered rate (--rate messages/s, four per report): residents start one after another, so the
        # load is what was asked for, not every resident at the same instant
        if args.rate:
            await asyncio.sleep(i * 4 / args.rate)
        return await job(LightClient(args.proxy))

    said: dict[str, list[str]] = {}
    tasks = [asyncio.create_task(paced(i, lambda c, u=u: report(c, u, latencies, failures, said)))
             for i, u in enumerate(users)]
    tg_latencies: list[float] = []
    tg_tasks = [asyncio.create_task(paced(len(users) * i // max(1, len(chats)),
                                          lambda cl, c=c: telegram_report(cl, c, secret, tg_latencies, failures)))
                for i, c in enumerate(chats)]
    wechat = asyncio.create_task(wechat_retry_elsewhere(ports, os.environ.get("WECHAT_TOKEN", "clustertoken"),
                                                        args.wechat_messages if len(ports) > 1 else 0))
    if args.kill and len(nodes) > 1:
        await asyncio.sleep(args.kill_after)
        number, pid, config = nodes[-1]
        os.kill(pid, signal.SIGKILL)
        killed = number
        restart(folder, number)
    confirmed = [t for t in await asyncio.gather(*tasks)]
    tg_done = [t for t in await asyncio.gather(*tg_tasks)]
    wechat_answers = await wechat
    elapsed = time.monotonic() - started
    cpu = cpu_seconds([pid for _, pid, _ in replicas(folder)]) - cpu_before
    in_db = tickets_in_database(nodes[0][2], users)
    tg_in_db = tickets_in_database(nodes[0][2], [str(c) for c in chats])
    await asyncio.sleep(3)  # replies queued for the outbox (a resident not writing right now) go out meanwhile
    tg_sent = await telegram_answers(args.botapi, chats) if chats else {}
    filed = ticket_ids(nodes[0][2], users + [str(c) for c in chats])
    deadline = time.monotonic() + 60  # the outbox loops send every two seconds, the worker's cards among them
    while True:
        cards = worker_cards(await sent_to(args.botapi, WORKER_CHAT), filed)
        if all(cards.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    web_latencies = sorted(latencies)
    latencies = sorted(latencies + tg_latencies)
    tg_latencies.sort()

    def pct(q: float, values: list[float]) -> float | None:
        return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else None

    result = {
        "replicas": len(nodes), "residents": len(users), "messages": len(latencies), "seconds": round(elapsed, 2),
        "messages_per_second": round(len(latencies) / elapsed, 2), "p50": pct(0.5, latencies),
        "p95": pct(0.95, latencies), "p95_web": pct(0.95, web_latencies), "p95_telegram": pct(0.95, tg_latencies),
        "replica_cpu_seconds_per_message": round(cpu / max(1, len(latencies)), 3) if not killed else None,
        "reports_confirmed": sum(1 for t in confirmed if t), "tickets_filed": sum(in_db.values()),
        "lost": sum(1 for u, t in zip(users, confirmed) if t and in_db.get(u, 0) == 0),
        "doubled": sum(1 for n in in_db.values() if n > 1),
        # filed, but the resident's confirm was answered by a retry after the replica that filed it died
        "filed_but_not_told": sum(1 for u, t in zip(users, confirmed) if not t and in_db.get(u, 0) > 0),
        "telegram_residents": len(chats), "telegram_reports_answered": sum(tg_done),
        "telegram_tickets_filed": sum(tg_in_db.values()),
        "telegram_lost": sum(1 for c, ok in zip(chats, tg_done) if ok and tg_in_db.get(str(c), 0) == 0),
        "telegram_doubled": sum(1 for n in tg_in_db.values() if n > 1),
        # the same text sent twice to one chat: an update handled twice (no two answers of this script are alike)
        "telegram_doubled_answers": sum(len(texts) - len(set(texts)) for texts in tg_sent.values()),
        "telegram_told_ticket": sum(1 for texts in tg_sent.values() if any(re.search(r"T\d{11}", t) for t in texts)),
        # each filed ticket's card to its grid worker: sent by whichever replica's outbox loop claimed it
        "worker_notifications_expected": len(filed),
        "worker_notifications_missing": sum(1 for n in cards.values() if n == 0),
        "worker_notifications_doubled": sum(1 for n in cards.values() if n > 1),
        "refused_or_failed_attempts": {kind: failures.count(kind) for kind in sorted(set(failures))},
        "what_the_not_told_were_told": [said.get(u) for u, t in zip(users, confirmed) if not t and in_db.get(u, 0)],
        "killed_replica": killed,
    }
    if wechat_answers:
        result["wechat_messages_retried_on_another_replica"] = len(wechat_answers)
        result["wechat_answered_once"] = wechat_answers.count(1)
        result["wechat_answered_twice"] = wechat_answers.count(2)
        result["wechat_not_answered"] = wechat_answers.count(0)
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
    parser.add_argument("--replicas", type=int, default=0,
                        help="start this many replicas with scripts/cluster.sh for the run, then stop them "
                             "(0: measure the cluster already running)")
    parser.add_argument("--residents", type=int, default=40, help="residents reporting through the web API")
    parser.add_argument("--telegram-residents", type=int, default=20,
                        help="residents reporting through Telegram webhook updates (the Bot API stand-in answers)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="messages per second offered by the web residents (0: every resident at once)")
    parser.add_argument("--wechat-messages", type=int, default=20,
                        help="WeChat messages, each retried at once on another replica")
    parser.add_argument("--botapi", default=f"http://127.0.0.1:{os.environ.get('SHEGONG_BOTAPI_PORT', '8079')}")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the last replica mid-load, then restart it")
    parser.add_argument("--kill-after", type=float, default=3.0)
    parser.add_argument("--ingest", action="store_true", help="ingest a new document on the first replica")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.replicas:
        # start the cluster for this run and stop it afterwards (otherwise: measure the one already running)
        env = {**os.environ, "SHEGONG_CLUSTER_DIR": args.cluster_dir}
        script = ["bash", str(ROOT / "scripts" / "cluster.sh")]
        subprocess.run(script + ["stop"], env=env, check=True)
        subprocess.run(script + ["start", str(args.replicas)], env=env, check=True, stdout=sys.stderr)
        try:
            result = asyncio.run(main_async(args))
        finally:
            subprocess.run(script + ["stop"], env=env, check=False)
    else:
        result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:45} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
