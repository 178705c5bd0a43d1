"""What the calls of this process keep in the admin database, through `admin_api.crud.calls`:
the call row (opened, closed, left active by a killed run) and each final as it is sent. Every
method queries: the hub calls them in worker threads, never on the event loop."""

import json
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from admin_api.crud import calls
from admin_api.crud.hotword_lists import encode
from admin_api.models import TranscriptSegment
from asr_core.hotwords import HotwordIndex
from asr_core.streaming import Final


class CallStorage:
    def __init__(self, database: Engine, node: str) -> None:
        self.database = database
        self.node = node
        """This process's name in `Call.node`: at start, its calls still active are stale."""

    def lookup(self, tenant_id: str, call_id: str) -> tuple[bool, bool]:
        """Whether the tenant exists, and whether the call id was used already."""
        with Session(self.database) as session:
            return calls.tenant_exists(session, tenant_id), calls.id_used(session, call_id)

    def open(
        self,
        call_id: str,
        tenant_id: str,
        source: str,
        recordings: Path | None,
        language: str | None,
    ) -> None:
        with Session(self.database) as session:
            calls.open_call(session, call_id, tenant_id, source, self.node, recordings, language)
            session.commit()

    def store_final(self, call_id: str, leg: str, final: Final) -> None:
        words = [
            {"word": w.word, "start_ms": w.start_ms, "end_ms": w.end_ms, "confidence": w.confidence}
            for w in final.words
        ]
        segment = TranscriptSegment(
            leg=leg,
            start_ms=final.start_ms,
            end_ms=final.end_ms,
            text=final.text,
            words=json.dumps(words, ensure_ascii=False),
            language=final.language,
            hotword_version=final.hotword_version,
        )
        with Session(self.database) as session:
            calls.add_final(session, call_id, segment)
            session.commit()

    def close(self, call_id: str, status: str, hotwords: HotwordIndex | None) -> None:
        """Close the row, with the hot-words the call ended with (for the post-call pass)."""
        entries = encode(hotwords.hotwords.entries) if hotwords is not None else None
        version = hotwords.hotwords.version if hotwords is not None else None
        with Session(self.database) as session:
            calls.close_call(session, call_id, status, entries, version)
            session.commit()

    def close_stale(self) -> int:
        """Mark this node's calls still active (a killed earlier run left them) interrupted."""
        with Session(self.database) as session:
            closed = calls.interrupt_active(session, [self.node])
            session.commit()
        return closed
