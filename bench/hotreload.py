"""Hot-word reload across processes: time from an admin's edit until every ASR process decodes
with the new version.

    python -m bench.hotreload [--processes 3] [--edits 40] [--phrases 1000]

Starts a real redis-server and N `callscribe serve` processes on one SQLite database, all on
the Redis bus, with the periodic resync set far out (only the bus can deliver). Each edit is a
PUT of a tenant's list (`--phrases` names, English and Mandarin, one changed per edit) on the
first process; clients poll `/v1/hotwords/active` on every
process (one keep-alive connection each) until all report the new version. The time counted
runs from sending the PUT (so it includes the commit) until the last process reports.

Baselines in the same run: the PUT's own round trip, and a bare Redis publish -> subscriber
delivery, the floor any bus-based reload sits on.
"""

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
from sqlmodel import Session

from admin_api import migrate
from admin_api.auth import ADMIN, TENANT
from admin_api.crud import keys
from admin_api.db import make_engine
from admin_api.models import Tenant
from bench.hotwords import distractors
from tests.services import CallscribeServer, RedisServer

TENANT_ID = "bench"


class ReloadCluster:
    """N ASR processes on one database and one Redis, plus a tenant to edit."""

    def __init__(
        self,
        redis_server: RedisServer,
        folder: Path,
        processes: int = 3,
        model: str = "whisper-tiny.en",
        resync_s: float = 3600.0,
    ) -> None:
        self.url = f"sqlite:///{folder}/admin.db"
        migrate.upgrade(self.url)
        database = make_engine(self.url)
        with Session(database) as session:
            session.add(Tenant(id=TENANT_ID, name="Benchmark tenant"))
            session.flush()
            _, admin = keys.create(session, ADMIN, None, "bench")
            _, tenant = keys.create(session, TENANT, TENANT_ID, "bench")
            session.commit()
        database.dispose()
        self.admin = {"authorization": f"Bearer {admin.secret}"}
        self.tenant = {"authorization": f"Bearer {tenant.secret}"}
        settings = {
            "CALLSCRIBE_DATABASE_URL": self.url,
            "CALLSCRIBE_REDIS_URL": redis_server.url,
            "CALLSCRIBE_HOTWORD_RESYNC_S": str(resync_s),
            "CALLSCRIBE_AUTH": "keys",
            "CALLSCRIBE_TOKEN_SECRET": "bench",
            "CALLSCRIBE_LOG_LEVEL": "warning",
        }
        self.servers = [CallscribeServer(settings, model) for _ in range(processes)]
        self.clients: list[httpx.Client] = []
        self.edits = 0

    def start(self) -> None:
        for server in self.servers:  # from this thread: they die with their parent thread
            server.start()
        self.clients = [httpx.Client(base_url=s.url, timeout=10) for s in self.servers]

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for server in self.servers:
            server.close()

    def edit(self, phrases: list[str]) -> httpx.Response:
        """Replace the tenant's list through the first process's admin API."""
        path = f"/v1/tenants/{TENANT_ID}/hotword-lists"
        body = {"content": "\n".join(phrases)}
        if self.edits == 0:
            body["name"] = "names"
            response = self.clients[0].post(path, json=body, headers=self.admin)
        else:
            response = self.clients[0].put(f"{path}/names", json=body, headers=self.admin)
        response.raise_for_status()
        self.edits += 1
        return response

    def versions(self) -> list[int | None]:
        return [active_version(client, self.tenant) for client in self.clients]

    def wait_for(self, version: int, timeout_s: float = 10.0, poll_s: float = 0.005) -> float:
        """Seconds until every process reports `version` (each polled in its own thread)."""
        return wait_until_applied(self.clients, self.tenant, version, timeout_s, poll_s)


def active_version(client: httpx.Client, tenant: dict) -> int | None:
    """The tenant's hot-word version this process decodes with now."""
    response = client.get("/v1/hotwords/active", headers=tenant)
    response.raise_for_status()
    return response.json()["version"]


def wait_until_applied(
    clients: list[httpx.Client],
    tenant: dict,
    version: int,
    timeout_s: float = 10.0,
    poll_s: float = 0.005,
) -> float:
    """Seconds from now until every process (one client each, polled in its own thread)
    reports `version` for the tenant whose credentials are `tenant`."""
    started = time.perf_counter()
    deadline = started + timeout_s

    def until_applied(client: httpx.Client) -> float:
        while (active_version(client, tenant) or 0) < version:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{client.base_url} did not apply version {version}")
            time.sleep(poll_s)
        return time.perf_counter()

    with ThreadPoolExecutor(len(clients)) as pool:
        return max(pool.map(until_applied, clients)) - started


def redis_delivery_s(url: str, messages: int) -> list[float]:
    """Bare pub/sub: publish -> subscriber thread receives, for each message."""
    subscriber = redis.Redis.from_url(url).pubsub()
    subscriber.subscribe("bench:floor")
    subscriber.get_message(timeout=1.0)  # the subscribe confirmation
    publisher = redis.Redis.from_url(url)
    delays = []
    for _ in range(messages):
        sent = time.perf_counter()
        publisher.publish("bench:floor", json.dumps({"sent": sent}))
        while subscriber.get_message(timeout=1.0) is None:
            pass
        delays.append(time.perf_counter() - sent)
    subscriber.close()
    publisher.close()
    return delays


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--phrases", type=int, default=1000)
    parser.add_argument("--model", default="whisper-tiny.en")
    args = parser.parse_args()
    half = args.phrases // 2
    phrases = distractors("en", half, []) + distractors("zh", args.phrases - half, [])

    with tempfile.TemporaryDirectory() as folder, RedisServer() as redis_server:
        cluster = ReloadCluster(redis_server, Path(folder), args.processes, args.model)
        try:
            cluster.start()
            cluster.edit(phrases)
            cluster.wait_for(1, timeout_s=30)  # first lookups load from the database
            reload_s, put_s = [], []
            for edit in range(2, args.edits + 2):
                started = time.perf_counter()
                cluster.edit([*phrases[1:], f"Product {edit}"])
                put_s.append(time.perf_counter() - started)
                reload_s.append(cluster.wait_for(edit) + put_s[-1])
                time.sleep(0.05)  # let the processes idle between edits, as admins do
            floor = redis_delivery_s(redis_server.url, args.edits)
        finally:
            cluster.close()
    print(
        json.dumps(
            {
                "processes": args.processes,
                "edits": args.edits,
                "phrases": len(phrases),
                "edit_until_all_applied": summary(reload_s),
                "baseline_put_round_trip": summary(put_s),
                "baseline_redis_pubsub_delivery": summary(floor),
                "p95_ratio_to_put_round_trip": round(
                    summary(reload_s)["p95_ms"] / summary(put_s)["p95_ms"], 2
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
