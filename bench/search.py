"""Transcript search speed: `GET /v1/search` on generated call transcripts, SQLite and
PostgreSQL, against a plain `LIKE` scan of the same segments in the same run.

    python -m bench.search                       # 10,000 segments, both databases
    python -m bench.search --segments 100000     # how it scales
    python -m bench.search --postgres URL        # an existing, empty PostgreSQL database

Each database gets the same seeded transcripts: calls of two legs, a live and a post-call pass
each, Mandarin and English sentences of call-center words, 80 % of the calls the `bench`
tenant's and the rest another tenant's, over 30 days. Stored through the ORM, so the index is
built by its triggers as in production (the insert rate is reported). Queries: Mandarin
words of two characters (no trigram: the bounded scan) and of three or more, English words and
phrases, and words that are nowhere; each timed `--rounds` times in a shuffled order, as
the route runs them (`admin_api.crud.search`: tenant-scoped, ranked, 20 results a page with
their first matches, snippets and times) and, as the baseline, the same search with a plain
substring scan of the tenant's segments instead of the index. Without `--postgres`, a throwaway
PostgreSQL server (tests/services.py) runs it, with a UTF-8 LC_CTYPE as production has.
Prints JSON.
"""

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from bench.common import bench_database, percentiles

SEGMENTS_PER_CALL = 20
"""Ten per pass (live and post-call), the legs taking turns."""

ZH_WORDS = [
    "退款",
    "订单",
    "会员",
    "取消",
    "账户",
    "发票",
    "快递",
    "地址",
    "密码",
    "银行卡",
    "优惠券",
    "客服",
    "投诉",
    "物流",
    "续费",
    "套餐",
    "积分",
    "手机号",
    "验证码",
    "退货",
    "换货",
    "保修",
    "充值",
    "余额",
    "信用卡",
    "预约",
    "配送",
    "包裹",
    "价格",
    "折扣",
]
ZH_FILLER = [
    "我想",
    "请问",
    "好的",
    "麻烦",
    "帮我",
    "一下",
    "已经",
    "什么时候",
    "可以",
    "不是",
    "还是",
    "我们",
    "这个",
    "那个",
    "现在",
]
EN_WORDS = [
    "refund",
    "order",
    "membership",
    "cancel",
    "account",
    "invoice",
    "delivery",
    "address",
    "password",
    "card",
    "coupon",
    "complaint",
    "shipping",
    "renewal",
    "plan",
    "points",
    "phone",
    "code",
    "return",
    "exchange",
    "warranty",
    "balance",
    "appointment",
    "package",
    "price",
    "discount",
    "subscription",
    "billing",
    "upgrade",
]
EN_FILLER = [
    "I",
    "would",
    "like",
    "to",
    "please",
    "can",
    "you",
    "my",
    "the",
    "a",
    "for",
    "about",
    "it",
    "is",
    "was",
    "today",
    "again",
]
QUERIES = {
    "zh_2_chars": ["退款", "订单", "发票", "快递"],
    "zh_3plus_chars": ["银行卡", "优惠券", "手机号", "申请退款"],
    "en_word": ["refund", "invoice", "warranty", "subscr"],
    "en_phrase": ["cancel my subscription", "my card", "the order"],
    "absent": ["没有这个词", "xylophone", "宇宙飞船"],
}


def sentence(rng: random.Random, mandarin: bool) -> str:
    if mandarin:
        parts = [rng.choice(ZH_FILLER if rng.random() < 0.6 else ZH_WORDS) for _ in range(6)]
        if rng.random() < 0.2:
            parts.insert(rng.randrange(len(parts)), "申请退款")
        return "".join(parts) + "。"
    parts = [rng.choice(EN_FILLER if rng.random() < 0.6 else EN_WORDS) for _ in range(10)]
    if rng.random() < 0.15:
        parts.insert(rng.randrange(len(parts)), "cancel my subscription")
    return " ".join(parts).capitalize() + "."


