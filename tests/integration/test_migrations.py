"""Migrations upgrade and downgrade cleanly, on SQLite and on a real PostgreSQL server."""

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
    "tenant_settings",
    "webhook_delivery",
    "node_lease",
    "transcript_search",
}


def all_tables(url: str) -> set[str]:
    """Every table, the search index's hand-made ones (SQLite FTS5) included."""
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    return {name for name in all_tables(url) if migrate.is_managed(name)}


def test_upgrade_downgrade_upgrade(database_url):
    url = database_url
    assert migrate.current(url) is None
    migrate.upgrade(url)
    assert migrate.is_current(url)
    assert tables(url) == TABLES
    migrate.downgrade(url, "base")
    assert all_tables(url) == set()
    migrate.upgrade(url)
    assert tables(url) == TABLES


def test_models_and_migrations_agree(database_url):
    """A model change without a migration fails here (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import admin_api.models  # noqa: F401

    migrate.upgrade(database_url)
    engine = create_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": migrate.include_name}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_cli_upgrades_and_downgrades(database_url, monkeypatch):
    """`callscribe db upgrade|downgrade|current` against the configured database."""
    from typer.testing import CliRunner

    from callscribe.cli import app

    monkeypatch.setenv("CALLSCRIBE_DATABASE_URL", database_url)
    runner = CliRunner()
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert migrate.head() in upgraded.output and tables(database_url) == TABLES
    first = migrate.current(database_url)
    downgraded = runner.invoke(app, ["db", "downgrade", "--", "-1"])
    assert downgraded.exit_code == 0, downgraded.output
    assert migrate.current(database_url) not in (None, first)
    assert runner.invoke(app, ["db", "downgrade", "base"]).exit_code == 0
    assert all_tables(database_url) == set()
    current = runner.invoke(app, ["db", "current"])
    assert current.output.strip() == f"database base, code {migrate.head()}"


def test_sqlite_folder_is_made_on_a_fresh_checkout(tmp_path):
    """The default database lives in ./var, which a fresh clone does not have."""
    url = f"sqlite:///{tmp_path / 'fresh' / 'var' / 'callscribe.db'}"
    migrate.upgrade(url)
    assert (tmp_path / "fresh" / "var" / "callscribe.db").is_file()
    assert migrate.is_current(url)
