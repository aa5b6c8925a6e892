"""The project's exception tree.

    BotError
    ├── ConfigError            a bad or missing setting; CLIs exit 2
    ├── LoadError              one knowledge file could not be read (reason in the message)
    ├── IndexError_            the knowledge index is missing or unusable
    │   └── IndexUnavailable   the vector store cannot be reached right now
    └── EmbeddingError         the embedding model could not be loaded

Library errors are wrapped with ``raise OurError(...) from exc``; user-facing
text is produced only at the edges (CLIs, channels).
"""


class BotError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(BotError):
    """A setting is missing, malformed or points at something that does not exist."""


class LoadError(BotError):
    """A knowledge file could not be turned into text; the message says why."""


class IndexError_(BotError):
    """The knowledge index is missing or inconsistent."""


class IndexUnavailable(IndexError_):
    """The vector store cannot be reached right now (e.g. the Chroma server is down)."""


class EmbeddingError(BotError):
    """The embedding model could not be located or loaded."""
