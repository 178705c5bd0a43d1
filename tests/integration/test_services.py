"""The real servers behind the integration tests do what the tests rely on."""

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.services import PostgresServer, RedisServer


def test_redis_stops_and_comes_back_on_the_same_port(redis_server: RedisServer, redis_url):
    port = redis_server.port
    assert redis_url == f"redis://127.0.0.1:{port}/0"
    assert redis_server.ping()
    assert redis_server.command("SET greeting hello").startswith(b"+OK")

    redis_server.stop()
    assert not redis_server.running
    assert not redis_server.ping()
    with pytest.raises(ConnectionRefusedError):
        redis_server.command("PING")

    redis_server.start()
    assert redis_server.port == port
    assert redis_server.ping()
    assert redis_server.command("EXISTS greeting") == b":0\r\n"  # no persistence


def test_postgres_answers_on_its_url(postgres_server: PostgresServer):
    assert postgres_server.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = create_engine(postgres_server.url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("select 1")).scalar() == 1
            assert connection.execute(text("show server_encoding")).scalar() == "UTF8"
    finally:
        engine.dispose()


def test_each_postgres_url_is_a_fresh_empty_database(postgres_server, postgres_url):
    name = postgres_url.rsplit("/", 1)[-1]
    assert name != postgres_server.database
    tables = postgres_server.execute(
        "select count(*) from information_schema.tables where table_schema = 'public'", name
    )
    assert tables == [(0,)]
    postgres_server.drop_database(postgres_url)
    with pytest.raises(psycopg.OperationalError):
        postgres_server.execute("select 1", name)
