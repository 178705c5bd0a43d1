"""The embedded broker: a kombu transport on one SQLite file, for one machine without Redis.

kombu's own SQLAlchemy and filesystem transports forget a message once a worker has taken it,
so a worker killed mid-task (SIGKILL, OOM) loses the task. Here a taken message is only leased:
it stays in the table, invisible until `visibility_timeout` passes, and is deleted when the task
is acknowledged (`task_acks_late`), as with Redis. `release_leases()` makes every taken message
visible again at once; the embedded supervisor calls it before it (re)starts its worker, when no
other worker can hold one.

URL `sqlite://`, with the file in the transport options: `{"path": "var/broker.sqlite"}`.
"""

import json
import sqlite3
import threading
import time
from pathlib import Path
from queue import Empty

from kombu.transport import TRANSPORT_ALIASES, virtual

SCHEMA = """
create table if not exists message (
    id integer primary key autoincrement,
    queue text not null,
    tag text not null,
    payload text not null,
    visible_at real not null default 0
);
create index if not exists message_queue on message (queue, visible_at, id);
create index if not exists message_tag on message (tag);
"""


def connect(path: str | Path) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.execute("pragma journal_mode=wal")
    connection.executescript(SCHEMA)
    return connection


def release_leases(path: str | Path) -> int:
    """Make every taken, unacknowledged message visible now; returns how many."""
    connection = connect(path)
    try:
        return connection.execute("update message set visible_at = 0 where visible_at > 0").rowcount
    finally:
        connection.close()


class QoS(virtual.QoS):
    def ack(self, delivery_tag: str) -> None:
        self.channel.forget(delivery_tag)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:
            self.channel.unlease(delivery_tag)
        else:
            self.channel.forget(delivery_tag)
        self._quick_ack(delivery_tag)


class Channel(virtual.Channel):
    QoS = QoS
    do_restore = True

    def __init__(self, connection, **kwargs) -> None:
        super().__init__(connection, **kwargs)
        options = connection.client.transport_options
        self.visibility_timeout = float(options.get("visibility_timeout", 3600))
        self._db = connect(options.get("path", "broker.sqlite"))
        self._lock = threading.Lock()

    def _put(self, queue: str, message: dict, **kwargs) -> None:
        tag = message["properties"]["delivery_tag"]
        with self._lock:
            self._db.execute(
                "insert into message (queue, tag, payload) values (?, ?, ?)",
                (queue, tag, json.dumps(message)),
            )

    def _get(self, queue: str, timeout=None) -> dict:
        now = time.time()
        with self._lock:
            self._db.execute("begin immediate")
            try:
                row = self._db.execute(
                    "select id, payload from message where queue = ? and visible_at <= ? "
                    "order by id limit 1",
                    (queue, now),
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "update message set visible_at = ? where id = ?",
                        (now + self.visibility_timeout, row[0]),
                    )
            finally:
                self._db.execute("commit")
        if row is None:
            raise Empty()
        return json.loads(row[1])

    def _restore(self, message) -> None:
        """A message taken but not finished goes back where it was, not in a copy."""
        self.unlease(message.delivery_tag)

    def unlease(self, tag: str) -> None:
        with self._lock:
            self._db.execute("update message set visible_at = 0 where tag = ?", (tag,))

    def forget(self, tag: str) -> None:
        with self._lock:
            self._db.execute("delete from message where tag = ?", (tag,))

    def _size(self, queue: str) -> int:
        with self._lock:
            return self._db.execute(
                "select count(*) from message where queue = ? and visible_at <= ?",
                (queue, time.time()),
            ).fetchone()[0]

    def _purge(self, queue: str) -> int:
        with self._lock:
            return self._db.execute(
                "delete from message where queue = ? and visible_at = 0", (queue,)
            ).rowcount

    def _delete(self, queue: str, *args, **kwargs) -> None:
        with self._lock:
            self._db.execute("delete from message where queue = ?", (queue,))

    def close(self) -> None:
        super().close()
        self._db.close()


class Transport(virtual.Transport):
    Channel = Channel
    polling_interval = 0.5
    default_port = 0
    driver_type = "sqlite"
    driver_name = "sqlite3"
    implements = virtual.Transport.implements.extend(asynchronous=False, exchange_type={"direct"})

    def driver_version(self) -> str:
        return sqlite3.sqlite_version


TRANSPORT_ALIASES.setdefault("sqlite", "worker.broker:Transport")
