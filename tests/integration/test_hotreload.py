"""Hot-word reload across real processes on a real Redis: edits reach every ASR process over
the bus; with Redis down the admin API keeps working and every process keeps its last list;
when Redis is back every process converges on the newest version."""

import time

import pytest

from bench.hotreload import ReloadCluster

PHRASES = ["Xiaomeng Zhao", "CRISPR"]


@pytest.fixture
def cluster(redis_server, tmp_path):
    redis_server.start()
    # Periodic resync far out: whatever arrives, arrives by the bus or a reconnect.
    cluster = ReloadCluster(redis_server, tmp_path, processes=3, resync_s=3600)
    cluster.start()
    yield cluster
    cluster.close()
    redis_server.start()  # leave Redis up for the next test


def test_edits_reach_every_process_and_survive_a_redis_outage(cluster, redis_server):
    cluster.edit(PHRASES)
    cluster.wait_for(1)  # first lookups load from the database
    cluster.edit([*PHRASES, "Globex"])
    cluster.wait_for(2)  # only the bus can have told them
    assert cluster.versions() == [2, 2, 2]

    redis_server.stop()
    response = cluster.edit([*PHRASES, "Globex", "Initech"])  # the admin API works on
    assert response.json()["version"] == 3
    time.sleep(1.0)
    assert cluster.versions() == [2, 2, 2]  # every process decodes with its last list

    redis_server.start()
    cluster.wait_for(3, timeout_s=30)  # reconnect -> resync by version
    assert cluster.versions() == [3, 3, 3]
