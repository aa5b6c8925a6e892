"""Answer benchmark: does the extractive answer contain the gold answer, and does off-topic get "not covered"?

    python bench/answers.py [--queries FILE] [--offtopic FILE] [--corpus FILE] [--laws DIR] [--json]
    python bench/answers.py --leave-out [--folds N] [--json]
    python bench/answers.py --near-domain [--covered FILE] [--uncovered FILE] [--json]

Answers each question exactly as the Conversation does (extractive mode): the
project's retriever with the configured top_k, relevance threshold and
answerability check (config.toml [knowledge]), then bot.core.answer.compose over
its hits, or "not covered" when there are none. Reuses the index bench/retrieval.py
builds and caches in bench/.cache (notices as plain .txt, the title on the first line).
Also measures compose's parameters (max_chars, passages read) on the same hits, so a
change to the defaults can be judged on numbers, and reports answer_contains_gold
cross-validated: the setting chosen on --folds - 1 folds, measured on the one left
out, mean over folds ("cv"). The colloquial questions of bench/data/colloquial*.jsonl
get their own answer_contains_gold.

--leave-out adds the answerability trade-off curve: at each operating point
(answerability off; min_topic 0.70..0.80 with the configured match weight and the
named-item check; the item check off at the shipped min_topic; * = shipped) it prints
  answered      share of the dev questions with hits, every document present (full index)
  gold          answer_contains_gold on those hits (full index)
  offtopic_nc   share of bench/data/offtopic.jsonl answered "not covered" (full index)
  leave_out_nc  share of the dev questions answered "not covered" when the documents that
                answer them are not in the index: the questions are split into --folds folds
                (fixed seed); each fold is asked of an index without every notice whose text
                holds (ignoring whitespace) a gold answer of the fold; the laws stay in.
                Each fold's index is cached in bench/.cache; its vectors come from the full index.
Ideal: answered and gold as without the check, both not-covered rates 1.

--near-domain measures the same points on the project's sample knowledge base
(knowledge/, its own cached index) instead of the policy corpus:
  answered      share of bench/data/sample_kb_questions.jsonl (covered) with hits
  right_file    share of them whose first hit is from the question's "source" file
  uncovered_nc  share of bench/data/near_domain_uncovered.jsonl answered "not covered"
Each point's hits come from one scoring per question and the product's own
answerability check; they are checked against plain searches at the shipped point.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from statistics import mean

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answerability import (SEED, answering_docs, build_kb, check_same_as_search, fold_kb,  # noqa: E402
                                 folds, hits_per_point, log, operating_points, sample_kb)
from bench.common import ROOT, corpus_arguments, need_shared, read_jsonl  # noqa: E402
from bench.fusion import colloquial_questions, folds_of  # noqa: E402
from bench.retrieval import corpus_work  # noqa: E402

DEFAULT = (380, 3)  # compose's defaults: max_chars of the sentence run, passages read (at most 3)
GRID = [(c, p) for c in (160, 260, 320, 360, 380, 400) for p in (1, 2, 3)]


def open_index(args, knowledge):
    """The project's knowledge base over the cached benchmark index (built by bench/retrieval.py, or here)."""
    work = corpus_work(args.corpus, args.laws, knowledge.chunk_chars, knowledge.chunk_overlap)
    return build_kb(work, knowledge, [Path("docs/policy"), Path("docs/laws")], min_relevance(args, knowledge))


def min_relevance(args, knowledge) -> float:
    return knowledge.min_relevance if args.min_relevance is None else args.min_relevance


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


