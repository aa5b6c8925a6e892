"""Search the knowledge base from the shell.

    python -m bot.retrieval.search [--config PATH] [-k K] [--json] [--staff] [QUERY]

Without QUERY, reads one query per line from stdin. With --json, prints one
object per query: {"query", "hits": [{"source", "title", "section", "score", "text"}]}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from bot.errors import BotError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.retrieval.search", description="Search the knowledge base.")
    parser.add_argument("--config", help="config file (default: config.toml of the project)")
    parser.add_argument("-k", type=int, default=None, help="number of hits (default: knowledge.top_k)")
    parser.add_argument("--json", action="store_true", help="one JSON object per query")
    parser.add_argument("--staff", action="store_true",
                        help="search as staff: staff-only documents included (default: as a resident)")
    parser.add_argument("query", nargs="*", help="the query (default: one per line from stdin)")
    args = parser.parse_args(argv)
    if args.k is not None and args.k < 1:
        parser.error("-k must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from bot.app import build_knowledge
    from bot.settings import load_settings

    try:
        kb = build_knowledge(load_settings(args.config))
        kb.ensure_ingested()
        if kb.is_empty():
            print("search: the knowledge index is empty; run python ingest.py first", file=sys.stderr)
            return 2
        queries = [" ".join(args.query)] if args.query else (line.strip() for line in sys.stdin)
        for query in queries:
            if not query:
                continue
            hits = kb.retriever.search(query, args.k, audience="staff" if args.staff else "public")
            if args.json:
                print(json.dumps({"query": query, "hits": [
                    {"source": h.source, "title": h.title, "section": h.section, "date": h.date,
                     "score": h.score, "text": h.text} for h in hits]}, ensure_ascii=False), flush=True)
            else:
                _print_plain(query, hits)
    except BotError as exc:
        print(f"search: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _print_plain(query: str, hits) -> None:
    print(f"? {query}")
    if not hits:
        print("  (知识库中没有相关内容)")
    for i, h in enumerate(hits, 1):
        where = " > ".join(p for p in (h.title, h.section) if p)
        date = f" [{h.date}]" if h.date else ""
        print(f"  {i}. {where}{date}  ({h.source}, {h.score:.2f})")
        print("     " + h.text.replace("\n", " ")[:160])
    print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
