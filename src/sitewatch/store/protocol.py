"""The store behind one protocol: what the pipeline, the monitor and the apps ask of a workspace.

:class:`~sitewatch.store.workspace.Workspace` implements it on both backends, chosen by the
workspace's ``database_url``: the SQLite file (default) or PostgreSQL with PostGIS
(``postgresql+psycopg://…``), one schema and one set of migrations. Callers type their parameters
as :class:`Store` and never reach for an engine or a connection. The rules every implementation keeps:

* every write is one transaction, all or nothing, and re-running a write gives the same rows
  (``record_evidence`` replaces an observation's outputs, ``upsert_alerts`` keeps states);
* the alert lifecycle is enforced inside the write (``set_alert_state`` raises
  :class:`~sitewatch.core.errors.AlertTransitionError` for a move it does not allow), so two
  analysts racing cannot move an alert where neither could alone;
* concurrent writers (several ingests and monitors on one server) neither lose nor double rows:
  new keys are inserted with ``ON CONFLICT DO NOTHING`` and an observation's evidence is written
  under a lock on its row;
* listings that can grow without bound come as :class:`Page` s, filtered, ordered and cut in the
  database (``limit``/``offset``), never in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, Protocol, TypeVar, runtime_checkable

from sitewatch.core.errors import ValidationError
from sitewatch.core.types import (
    Alert,
    AlertState,
    Assessment,
    ChangeRegion,
    Detection,
    IndicatorValue,
    Observation,
    Scene,
    Site,
)
from sitewatch.store.records import AlertEvent, EvidenceRecord, SourceCursor
from sitewatch.store.settings import Settings

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    """One page of a listing, and where it sits in the whole."""

    items: tuple[Item, ...]
    total: int
    """Items matching the filters in all pages; -1 when not counted (``count=False``)."""
    limit: int
    offset: int

    def __post_init__(self) -> None:
        check_paging(self.limit, self.offset)


def check_paging(limit: int, offset: int) -> None:
    """Refuse a page size under 1 or a negative offset."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("Page", "limit", f"{limit!r} must be a whole number >= 1")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError("Page", "offset", f"{offset!r} must be a whole number >= 0")


@runtime_checkable
class Store(Protocol):
    """A workspace's store: sites, scenes and observations, evidence, indicators, alerts."""

    root: Path
    """The workspace folder (settings, chips)."""
    settings: Settings

    def close(self) -> None: ...

    def chip_path(self, observation: Observation) -> Path: ...

    def staging_dir(self) -> Path:
        """Where callers write chips before :meth:`add_scene` moves them in."""
        ...

    def revision(self) -> int | None:
        """A number that changes whenever anyone commits; None when the backend cannot tell (then
        callers must not cache)."""
        ...

    # --- catalog, scenes, observations ------------------------------------------------------------

    def sites(self) -> list[Site]: ...

    def site(self, id_or_alias: str) -> Site: ...

    def add_sites(self, sites: Sequence[Site], *, replace: bool = False) -> list[str]: ...

    def has_scene(self, scene_id: str) -> bool: ...

    def scene(self, scene_id: str) -> Scene: ...

    def scenes(self, site_id: str | None = None) -> list[Scene]: ...

    def scenes_page(self, *, site_id: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 100, offset: int = 0) -> Page[Scene]: ...

    def add_scene(self, scene: Scene, observations: Sequence[tuple[Observation, Path]], *,
                  cursor: SourceCursor | None = None) -> bool: ...

    def watch_cursor(self, source: str) -> SourceCursor: ...

    def save_watch_cursor(self, cursor: SourceCursor) -> None: ...

    def observations(self, site_id: str | None = None, *, since: datetime | None = None,
                     until: datetime | None = None) -> list[Observation]: ...

    def observations_page(self, *, site_id: str | None = None, since: datetime | None = None,
                          until: datetime | None = None, limit: int = 100,
                          offset: int = 0) -> Page[Observation]: ...

    def observation(self, observation_id: str) -> Observation: ...

    def flag_observation(self, observation_id: str, problem: str | None, *,
                         chip_sha256: str | None = None) -> None:
        """Record why the observation could not be scored (None: clear the flag), and the checksum of a
        chip ingested before checksums were kept, once it was found whole."""
        ...

    def replace_chip(self, observation_id: str, source: Path, chip_sha256: str) -> Observation:
        """Put a recreated chip in place of a missing or corrupt one, with its checksum, clearing the
        observation's problem, in one transaction."""
        ...

    # --- evidence and indicators ------------------------------------------------------------------

    def record_evidence(self, evidence: EvidenceRecord) -> None:
        """Store what one evidence step found for an observation, in one transaction."""
        ...

    def change_regions(self, *, observation_id: str | None = None,
                       site_id: str | None = None) -> list[ChangeRegion]: ...

    def change_regions_page(self, *, site_id: str | None = None, observation_id: str | None = None,
                            since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                            offset: int = 0) -> Page[ChangeRegion]: ...

    def detections(self, *, observation_id: str | None = None, site_id: str | None = None,
                   class_name: str | None = None) -> list[Detection]: ...

    def detections_page(self, *, site_id: str | None = None, observation_id: str | None = None,
                        class_name: str | None = None, min_score: float = 0.0, since: datetime | None = None,
                        until: datetime | None = None, limit: int = 100, offset: int = 0,
                        count: bool = True) -> Page[Detection]: ...

    def indicators(self, site_id: str, *, zone_id: str | None = None,
                   name: str | None = None) -> list[IndicatorValue]: ...

    def indicators_page(self, site_id: str, *, zone_id: str | None = None, name: str | None = None,
                        since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                        offset: int = 0) -> Page[IndicatorValue]: ...

    # --- alerts -----------------------------------------------------------------------------------

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None: ...

    def alerts(self, *, site_id: str | None = None, state: AlertState | None = None,
               since: datetime | None = None, until: datetime | None = None) -> list[Alert]: ...

    def alerts_page(self, *, site_id: str | None = None, state: AlertState | None = None,
                    since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                    offset: int = 0) -> Page[Alert]: ...

    def alert(self, alert_id: str) -> Alert: ...

    def set_alert_state(self, alert_id: str, state: AlertState, *, who: str, comment: str = "") -> Alert:
        """Move an alert to ``state`` if the lifecycle allows it from its current state (checked and
        written in one transaction), recording who and why."""
        ...

    def alert_history(self, alert_id: str) -> list[AlertEvent]: ...

    def add_assessment(self, assessment: Assessment) -> None: ...

    def assessments(self, alert_id: str) -> list[Assessment]: ...

    def picks(self, site_id: str) -> dict[str, list[str]]:
        """Alert id → the hypotheses analysts picked for it: each analyst's latest pick."""
        ...
