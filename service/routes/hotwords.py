"""`GET /v1/hotwords/active`: the standing hot-words this process decodes the caller's audio
with, and their version (what an admin checks after an edit; what the reload benchmark polls)."""

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from service.auth import authenticate
from service.hotwords import caller_index
from service.state import StateDep

router = APIRouter(tags=["hot-words"], dependencies=[Depends(authenticate)])


class ActiveHotwords(BaseModel):
    version: int | None
    """The tenant's hot-word version applied here (None: no standing lists)."""
    phrase_count: int
    phrases: list[str]


@router.get(
    "/v1/hotwords/active",
    response_model=ActiveHotwords,
    summary="The caller's standing hot-words as this process applies them",
)
async def active_hotwords(request: Request, state: StateDep) -> ActiveHotwords:
    index = await caller_index(request, state.config.hotwords_for, None)
    phrases = index.hotwords.phrases if index is not None else []
    return ActiveHotwords(
        version=index.version if index is not None else None,
        phrase_count=len(phrases),
        phrases=phrases,
    )
