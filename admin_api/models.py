"""Tables of the admin database (SQLModel). Migrations in `migrations/` follow these."""

from datetime import UTC, datetime

from sqlmodel import Field, Index, SQLModel, UniqueConstraint


def utcnow() -> datetime:
    return datetime.now(UTC)


class Tenant(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    """URL-safe slug chosen at creation (`acme-support`)."""
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    hotword_version: int = 0
    """Bumped by every change to any of the tenant's hot-word lists: "tenant T is at version
    N" is what ASR processes are told, and what each final segment records."""


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(unique=True, index=True, max_length=32)
    """The public part of the key (`cs_1a2b3c4d`): shown in lists and audit trails."""
    secret_hash: str = Field(max_length=64)
    """SHA-256 of the whole key; the key itself is shown once and never stored."""
    scope: str = Field(max_length=16)
    """`admin` (every tenant, tenant management) or `tenant` (one tenant's data)."""
    tenant_id: str | None = Field(default=None, foreign_key="tenant.id", index=True)
    name: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class HotwordList(SQLModel, table=True):
    __tablename__ = "hotword_list"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    name: str = Field(max_length=100)
    active: bool = True
    """Active lists are what the tenant's calls use."""
    version: int = 0
    """The current version number (versions are never rewritten, only added)."""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class HotwordListVersion(SQLModel, table=True):
    __tablename__ = "hotword_list_version"
    __table_args__ = (UniqueConstraint("list_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="hotword_list.id", index=True)
    version: int
    content: str
    """The entries as JSON: `[{"phrase": ..., "weight": ..., "aliases": [...]}, ...]`."""
    phrase_count: int
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=32)
    """Prefix of the key that made it."""
    note: str = Field(default="", max_length=200)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str | None = Field(default=None, index=True)
    actor: str = Field(max_length=32)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=200)
    detail: str = ""
    at: datetime = Field(default_factory=utcnow, index=True)


class Call(SQLModel, table=True):
    """A live call or stream (SIP, WebRTC, media stream); filled by the gateway issues."""

    id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    source: str = Field(max_length=32)
    status: str = Field(default="active", max_length=16)
    started_at: datetime = Field(default_factory=utcnow, index=True)
    ended_at: datetime | None = None
    recording_path: str | None = None
    node: str | None = Field(default=None, max_length=200, index=True)
    """The gateway process holding the call; at its start, its calls still active are stale."""
    language: str | None = Field(default=None, max_length=8)
    """The language the call was decoded in (None: detected per segment)."""
    hotwords: str | None = None
    """The hot-words the call ended with (JSON entries, as in `hotword_list_version`): the
    post-call pass decodes with what the call used, whatever the lists became since."""
    hotword_version: int | None = None


class NodeLease(SQLModel, table=True):
    """A gateway process that holds calls, renewed while it runs: the calls of a process whose
    lease ran out are marked interrupted by the others (see `telephony.leases`)."""

    __tablename__ = "node_lease"

    node: str = Field(primary_key=True, max_length=200)
    renewed_at: datetime = Field(default_factory=utcnow)


class TranscriptSegment(SQLModel, table=True):
    __tablename__ = "transcript_segment"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str | None = Field(default=None, foreign_key="call.id", index=True)
    job_id: str | None = Field(default=None, foreign_key="job.id", index=True)
    """Set instead of `call_id` for a batch job's transcript."""
    leg: str = Field(default="mixed", max_length=32)
    kind: str = Field(default="live", max_length=8)
    """`live` (finals as they were sent) or `post` (post-call re-transcription)."""
    start_ms: int
    end_ms: int
    text: str
    words: str = "[]"
    """JSON list of {word, start_ms, end_ms, confidence}."""
    original_text: str | None = None
    """The text before redaction, when the tenant keeps originals."""
    language: str | None = Field(default=None, max_length=8)
    hotword_version: int | None = None


class TranscriptSearch(SQLModel, table=True):
    """The transcript search index: one row per searchable segment, kept by database triggers
    on `transcript_segment` (migration 0007), so every way a segment is stored (live finals,
    post-call and batch passes) is indexed in the same transaction. It carries the owner's
    tenant and time, so a search is bounded by tenant and date before any text is matched.
    SQLite adds an FTS5 trigram table over `text`, PostgreSQL a pg_trgm GIN index."""

    __tablename__ = "transcript_search"
    __table_args__ = (
        Index("ix_transcript_search_tenant_at", "tenant_id", "at"),
        Index("ix_transcript_search_at", "at"),
    )

    segment_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    """`transcript_segment.id` (on SQLite also the FTS5 table's rowid)."""
    tenant_id: str = Field(max_length=64)
    call_id: str | None = Field(default=None, max_length=64)
    job_id: str | None = Field(default=None, max_length=64)
    leg: str = Field(max_length=32)
    kind: str = Field(max_length=8)
    """`live` or `post`, as in `transcript_segment`."""
    start_ms: int
    end_ms: int
    at: datetime
    """When the call started (or the batch job was created): what `since`/`until` filter."""
    text: str
    """The stored text, which is the redacted one where the tenant redacts; `original_text`
    is never indexed, nor are live finals of a tenant that redacts without keeping originals
    (they are stored as they were sent, unredacted)."""


class Job(SQLModel, table=True):
    """A batch transcription (an upload or a URL) or a call's post-call pass, run by a worker."""

    id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    kind: str = Field(max_length=32)
    """`batch` or `postcall`."""
    status: str = Field(default="queued", max_length=16)
    """`queued`, `running`, `completed` or `failed`."""
    progress: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    error: str | None = None
    call_id: str | None = Field(default=None, foreign_key="call.id", index=True)
    source_url: str | None = Field(default=None, max_length=2000)
    """Where a batch job's audio is fetched from (None: uploaded)."""
    file_name: str | None = Field(default=None, max_length=255)
    language: str | None = Field(default=None, max_length=8)
    webhook_url: str | None = Field(default=None, max_length=2000)
    """Overrides the tenant's webhook for this job."""
    duration_s: float | None = None
    """Audio length, once known."""
    attempts: int = 0
    """Runs started (a redelivered or retried task counts again)."""
    finished_at: datetime | None = None
    engine: str | None = Field(default=None, max_length=32)
    """The ASR engine that made the stored transcript (`whisper`, `funaudio`)."""
    model: str | None = Field(default=None, max_length=500)
    """Its model (a registry name or a folder)."""


class TenantSettings(SQLModel, table=True):
    """A tenant's post-processing and delivery settings, and its batch limits."""

    __tablename__ = "tenant_settings"

    tenant_id: str = Field(primary_key=True, foreign_key="tenant.id", max_length=64)
    redact: bool = False
    """Mask card, phone and ID numbers in stored post-call and batch text."""
    redact_kinds: str = Field(default="card,phone,id", max_length=64)
    keep_original: bool = False
    """Keep the unredacted text beside the redacted one (else it is never stored)."""
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_secret: str | None = Field(default=None, max_length=128)
    """Signs webhook bodies (HMAC-SHA256)."""
    job_max_mb: float | None = None
    """Largest batch input (None: the server's limit); set by admins."""
    max_active_jobs: int | None = None
    """Batch jobs queued or running at once (None: the server's limit); set by admins."""
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver a job's completion webhook."""

    __tablename__ = "webhook_delivery"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True)
    event: str = Field(max_length=32)
    url: str = Field(max_length=2000)
    attempt: int
    status_code: int | None = None
    error: str | None = None
    delivered: bool = False
    duration_ms: int | None = None
    at: datetime = Field(default_factory=utcnow)
