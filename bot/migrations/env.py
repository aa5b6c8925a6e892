"""Alembic environment: migrations run on the connection the service hands in."""

from alembic import context

from bot.storage.db import Base
from bot.storage import (answer_log, callback_payloads, curated, dialogue, intent_feedback, jobs,  # noqa: F401
                         outbox, update_claims, wechat_shared)
from bot.tickets import models  # noqa: F401
from bot.console import models as console_models  # noqa: F401
from bot.casework import models as casework_models  # noqa: F401
from bot.retrieval import shared_layout  # noqa: F401  (the shared index's tables)

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through bot.storage.migrate.upgrade()")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
