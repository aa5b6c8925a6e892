"""Answer benchmark: does the extractive answer contain the gold answer, and does off-topic get "not covered"?

    python bench/answers.py [--queries FILE] [--offtopic FILE] [--corpus FILE] [--laws DIR] [--json]

Answers each question exactly as the Conversation does (extractive mode): the
project's retriever with the configured top_k and relevance threshold, then
bot.core.answer.compose over its hits, or "not covered" when there are none.
Reuses the index bench/retrieval.py builds and caches in bench/.cache. Also
measures compose's parameters (max_chars, passages read) on the
same hits, so a change to the defaults can be judged on numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CACHE, ROOT, need_shared, read_jsonl  # noqa: E402
from bench.retrieval import make_config, write_policy_docs  # noqa: E402

DEFAULT = (380, 3)  # compose's defaults: max_chars of the sentence run, passages read (at most 3)
GRID = [(c, p) for c in (160, 260, 320, 360, 380, 400) for p in (1, 2, 3)]


def open_index(args, knowledge):
    """The project's retriever over the cached benchmark index (built by bench/retrieval.py, or here)."""
    from bot.app import build_knowledge
    from bot.settings import load_settings

    tag = hashlib.sha1(f"{args.corpus.resolve()}|{args.laws.resolve()}|{knowledge.chunk_chars}|"
                       f"{knowledge.chunk_overlap}".encode()).hexdigest()[:10]
    work = CACHE / f"retrieval-{tag}"
    docs = work / "docs"
    write_policy_docs(args.corpus, docs / "policy")
    if not (docs / "laws").exists():
        (docs / "laws").symlink_to(args.laws.resolve(), target_is_directory=True)
    config = make_config(work, work / "index", knowledge.chunk_chars, knowledge.chunk_overlap)
    kb = build_knowledge(load_settings(config))
    start = time.perf_counter()
    report = kb.ingest([Path("docs/policy"), Path("docs/laws")], progress=sys.stderr.isatty())
    print(f"index: {report.summary()} in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    retriever = kb.retriever
    retriever.params.min_relevance = knowledge.min_relevance if args.min_relevance is None else args.min_relevance
    retriever.top_k = knowledge.top_k
    return retriever


def answer(question: str, hits, setting=DEFAULT) -> str:
    """The text the resident reads (without the source lines), as Conversation._answer builds it."""
    from bot.core import texts
    from bot.core.answer import compose

    if not hits:
        return texts.NOT_COVERED
    max_chars, passages = setting
    return compose(question, list(hits), max_chars=max_chars, passages=passages).text


def contains(text: str, gold: str, loose: bool = False) -> bool:
    if loose:  # the corpus's spaces and line breaks are not always kept by splitting and joining
        text, gold = re.sub(r"\s+", "", text), re.sub(r"\s+", "", gold)
    return bool(gold) and gold in text


def main() -> int:
    shared = need_shared()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=Path, default=shared / "policy_qa_dev.jsonl")
    parser.add_argument("--offtopic", type=Path, default=ROOT / "bench/data/offtopic.jsonl")
    parser.add_argument("--corpus", type=Path, default=shared / "policy_corpus.jsonl")
    parser.add_argument("--laws", type=Path, default=shared / "laws")
    parser.add_argument("--min-relevance", type=float, default=None, help="override knowledge.min_relevance")
    parser.add_argument("--examples", type=int, default=5, help="misses to print")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object with every figure")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from bot.core import texts
    from bot.settings import load_settings

    knowledge = load_settings(ROOT / "config.toml").knowledge
    retriever = open_index(args, knowledge)
    questions = read_jsonl(args.queries)
    offtopic = read_jsonl(args.offtopic) if args.offtopic.exists() else []
    retriever.search("预热")  # load the model before timing

    start = time.perf_counter()
    hits = [retriever.search(q["question"]) for q in questions]
    off_hits = [retriever.search(q["question"]) for q in offtopic]
    search_s = time.perf_counter() - start

    table = []
    for setting in GRID:
        answers = [answer(q["question"], h, setting) for q, h in zip(questions, hits)]
        table.append(dict(setting=setting,
                          gold=mean(contains(a, q["answer"]) for a, q in zip(answers, questions)),
                          loose=mean(contains(a, q["answer"], loose=True) for a, q in zip(answers, questions)),
                          chars=mean(len(a) for a, h in zip(answers, hits) if h) if any(hits) else 0.0))
    current = next(row for row in table if row["setting"] == DEFAULT)
    answers = [answer(q["question"], h) for q, h in zip(questions, hits)]
    n = len(questions)
    figures = {
        "answer_contains_gold": round(current["gold"], 4),
        "not_covered_correct": round(mean(not h for h in off_hits), 4) if offtopic else None,
        "n": n,
        "n_offtopic": len(offtopic),
        "answer_contains_gold_ignoring_spaces": round(current["loose"], 4),
        "gold_in_hits": round(mean(any(contains(h.text, q["answer"], True) for h in hs)
                                   for q, hs in zip(questions, hits)), 4),
        "dev_not_covered": round(mean(a == texts.NOT_COVERED for a in answers), 4),
        "mean_answer_chars": round(current["chars"], 1),
        "min_relevance": retriever.params.min_relevance,
        "top_k": retriever.top_k,
        "search_ms_per_question": round(1000 * search_s / max(n + len(offtopic), 1), 1),
        "best_setting": dict(zip(("max_chars", "passages"),
                                 max(table, key=lambda r: (round(r["gold"], 4), -r["chars"]))["setting"])),
    }
    figures["misses"] = miss_reasons(questions, answers, hits)
    print_report(figures, table, questions, answers, hits, args.examples)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    return 0


