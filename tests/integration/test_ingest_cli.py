"""`python ingest.py`: the summary line, the exit codes, and surviving a crash mid-run."""

from __future__ import annotations

import json
import os
import random
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

INGEST = str(Path(__file__).resolve().parents[2] / "ingest.py")
SUMMARY = re.compile(r"^added (\d+), updated (\d+), unchanged (\d+), removed (\d+), failed (\d+)$")


def summary_of(stdout: str) -> tuple[int, ...]:
    lines = stdout.strip().splitlines()
    assert lines, "ingest.py printed nothing on stdout"
    match = SUMMARY.match(lines[-1])
    assert match, f"not a summary line: {lines[-1]!r}"
    return tuple(int(n) for n in match.groups())


def test_summary_line_counts_added_updated_unchanged_and_removed(tmp_path, make_config, sample_docs, run_python):
    config = make_config(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    first = run_python(INGEST, "--config", str(config), cwd=elsewhere)
    assert (first.returncode, summary_of(first.stdout)) == (0, (3, 0, 0, 0, 0)), first.stderr
    assert (tmp_path / "index" / "CURRENT").is_file()  # index_dir resolved against the config file
    assert not (elsewhere / "index").exists()

    sample_docs["heating"].unlink()
    sample_docs["meal"].write_text(sample_docs["meal"].read_text("utf-8") + "\n## 四、送餐时间\n\n每天11点前送到。\n", "utf-8")
    (tmp_path / "knowledge" / "rent-subsidy.md").write_text("# 公租房租金补贴\n\n低保家庭租金补贴按月发放。\n", "utf-8")

    second = run_python(INGEST, "--config", str(config), cwd=elsewhere)
    assert (second.returncode, second.stdout.strip()) == (0, "added 1, updated 1, unchanged 1, removed 1, failed 0")


def test_some_files_failing_exits_1_and_names_each_on_stderr_with_its_reason(tmp_path, make_config, sample_docs,
                                                                               write_doc, run_python):
    folder = tmp_path / "knowledge"
    write_doc(folder, "blank.md", b"")
    write_doc(folder, "photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(3000))

    result = run_python(INGEST, "--config", str(make_config(tmp_path)))

    assert result.returncode == 1
    assert summary_of(result.stdout) == (3, 0, 0, 0, 2)
    failed = dict(re.findall(r"^failed: (\S+): (.+)$", result.stderr, re.M))
    assert failed.keys() == {"knowledge/blank.md", "knowledge/photo.txt"}
    assert "文件为空" in failed["knowledge/blank.md"]
    assert "不是文本文件" in failed["knowledge/photo.txt"]


def test_files_given_on_the_command_line_are_ingested_alone(tmp_path, make_config, sample_docs, run_python):
    result = run_python(INGEST, "--config", str(make_config(tmp_path)), str(sample_docs["meal"]))

    assert (result.returncode, summary_of(result.stdout)) == (0, (1, 0, 0, 0, 0)), result.stderr


def test_missing_config_file_exits_2_with_one_clear_line(tmp_path, run_python):
    result = run_python(INGEST, "--config", str(tmp_path / "nope.toml"))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"ingest.py: config file not found: {tmp_path / 'nope.toml'}"]
    assert result.stdout == ""


def test_config_that_is_not_toml_exits_2_saying_so(tmp_path, run_python):
    config = tmp_path / "config.toml"
    config.write_text("[knowledge]\ndocs_dir = knowledge\n", "utf-8")  # unquoted string

    result = run_python(INGEST, "--config", str(config))

    assert result.returncode == 2
    assert "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_setting_exits_2_naming_it(tmp_path, make_config, run_python):
    config = make_config(tmp_path)
    config.write_text(config.read_text("utf-8").replace("[knowledge]", "[knowledge]\nchunk_size = 300"), "utf-8")

    result = run_python(INGEST, "--config", str(config))

    assert result.returncode == 2
    assert "knowledge.chunk_size" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "index").exists()


def test_unknown_option_is_a_usage_error_exiting_2(run_python):
    result = run_python(INGEST, "--rebuild-everything")

    assert result.returncode == 2
    assert "usage: ingest.py" in result.stderr


# --- a crash in the middle of a run ------------------------------------------------------------

