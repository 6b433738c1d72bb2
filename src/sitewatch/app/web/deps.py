"""Shared request dependencies: the workspace, pagination and time-range parameters.

They are ``async`` because they only compute: FastAPI would run plain functions in its
thread pool, a hop that costs more than the work itself on every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request

from sitewatch.app.web.errors import BadRequestError
from sitewatch.core.timeutil import parse_utc_bound
from sitewatch.store.protocol import Store

T = TypeVar("T")
MAX_PAGE = 1000
MAX_OFFSET = 10**12
"""Far beyond any listing; it keeps offsets within the database's 64-bit integers."""


async def workspace(request: Request) -> Store:
    ws: Store = request.app.state.workspace
    return ws


WorkspaceDep = Annotated[Store, Depends(workspace)]


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int

    def page(self, request: Request, items: Sequence[Any], total: int | None = None) -> dict[str, Any]:
        """The envelope of one page; ``items`` is the whole list unless ``total`` says it is a slice."""
        if total is None:
            total = len(items)
            items = items[self.offset : self.offset + self.limit]
        following = self.offset + self.limit
        next_url = (
            str(request.url.include_query_params(offset=following, limit=self.limit))
            if following < total
            else None
        )
        return {
            "total": total,
            "limit": self.limit,
            "offset": self.offset,
            "next": next_url,
            "items": list(items),
        }


async def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
) -> Paging:
    return Paging(limit=limit, offset=offset)


PagingDep = Annotated[Paging, Depends(paging)]


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Inclusive bounds on acquisition time, applied by the store's queries; a date alone covers its
    whole day (``until=2019-02-22`` keeps that day's 02:20 image)."""

    since: datetime | None
    until: datetime | None


def parse_time(name: str, text: str | None) -> datetime | None:
    """Query parameter ``name`` as an inclusive bound (a date alone is the whole day); 400 when malformed."""
    if text is None or not text.strip():
        return None
    try:
        return parse_utc_bound(text, upper=name == "until")
    except ValueError as error:
        raise BadRequestError(f"query parameter {name}: {error}") from None


async def time_range(
    since: Annotated[str | None, Query(description="ISO 8601 date or datetime, inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 date or datetime, inclusive")] = None,
) -> TimeRange:
    window = TimeRange(parse_time("since", since), parse_time("until", until))
    if window.since and window.until and window.since > window.until:
        raise BadRequestError(f"since ({since}) is after until ({until}); swap them")
    return window


TimeRangeDep = Annotated[TimeRange, Depends(time_range)]
