"""Chat load over the JSON API: N simulated residents, open loop at a fixed rate, then closed loop for the maximum.

    python bench/chat_load.py [--residents 50] [--rate 20] [--seconds 30] [--json]

Starts the real service (python -m bot) on 127.0.0.1 with a temporary config
(SQLite, the sample knowledge base, the packaged model, no Telegram, no LLM),
sends messages drawn from complaints_unlabeled.jsonl and the dev questions, and
prints messages/s, latency p50/p95/p99, errors, and the server's peak RSS,
next to the bare retrieval call measured in the same run (the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, OtherCpu, need_shared, percentile, read_jsonl  # noqa: E402


ERRORS: list[str] = []  # what went wrong, to print (a count alone says nothing)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def messages(shared: Path, n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    complaints = [r["title"] + "。" + r["text"][:300] for r in read_jsonl(shared / "complaints_unlabeled.jsonl")]
    questions = [r["question"] for r in read_jsonl(shared / "policy_qa_dev.jsonl")]
    pool = rng.sample(complaints, min(len(complaints), n // 2)) + rng.sample(questions, min(len(questions), n // 2))
    rng.shuffle(pool)
    return pool


def start_server(tmp: Path, port: int) -> subprocess.Popen:
    config = tmp / "config.toml"
    config.write_text(
        f'[knowledge]\ndocs_dir = "{ROOT / "knowledge"}"\nindex_dir = "index"\n'
        f'[database]\nurl = "sqlite:///bot.db"\n[web]\nport = {port}\nrate_limit_per_minute = 10000\n'
        f'[embedding]\nthreads = 1\n'
        f'[tickets]\norganisation_file = "{ROOT / "district.toml"}"\ncategories_file = "{ROOT / "categories.toml"}"\n',
        "utf-8")
    env = {**os.environ, "BOT_LOG_LEVEL": "WARNING"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "w"))


async def wait_ready(client, base: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = await client.get(base + "/healthz")
            if r.status_code == 200 and r.json().get("passages"):
                return
        except Exception:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit("the service did not become ready")


async def one(client, base: str, user: str, text: str, results: list) -> None:
    start = time.perf_counter()
    try:
        r = await client.post(base + "/api/chat", json={"user_id": user, "text": text}, timeout=30)
        ok = r.status_code == 200 and r.json().get("replies")
        if not ok:
            ERRORS.append(f"HTTP {r.status_code}: {r.text[:120]}")
    except Exception as exc:
        ok = False
        ERRORS.append(f"{type(exc).__name__}: {exc}"[:160])
    results.append((time.perf_counter() - start, bool(ok)))


async def open_loop(client, base, pool, residents: int, rate: float, seconds: float) -> dict:
    results: list = []
    tasks = []
    interval = 1.0 / rate
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        user = f"load-{i % residents}"
        tasks.append(asyncio.create_task(one(client, base, user, pool[i % len(pool)], results)))
        i += 1
        await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
    await asyncio.gather(*tasks)
    return summarise(results, time.perf_counter() - start)


async def closed_loop(client, base, pool, workers: int, seconds: float) -> dict:
    results: list = []
    start = time.perf_counter()

    async def worker(w: int) -> None:
        i = w
        while time.perf_counter() - start < seconds:
            await one(client, base, f"closed-{w}", pool[i % len(pool)], results)
            i += workers

    await asyncio.gather(*(worker(w) for w in range(workers)))
    return summarise(results, time.perf_counter() - start)


def summarise(results: list, elapsed: float) -> dict:
    lat = [r[0] * 1000 for r in results]
    return {"messages": len(results), "messages_per_s": round(len(results) / elapsed, 2),
            "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
            "p99_ms": round(percentile(lat, 99), 1), "errors": sum(1 for r in results if not r[1])}


def rss_mb(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return float("nan")


def retrieval_floor(tmp: Path, pool: list[str]) -> dict:
    """The bare retrieval call on the same index, in this process: what no chat can beat."""
    from bot.app import build_knowledge
    from bot.settings import load_settings

    kb = build_knowledge(load_settings(tmp / "config.toml"))
    kb.retriever.search("预热")
    lat = []
    for text in pool[:200]:
        start = time.perf_counter()
        kb.retriever.search(text)
        lat.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1)}


async def run(args) -> dict:
    import httpx

    shared = need_shared()
    pool = messages(shared, 2000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        server = start_server(tmp, port)
        base = f"http://127.0.0.1:{port}"
        peak = 0.0
        try:
            limits = httpx.Limits(max_connections=args.residents * 2, max_keepalive_connections=args.residents)
            async with httpx.AsyncClient(limits=limits) as client:
                await wait_ready(client, base)
                await client.post(base + "/api/chat", json={"user_id": "warm", "text": "老人家食堂怎么报名"})

                async def sample_rss():
                    nonlocal peak
                    while True:
                        peak = max(peak, rss_mb(server.pid))
                        await asyncio.sleep(0.5)

                sampler = asyncio.create_task(sample_rss())
                with OtherCpu(server.pid) as others:
                    open_result = await open_loop(client, base, pool, args.residents, args.rate, args.seconds)
                    closed_result = await closed_loop(client, base, pool[1000:], args.residents, args.seconds)
                sampler.cancel()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        floor = retrieval_floor(tmp, pool)
    return {"open_loop": open_result, "closed_loop": closed_result, "retrieval_floor": floor,
            "server_peak_rss_mb": round(peak, 1), "residents": args.residents, "rate": args.rate,
            "other_processes_cpu_cores": others.cores}


def main() -> int:
    parser = argparse.ArgumentParser(description="Chat load over the JSON API.")
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second in the open loop")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each loop")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    o, c, f = result["open_loop"], result["closed_loop"], result["retrieval_floor"]
    print(f"open loop  {args.residents} residents at {args.rate}/s: {o['messages_per_s']} msg/s, p50 {o['p50_ms']} ms, "
          f"p95 {o['p95_ms']} ms, p99 {o['p99_ms']} ms, errors {o['errors']}")
    print(f"closed loop {args.residents} residents: max sustainable {c['messages_per_s']} msg/s, p50 {c['p50_ms']} ms, "
          f"p95 {c['p95_ms']} ms, errors {c['errors']}")
    print(f"retrieval floor (same index, in process): p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms; "
          f"open-loop p95 is {o['p95_ms'] / max(f['p95_ms'], 0.1):.1f}x the floor; server peak RSS "
          f"{result['server_peak_rss_mb']} MB")
    others = result["other_processes_cpu_cores"]
    print(f"other processes used {others} cores during the loops"
          + ("" if others < 0.2 else " -- WARNING: the machine was not idle; these figures are not the service's"))
    for line in ERRORS[:10]:
        print(f"error: {line}")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
