"""transcript search

Revision ID: cc5b0f338efb
Revises: 0f948bd01302
Create Date: 2026-12-07 16:03:10.470865

The search index: `transcript_search` (one row per searchable segment, with its tenant and
time) kept by triggers on `transcript_segment`, so every writer (the call hub's live finals, the
worker's post-call and batch passes) is indexed in its own transaction without knowing it.
SQLite matches through an FTS5 table with the trigram tokenizer (substrings, Mandarin without a
word segmenter); PostgreSQL through a pg_trgm GIN index.

What is indexed is the stored `text` (redacted where the tenant redacts), never
`original_text`; a tenant that redacts without keeping originals has no live finals indexed,
since those are stored as they were sent.

On SQLite, a later batch migration that rebuilds `transcript_segment` drops its triggers:
create them again there (`segment_triggers_sqlite` below).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "cc5b0f338efb"
down_revision: str | None = "0f948bd01302"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "segment_id, tenant_id, call_id, job_id, leg, kind, start_ms, end_ms, at, text"
POLICY = """(seg.kind <> 'live' OR NOT EXISTS (
        SELECT 1 FROM tenant_settings ts
        WHERE ts.tenant_id = {tenant} AND ts.redact AND NOT ts.keep_original))"""


def index_segments(where: str) -> str:
    """INSERT the index rows of the segments matching `where` (alias `seg`): a call's
    segments carry the call's tenant and start, a batch job's the job's."""
    return f"""
    INSERT INTO transcript_search ({COLUMNS})
    SELECT seg.id, c.tenant_id, seg.call_id, seg.job_id, seg.leg, seg.kind, seg.start_ms,
           seg.end_ms, c.started_at, seg.text
    FROM transcript_segment seg JOIN "call" c ON c.id = seg.call_id
    WHERE {where} AND {POLICY.format(tenant="c.tenant_id")}
    UNION ALL
    SELECT seg.id, j.tenant_id, seg.call_id, seg.job_id, seg.leg, seg.kind, seg.start_ms,
           seg.end_ms, j.created_at, seg.text
    FROM transcript_segment seg JOIN job j ON j.id = seg.job_id
    WHERE seg.call_id IS NULL AND {where} AND {POLICY.format(tenant="j.tenant_id")}"""


def segment_triggers_sqlite() -> list[str]:
    insert = index_segments("seg.id = NEW.id")
    delete = "DELETE FROM transcript_search WHERE segment_id = OLD.id"
    return [
        f"CREATE TRIGGER transcript_search_segment_insert AFTER INSERT ON transcript_segment "
        f"BEGIN {insert}; END",
        f"CREATE TRIGGER transcript_search_segment_delete AFTER DELETE ON transcript_segment "
        f"BEGIN {delete}; END",
        f"CREATE TRIGGER transcript_search_segment_update AFTER UPDATE ON transcript_segment "
        f"BEGIN {delete}; {insert}; END",
    ]


FTS_SQLITE = [
    # External content: the text lives once, in transcript_search; the FTS table is its index.
    "CREATE VIRTUAL TABLE transcript_search_fts USING fts5(text, content='transcript_search', "
    "content_rowid='segment_id', tokenize='trigram')",
    "CREATE TRIGGER transcript_search_fts_insert AFTER INSERT ON transcript_search BEGIN "
    "INSERT INTO transcript_search_fts(rowid, text) VALUES (NEW.segment_id, NEW.text); END",
    "CREATE TRIGGER transcript_search_fts_delete AFTER DELETE ON transcript_search BEGIN "
    "INSERT INTO transcript_search_fts(transcript_search_fts, rowid, text) "
    "VALUES ('delete', OLD.segment_id, OLD.text); END",
    "CREATE TRIGGER transcript_search_fts_update AFTER UPDATE ON transcript_search BEGIN "
    "INSERT INTO transcript_search_fts(transcript_search_fts, rowid, text) "
    "VALUES ('delete', OLD.segment_id, OLD.text); "
    "INSERT INTO transcript_search_fts(rowid, text) VALUES (NEW.segment_id, NEW.text); END",
]

POSTGRES = [
    # Trusted since PostgreSQL 13: the database owner may create it. Chinese characters get
    # trigrams only in a database with a UTF-8 LC_CTYPE (LC_CTYPE=C sees no letters in them:
    # searches stay right, but scan instead of using the index).
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # fastupdate off: a segment goes straight into the index as it is stored. With the
    # default, new entries wait in a pending list (up to 4 MB) that every search reads
    # through until a vacuum merges it, which made searches several times slower.
    "CREATE INDEX ix_transcript_search_text_trgm ON transcript_search "
    "USING gin (text gin_trgm_ops) WITH (fastupdate = off)",
    f"""CREATE FUNCTION transcript_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            DELETE FROM transcript_search WHERE segment_id = OLD.id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            {index_segments("seg.id = NEW.id")};
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER transcript_search_sync AFTER INSERT OR UPDATE OR DELETE "
    "ON transcript_segment FOR EACH ROW EXECUTE FUNCTION transcript_search_sync()",
]


def upgrade() -> None:
    op.create_table(
        "transcript_search",
        sa.Column("segment_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("call_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("leg", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("start_ms", sa.Integer(), nullable=False),
        sa.Column("end_ms", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id"),
    )
    with op.batch_alter_table("transcript_search", schema=None) as batch_op:
        batch_op.create_index("ix_transcript_search_at", ["at"], unique=False)
        batch_op.create_index("ix_transcript_search_tenant_at", ["tenant_id", "at"], unique=False)

    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in [*FTS_SQLITE, *segment_triggers_sqlite()] if sqlite else POSTGRES:
        op.execute(statement)
    op.execute(index_segments("1 = 1"))  # what was stored before the index existed


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS transcript_search_segment_{trigger}")
        op.execute("DROP TABLE IF EXISTS transcript_search_fts")
    else:
        op.execute("DROP TRIGGER IF EXISTS transcript_search_sync ON transcript_segment")
        op.execute("DROP FUNCTION IF EXISTS transcript_search_sync()")
        op.execute("DROP INDEX IF EXISTS ix_transcript_search_text_trgm")
        # pg_trgm stays: other objects of the database may use it.
    with op.batch_alter_table("transcript_search", schema=None) as batch_op:
        batch_op.drop_index("ix_transcript_search_tenant_at")
        batch_op.drop_index("ix_transcript_search_at")

    op.drop_table("transcript_search")