def store(database, total: int, seed: int) -> dict:
    """Calls with both passes, segment by segment through the triggers; returns counts."""
    from admin_api.models import Call, Tenant, TranscriptSegment

    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with Session(database) as session:
        session.add(Tenant(id="other", name="Another tenant"))
        session.commit()
    began = time.perf_counter()
    calls = 0
    for number in range(total // SEGMENTS_PER_CALL):
        mandarin = number % 2 == 0
        call_id = f"call-{number:06d}"
        with Session(database) as session:
            session.add(
                Call(
                    id=call_id,
                    tenant_id="bench" if rng.random() < 0.8 else "other",
                    source="sip",
                    status="ended",
                    language="zh" if mandarin else "en",
                    started_at=start + timedelta(seconds=rng.randrange(30 * 86400)),
                )
            )
            session.flush()
            for index in range(SEGMENTS_PER_CALL // 2):
                said = sentence(rng, mandarin)
                for kind in ("live", "post"):
                    session.add(
                        TranscriptSegment(
                            call_id=call_id,
                            leg=("customer", "agent")[index % 2],
                            kind=kind,
                            start_ms=index * 4000,
                            end_ms=index * 4000 + 3500,
                            text=said,
                        )
                    )
            session.commit()
        calls += 1
    seconds = time.perf_counter() - began
    if database.dialect.name == "postgresql":
        with database.begin() as connection:  # what autovacuum does for a table that grew
            connection.exec_driver_sql("ANALYZE transcript_search")
    stored = calls * SEGMENTS_PER_CALL
    return {"calls": calls, "segments": stored, "store_per_s": round(stored / seconds)}


def measure(database, rounds: int, seed: int) -> dict:
    """Each query as the route runs it, with the index and (the baseline) without it."""
    from admin_api.crud import search

    runs = [(kind, q) for kind, queries in QUERIES.items() for q in queries] * rounds
    random.Random(seed).shuffle(runs)
    times: dict[str, dict[str, list[float]]] = {"index": {}, "baseline": {}}
    found = {}
    with Session(database) as session:

        def timed(query: str, indexed: bool) -> tuple[float, int]:
            where = search.SearchFilter(query, "bench")
            began = time.perf_counter()
            page = search.search(session, where, 20, 0, 5, indexed=indexed)
            return time.perf_counter() - began, page.total

        for _, query in runs[: len(QUERIES)]:  # warm the caches once
            timed(query, True)
            timed(query, False)
        for kind, query in runs:
            seconds, total = timed(query, True)
            times["index"].setdefault(kind, []).append(seconds)
            seconds, plain = timed(query, False)
            times["baseline"].setdefault(kind, []).append(seconds)
            assert total == plain, (query, total, plain)  # both find the same calls
            found[query] = total
    report = {}
    for system, by_kind in times.items():
        every = [t for values in by_kind.values() for t in values]
        report[system] = {
            "all": percentiles(every),
            **{kind: percentiles(values) for kind, values in by_kind.items()},
        }
    report["p95_ratio_index_to_baseline"] = round(
        report["index"]["all"]["p95"] / report["baseline"]["all"]["p95"], 3
    )
    report["calls_found"] = found
    return report


def run(url: str, segments: int, rounds: int, seed: int) -> dict:
    database, _ = bench_database(url, with_key=False)
    try:
        stored = store(database, segments, seed)
        return {**stored, **measure(database, rounds, seed)}
    finally:
        database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20, help="times each query is timed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL (else a fresh one)")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    result = {
        "segments": args.segments,
        "rounds": args.rounds,
        "queries": QUERIES,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'search.db'}"
        print("sqlite...", file=sys.stderr)
        result["sqlite"] = run(url, args.segments, args.rounds, args.seed)
    if args.postgres:
        print("postgresql...", file=sys.stderr)
        result["postgresql"] = run(args.postgres, args.segments, args.rounds, args.seed)
    elif not args.skip_postgres:
        from tests.services import PostgresServer

        with PostgresServer() as server:
            print("postgresql (throwaway server, LC_CTYPE C.UTF-8)...", file=sys.stderr)
            url = server.new_database("bench_search", ctype="C.UTF-8")
            result["postgresql"] = run(url, args.segments, args.rounds, args.seed)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
