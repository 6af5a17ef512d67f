"""Alembic environment. OTPHub runs migrations itself (``otphub init`` and server start),
handing Alembic an open connection inside its own transaction; see ``otphub.db.migrate``."""

from alembic import context

from otphub.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
