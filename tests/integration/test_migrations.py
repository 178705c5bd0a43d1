"""Migrations upgrade and downgrade cleanly (SQLite here; PostgreSQL with its server)."""

from sqlalchemy import create_engine, inspect

from admin_api import migrate

TABLES = {
    "tenant",
    "api_key",
    "hotword_list",
    "hotword_list_version",
    "audit_event",
    "call",
    "transcript_segment",
    "job",
}


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_sqlite_upgrade_downgrade_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert migrate.current(url) is None
    migrate.upgrade(url)
    assert migrate.is_current(url)
    assert tables(url) == TABLES
    migrate.downgrade(url, "base")
    assert tables(url) == set()
    migrate.upgrade(url)
    assert tables(url) == TABLES


def test_models_and_migrations_agree(tmp_path):
    """A model change without a migration fails here (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import admin_api.models  # noqa: F401

    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert differences == []
