"""Answers written by a language model from the retrieved passages, checked, with extractive fallback.

    build_writer(settings.llm) -> LangchainWriter   (the core's AnswerWriter port)

Modules: prompt (the messages), redact (personal data out), checks (what an
answer must pass), writer (the call, its time budget and the fallbacks).
"""

from __future__ import annotations

import os

from bot.errors import ConfigError
from bot.llm.writer import LangchainWriter
from bot.settings import LlmSettings

NO_KEY = "not-needed"  # local servers (Ollama, vLLM) ignore the key, but the OpenAI client requires one
MAX_TOKENS = 512  # an answer is at most 600 characters; a Chinese character is about one token


def build_writer(settings: LlmSettings) -> LangchainWriter:
    """Build the writer for [llm]; raises ConfigError when the settings cannot work."""
    match settings.provider:
        case "openai":
            return LangchainWriter(_chat_openai(settings), settings.timeout_seconds, settings.max_passages,
                                   secrets=_secrets(settings))
        case _:
            raise ConfigError(f"llm.provider {settings.provider!r} has no writer (use 'openai', or 'none' for none)")


def _chat_openai(settings: LlmSettings):
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise ConfigError("llm.provider = 'openai' needs langchain-openai: pip install langchain-openai") from exc
    if not settings.model:
        raise ConfigError("llm.model must name the model when llm.provider = 'openai'")
    key = os.environ.get(settings.api_key_env, "")
    if not settings.base_url and not key:
        raise ConfigError(f"llm.base_url is empty (OpenAI's own API) but {settings.api_key_env} is not set")
    return ChatOpenAI(
        model=settings.model,
        base_url=settings.base_url or None,
        api_key=key or NO_KEY,
        temperature=settings.temperature,
        timeout=settings.timeout_seconds,
        max_retries=0,  # a retry would spend the resident's time budget; the extractive answer is ready
        max_tokens=MAX_TOKENS,
        use_responses_api=False,  # OpenAI-compatible servers speak chat completions
    )


def _secrets(settings: LlmSettings) -> list[str]:
    key = os.environ.get(settings.api_key_env, "")
    return [s for s in (key if len(key) >= 8 else "", settings.base_url) if s]


__all__ = ["LangchainWriter", "build_writer"]
