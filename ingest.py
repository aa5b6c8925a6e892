"""(Re-)ingest the knowledge base: python ingest.py [--config PATH] [PATH ...]

Prints `added N, updated N, unchanged N, removed N, failed N`; exits 0 when every
file was ingested, 1 when some failed (the rest is indexed, the index stays
consistent), 2 on usage or configuration errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot.errors import BotError, ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ingest.py", description="Ingest knowledge documents into the search index.")
    parser.add_argument("--config", help="config file (default: config.toml of the project)")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: knowledge.docs_dir)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--progress", action="store_true", default=None, help="always show a progress bar")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from bot.app import build_knowledge
    from bot.settings import load_settings

    try:
        settings = load_settings(args.config)
        kb = build_knowledge(settings)
        report = kb.ingest(args.paths or None, progress=args.progress, base=Path.cwd())
    except ConfigError as exc:
        print(f"ingest.py: {exc}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"ingest.py: {exc}", file=sys.stderr)
        return 2
    for source, reason in report.failed:
        print(f"failed: {source}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
