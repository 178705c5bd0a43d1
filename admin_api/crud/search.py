"""Transcript search: which calls and jobs said something, where, and when in the audio.

The index is `transcript_search` (see `models.TranscriptSearch`), kept by triggers as segments
are stored. A query is a substring, matched case-insensitively:

- 3 characters or more: SQLite's FTS5 trigram table, or PostgreSQL's pg_trgm GIN index
  (`ILIKE`), which both find Mandarin substrings without a word segmenter;
- 1 or 2 characters (a Mandarin word is often two) have no trigram to look up: `LIKE` over
  the tenant's segments in the date range, the newest `SHORT_QUERY_SCAN` of them at most.

Every query is bounded by tenant (and date) first. Results are calls and batch jobs, ranked
by how many of their segments match, then newest first; each carries its first matches in
time order, with a snippet, the spans to highlight, and the time the match is said.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, desc, func, or_, select, text, update
from sqlmodel import Session, col

from admin_api.models import Call, TranscriptSearch, TranscriptSegment

MIN_TRIGRAM = 3
SHORT_QUERY_SCAN = 100_000
"""Segments a 1-2 character query reads at most (the newest in range): its cost is bounded."""
SNIPPET_CHARS = 160
SNIPPET_LEAD = 50
"""Characters of context kept before the first match in a snippet."""

Row = TranscriptSearch


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
    row: TranscriptSearch
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
    """False when a short query read only the newest `SHORT_QUERY_SCAN` segments."""


def normalise(query: str) -> str:
    """Spaces collapsed, ends trimmed: what is matched."""
    return " ".join(query.split())


def search(session: Session, where: SearchFilter, limit: int, offset: int, per_result: int) -> Page:
    conditions, complete = _conditions(session, where)
    owners = (col(Row.call_id), col(Row.job_id))
    hits = func.count().label("hits")
    grouped = (
        select(*owners, hits, func.max(Row.at).label("at"))
        .where(*conditions)
        .group_by(*owners)
        .order_by(desc("hits"), desc("at"), *owners)
        .limit(limit)
        .offset(offset)
    )
    results = [
        Result(call_id, job_id, count) for call_id, job_id, count, _ in session.execute(grouped)
    ]
    total = session.execute(
        select(func.count()).select_from(
            select(*owners).where(*conditions).group_by(*owners).subquery()
        )
    ).scalar_one()
    if results:
        _fill_matches(session, where.query, conditions, results, per_result)
    return Page(total, results, complete)


def _conditions(session: Session, where: SearchFilter) -> tuple[list[ColumnElement], bool]:
    scope: list[ColumnElement] = []
    if where.tenant_id is not None:
        scope.append(col(Row.tenant_id) == where.tenant_id)
    if where.since is not None:
        scope.append(col(Row.at) >= where.since)
    if where.until is not None:
        scope.append(col(Row.at) < where.until)
    if where.leg is not None:
        scope.append(col(Row.leg) == where.leg)
    if where.kind is not None:
        scope.append(col(Row.kind) == where.kind)
    if len(where.query) >= MIN_TRIGRAM:
        if session.get_bind().dialect.name == "sqlite":
            phrase = '"' + where.query.replace('"', '""') + '"'
            matching = text(
                "SELECT rowid FROM transcript_search_fts WHERE transcript_search_fts MATCH :phrase"
            ).bindparams(phrase=phrase)
            return [*scope, col(Row.segment_id).in_(matching)], True
        return [*scope, _like(where.query)], True
    in_range = (
        select(Row.segment_id)
        .where(*scope)
        .order_by(col(Row.at).desc(), col(Row.segment_id).desc())
    )
    beyond = session.execute(in_range.offset(SHORT_QUERY_SCAN).limit(1)).first()
    newest = in_range.limit(SHORT_QUERY_SCAN)
    return [*scope, col(Row.segment_id).in_(newest), _like(where.query)], beyond is None


def _like(query: str) -> ColumnElement:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return col(Row.text).ilike(f"%{escaped}%", escape="\\")


def _fill_matches(
    session: Session,
    query: str,
    conditions: list[ColumnElement],
    results: list[Result],
    per_result: int,
) -> None:
    """The first `per_result` matching segments of each result, in time order, with words."""
    calls = [r.call_id for r in results if r.call_id is not None]
    jobs = [r.job_id for r in results if r.call_id is None and r.job_id is not None]
    place = (
        func.row_number()
        .over(
            partition_by=(Row.call_id, Row.job_id),
            order_by=(col(Row.start_ms), col(Row.leg), col(Row.segment_id)),
        )
        .label("place")
    )
    owned = or_(
        col(Row.call_id).in_(calls), and_(col(Row.call_id).is_(None), col(Row.job_id).in_(jobs))
    )
    ranked = select(Row.segment_id, place).where(*conditions, owned).subquery()
    rows = session.execute(
        select(Row, TranscriptSegment.words)
        .join(ranked, ranked.c.segment_id == Row.segment_id)
        .join(TranscriptSegment, col(TranscriptSegment.id) == Row.segment_id)
        .where(ranked.c.place <= per_result)
        .order_by(col(Row.start_ms), col(Row.leg), col(Row.segment_id))
    )
    by_owner = {(r.call_id, r.job_id if r.call_id is None else None): r for r in results}
    pattern = match_pattern(query)
    for row, words in rows:
        result = by_owner.get((row.call_id, row.job_id if row.call_id is None else None))
        if result is not None:
            result.matches.append(_match(row, json.loads(words), pattern))


def match_pattern(query: str) -> re.Pattern:
    """The query as the databases match it: case-insensitive, any run of spaces for one."""
    return re.compile(r"\s+".join(re.escape(part) for part in query.split(" ")), re.IGNORECASE)


def _match(row: TranscriptSearch, words: list[dict], pattern: re.Pattern) -> Match:
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


def time_of(row: TranscriptSearch, words: list[dict], offset: int) -> int:
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
