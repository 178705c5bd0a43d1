"""The embedded broker: a taken message is leased, not lost; acknowledged, it is gone; a dead
worker's lease runs out (or is released) and the message is delivered again."""

import time

import pytest
from kombu import Connection

from worker import broker


@pytest.fixture
def connection(tmp_path):
    path = tmp_path / "broker.sqlite"
    options = {"path": str(path), "visibility_timeout": 1.0}
    with Connection("sqlite://localhost", transport_options=options) as conn:
        yield conn, path


def test_a_message_is_leased_until_acknowledged(connection):
    conn, _ = connection
    queue = conn.SimpleQueue("tasks")
    queue.put({"n": 1})
    message = queue.get(timeout=2)
    assert message.payload == {"n": 1}
    with pytest.raises(queue.Empty):
        queue.get(timeout=0.2)  # leased: nobody else gets it
    message.ack()
    time.sleep(1.2)
    with pytest.raises(queue.Empty):
        queue.get(timeout=0.2)  # acknowledged: gone for good
    queue.close()


def test_a_message_of_a_dead_worker_comes_back(connection, tmp_path):
    conn, path = connection
    queue = conn.SimpleQueue("tasks")
    queue.put({"n": 2})
    assert queue.get(timeout=2).payload == {"n": 2}  # taken, never acknowledged
    time.sleep(1.2)  # past the visibility timeout
    again = queue.get(timeout=2)
    assert again.payload == {"n": 2}
    assert broker.release_leases(path) == 1  # or released at once by the supervisor
    assert queue.get(timeout=2).payload == {"n": 2}
    queue.close()


def test_a_rejected_message_is_requeued_in_place(connection):
    conn, _ = connection
    queue = conn.SimpleQueue("tasks")
    queue.put({"n": 3})
    queue.get(timeout=2).reject(requeue=True)
    message = queue.get(timeout=2)
    assert message.payload == {"n": 3}
    message.ack()
    assert queue.qsize() == 0
    queue.close()