def rate(flags) -> float | None:
    flags = list(flags)
    return round(mean(flags), 4) if flags else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus_arguments(parser)
    parser.add_argument("--offtopic", type=Path, default=ROOT / "bench/data/offtopic.jsonl")
    parser.add_argument("--min-relevance", type=float, default=None, help="override knowledge.min_relevance")
    parser.add_argument("--examples", type=int, default=5, help="misses to print")
    parser.add_argument("--leave-out", action="store_true",
                        help="add the answerability trade-off curve with each fold's answering documents left out")
    parser.add_argument("--folds", type=int, default=5,
                        help="folds of the dev questions for the cross-validated figures (and --leave-out's indexes)")
    parser.add_argument("--near-domain", action="store_true",
                        help="only the operating points on the sample knowledge base (about a minute)")
    parser.add_argument("--covered", type=Path, default=ROOT / "bench/data/sample_kb_questions.jsonl")
    parser.add_argument("--uncovered", type=Path, default=ROOT / "bench/data/near_domain_uncovered.jsonl")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object with every figure")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from bot.core import texts
    from bot.settings import load_settings

    knowledge = load_settings(ROOT / "config.toml").knowledge
    if args.near_domain:  # the project's own files: runs without ../shared
        return near_domain(args, knowledge)
    need_shared()
    kb = open_index(args, knowledge)
    retriever = kb.retriever
    questions = read_jsonl(args.queries)
    offtopic = read_jsonl(args.offtopic) if args.offtopic.exists() else []
    retriever.search("预热")  # load the model before timing

    start = time.perf_counter()
    hits = [retriever.search(q["question"]) for q in questions]
    off_hits = [retriever.search(q["question"]) for q in offtopic]
    search_s = time.perf_counter() - start

    table = []
    per_setting = {}
    for setting in GRID:
        answers = [answer(q["question"], h, setting) for q, h in zip(questions, hits)]
        # ignoring whitespace: plain-text notices break the line where a gold answer spanning two paragraphs has a space
        per_setting[setting] = np.array([contains(a, q["answer"], loose=True) for a, q in zip(answers, questions)],
                                        dtype=float)
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
    figures["cv"] = cross_validated(per_setting, args.folds)
    colloquial = colloquial_questions()
    if colloquial:
        c_hits = [retriever.search(q["question"]) for q in colloquial]
        figures["colloquial"] = {
            "n": len(colloquial),
            "answer_contains_gold": rate(contains(answer(q["question"], h), q["answer"], loose=True)
                                         for q, h in zip(colloquial, c_hits)),
            "gold_in_hits": rate(any(contains(h.text, q["answer"], True) for h in hs)
                                 for q, hs in zip(colloquial, c_hits)),
            "not_covered": rate(not h for h in c_hits),
        }
    figures["misses"] = miss_reasons(questions, answers, hits)
    print_report(figures, table, questions, answers, hits, args.examples)
    if args.leave_out:
        points = operating_points(knowledge, retriever.params.answerability)
        figures["leave_out"] = leave_out(args, knowledge, kb, points, questions, offtopic, (hits, off_hits))
        print_points(f"answerability trade-off: full index, and {args.folds} folds with their answering "
                     f"documents left out (n={len(questions)})", figures["leave_out"]["curve"], points,
                     answered="answered", gold="answer_contains_gold", offtopic_nc="not_covered_offtopic",
                     leave_out_nc="leave_out_not_covered")
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    return 0


def cross_validated(per_setting: dict[tuple, np.ndarray], k: int) -> dict:
    """answer_contains_gold (ignoring spaces) with compose's setting chosen on k-1 folds, measured on the fold left out."""
    parts, chosen = [], []
    n = len(next(iter(per_setting.values())))
    for held in folds_of(n, k):
        train = np.setdiff1d(np.arange(n), held)
        best = max(GRID, key=lambda st: (round(float(per_setting[st][train].mean()), 4), st == DEFAULT))
        chosen.append(best)
        parts.append(float(per_setting[best][held].mean()))
    return {"folds": k, "answer_contains_gold_ignoring_spaces": round(float(np.mean(parts)), 4),
            "chosen_per_fold": [dict(zip(("max_chars", "passages"), c)) for c in chosen]}


