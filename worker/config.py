"""What the worker is given (plain data, filled by the composition root): where its broker is,
and what its tasks may do. The worker reads no settings and no environment of its own."""

from dataclasses import dataclass, field
from pathlib import Path

from common.rules import RequestRules


@dataclass(frozen=True)
class BrokerConfig:
    url: str | None = None
    """Celery broker and result backend (`redis://...`); None: the embedded SQLite broker."""
    path: Path = Path("var/broker.sqlite")
    """The embedded broker's file (the server and its workers must reach the same one)."""
    visibility_timeout_s: float = 3600.0
    """A task taken by a worker that dies unacknowledged goes back to the queue after this."""
    concurrency: int = 1
    """Tasks one worker runs at once."""


@dataclass(frozen=True)
class WorkerConfig:
    database_url: str = "sqlite:///var/callscribe.db"
    jobs_dir: Path = Path("var/jobs")
    """Batch jobs' inputs (uploads written by the API, URLs fetched here)."""
    rules: RequestRules = field(default_factory=RequestRules)
    """Languages and hot-word defaults of the decode options."""
    job_keep_input: bool = False
    job_max_mb: float = 100.0
    """A tenant's input limit unless its settings say otherwise."""
    outbound_allow_private: bool = False
    """Job URLs and webhooks may reach loopback and private addresses."""
    webhook_timeout_s: float = 10.0
    webhook_max_attempts: int = 6
    max_retries: int = 3
    """Retries of a task that failed for another reason than its input."""
    retry_base_s: float = 5.0
    """First retry delay of tasks and webhooks; doubles each time."""
