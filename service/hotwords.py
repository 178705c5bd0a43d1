"""The hot-words a request is decoded with: the caller's standing lists (through the
`ServiceConfig.hotwords_for` hook, e.g. a tenant's active lists) plus per-request phrases
(parsed by `common.rules`)."""

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from asr_core.hotwords import HotwordIndex
from service.config import HotwordsFor


@functools.lru_cache(maxsize=64)
def combined(standing: HotwordIndex | None, extra: HotwordIndex | None) -> HotwordIndex | None:
    """The standing list with the request's phrases added (the standing version is kept)."""
    if standing is None or extra is None:
        return standing or extra
    return HotwordIndex(standing.hotwords.merged(extra.hotwords))


class CallerHotwords:
    """A live stream's hot-words: the caller's standing lists, looked up again at every segment
    start (so an admin's edit reaches calls in progress), merged with the stream's own phrases.
    Build it with `for_caller` (the first lookup may query; later ones are cache reads)."""

    def __init__(
        self, hook: HotwordsFor | None, principal: object, extra: HotwordIndex | None
    ) -> None:
        self._hook = hook
        self._principal = principal
        self.extra = extra

    @classmethod
    async def for_caller(
        cls, connection: HTTPConnection, hook: HotwordsFor | None, extra: HotwordIndex | None
    ) -> "CallerHotwords":
        source = cls(hook, getattr(connection.state, "principal", None), extra)
        await run_in_threadpool(source)
        return source

    def __call__(self) -> HotwordIndex | None:
        standing = None if self._hook is None else self._hook(self._principal)
        return combined(standing, self.extra)


async def caller_index(
    connection: HTTPConnection,
    hook: HotwordsFor | None,
    extra: HotwordIndex | None,
    standing: bool = True,
) -> HotwordIndex | None:
    """Hot-words for this caller: their standing lists (through `hook`, unless `standing` is
    false) merged with `extra`."""
    hook = hook if standing else None
    principal = getattr(connection.state, "principal", None)
    lists = None if hook is None else await run_in_threadpool(hook, principal)
    return combined(lists, extra)