def leave_out(args, knowledge, kb, points, questions, offtopic, searched) -> dict:
    """Each operating point on the full index, and on K indexes that lack the documents answering a fold.

    searched: search's own hits of the dev and off-topic questions (full index), to check the points against.
    """
    start = time.perf_counter()
    retriever = kb.retriever
    shipped = next(i for i, p in enumerate(points) if p.shipped)
    dev = hits_per_point(retriever, questions, points, "full index, dev")
    off = hits_per_point(retriever, offtopic, points, "full index, off-topic")
    check_same_as_search(retriever, questions, dev[shipped], searched[0])
    check_same_as_search(retriever, offtopic, off[shipped], searched[1])
    corpus = read_jsonl(args.corpus)
    not_covered: list[list[bool]] = [[] for _ in points]
    dropped_docs = []
    for fold, members in enumerate(folds(len(questions), args.folds)):
        asked = [questions[i] for i in members]
        dropped = answering_docs(corpus, asked)
        dropped_docs.append(len(dropped))
        log(f"fold {fold + 1}/{args.folds}: {len(asked)} questions, {len(dropped)} of {len(corpus)} notices left out")
        fold_retriever = fold_kb(kb, args.corpus, args.laws, knowledge, fold, args.folds, dropped,
                                 min_relevance(args, knowledge)).retriever
        hits = hits_per_point(fold_retriever, asked, points, f"fold {fold + 1}")
        check_same_as_search(fold_retriever, asked, hits[shipped])
        for row, per_question in zip(not_covered, hits):
            row.extend(not h for h in per_question)
    curve = [dict(min_topic=p.min_topic, items=p.items,
                  answered=rate(bool(h) for h in dev[i]),
                  answer_contains_gold=rate(contains(answer(q["question"], h), q["answer"])
                                            for q, h in zip(questions, dev[i])),
                  not_covered_offtopic=rate(not h for h in off[i]),
                  leave_out_not_covered=rate(not_covered[i]))
             for i, p in enumerate(points)]
    return {"folds": args.folds, "seed": SEED, "n": len(questions), "dropped_docs": dropped_docs,
            "curve": curve, "shipped": curve[shipped], "seconds": round(time.perf_counter() - start, 1)}


def near_domain(args, knowledge) -> int:
    """The operating points on the sample knowledge base: covered questions from the right file, others not covered."""
    retriever = sample_kb(knowledge, min_relevance(args, knowledge)).retriever
    covered, uncovered = read_jsonl(args.covered), read_jsonl(args.uncovered)
    points = operating_points(knowledge, retriever.params.answerability)
    shipped = next(i for i, p in enumerate(points) if p.shipped)
    cov = hits_per_point(retriever, covered, points, "covered")
    unc = hits_per_point(retriever, uncovered, points, "uncovered")
    check_same_as_search(retriever, covered, cov[shipped])
    check_same_as_search(retriever, uncovered, unc[shipped])
    curve = [dict(min_topic=p.min_topic, items=p.items,
                  answered=rate(bool(h) for h in cov[i]),
                  right_file=rate(bool(h) and Path(h[0].source).name == q["source"] for q, h in zip(covered, cov[i])),
                  uncovered_not_covered=rate(not h for h in unc[i]))
             for i, p in enumerate(points)]
    print_points(f"sample knowledge base: {len(covered)} covered, {len(uncovered)} near-domain uncovered questions",
                 curve, points, answered="answered", right_file="right_file", uncovered_nc="uncovered_not_covered")
    if args.json:
        print(json.dumps({"near_domain": {"n_covered": len(covered), "n_uncovered": len(uncovered),
                                          "curve": curve, "shipped": curve[shipped]}}, ensure_ascii=False))
    return 0


def print_points(title: str, curve: list[dict], points, **columns: str) -> None:
    """One row per operating point; columns maps a header to the row's key."""
    print(f"\n{title}; * = shipped (config.toml [knowledge]):")
    print(f"  {'min_topic':>9s} {'items':>5s}" + "".join(f" {h:>12s}" for h in columns))
    for point, row in zip(points, curve):
        cells = "".join(f" {'-' if row[k] is None else format(row[k], '.3f'):>12s}" for k in columns.values())
        print(f"{'*' if point.shipped else ' '} {point.label()}{cells}")


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
    cv = figures["cv"]
    print(f"answer_contains_gold ignoring spaces, cross-validated {cv['answer_contains_gold_ignoring_spaces']:.3f} "
          f"({cv['folds']} folds: compose's "
          f"setting chosen on the other folds)")
    if figures.get("colloquial"):
        c = figures["colloquial"]
        print(f"colloquial questions (n={c['n']}): answer_contains_gold {c['answer_contains_gold']:.3f}, gold inside "
              f"a retrieved passage {c['gold_in_hits']:.3f}, answered 'not covered' {c['not_covered']:.3f}")
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
