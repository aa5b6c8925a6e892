"""Logging set-up: one format, personal data masked in every line."""

from __future__ import annotations

import logging
import os

from bot.core.privacy import install_log_masking


def setup_logging(quiet: bool = False) -> None:
    level = os.environ.get("BOT_LOG_LEVEL", "WARNING" if quiet else "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "chromadb", "sentence_transformers", "urllib3", "telegram.ext.Updater"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_masking()
