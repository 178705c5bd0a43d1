"""Request and response bodies of the admin API."""

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, HttpUrl, field_validator

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")


class TenantCreate(BaseModel):
    id: str = Field(description="URL-safe slug, 3-64 characters: a-z, 0-9 and -")
    name: str = Field(min_length=1, max_length=200)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not TENANT_ID.match(value):
            raise ValueError("use 3-64 lower-case letters, digits and dashes (not at the ends)")
        return value


class TenantUpdate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TenantPublic(BaseModel):
    id: str
    name: str
    created_at: datetime


class KeyCreate(BaseModel):
    name: str = Field("", max_length=200, description="A label: who or what uses the key")


class KeyPublic(BaseModel):
    prefix: str
    scope: str
    tenant_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The secret: shown this once, store it now")


class HotwordEntry(BaseModel):
    phrase: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0, le=1000)
    aliases: list[str] = Field(default_factory=list)


class HotwordListWrite(BaseModel):
    """A whole list: structured `entries`, or `content` in one of the list formats."""

    entries: list[HotwordEntry] | None = None
    content: str | None = None
    format: str = Field("auto", description="auto, tsv, weighted, json or lines")
    note: str = Field("", max_length=200)
    base_version: int | None = Field(
        None, description="The version this edit starts from; 409 when the list has moved on"
    )


class HotwordListCreate(HotwordListWrite):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w.-]+$")
    active: bool = True


class HotwordListPatch(BaseModel):
    add: list[HotwordEntry] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    active: bool | None = None
    note: str = Field("", max_length=200)
    base_version: int | None = None


class Rollback(BaseModel):
    version: int = Field(ge=1)
    base_version: int | None = None


class HotwordListPublic(BaseModel):
    name: str
    tenant_id: str
    active: bool
    version: int
    phrase_count: int
    updated_at: datetime


class HotwordListDetail(HotwordListPublic):
    entries: list[HotwordEntry]


class VersionPublic(BaseModel):
    version: int
    phrase_count: int
    created_at: datetime
    created_by: str
    note: str


class AuditPublic(BaseModel):
    at: datetime
    actor: str
    action: str
    target: str
    detail: str


class TokenCreate(BaseModel):
    ttl_s: int = Field(300, ge=10, le=3600, description="Lifetime in seconds")
    tenant_id: str | None = Field(
        None,
        max_length=64,
        description="Admin keys: the tenant the token acts for (a tenant key's is its own)",
    )


class TokenCreated(BaseModel):
    token: str
    """Put it in the URL: `wss://host/v1/stream?token=...`."""
    tenant_id: str
    expires_at: datetime


class CallPublic(BaseModel):
    id: str
    tenant_id: str
    source: str
    status: str
    """`active`, `ended`, or `interrupted` (the gateway went down during the call)."""
    started_at: datetime
    ended_at: datetime | None
    language: str | None = None
    """The language the call is decoded in (None: detected per segment)."""
    hotword_version: int | None = None
    """The tenant's hot-word version: the one the call ended with, or for a call in progress
    the one its next segment uses."""
    legs: list[str] = Field(default_factory=list)
    """Legs with stored finals (`agent`, `customer`, `mixed`)."""


class JobPublic(BaseModel):
    id: str
    tenant_id: str
    kind: str
    """`batch` (an upload or URL) or `postcall` (a call's re-transcription)."""
    status: str
    """`queued`, `running`, `completed` or `failed` (see `error`)."""
    progress: float
    """0 to 1: audio decoded so far."""
    call_id: str | None
    file_name: str | None
    source_url: str | None
    language: str | None
    duration_s: float | None
    error: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    engine: str | None
    """The ASR engine of the stored transcript (`whisper`, `funaudio`), once completed."""
    model: str | None


class RecordingPublic(BaseModel):
    leg: str
    url: str
    """`/v1/calls/{id}/recordings/{leg}`: WAV, with HTTP Range (tenant key, or `?token=`)."""
    bytes: int
    duration_s: float


class CallDetail(CallPublic):
    recordings: list[RecordingPublic]
    """One per leg, once the call has ended (empty while it is in progress)."""
    postcall: JobPublic | None
    """The post-call pass, if one was queued."""


class DeliveryPublic(BaseModel):
    event: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    delivered: bool
    duration_ms: int | None
    at: datetime


RedactionKind = Literal["card", "phone", "id"]


class TenantSettingsUpdate(BaseModel):
    """Fields to change; `job_max_mb` and `max_active_jobs` need an admin key."""

    redact: bool | None = None
    redact_kinds: list[RedactionKind] | None = None
    keep_original: bool | None = None
    webhook_url: HttpUrl | None = None
    webhook_secret: str | None = Field(None, min_length=16, max_length=128)
    job_max_mb: float | None = Field(None, gt=0)
    max_active_jobs: int | None = Field(None, ge=1)


class TenantSettingsPublic(BaseModel):
    tenant_id: str
    redact: bool
    redact_kinds: list[str]
    keep_original: bool
    webhook_url: str | None
    webhook_secret: str | None
    """Signs webhook bodies; generated when a URL is set without one."""
    job_max_mb: float | None
    max_active_jobs: int | None
    updated_at: datetime


class SearchMatch(BaseModel):
    segment_id: int
    pass_: Literal["live", "postcall"] = Field(serialization_alias="pass")
    """`live`: a final as it was sent; `postcall`: the post-call (or batch) transcript."""
    leg: str
    start_ms: int
    end_ms: int
    time_ms: int
    """When the match is said: its word's start (estimated within the segment when the
    segment has no word times), in ms from the start of the call or file."""
    text: str
    snippet: str
    """Up to 160 characters around the first match, "…" where cut."""
    highlights: list[tuple[int, int]]
    """`[start, end)` character spans of the matches in `snippet`."""


class SearchResult(BaseModel):
    type: Literal["call", "job"]
    id: str
    tenant_id: str
    at: datetime
    """When the call started, or the job was created."""
    status: str
    source: str | None
    """A call's gateway (`sip`, `webrtc`, `twilio`, ...)."""
    file_name: str | None
    """A batch job's input file."""
    language: str | None
    match_count: int
    """Matching segments in all; `matches` holds the first few."""
    matches: list[SearchMatch]


class SearchPage(BaseModel):
    query: str
    total: int
    """Calls and jobs that match."""
    limit: int
    offset: int
    complete: bool
    """False when a 1-2 character query read only the newest 100,000 segments in range."""
    results: list[SearchResult]