_STREETS = ["友谊路街道", "柳林街道", "东海街道", "越秀路街道", "下瓦房街道", "马场街道"]
_PROBLEMS = ["暖气不热", "楼道堆物", "下水道堵了", "电梯坏了", "路灯不亮", "垃圾没人清", "楼上漏水", "广场舞噪音"]


def faq_document(number: int) -> str:
    """A grid's collected Q&A, different in every sentence so that no chunk is shared."""
    rnd = random.Random(number)
    parts = [f"# 第{number}网格居民诉求办理汇编\n"]
    for s in range(4):
        parts.append(f"## {'一二三四'[s]}、{_PROBLEMS[(number + s) % 8]}怎么办\n")
        for p in range(3):
            parts.append("".join(
                f"第{number}网格第{s}节第{p}段：{rnd.choice(_STREETS)}居民反映{rnd.choice(_PROBLEMS)}，"
                f"网格员{rnd.randint(1, 48)}小时内上门，{rnd.randint(1, 7)}天内回访。" for _ in range(4)) + "\n")
    return "\n".join(parts)


_BAR = re.compile(r"生成向量:\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)")


def embedding_bars(stderr: str) -> list[tuple[int, int]]:
    """(batches done, batches in all) of every progress line ingest --progress printed."""
    return [(int(a), int(b)) for a, b in _BAR.findall(stderr)]


def run_until_embedding_is_under_way(args: list[str], env: dict, min_batches: int = 2, timeout: float = 60) -> str:
    """Start ingest, SIGKILL it once `min_batches` batches are embedded and more remain; return its stderr."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    seen = b""
    deadline = time.monotonic() + timeout
    # a selector, not select.select: in a long test run the pipe's descriptor may be above select()'s 1024
    watcher = selectors.DefaultSelector()
    watcher.register(proc.stderr, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            ready = watcher.select(0.02)
            if ready:
                data = os.read(proc.stderr.fileno(), 65536)
                if not data:
                    break
                seen += data
                bars = embedding_bars(seen.decode("utf-8", "replace"))
                if bars and min_batches <= bars[-1][0] < bars[-1][1] - 1:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return seen.decode("utf-8", "replace")
        raise AssertionError("ingest ended (or stalled) before it could be killed mid-embedding:\n"
                             + seen.decode("utf-8", "replace")[-2000:])
    finally:
        watcher.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_ingest_killed_while_embedding_leaves_old_index_serving_and_rerun_completes(
        tmp_path, make_config, sample_docs, write_doc, run_python, open_kb, python_env):
    config = make_config(tmp_path)
    assert run_python(INGEST, "--config", str(config)).returncode == 0
    current = tmp_path / "index" / "CURRENT"
    assert current.read_text("utf-8") == "gen-000001"
    for number in range(1, 51):
        write_doc(tmp_path / "knowledge" / "grids", f"grid-{number:02d}.md", faq_document(number))

    killed = run_until_embedding_is_under_way([INGEST, "--config", str(config), "--progress"], python_env())

    assert current.read_text("utf-8") == "gen-000001"
    searched = run_python("-m", "bot.retrieval.search", "--config", str(config), "--json", "-k", "50",
                          input="老人家食堂的助餐卡怎么办\n第7网格第2节第1段居民反映\n")
    assert searched.returncode == 0, searched.stderr
    old, new = [json.loads(line) for line in searched.stdout.splitlines()]
    assert old["hits"][0]["source"] == "knowledge/elderly-meal.md"
    assert all(not hit["source"].startswith("knowledge/grids/") for hit in new["hits"])

    rerun = subprocess.run([sys.executable, INGEST, "--config", str(config), "--progress"],
                           capture_output=True, text=True, env=python_env(), timeout=120)

    assert (rerun.returncode, summary_of(rerun.stdout)) == (0, (50, 0, 3, 0, 0)), rerun.stderr
    assert current.read_text("utf-8") == "gen-000002"
    # the vectors stored before the kill were reused, not embedded again
    assert embedding_bars(rerun.stderr)[-1][1] < embedding_bars(killed)[-1][1]
    kb = open_kb(config)
    hit = kb.retriever.search("第7网格第2节第1段居民反映", 1)[0]
    assert hit.source == "knowledge/grids/grid-07.md"
    assert kb.retriever.search("老人家食堂的助餐卡怎么办", 1)[0].source == "knowledge/elderly-meal.md"
