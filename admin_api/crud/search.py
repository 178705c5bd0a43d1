"""Transcript search: which calls and jobs said something, where, and when in the audio.

The index is `transcript_search` (see `models.TranscriptSearch`), kept by triggers as segments
are stored. A query is a substring, matched case-insensitively:

- 3 characters or more: SQLite's FTS5 trigram table, or PostgreSQL's pg_trgm GIN index
  (`ILIKE`), which both find Mandarin substrings without a word segmenter;
- 1 or 2 characters (a Mandarin word is often two) have no trigram to look up: a substring
  test over the tenant's segments in the date range, the newest `SHORT_QUERY_SCAN` of them.

Every query is bounded by tenant (and date) first, and reads at most `MAX_MATCHES` matching
segments (the newest). Results are calls and batch jobs, ranked by how many of their segments
match, then newest first; each carries its first matches in time order, with a snippet, the
spans to highlight, and the time the match is said.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, literal_column, select, text, update
from sqlalchemy import Row as SqlRow
from sqlmodel import Session, col

from admin_api.models import Call, TranscriptSearch, TranscriptSegment

MIN_TRIGRAM = 3
SHORT_QUERY_SCAN = 100_000
"""Segments a 1-2 character query reads at most (the newest in range): its cost is bounded."""
MAX_MATCHES = 20_000
"""Matching segments a query ranks at most (the newest)."""
SNIPPET_CHARS = 160
SNIPPET_LEAD = 50
"""Characters of context kept before the first match in a snippet."""

Row = TranscriptSearch
FOUND = (Row.segment_id, Row.leg, Row.kind, Row.start_ms, Row.end_ms, Row.text)


@dataclass(frozen=True)
class SearchFilter:
    query: str
    """Already normalised (`normalise`)."""
    tenant_id: str | None
    """None: every tenant (admin keys)."""
    since: datetime | None = None
    until: datetime | None = None
    leg: str | None = None
    kind: str | None = None
    """`live` or `post` (None: both)."""


@dataclass
class Match:
    row: SqlRow
    """The index row's columns (`FOUND` of them)."""
    time_ms: int
    snippet: str
    highlights: list[tuple[int, int]]


@dataclass
class Result:
    call_id: str | None
    job_id: str | None
    match_count: int
    matches: list[Match] = field(default_factory=list)


@dataclass
class Page:
    total: int
    results: list[Result]
    complete: bool
    """False when the search read part of the range only: a short query the newest
    `SHORT_QUERY_SCAN` segments, or any query the newest `MAX_MATCHES` matches."""


def normalise(query: str) -> str:
    """Spaces collapsed, ends trimmed: what is matched."""
    return " ".join(query.split())


def search(
    session: Session,
    where: SearchFilter,
    limit: int,
    offset: int,
    per_result: int,
    indexed: bool = True,
) -> Page:
    """A page of results. The matching segments are read once (their owner, time and place,
    no text), grouped and ranked here; only the page's first matches are read whole.
    `indexed=False` matches by a plain substring scan instead (the baseline `bench.search`
    compares with)."""
    dialect = session.get_bind().dialect.name
    trigram = indexed and len(where.query) >= MIN_TRIGRAM
    # SQLite: with the FTS5 table, drive the query from its matches (rowid lookups); its
    # planner would rather walk the tenant's index and test every row against them.
    scope = _scope(where, by_rowid=trigram and dialect == "sqlite")
    complete = True
    if indexed and not trigram:
        newest = select(Row.at).where(*scope).order_by(col(Row.at).desc())
        cutoff = session.execute(newest.offset(SHORT_QUERY_SCAN).limit(1)).scalar()
        if cutoff is not None:
            scope.append(col(Row.at) > cutoff)
            complete = False
    # OFFSET 0 fences the match off from the ORDER BY ... LIMIT: else a planner walks the
    # time index newest first, hoping to stop early, and tests every row of a rare word.
    hits = (
        select(Row.segment_id, Row.call_id, Row.job_id, Row.start_ms, Row.leg, Row.at)
        .where(*scope, _match(dialect, where.query, indexed))
        .offset(0)
        .subquery()
    )
    # Newest first, so the order an owner first shows up in is its recency rank.
    matching = session.execute(
        select(hits.c.segment_id, hits.c.call_id, hits.c.job_id, hits.c.start_ms, hits.c.leg)
        .order_by(hits.c.at.desc(), hits.c.segment_id.desc())
        .limit(MAX_MATCHES + 1)
    ).all()
    if len(matching) > MAX_MATCHES:
        matching, complete = matching[:MAX_MATCHES], False
    owners: dict[tuple, list] = {}
    for row in matching:
        owners.setdefault((row.call_id, None if row.call_id else row.job_id), []).append(row)
    ranked = sorted(owners.items(), key=lambda item: -len(item[1]))  # stable: newest first
    results = []
    first: dict[int, Result] = {}
    for (call_id, job_id), rows in ranked[offset : offset + limit]:
        result = Result(call_id, job_id, len(rows))
        results.append(result)
        in_time = sorted(rows, key=lambda r: (r.start_ms, r.leg, r.segment_id))[:per_result]
        first.update((r.segment_id, result) for r in in_time)
    if first:
        pattern = match_pattern(where.query)
        found = session.execute(
            select(*FOUND, TranscriptSegment.words)
            .join(TranscriptSegment, col(TranscriptSegment.id) == Row.segment_id)
            .where(col(Row.segment_id).in_(first))
            .order_by(col(Row.start_ms), col(Row.leg), col(Row.segment_id))
        )
        for row in found:
            first[row.segment_id].matches.append(_match_in(row, json.loads(row.words), pattern))
        for result in results:  # in the order they are said
            result.matches.sort(key=lambda m: (m.time_ms, m.row.leg, m.row.segment_id))
    return Page(len(owners), results, complete)


