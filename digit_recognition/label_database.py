"""The label store's metadata database: schema, engine and migrations.

One URL chooses the database (`LABELS_DATABASE_URL`):

- SQLite (the default, a file inside LABELS_DIR) for one machine: WAL journal,
  so readers never wait for the writer; `synchronous=FULL`, so a committed row
  survives a power cut like the fsynced image it points to; writes open with
  BEGIN IMMEDIATE, so two writers queue on the busy timeout instead of one
  failing on a lock upgrade.
- PostgreSQL (Cloud SQL on Cloud Run) for several instances, through psycopg 3;
  a plain ``postgresql://`` URL gets that driver.

The schema is created and changed only by the Alembic migrations in
`label_migrations/`. `migrate()` brings a database to the newest revision under
a lock (a PostgreSQL advisory lock, or SQLite's write lock), so workers and
instances starting together neither race nor repeat it; when the database is
already current it is one small query.
"""
from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Column, DateTime, Float, Index, Integer,
                        MetaData, SmallInteger, String, Table, Text, UniqueConstraint, create_engine,
                        event, text)
from sqlalchemy.engine import Connection, Engine, make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "label_migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# Execution option that makes a SQLite transaction take the write lock at BEGIN.
WRITE = {"label_store_write": True}
_MIGRATION_LOCK_KEY = 0x6C6162656C73  # "labels": the PostgreSQL advisory lock key

metadata = MetaData()

samples = Table(
    "samples", metadata,
    Column("id", String(32), primary_key=True),  # uuid4 hex
    Column("label", SmallInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),  # UTC, stored without zone
    Column("prediction", SmallInteger),  # null: the model gave no digit (e.g. "not a digit")
    Column("confidence", Float),
    Column("model_version", String(200)),
    Column("model_verdict", String(32)),  # the /predict verdict at submit time, when known
    Column("disagreed", Boolean, nullable=False),  # prediction given and != label (indexed filter)
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("byte_size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),  # of the stored PNG
    Column("previous_label", SmallInteger),
    Column("relabeled_at", DateTime),
    Column("extra", Text),  # JSON object: other keys an imported sidecar carried
    CheckConstraint("label >= 0 AND label <= 9", name="ck_samples_label_digit"),
    UniqueConstraint("sha256", "label", name="uq_samples_sha256_label"),
    # Every listing is "newest first" within a filter, one index per filter shape.
    Index("ix_samples_created", "created_at", "id"),
    Index("ix_samples_label_created", "label", "created_at", "id"),
    Index("ix_samples_disagreed_created", "disagreed", "created_at", "id"),
    Index("ix_samples_label_disagreed_created", "label", "disagreed", "created_at", "id"),
)

# One row (id 1): how many samples and bytes are stored. Updated in the same
# transaction as each insert and delete, so the total is exact, O(1) to read,
# and the row lock makes the LABELS_MAX_SAMPLES check exact under concurrency.
store_totals = Table(
    "store_totals", metadata,
    Column("id", Integer, primary_key=True),
    Column("samples", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
)


def sqlite_url_for(labels_dir: str | os.PathLike, name: str) -> str:
    return f"sqlite:///{Path(labels_dir).resolve() / name}"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_database_engine(url: str) -> Engine:
    """An Engine for `url`, set up for the label store (see the module docstring)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        _configure_sqlite(engine)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    # A forked worker must not share its parent's connections (gunicorn forks
    # after importing when preload is on); the parent keeps using its own.
    engine_ref = weakref.ref(engine)

    def _forget_parent_connections() -> None:
        child_engine = engine_ref()
        if child_engine is not None:
            child_engine.dispose(close=False)

    os.register_at_fork(after_in_child=_forget_parent_connections)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's BEGIN below be the only transaction control
        # (pysqlite's own would defer it and break BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection):
        immediate = connection.get_execution_options().get("label_store_write")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


# Alembic runs a migration through module-level proxies (alembic.context, alembic.op)
# that one upgrade at a time may own per process: two stores migrating at once in
# one process (the web app opens its store on first use, from whichever thread
# gets there; tests run several apps) would run one's migration on the other's
# connection. Between processes the database's own locks decide (below).
_MIGRATING = threading.Lock()


def migrate(engine: Engine) -> bool:
    """Bring the database to the newest revision; True if anything ran."""
    from alembic import command

    head = head_revision()
    with engine.connect() as connection:
        if current_revision(connection) == head:
            return False
    with _MIGRATING, engine.connect() as connection:
        connection = connection.execution_options(**WRITE)
        with connection.begin():
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            if current_revision(connection) == head:  # another process did it meanwhile
                return False
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    return True
