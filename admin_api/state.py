"""What the admin routes share, typed: the database, the stream-token secret, the hot-word
limits, how list changes are announced, and how jobs reach the workers. Whoever builds the app
provides it through the `admin_state` dependency (`create_admin_app` for the admin API alone,
the composition root for `callscribe serve`)."""

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends
from sqlalchemy.engine import Engine

from asr_core.hotwords import HotwordLimits
from common.rules import RequestRules

Publisher = Callable[[str, str, int], None]
"""Announces `(tenant, list, tenant hot-word version)` after a hot-word change is committed."""


@dataclass
class JobsConfig:
    """Batch jobs: where uploads go, the limits, and how jobs reach the workers."""

    directory: Path = Path("var/jobs")
    """Uploads are kept here until their job is done (the workers must reach it too)."""
    max_mb: float = 100.0
    """A tenant's input limit unless its settings say otherwise."""
    max_active: int = 4
    """A tenant's jobs queued or running at once unless its settings say otherwise."""
    rules: RequestRules = field(default_factory=RequestRules)
    """What a job's `language` is checked against."""
    allow_private: bool = False
    """Job URLs and webhooks may name loopback and private addresses (see `outbound`)."""
    enqueue: Callable[[str], None] | None = None
    """`enqueue(job_id)` sends the job to the workers (None: nothing runs it)."""


@dataclass
class AdminState:
    database: Engine
    token_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    """Signs stream tokens; processes behind one address must share it."""
    hotword_limits: HotwordLimits = field(default_factory=HotwordLimits)
    max_active_lists: int = 20
    """Hot-word lists a tenant may have active at once: every live segment of its calls
    searches them all."""
    publish: Publisher = lambda tenant, name, version: None
    jobs: JobsConfig = field(default_factory=JobsConfig)


def admin_state() -> AdminState:
    """Provided by whoever builds the app (see the module docstring)."""
    raise RuntimeError(
        "the admin routes need their AdminState: build the app with create_admin_app, or "
        "provide admin_api.state.admin_state"
    )


AdminDep = Annotated[AdminState, Depends(admin_state)]
