"""智能采集: how well a worker's visit note is read, field by field.

    python bench/visits.py [--data bench/data/visit_notes.jsonl] [--model] [--json] [--misses]

The notes were written for the project in the ways workers write them (dictated,
shorthand, typos, several people, no address), each with what a careful person
extracts by hand. For every field, precision and recall over all notes (micro):

- building: the building the address resolves to (景村里-3), when the note gives one;
- people: who the note describes, by the name it uses (王大爷, 老伴, 孙子);
- ages: (person, age) pairs;
- tags: (person, tag) pairs (独居, 高龄, 残疾, 低保, 特困, 困境儿童, 留守儿童, 失能);
- needs: the services the household needs (送餐上门, 无障碍改造 …);
- problems: the ticket categories of what is broken (供电, 排水 …).

A baseline that only runs the place resolver and the ticket categoriser on the
whole note (what the chat intake alone would give) is printed beside it.
--model categorises with the packaged sentence model as the service does
(default: its keywords only, which needs no model and takes a second).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, read_jsonl  # noqa: E402
from bot.core.visit_note import read_visit  # noqa: E402
from bot.tickets.categories import CategoryClassifier, load_categories  # noqa: E402
from bot.tickets.organisation import PlaceResolver, load_organisation  # noqa: E402

FIELDS = ("building", "people", "ages", "tags", "needs", "problems")


def gold_sets(item: dict) -> dict[str, set]:
    people = item.get("people") or []
    return {"building": {item["building"]} if item.get("building") else set(),
            "people": {p["name"] for p in people},
            "ages": {(p["name"], p["age"]) for p in people if p.get("age") is not None},
            "tags": {(p["name"], t) for p in people for t in p.get("tags") or []},
            "needs": set(item.get("needs") or []),
            "problems": set(item.get("problems") or [])}


def read_sets(reading) -> dict[str, set]:
    return {"building": {reading.building_id} if reading.building_id else set(),
            "people": {p.name for p in reading.people},
            "ages": {(p.name, p.age) for p in reading.people if p.age is not None},
            "tags": {(p.name, t) for p in reading.people for t in p.tags},
            "needs": set(reading.needs),
            "problems": {category for _, category in reading.problems}}


def baseline_sets(note: str, places, categorizer) -> dict[str, set]:
    """The chat intake's own reading: a place and one category for the whole message, nothing else."""
    match = places.resolve(note)
    category = categorizer.classify(note).name
    return {"building": {match.building_id} if match and match.building_id else set(), "people": set(), "ages": set(),
            "tags": set(), "needs": set(), "problems": {category} if category != "其他" else set()}


def score(pairs: list[tuple[dict[str, set], dict[str, set]]]) -> dict[str, dict]:
    out = {}
    for name in FIELDS:
        tp = sum(len(g[name] & r[name]) for g, r in pairs)
        predicted = sum(len(r[name]) for _, r in pairs)
        actual = sum(len(g[name]) for g, _ in pairs)
        precision = tp / predicted if predicted else 1.0
        recall = tp / actual if actual else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
                     "true": tp, "read": predicted, "gold": actual}
    out["notes_all_fields_right"] = round(sum(g == r for g, r in pairs) / len(pairs), 3) if pairs else 0.0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data" / "visit_notes.jsonl")
    parser.add_argument("--model", action="store_true", help="categorise with the packaged model, as the service does")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--misses", action="store_true", help="print each note whose reading differs from the gold")
    args = parser.parse_args()
    items = read_jsonl(args.data)
    places = PlaceResolver(load_organisation(ROOT / "district.toml"))
    embedder = None
    if args.model:
        from bot.app import build_knowledge
        from bot.settings import load_settings

        embedder = build_knowledge(load_settings(None)).embedder
    categorizer = CategoryClassifier(load_categories(ROOT / "categories.toml"), embedder)
    project, baseline = [], []
    for item in items:
        gold = gold_sets(item)
        got = read_sets(read_visit(item["note"], places, categorizer))
        project.append((gold, got))
        baseline.append((gold, baseline_sets(item["note"], places, categorizer)))
        if args.misses and gold != got:
            print(f"--- {item['id']}: {item['note']}")
            for name in FIELDS:
                if gold[name] != got[name]:
                    print(f"  {name}: missing {sorted(gold[name] - got[name], key=str)} "
                          f"extra {sorted(got[name] - gold[name], key=str)}")
    result = {"notes": len(items), "categoriser": "keywords + model" if args.model else "keywords",
              "project": score(project), "baseline_intake_only": score(baseline)}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(f"{len(items)} visit notes; categoriser: {result['categoriser']}")
    print(f"{'field':10} {'precision':>10} {'recall':>8} {'F1':>6}   (baseline P / R)")
    for name in FIELDS:
        p, b = result["project"][name], result["baseline_intake_only"][name]
        print(f"{name:10} {p['precision']:>10.3f} {p['recall']:>8.3f} {p['f1']:>6.3f}   "
              f"({b['precision']:.3f} / {b['recall']:.3f})")
    print(f"notes with every field right: {result['project']['notes_all_fields_right']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
