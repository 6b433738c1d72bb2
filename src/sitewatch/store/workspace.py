"""A workspace: a folder with settings, a migrated SQL database and chip files beside it.

Every write is one database transaction. Chip files are moved into ``chips/`` inside the
transaction that records them and removed again if it fails, so a failed or killed write
leaves at most staging files or unreferenced chips, which :meth:`Workspace.open` removes
(when no other process has the workspace open).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError

from sitewatch.catalog import builtin_sites
from sitewatch.core.errors import (
    AlertTransitionError,
    NotFoundError,
    StoreError,
    UnsupportedInputError,
    ValidationError,
    WorkspaceNotFoundError,
)
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
    latest_picks,
)
from sitewatch.monitor.lifecycle import allowed_from, check_reason, check_transition
from sitewatch.store import codec, migrate, queries
from sitewatch.store import schema as t
from sitewatch.store.chips import (
    CHIPS_DIR,
    STAGING_DIR,
    chip_relpath,
    clean_orphan_chips,
    clean_staging,
    place_chip,
    remove_quietly,
)
from sitewatch.store.protocol import Page, check_paging
from sitewatch.store.records import AlertEvent, EvidenceRecord, Notification, SourceCursor
from sitewatch.store.settings import SETTINGS_FILE, Settings

try:  # POSIX advisory locks tell whether another process has the workspace open
    import fcntl
except ImportError:  # pragma: no cover - Windows: clean-up then runs only from `sitewatch init`
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DATABASE_FILE = "sitewatch.db"
MODELS_DIR = "models"
"""Models fine-tuned on the workspace users' own labels (``sitewatch train detector --data``), used in
place of the shipped ones of the same name."""
LOCK_FILE = ".sitewatch.lock"
BUSY_TIMEOUT_S = 30
SYSTEM_USER = "sitewatch"
Item = TypeVar("Item")


def models_dir(root: Path) -> Path:
    """The folder of the workspace at ``root`` that holds its fine-tuned models (it need not exist)."""
    return Path(root) / MODELS_DIR


def _now() -> datetime:
    return datetime.now(UTC)


class Workspace:
    """One workspace folder. Build with :meth:`init` or :meth:`open`; close it (or use ``with``)."""

    def __init__(self, root: Path, settings: Settings, engine: Engine, lock: IO[bytes] | None) -> None:
        self.root = root
        self.settings = settings
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=True)
        self._lock = lock
        self._revision = queries.StoreRevision(engine.url)
        # A workspace dropped without close() still releases its lock and connections.
        self._finalizer = weakref.finalize(self, _release, engine, lock, self._revision)

    # --- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def init(cls, root: Path, *, sites: Sequence[Site] | None = None,
             database_url: str | None = None) -> Workspace:
        """Create (or re-open and migrate) the workspace at ``root`` and load ``sites``.

        ``sites`` defaults to the built-in reference catalog. Sites already present are kept
        as they are, so re-running ``init`` never overwrites a user's edits. ``database_url``
        (e.g. ``postgresql+psycopg://user@host/db``) puts the database on a server instead of
        the SQLite file ``sitewatch.db``; it is written to the new workspace's settings.
        """
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root} exists and is not a folder; choose another workspace path")
        if database_url is not None:
            check_database_url(database_url)
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / CHIPS_DIR).mkdir(exist_ok=True)
            (root / STAGING_DIR).mkdir(exist_ok=True)
            settings_path = root / SETTINGS_FILE
            if not settings_path.exists():
                settings = Settings(name=root.resolve().name or "sitewatch", database_url=database_url or "")
                settings_path.write_text(settings.to_toml(), encoding="utf-8")
                from sitewatch.catalog.context import write_builtin_context  # YAML: only at init

                write_builtin_context(root)
            elif database_url is not None and Settings.load(root).database_url != database_url:
                raise StoreError(
                    f"workspace {root} already keeps its database at "
                    f"{shown_url(Settings.load(root).database_url or 'sitewatch.db')}; to move it, run "
                    f"`sitewatch store copy {root} URL` and then set database_url in {settings_path}")
        except OSError as error:
            raise StoreError(f"cannot create workspace {root}: {error.strerror or error}; "
                             "check the path is writable") from None
        workspace = cls._connect(root, create=True)
        try:
            if sites is None:
                sites = builtin_sites()
            present = {site.id for site in workspace.sites()}
            missing = [site for site in sites if site.id not in present]
            if missing:
                workspace.add_sites(missing)
        except BaseException:
            workspace.close()
            raise
        return workspace

    @classmethod
    def open(cls, root: Path) -> Workspace:
        """Open the existing workspace at ``root``; migrates an older database to the current schema."""
        return cls._connect(Path(root), create=False)

    @classmethod
    def _connect(cls, root: Path, *, create: bool) -> Workspace:
        if not (root / SETTINGS_FILE).is_file():
            raise WorkspaceNotFoundError(
                f"no sitewatch workspace at {root} (no {SETTINGS_FILE}); run `sitewatch init {root}` "
                "to create one, or pass --workspace / set SITEWATCH_WORKSPACE to an existing one"
            )
        settings = Settings.load(root)
        url = database_url(root, settings)
        if not create and not settings.database_url and not (root / DATABASE_FILE).is_file():
            raise WorkspaceNotFoundError(
                f"workspace {root} has settings but no database {DATABASE_FILE}; run `sitewatch init {root}` "
                "to create an empty one (loads the reference sites)"
            )
        engine = create_engine(url)
        lock = None
        try:
            if not create and settings.database_url:
                with database_errors(url, "reading the schema revision"), engine.connect() as connection:
                    empty = migrate.current_revision(connection) is None
                if empty:
                    raise WorkspaceNotFoundError(
                        f"the database {shown_url(url)} of workspace {root} has no sitewatch tables; run "
                        f"`sitewatch init {root}` to create them (loads the reference sites)")
            with database_errors(url, "migrating the database"):
                before, after = migrate.upgrade_to_head(engine)
            if before != after:
                log.info("workspace %s database migrated %s -> %s", root, before or "empty", after)
            lock, alone = _lock_workspace(root)
            workspace = cls(root, settings, engine, lock)
            if alone:
                workspace._clean_leftovers()
            elif lock is not None:
                log.debug("workspace %s is open in another process; leftover clean-up deferred", root)
            _share_lock(lock)
            return workspace
        except BaseException:
            engine.dispose()
            if lock is not None:
                lock.close()
            raise

    def close(self) -> None:
        """Release the database connections and the workspace lock; safe to call twice."""
        self._finalizer()
        self._lock = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def revision(self) -> int | None:
        """A number that changes whenever anyone commits to the database (any process); None when
        the backend cannot tell, and callers must then not cache (:class:`queries.StoreRevision`)."""
        return self._revision.current()

    def store_name(self) -> str:
        """Where the database is, for people: the SQLite file's path or the server URL (no password)."""
        return shown_url(self._url)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for store modules that keep their own tables (users, sessions)."""
        return self._engine

    def staging_dir(self) -> Path:
        """Where callers write chips before :meth:`add_scene` moves them in; emptied at open."""
        path = self.root / STAGING_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def chip_relpath(site_id: str, observation_id: str) -> str:
        """The ``Observation.chip_path`` :meth:`add_scene` expects: ``chips/<site>/<observation>.tif``."""
        return chip_relpath(site_id, observation_id)

    def chip_path(self, observation: Observation) -> Path:
        """Absolute path of the observation's chip COG."""
        return self.root / observation.chip_path

    def _clean_leftovers(self) -> None:
        for path in clean_staging(self.root / STAGING_DIR):
            log.warning("removed stale staging file %s (left by an interrupted write)", path)
        with self._read("listing chip files") as connection:
            referenced = set(connection.execute(sa.select(t.observations.c.chip_path)).scalars())
        for path in clean_orphan_chips(self.root, referenced):
            log.warning("removed orphan chip %s (no observation references it; an interrupted write)", path)

    # --- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        with database_errors(self._url, action), self._engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        with database_errors(self._url, action), self._engine.connect() as connection:
            yield connection

    def _all(self, listing: queries.Listing, decode: Callable[[Any], Item], action: str) -> list[Item]:
        with self._read(action) as connection:
            return [decode(row) for row in connection.execute(listing.rows).mappings()]

    def _page(self, listing: queries.Listing, decode: Callable[[Any], Item], action: str, *, limit: int,
              offset: int, count: bool = True) -> Page[Item]:
        check_paging(limit, offset)
        with self._read(action) as connection:
            rows = connection.execute(listing.rows.limit(limit).offset(offset)).mappings().all()
            total = int(connection.execute(listing.count).scalar_one()) if count else -1
        return Page(tuple(decode(row) for row in rows), total, limit, offset)

    # --- sites -----------------------------------------------------------------------------------

    def sites(self) -> list[Site]:
        """Every site of the workspace, by id."""
        with self._read("reading sites") as connection:
            site_rows = connection.execute(sa.select(t.sites).order_by(t.sites.c.id)).mappings().all()
            zone_rows = connection.execute(sa.select(t.zones)).mappings().all()
        by_site: dict[str, list[Any]] = {}
        for row in zone_rows:
            by_site.setdefault(row["site_id"], []).append(row)
        return [codec.site_from(row, by_site.get(row["id"], [])) for row in site_rows]

    def site(self, id_or_alias: str) -> Site:
        """The site with this id, name or alias (case and punctuation ignored)."""
        sites = self.sites()
        for site in sites:
            if site.id == id_or_alias:
                return site
        matches = [site for site in sites if site.matches(id_or_alias)]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(site.id for site in sites) or "none"
        if matches:
            raise NotFoundError(f"{id_or_alias!r} names several sites ({', '.join(s.id for s in matches)}); "
                                "give the site id instead")
        raise NotFoundError(f"no site {id_or_alias!r} in workspace {self.root} (known: {known}); "
                            "add one with `sitewatch sites add FILE`")

    def add_sites(self, sites: Sequence[Site], *, replace: bool = False) -> list[str]:
        """Add ``sites`` in one transaction; an existing id is an error unless ``replace``. A site whose
        grid would exceed the ``max_site_grid_side`` setting is refused, naming its size. Linear in the
        number of sites (a catalog of 100,000 sites is added in one pass)."""
        ids = [site.id for site in sites]
        repeated = sorted(i for i, count in Counter(ids).items() if count > 1)
        if repeated:
            raise UnsupportedInputError(f"site id(s) given more than once: {', '.join(repeated)}")
        from sitewatch.imagery.grid import check_site_grid  # pyproj: only when sites are added

        too_large = [problem for site in sites
                     if (problem := check_site_grid(site, self.settings.max_site_grid_side)) is not None]
        if too_large:
            raise UnsupportedInputError(f"{len(too_large)} site(s) refused, nothing was added: "
                                        + "; ".join(too_large[:5]) + (" ..." if len(too_large) > 5 else ""))
        now = _now()
        with self._write("adding sites") as connection:
            # all stored ids, not an IN (...) of every new one: SQLite caps the parameters of a statement
            existing = set(connection.execute(sa.select(t.sites.c.id)).scalars()) & set(ids)
            if existing and not replace:
                shown = sorted(existing)
                listing = ", ".join(shown[:20]) + (" ..." if len(shown) > 20 else "")
                raise StoreError(
                    f"site(s) {listing} already in workspace {self.root}; nothing was added. "
                    "Use `sitewatch sites add FILE --replace` (replace=True) to overwrite them"
                )
            for site in sites:
                if site.id in existing:
                    connection.execute(t.sites.update().where(t.sites.c.id == site.id)
                                       .values(codec.site_row(site, now)))
                    connection.execute(t.zones.delete().where(t.zones.c.site_id == site.id))
            new = [codec.site_row(site, now) for site in sites if site.id not in existing]
            if new:
                connection.execute(t.sites.insert(), new)
            zones = [row for site in sites for row in codec.zone_rows(site)]
            if zones:
                connection.execute(t.zones.insert(), zones)
        return ids

    # --- scenes and observations -----------------------------------------------------------------

    def has_scene(self, scene_id: str) -> bool:
        with self._read("looking up a scene") as connection:
            return _scene_exists(connection, scene_id)

    def scene(self, scene_id: str) -> Scene:
        with self._read("reading a scene") as connection:
            row = connection.execute(sa.select(t.scenes).where(t.scenes.c.id == scene_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no scene {scene_id!r} in workspace {self.root}; ingest it with "
                                "`sitewatch ingest PATH`")
        return codec.scene_from(row)

    def scenes(self, site_id: str | None = None) -> list[Scene]:
        """Scenes by acquisition time; with ``site_id``, only those with an observation of that site."""
        return self._all(queries.scenes(site_id=site_id), codec.scene_from, "reading scenes")

    def scenes_page(self, *, site_id: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 100, offset: int = 0) -> Page[Scene]:
        """One page of :meth:`scenes` acquired between ``since`` and ``until`` (inclusive)."""
        return self._page(queries.scenes(site_id=site_id, since=since, until=until), codec.scene_from,
                          "reading scenes", limit=limit, offset=offset)

    def add_scene(self, scene: Scene, observations: Sequence[tuple[Observation, Path]], *,
                  cursor: SourceCursor | None = None) -> bool:
        """Record ``scene`` with its observations and move their chips into place, all or nothing.

        Each pair is an observation and the chip file the caller wrote (e.g. under
        :meth:`staging_dir`); ``observation.chip_path`` must be :meth:`chip_relpath` of it.
        ``cursor`` (`sitewatch watch`'s position in the scene's source) is saved in the same
        transaction, so a crash never keeps one without the other. Returns False, changing
        nothing (not even the cursor), when the scene is already stored.
        """
        self._check_new_observations(scene, observations)
        if self.has_scene(scene.id):
            return False
        placed: list[Path] = []
        try:
            with self._write(f"recording scene {scene.id}") as connection:
                if _scene_exists(connection, scene.id):
                    return False
                known_sites = set(connection.execute(sa.select(t.sites.c.id)).scalars())
                unknown = sorted({o.site_id for o, _ in observations} - known_sites)
                if unknown:
                    raise NotFoundError(f"observations of scene {scene.id} refer to unknown site(s) "
                                        f"{', '.join(unknown)}; add them with `sitewatch sites add FILE`")
                if not insert_new(connection, t.scenes, codec.scene_row(scene, _now())):
                    return False  # a concurrent ingest committed it while we waited on its row lock
                if observations:
                    connection.execute(t.observations.insert(),
                                       [codec.observation_row(o) for o, _ in observations])
                if cursor is not None:
                    _save_cursor(connection, cursor)
                for observation, source in observations:
                    placed.append(self.root / observation.chip_path)
                    place_chip(self.root, Path(source), observation.chip_path)
        except StoreError as error:
            remove_quietly(placed)
            # _write turned the driver's IntegrityError into a StoreError: when a concurrent ingest
            # stored the same scene between the check above and this insert, it is "already stored".
            if isinstance(error.__cause__, IntegrityError) and self.has_scene(scene.id):
                return False
            raise
        except BaseException:
            remove_quietly(placed)
            raise
        return True

    def _check_new_observations(self, scene: Scene, observations: Sequence[tuple[Observation, Path]]) -> None:
        seen: set[str] = set()
        for observation, source in observations:
            if observation.scene_id != scene.id:
                raise UnsupportedInputError(
                    f"observation {observation.id} has scene_id {observation.scene_id!r} but is added with "
                    f"scene {scene.id!r}; build it with scene_id=scene.id")
            expected = chip_relpath(observation.site_id, observation.id)
            if observation.chip_path != expected:
                raise UnsupportedInputError(
                    f"observation {observation.id} has chip_path {observation.chip_path!r}; it must be "
                    f"{expected!r} (use Workspace.chip_relpath(site_id, observation_id))")
            if observation.id in seen:
                raise UnsupportedInputError(
                    f"observation id {observation.id!r} given twice for scene {scene.id}")
            seen.add(observation.id)
            if not Path(source).is_file():
                raise UnsupportedInputError(
                    f"chip file {source} for observation {observation.id} does not exist; write the chip "
                    "(e.g. under Workspace.staging_dir()) before calling add_scene")

    def observations(self, site_id: str | None = None, *, since: datetime | None = None,
                     until: datetime | None = None) -> list[Observation]:
        """Observations ordered by acquisition time; ``since``/``until`` are inclusive bounds."""
        listing = queries.observations(site_id=site_id, since=since, until=until)
        return self._all(listing, codec.observation_from, "reading observations")

    def observations_page(self, *, site_id: str | None = None, since: datetime | None = None,
                          until: datetime | None = None, limit: int = 100,
                          offset: int = 0) -> Page[Observation]:
        """One page of :meth:`observations`."""
        return self._page(queries.observations(site_id=site_id, since=since, until=until),
                          codec.observation_from, "reading observations", limit=limit, offset=offset)

    def observation(self, observation_id: str) -> Observation:
        with self._read("reading an observation") as connection:
            row = _observation_row(connection, observation_id)
        if row is None:
            raise NotFoundError(f"no observation {observation_id!r} in workspace {self.root}; "
                                "list them with `sitewatch sites show SITE`")
        return codec.observation_from(row)

    def flag_observation(self, observation_id: str, problem: str | None, *,
                         chip_sha256: str | None = None) -> None:
        """Record why the observation could not be scored (None: clear the flag), and the checksum of a
        chip ingested before checksums were kept, once it was found whole."""
        if problem is not None and not problem.strip():
            raise UnsupportedInputError(f"the problem flagged on observation {observation_id} is empty; "
                                        "say what is wrong")
        with self._write(f"flagging observation {observation_id}") as connection:
            row = self._require_observation(connection, observation_id)
            values: dict[str, Any] = {"problem": problem}
            if chip_sha256 is not None:  # validated by Observation
                values["chip_sha256"] = dataclasses.replace(codec.observation_from(row),
                                                            chip_sha256=chip_sha256).chip_sha256
            connection.execute(t.observations.update().where(t.observations.c.id == observation_id)
                               .values(values))

    def replace_chip(self, observation_id: str, source: Path, chip_sha256: str) -> Observation:
        """Put a recreated chip file in place of the observation's missing or corrupt one and record its
        checksum, clearing the observation's problem, in one transaction (re-runnable: a failure
        leaves the old chip and row, or a good chip that the next repair or check finds)."""
        if not Path(source).is_file():
            raise UnsupportedInputError(f"chip file {source} for observation {observation_id} does not "
                                        "exist; write the chip before calling replace_chip")
        with self._write(f"replacing the chip of {observation_id}") as connection:
            row = self._require_observation(connection, observation_id)
            updated = dataclasses.replace(codec.observation_from(row), chip_sha256=chip_sha256, problem=None)
            connection.execute(t.observations.update().where(t.observations.c.id == observation_id)
                               .values(chip_sha256=updated.chip_sha256, problem=None))
            place_chip(self.root, Path(source), updated.chip_path)
        return updated

    def set_registration(self, observation_id: str, shift: tuple[float, float],
                         confidence: float | None) -> Observation:
        """Record the co-registration shift (rows, cols; site-grid pixels) applied to the
        observation's chip and its confidence (None: not co-registered, ``shift`` then (0, 0))."""
        self.record_evidence(EvidenceRecord(observation_id, registration=(shift, confidence)))
        return self.observation(observation_id)

    # --- analytics outputs -------------------------------------------------------------------------

    def record_evidence(self, evidence: EvidenceRecord) -> None:
        """Store what one evidence step found for an observation in one transaction: the shift
        applied to its chip, its change regions, detections and indicator values. Each part given
        replaces the stored one (re-runs replace, never add); a part left None is left as stored."""
        observation_id = evidence.observation_id
        for what, items in (("change region", evidence.change_regions), ("detection", evidence.detections),
                            ("indicator value", evidence.indicators)):
            if items is not None:
                self._check_owner(what, observation_id, items)
        with self._write(f"storing the evidence of {observation_id}") as connection:
            row = self._require_observation(connection, observation_id)
            if evidence.registration is not None:
                shift, confidence = evidence.registration
                updated = codec.observation_row(dataclasses.replace(  # validated by Observation
                    codec.observation_from(row), shift=(float(shift[0]), float(shift[1])),
                    shift_confidence=confidence))
                shift_columns = {k: updated[k] for k in ("shift_rows", "shift_cols", "shift_confidence")}
                connection.execute(t.observations.update().where(t.observations.c.id == observation_id)
                                   .values(shift_columns))
            if evidence.indicators is not None:
                wrong_site = sorted({v.site_id for v in evidence.indicators if v.site_id != row["site_id"]})
                if wrong_site:
                    raise UnsupportedInputError(
                        f"indicator values for observation {observation_id} (site {row['site_id']}) name "
                        f"site(s) {', '.join(wrong_site)}; build them with the observation's site_id")
                if row["problem"] is not None:  # scored now: whatever stopped it before is gone
                    connection.execute(t.observations.update().where(t.observations.c.id == observation_id)
                                       .values(problem=None))
            for table, rows in (
                (t.change_regions, None if evidence.change_regions is None else
                 [codec.change_region_row(r, i) for i, r in enumerate(evidence.change_regions)]),
                (t.detections, None if evidence.detections is None else
                 [codec.detection_row(d, i) for i, d in enumerate(evidence.detections)]),
                (t.indicator_values, None if evidence.indicators is None else
                 [codec.indicator_row(v) for v in evidence.indicators]),
            ):
                if rows is not None:
                    connection.execute(table.delete().where(table.c.observation_id == observation_id))
                    if rows:
                        connection.execute(table.insert(), rows)

    def replace_change_regions(self, observation_id: str, regions: Sequence[ChangeRegion]) -> None:
        """Make ``regions`` the change regions of the observation (re-runs replace, never add)."""
        self.record_evidence(EvidenceRecord(observation_id, change_regions=tuple(regions)))

    def change_regions(self, *, observation_id: str | None = None,
                       site_id: str | None = None) -> list[ChangeRegion]:
        """Change regions of an observation or a site, oldest observation first."""
        listing = queries.change_regions(queries.Scope(site_id=site_id, observation_id=observation_id))
        return self._all(listing, codec.change_region_from, "reading change regions")

    def change_regions_page(self, *, site_id: str | None = None, observation_id: str | None = None,
                            since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                            offset: int = 0) -> Page[ChangeRegion]:
        """One page of change regions of observations acquired between ``since`` and ``until``."""
        scope = queries.Scope(site_id=site_id, observation_id=observation_id, since=since, until=until)
        return self._page(queries.change_regions(scope), codec.change_region_from, "reading change regions",
                          limit=limit, offset=offset)

    def replace_detections(self, observation_id: str, detections: Sequence[Detection]) -> None:
        """Make ``detections`` the detections of the observation (re-runs replace, never add)."""
        self.record_evidence(EvidenceRecord(observation_id, detections=tuple(detections)))

    def detections(self, *, observation_id: str | None = None, site_id: str | None = None,
                   class_name: str | None = None) -> list[Detection]:
        """Detections of an observation or a site, oldest observation first."""
        listing = queries.detections(queries.Scope(site_id=site_id, observation_id=observation_id),
                                     class_name=class_name)
        return self._all(listing, codec.detection_from, "reading detections")

    def detections_page(self, *, site_id: str | None = None, observation_id: str | None = None,
                        class_name: str | None = None, min_score: float = 0.0, since: datetime | None = None,
                        until: datetime | None = None, limit: int = 100, offset: int = 0,
                        count: bool = True) -> Page[Detection]:
        """One page of detections, filtered by class, score and time; ``total`` is -1 unless ``count``
        (counting millions of rows costs more than the page)."""
        scope = queries.Scope(site_id=site_id, observation_id=observation_id, since=since, until=until)
        return self._page(queries.detections(scope, class_name=class_name, min_score=min_score),
                          codec.detection_from, "reading detections", limit=limit, offset=offset, count=count)

    def replace_indicators(self, observation_id: str, values: Sequence[IndicatorValue]) -> None:
        """Make ``values`` the indicator values of the observation (re-runs replace, never add)."""
        self.record_evidence(EvidenceRecord(observation_id, indicators=tuple(values)))

    def indicators(self, site_id: str, *, zone_id: str | None = None,
                   name: str | None = None) -> list[IndicatorValue]:
        """Indicator values of a site ordered by acquisition time (then observation, zone and name)."""
        return self._all(queries.indicators(site_id, zone_id=zone_id, name=name), codec.indicator_from,
                         "reading indicators")

    def indicators_page(self, site_id: str, *, zone_id: str | None = None, name: str | None = None,
                        since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                        offset: int = 0) -> Page[IndicatorValue]:
        """One page of :meth:`indicators` acquired between ``since`` and ``until`` (inclusive)."""
        return self._page(queries.indicators(site_id, zone_id=zone_id, name=name, since=since, until=until),
                          codec.indicator_from, "reading indicators", limit=limit, offset=offset)

    def _check_owner(self, what: str, observation_id: str, items: Sequence[Any]) -> None:
        strangers = sorted({item.observation_id for item in items if item.observation_id != observation_id})
        if strangers:
            raise UnsupportedInputError(
                f"{what}s given for observation {observation_id!r} belong to {', '.join(strangers)}; "
                "store each observation's outputs with its own call")

    def _require_observation(self, connection: Connection, observation_id: str) -> Any:
        # Locked until commit (PostgreSQL; SQLite has one writer anyway): two writers of one
        # observation's evidence take turns, so neither's delete-then-insert can interleave.
        row = _observation_row(connection, observation_id, lock=True)
        if row is None:
            raise NotFoundError(f"no observation {observation_id!r} in workspace {self.root}; "
                                "ingest its scene before storing analytics outputs for it")
        return row

    # --- alerts ------------------------------------------------------------------------------------

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        """Insert new alerts, update existing ones by id (keeping their state and creation time)."""
        with self._write("storing alerts") as connection:
            for alert in alerts:
                row = codec.alert_row(alert)
                # Insert-if-new first: two monitors raising one alert at once leave one alert, one event.
                if not insert_new(connection, t.alerts, row):
                    row.pop("state")
                    row.pop("created")
                    connection.execute(t.alerts.update().where(t.alerts.c.id == alert.id).values(row))
                else:
                    connection.execute(t.alert_events.insert().values(
                        alert_id=alert.id, state=alert.state.value, who=SYSTEM_USER, at=alert.created,
                        comment="raised"))

    def alerts(self, *, site_id: str | None = None, state: AlertState | None = None,
               since: datetime | None = None, until: datetime | None = None) -> list[Alert]:
        """Alerts, newest observation first; ``since``/``until`` bound their acquisition (inclusive)."""
        listing = queries.alerts(site_id=site_id, state=state, since=since, until=until)
        return self._all(listing, codec.alert_from, "reading alerts")

    def alerts_page(self, *, site_id: str | None = None, state: AlertState | None = None,
                    since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                    offset: int = 0) -> Page[Alert]:
        """One page of :meth:`alerts`."""
        return self._page(queries.alerts(site_id=site_id, state=state, since=since, until=until),
                          codec.alert_from, "reading alerts", limit=limit, offset=offset)

    def alert(self, alert_id: str) -> Alert:
        with self._read("reading an alert") as connection:
            row = connection.execute(sa.select(t.alerts).where(t.alerts.c.id == alert_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no alert {alert_id!r} in workspace {self.root}; list them with "
                                "`sitewatch alerts list`")
        return codec.alert_from(row)

    def set_alert_state(self, alert_id: str, state: AlertState, *, who: str, comment: str = "") -> Alert:
        """Move an alert to ``state``, recording who did it and why in its history.

        The lifecycle (:mod:`sitewatch.monitor.lifecycle`) is enforced in the same transaction as
        the write: the update only matches an alert in a state the move is allowed from, so two
        analysts racing cannot make a move neither could make alone. A move it does not allow
        raises :class:`~sitewatch.core.errors.AlertTransitionError` and changes nothing; a benign or
        false-alarm verdict without a ``comment`` saying why is refused before anything is written.
        """
        try:
            new_state = AlertState(state)
        except ValueError:
            choices = ", ".join(s.value for s in AlertState)
            raise UnsupportedInputError(f"alert state {state!r} is not one of: {choices}") from None
        if not isinstance(who, str) or not who.strip():
            raise UnsupportedInputError("set_alert_state needs who= (the analyst's name)")
        check_reason(alert_id, new_state, comment)
        sources = sorted(s.value for s in allowed_from(new_state))
        with self._write(f"changing the state of alert {alert_id}") as connection:
            done = connection.execute(t.alerts.update()
                                      .where(t.alerts.c.id == alert_id, t.alerts.c.state.in_(sources))
                                      .values(state=new_state.value))
            if done.rowcount == 0:
                current = connection.execute(
                    sa.select(t.alerts.c.state).where(t.alerts.c.id == alert_id)).scalar_one_or_none()
                if current is None:
                    raise NotFoundError(f"no alert {alert_id!r} in workspace {self.root}; list them with "
                                        "`sitewatch alerts list`")
                check_transition(alert_id, AlertState(current), new_state)
                raise AlertTransitionError(f"alert {alert_id} changed state while being moved to "
                                           f"{new_state.value}; look at it again and retry")
            connection.execute(t.alert_events.insert().values(
                alert_id=alert_id, state=new_state.value, who=who.strip(), at=_now(), comment=comment))
        return self.alert(alert_id)

    def alert_history(self, alert_id: str) -> list[AlertEvent]:
        """Every state an alert went through, oldest first."""
        self.alert(alert_id)
        query = (sa.select(t.alert_events).where(t.alert_events.c.alert_id == alert_id)
                 .order_by(t.alert_events.c.at, t.alert_events.c.id))
        with self._read("reading alert history") as connection:
            return [codec.alert_event_from(row) for row in connection.execute(query).mappings()]

    def add_assessment(self, assessment: Assessment) -> None:
        """Keep one analyst's judgement on an alert; every assessment is kept, none replaces another."""
        with self._write(f"storing an assessment of alert {assessment.alert_id}") as connection:
            query = (sa.select(t.alerts.c.id, t.alerts.c.hypotheses)
                     .where(t.alerts.c.id == assessment.alert_id))
            found = connection.execute(query).first()
            if found is None:
                raise NotFoundError(f"no alert {assessment.alert_id!r} in workspace {self.root}; "
                                    "an assessment must refer to a stored alert")
            offered = [str(item["pattern"]) for item in found.hypotheses or ()]
            if assessment.pick and assessment.pick not in offered:
                choices = ", ".join(offered) or "none: this alert has no hypotheses, pick nothing"
                raise ValidationError(
                    "Assessment", "pick",
                    f"{assessment.pick!r} is not a hypothesis of alert {assessment.alert_id}; "
                    f"pick one of: {choices}")
            connection.execute(t.assessments.insert().values(codec.assessment_row(assessment)))

    def picks(self, site_id: str) -> dict[str, list[str]]:
        """Alert id → the hypotheses analysts picked for it: each analyst's latest pick
        (:func:`~sitewatch.core.types.latest_picks`)."""
        query = (sa.select(t.assessments).join(t.alerts, t.alerts.c.id == t.assessments.c.alert_id)
                 .where(t.alerts.c.site_id == site_id, t.assessments.c.pick != "")
                 .order_by(t.assessments.c.created, t.assessments.c.id))
        by_alert: dict[str, list[Assessment]] = {}
        with self._read("reading analysts' hypothesis picks") as connection:
            for row in connection.execute(query).mappings():
                assessment = codec.assessment_from(row)
                by_alert.setdefault(assessment.alert_id, []).append(assessment)
        return {alert_id: list(latest_picks(found).values()) for alert_id, found in by_alert.items()}

    def assessments(self, alert_id: str) -> list[Assessment]:
        """Assessments of an alert, oldest first."""
        self.alert(alert_id)
        query = (sa.select(t.assessments).where(t.assessments.c.alert_id == alert_id)
                 .order_by(t.assessments.c.created, t.assessments.c.id))
        with self._read("reading assessments") as connection:
            return [codec.assessment_from(row) for row in connection.execute(query).mappings()]


    # --- watch: source cursors and the notification outbox ----------------------------------------

    def watch_cursor(self, source: str) -> SourceCursor:
        """How far `sitewatch watch` has read ``source`` (``until`` None when never)."""
        with self._read(f"reading the cursor of source {source}") as connection:
            row = connection.execute(sa.select(t.watch_cursors)
                                     .where(t.watch_cursors.c.source == source)).mappings().first()
        if row is None:
            return SourceCursor(source, None)
        return SourceCursor(source, row["until"], tuple(row["item_ids"]))

    def save_watch_cursor(self, cursor: SourceCursor) -> None:
        """Move a source's cursor past items that stored nothing (already stored, or refused)."""
        with self._write(f"saving the cursor of source {cursor.source}") as connection:
            _save_cursor(connection, cursor)

    def start_notifications(self) -> int:
        """Mark where notifications start, once: alert events recorded before the first call are
        never notified (a new watch does not replay history). Returns the mark."""
        with self._write("starting notifications") as connection:
            latest = connection.execute(sa.select(sa.func.max(t.alert_events.c.id))).scalar_one_or_none()
            insert_new(connection, t.watch_marks, {"name": _EVENTS_MARK, "value": int(latest or 0)})
            return int(connection.execute(sa.select(t.watch_marks.c.value)
                                          .where(t.watch_marks.c.name == _EVENTS_MARK)).scalar_one())

    def enqueue_notifications(self, routes_for: Callable[[Alert, str], Sequence[str]]) -> int:
        """Put every alert event after the mark in the outbox, once per route ``routes_for(alert,
        event)`` names (``event``: ``raised`` or the new state), and move the mark past them, in one
        transaction: an event is queued exactly once even if the process dies here. Returns the
        rows queued. Without :meth:`start_notifications` first, nothing is queued."""
        queued = 0
        with self._write("queueing notifications") as connection:
            mark = connection.execute(sa.select(t.watch_marks.c.value).where(
                t.watch_marks.c.name == _EVENTS_MARK).with_for_update()).scalar_one_or_none()
            if mark is None:
                return 0
            e = t.alert_events
            events = connection.execute(sa.select(e).where(e.c.id > mark).order_by(e.c.id)).mappings().all()
            alert_ids = sorted({row["alert_id"] for row in events})
            alerts = {row["id"]: codec.alert_from(row) for row in connection.execute(
                sa.select(t.alerts).where(t.alerts.c.id.in_(alert_ids))).mappings()} if alert_ids else {}
            last = int(mark)
            for row in events:
                last = max(last, int(row["id"]))
                alert = alerts.get(row["alert_id"])
                if alert is None:
                    continue
                raised = row["comment"] == "raised" and row["who"] == SYSTEM_USER
                kind = "raised" if raised else str(row["state"])
                for route in dict.fromkeys(routes_for(alert, kind)):
                    queued += _queue(connection, {
                        "alert_id": alert.id, "event_id": int(row["id"]), "event": kind, "route": route,
                        "created": _now(), "attempts": 0, "sent": None, "last_error": None})
            connection.execute(t.watch_marks.update().where(t.watch_marks.c.name == _EVENTS_MARK)
                               .values(value=last))
        return queued

    def pending_notifications(self, *, max_attempts: int) -> list[Notification]:
        """Queued notifications not yet sent and tried fewer than ``max_attempts`` times, oldest first."""
        o, e = t.notification_outbox, t.alert_events
        query = (sa.select(o, e.c.who, e.c.comment).join(e, e.c.id == o.c.event_id, isouter=True)
                 .where(o.c.sent.is_(None), o.c.attempts < max_attempts).order_by(o.c.id))
        with self._read("reading the notification outbox") as connection:
            return [Notification(id=row.id, alert_id=row.alert_id, event_id=row.event_id, event=row.event,
                                 route=row.route, attempts=row.attempts, created=row.created,
                                 who=row.who or "", comment=row.comment or "")
                    for row in connection.execute(query)]

    def notifications(self) -> list[tuple[Notification, datetime | None, str | None]]:
        """Every outbox row with when it was sent (None: not yet) and its last error."""
        o = t.notification_outbox
        with self._read("reading the notification outbox") as connection:
            return [(Notification(id=row.id, alert_id=row.alert_id, event_id=row.event_id, event=row.event,
                                  route=row.route, attempts=row.attempts, created=row.created),
                     row.sent, row.last_error)
                    for row in connection.execute(sa.select(o).order_by(o.c.id))]

    def record_delivery(self, notification_id: int, *, error: str | None) -> None:
        """Count one delivery attempt; without ``error`` the notification is sent and never retried."""
        o = t.notification_outbox
        values: dict[str, Any] = {"attempts": o.c.attempts + 1, "last_error": error}
        if error is None:
            values["sent"] = _now()
        with self._write(f"recording delivery of notification {notification_id}") as connection:
            connection.execute(o.update().where(o.c.id == notification_id).values(values))


# --- helpers ----------------------------------------------------------------------------------------

_EVENTS_MARK = "alert_events"


def _save_cursor(connection: Connection, cursor: SourceCursor) -> None:
    row = {"until": cursor.until, "item_ids": list(cursor.item_ids), "updated": _now()}
    if not insert_new(connection, t.watch_cursors, {"source": cursor.source, **row}):
        connection.execute(t.watch_cursors.update().where(t.watch_cursors.c.source == cursor.source)
                           .values(row))


def _queue(connection: Connection, row: dict[str, Any]) -> int:
    """Insert an outbox row unless that alert, event and route is queued already (0 then)."""
    o = t.notification_outbox
    exists = connection.execute(sa.select(o.c.id).where(
        o.c.alert_id == row["alert_id"], o.c.event_id == row["event_id"], o.c.route == row["route"])).first()
    if exists is not None:
        return 0
    connection.execute(o.insert().values(row))
    return 1


def _release(engine: Engine, lock: IO[bytes] | None, revision: queries.StoreRevision) -> None:
    revision.close()
    engine.dispose()
    if lock is not None:
        lock.close()


def _scene_exists(connection: Connection, scene_id: str) -> bool:
    return connection.execute(sa.select(t.scenes.c.id).where(t.scenes.c.id == scene_id)).first() is not None


def _observation_row(connection: Connection, observation_id: str, *, lock: bool = False) -> Any:
    query = sa.select(t.observations).where(t.observations.c.id == observation_id)
    return connection.execute(query.with_for_update(key_share=True) if lock else query).mappings().first()


def insert_new(connection: Connection, table: sa.Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its primary key is taken (then change nothing); True when inserted.

    One statement (``INSERT .. ON CONFLICT DO NOTHING``), so two processes inserting the same
    key at once leave one row and neither fails: the second waits for the first to commit.
    """
    dialect = connection.dialect.name
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert(table)
    elif dialect == "sqlite":
        insert = sqlite.insert(table)
    else:  # pragma: no cover - check_database_url admits only these two
        raise StoreError(f"no insert-if-new for database dialect {dialect!r}; use SQLite or PostgreSQL")
    key = [column.name for column in table.primary_key.columns]
    statement = insert.values(row).on_conflict_do_nothing(index_elements=key).returning(*table.primary_key)
    return connection.execute(statement).first() is not None


def database_url(root: Path, settings: Settings) -> str:
    """The SQLAlchemy URL of the workspace at ``root``: its setting, else its SQLite file."""
    return settings.database_url or f"sqlite:///{(Path(root) / DATABASE_FILE).resolve()}"


def check_database_url(url: str) -> URL:
    """``url`` parsed, with PostgreSQL on the psycopg 3 driver; an error says which URLs work."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UnsupportedInputError(
            f"database URL {url!r} is not a SQLAlchemy URL; give e.g. "
            "postgresql+psycopg://USER@HOST:5432/DATABASE or sqlite:////path/to/sitewatch.db") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "postgresql" and driver in ("psycopg2", "psycopg", "psycopg2cffi", "asyncpg", "pg8000"):
        return parsed.set(drivername="postgresql+psycopg")  # the driver sitewatch installs
    if backend == "sqlite" and driver == "pysqlite":
        return parsed
    raise UnsupportedInputError(
        f"database URL {shown_url(url)} uses {parsed.drivername!r}; sitewatch stores workspaces in SQLite "
        "(sqlite:///PATH) or PostgreSQL with PostGIS (postgresql+psycopg://USER@HOST:PORT/DATABASE)")


def create_engine(url: str) -> Engine:
    """An engine for a workspace database URL (SQLite with WAL and a busy timeout, or PostgreSQL)."""
    parsed = check_database_url(url)
    if parsed.get_backend_name() != "sqlite":
        import sitewatch.store.postgis  # noqa: F401  (PostGIS columns reflect as geometries)

        return sa.create_engine(parsed, pool_pre_ping=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers (dashboard, report) run while an ingest writes; the busy timeout makes
        # a second writer wait instead of failing at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def shown_url(url: str) -> str:
    """A database URL fit for messages and logs: the password hidden, a SQLite file as its path."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"
    return shown.removeprefix("sqlite:///")


@contextlib.contextmanager
def database_errors(url: str, action: str) -> Iterator[None]:
    """Turn driver errors into :class:`StoreError` messages that say what to do."""
    where = shown_url(url)
    try:
        yield
    except OperationalError as error:
        detail = " ".join(str(error.orig).split())
        if "locked" in detail or "busy" in detail:
            raise StoreError(f"{where}: database is busy (another sitewatch process is writing) while "
                             f"{action}; wait for it to finish and run the command again") from error
        if not url.startswith("sqlite"):
            raise StoreError(f"{where}: {action} failed: {detail}; check the server is running and the URL "
                             "(host, port, database, user) in database_url or SITEWATCH_DATABASE_URL "
                             "is right") from error
        raise StoreError(f"{where}: {action} failed: {detail}; check the disk has space and the database "
                         "file is writable, or restore it from a backup") from error
    except IntegrityError as error:
        detail = " ".join(str(error.orig).split())  # PostgreSQL adds a DETAIL line
        raise StoreError(f"{where}: {action} broke a database constraint ({detail}); the store is "
                         "unchanged. Check the ids refer to stored sites, scenes and observations") from error
    except SQLAlchemyError as error:
        raise StoreError(f"{where}: {action} failed: {error}; the store is unchanged") from error


def _lock_workspace(root: Path) -> tuple[IO[bytes] | None, bool]:
    """Try for the exclusive lock: True when no other process has the workspace open.

    Only then is clean-up safe: another process's staging files or just-moved chips are
    not leftovers while it runs. Whoever holds the exclusive lock cleans, then shares it.
    """
    if fcntl is None:  # pragma: no cover
        return None, False
    handle = open(root / LOCK_FILE, "a+b")  # noqa: SIM115 - held for the workspace's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return handle, False
    return handle, True


def _share_lock(handle: IO[bytes] | None) -> None:
    """Hold a shared lock while open (waits only while another process is cleaning up)."""
    if fcntl is not None and handle is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
