"""Alembic environment: always handed a live connection by `medvault.db.engine.migrate`."""

from alembic import context

from medvault.db.schema import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