def miss_reasons(questions, answers, hits) -> dict[str, int]:
    """Count the misses by where they go wrong: retrieval, or the choice of sentences."""
    reasons: dict[str, int] = {}
    for q, a, hs in zip(questions, answers, hits):
        gold = q["answer"]
        if contains(a, gold):
            continue
        rank = next((i for i, h in enumerate(hs) if contains(h.text, gold, loose=True)), None)
        if not hs:
            reason = "no hit above the threshold"
        elif rank is None:
            reason = "gold in no retrieved passage (not retrieved, or split across chunks)"
        elif len(gold) > DEFAULT[0]:
            reason = f"gold longer than max_chars={DEFAULT[0]}"
        elif rank >= DEFAULT[1]:
            reason = f"gold only in passage {rank + 1} (compose reads {DEFAULT[1]})"
        else:
            reason = "gold in a passage compose read: other sentences chosen, or the gold cut short"
        reasons[reason] = reasons.get(reason, 0) + 1
    return dict(sorted(reasons.items(), key=lambda kv: -kv[1]))


def print_report(figures, table, questions, answers, hits, examples: int) -> None:
    print(f"answer_contains_gold {figures['answer_contains_gold']:.3f} (ignoring spaces "
          f"{figures['answer_contains_gold_ignoring_spaces']:.3f}; gold inside a retrieved passage "
          f"{figures['gold_in_hits']:.3f}) over n={figures['n']} dev questions; "
          f"dev answered 'not covered' {figures['dev_not_covered']:.3f}")
    if figures["not_covered_correct"] is not None:
        print(f"not_covered_correct {figures['not_covered_correct']:.3f} over {figures['n_offtopic']} off-topic "
              f"questions (min_relevance {figures['min_relevance']}, top_k {figures['top_k']})")
    print(f"mean answer length {figures['mean_answer_chars']} chars; "
          f"search {figures['search_ms_per_question']} ms/question")
    print("\ncompose settings on the same hits (best first; * = current defaults):")
    print(f"  {'max_chars':>9s} {'passages':>8s} {'gold':>7s} {'loose':>7s} {'chars':>7s}")
    shown = sorted(table, key=lambda r: (-r["gold"], r["chars"]))[:12]
    for row in shown + [r for r in table if r["setting"] == DEFAULT and r not in shown]:
        c, p = row["setting"]
        mark = "*" if row["setting"] == DEFAULT else " "
        print(f"{mark} {c:>9d} {p:>8d} {row['gold']:>7.3f} {row['loose']:>7.3f} {row['chars']:>7.1f}")
    misses = [(q, a, h) for q, a, h in zip(questions, answers, hits) if not contains(a, q["answer"])]
    print("\nwhy answers miss the gold (share of all dev questions):")
    for reason, count in figures["misses"].items():
        print(f"  {count / max(len(questions), 1):.3f}  {reason}")
    if misses and examples:
        print(f"\n{len(misses)} misses; for example:")
        for q, a, h in misses[:examples]:
            where = "in a hit" if any(contains(x.text, q["answer"], True) for x in h) else "not retrieved"
            print(f"- Q: {q['question'][:60]}\n  gold ({where}): {q['answer'][:80]}\n  answer: {a[:120]}")


if __name__ == "__main__":
    sys.exit(main())