def _scope(where: SearchFilter, by_rowid: bool = False) -> list[ColumnElement]:
    """The tenant, dates, leg and pass; `by_rowid` keeps SQLite from using an index for them
    (a unary `+` on the column, SQLite's way to say so)."""

    def column(attribute) -> ColumnElement:
        name = col(attribute).name
        return (
            literal_column(f"+{Row.__tablename__}.{name}", col(attribute).type)
            if by_rowid
            else col(attribute)
        )

    scope: list[ColumnElement] = []
    if where.tenant_id is not None:
        scope.append(column(Row.tenant_id) == where.tenant_id)
    if where.since is not None:
        scope.append(column(Row.at) >= where.since)
    if where.until is not None:
        scope.append(column(Row.at) < where.until)
    if where.leg is not None:
        scope.append(column(Row.leg) == where.leg)
    if where.kind is not None:
        scope.append(column(Row.kind) == where.kind)
    return scope


def _match(dialect: str, query: str, indexed: bool) -> ColumnElement:
    if indexed and len(query) >= MIN_TRIGRAM:
        if dialect == "sqlite":
            phrase = '"' + query.replace('"', '""') + '"'
            matching = text(
                "SELECT rowid FROM transcript_search_fts WHERE transcript_search_fts MATCH :phrase"
            ).bindparams(phrase=phrase)
            return col(Row.segment_id).in_(matching)
        return col(Row.text).ilike(_like_pattern(query), escape="\\")
    # No trigram to look up (or no index wanted): a plain substring test. SQLite's LIKE is
    # that (case-insensitive, on the plain table); PostgreSQL gets strpos, which its planner
    # cannot mistake for a pg_trgm query (that would read the whole GIN index).
    if dialect == "sqlite":
        return col(Row.text).like(_like_pattern(query), escape="\\")
    if query.lower() == query.upper():  # nothing to fold (Chinese, digits): half the work
        return func.strpos(Row.text, query) > 0
    return func.strpos(func.lower(Row.text), func.lower(query)) > 0


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def match_pattern(query: str) -> re.Pattern:
    """The query as the databases match it: case-insensitive, any run of spaces for one."""
    return re.compile(r"\s+".join(re.escape(part) for part in query.split(" ")), re.IGNORECASE)


def _match_in(row: SqlRow, words: list[dict], pattern: re.Pattern) -> Match:
    found = list(pattern.finditer(row.text))
    first = found[0].start() if found else 0
    snippet, highlights = snippet_of(row.text, [(m.start(), m.end()) for m in found])
    return Match(row, time_of(row, words, first), snippet, highlights)


def snippet_of(
    text_: str, spans: list[tuple[int, int]], chars: int = SNIPPET_CHARS
) -> tuple[str, list[tuple[int, int]]]:
    """Up to `chars` of `text_` around its first span, with "…" where it is cut, and the spans
    that fall inside it, counted in the snippet."""
    start = max(0, (spans[0][0] if spans else 0) - SNIPPET_LEAD)
    start = max(0, min(start, len(text_) - chars))
    end = min(len(text_), start + chars)
    lead = "…" if start > 0 else ""
    shift = len(lead) - start
    snippet = lead + text_[start:end] + ("…" if end < len(text_) else "")
    inside = [(a + shift, b + shift) for a, b in spans if a >= start and b <= end]
    return snippet, inside


def time_of(row: SqlRow, words: list[dict], offset: int) -> int:
    """When the character at `offset` of the segment's text is said: the start of the word
    that holds it, else (no word times) in proportion within the segment."""
    cursor = 0
    for word in words:
        token = str(word.get("word", "")).strip()
        at = row.text.find(token, cursor) if token else -1
        if at < 0:
            continue
        if at + len(token) > offset:
            return int(word["start_ms"])
        cursor = at + len(token)
    span = max(row.end_ms - row.start_ms, 0)
    return row.start_ms + span * offset // max(len(row.text), 1)


def reindex_live(session: Session, tenant_id: str) -> None:
    """Index the tenant's live finals again under its current redaction settings (in the
    session's transaction): the triggers apply the policy, a no-op update runs them."""
    calls = select(Call.id).where(Call.tenant_id == tenant_id)
    session.execute(
        update(TranscriptSegment)
        .where(col(TranscriptSegment.kind) == "live", col(TranscriptSegment.call_id).in_(calls))
        .values(text=TranscriptSegment.text)
    )
