"""Schema migrations (Alembic) driven from code: `callscribe db upgrade|downgrade|current`."""

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from admin_api.db import make_sqlite_folder

UNMANAGED = ("transcript_search_fts", "ix_transcript_search_text_trgm")
"""Database objects that migration 0007 makes by hand, outside the models: the SQLite FTS5
table (with its shadow tables) and the PostgreSQL trigram index."""


def is_managed(name: str | None) -> bool:
    """Whether Alembic's autogenerate compares `name` with the models."""
    return name is None or not name.startswith(UNMANAGED)


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's `include_name` hook: leave the hand-made search objects alone."""
    return is_managed(name)


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    make_sqlite_folder(url)
    command.upgrade(_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(_config(url), revision)


def revision(url: str, message: str) -> None:
    command.revision(_config(url), message=message, autogenerate=True)


def current(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    return ScriptDirectory.from_config(_config("sqlite://")).get_current_head()


def is_current(url: str) -> bool:
    return current(url) == head()
