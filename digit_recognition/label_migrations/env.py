"""Alembic environment for the label store: always run on the connection
`label_database.migrate()` hands over (already in a locked transaction), so a
migration is all-or-nothing on both SQLite and PostgreSQL."""
from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run label-store migrations with `python -m digit_recognition labels migrate`")
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
