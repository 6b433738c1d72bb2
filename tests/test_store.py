"""The workspace store: round trips of every type, transactions, crash clean-up, migrations, settings.

Every test taking ``ws`` runs on both backends: the SQLite file and a real PostgreSQL + PostGIS
server (``postgres_server`` in conftest.py), through the same Workspace methods.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from shapely.geometry import Point, box

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
    Confidence,
    Detection,
    Hypothesis,
    IndicatorValue,
    Likelihood,
    Observation,
    Scene,
)
from sitewatch.store import Settings, Workspace, chip_relpath
from sitewatch.store import workspace as workspace_module
from sitewatch.store.migrate import current_revision, head_revision, render_upgrade_sql, upgrade_to_head
from sitewatch.store.protocol import Store
from sitewatch.store.records import EvidenceRecord
from sitewatch.store.schema import metadata

T0 = datetime(2019, 2, 20, 2, 0, tzinfo=UTC)
SANUMDONG = box(125.76, 39.06, 125.80, 39.08)


@pytest.fixture
def ws(tmp_path: Path, database_url: str | None) -> Workspace:
    workspace = Workspace.init(tmp_path / "ws", database_url=database_url)
    yield workspace  # type: ignore[misc]
    workspace.close()


def make_scene(number: int, **changes: object) -> Scene:
    values: dict[str, object] = dict(
        id=f"scene-{number}", uri=f"/data/scene-{number}.tif", sensor="WV02",
        acquired=T0 + timedelta(days=number), gsd=0.5, crs="EPSG:32651", footprint=SANUMDONG,
        bands=("red", "green", "blue"), width=200, height=100, checksum=f"{number:064x}", cloud_cover=0.1,
        off_nadir=12.5, license="CC-BY-4.0", attribution="test fixture",
    )
    values.update(changes)
    return Scene(**values)  # type: ignore[arg-type]


def stage(ws: Workspace, scene: Scene, site_ids: tuple[str, ...] = ("sanumdong",),
          content: bytes = b"chip") -> list[tuple[Observation, Path]]:
    """Observations of ``scene`` with their chips written to staging, as ingest does."""
    pairs = []
    for site_id in site_ids:
        observation_id = f"{scene.id}-{site_id}"
        source = ws.staging_dir() / f"{observation_id}.tif"
        source.write_bytes(content + observation_id.encode())
        observation = Observation(observation_id, site_id, scene.id, scene.acquired,
                                  chip_relpath(site_id, observation_id), 0.8, (0.5, -1.25), 0.9)
        pairs.append((observation, source))
    return pairs


def chip_files(ws: Workspace) -> list[str]:
    return sorted(p.relative_to(ws.root).as_posix() for p in (ws.root / "chips").rglob("*") if p.is_file())


def row_count(ws: Workspace, table: str) -> int:
    with ws.engine.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


# --- workspace lifecycle and settings ---------------------------------------------------------------


def test_init_creates_the_layout_and_loads_reference_sites(ws: Workspace, store_backend: str) -> None:
    assert (ws.root / "sitewatch.toml").is_file() and (ws.root / "chips").is_dir()
    assert ws.settings.name == "ws"
    assert ws.sites() == sorted(builtin_sites(), key=lambda s: s.id)
    assert (ws.root / "sitewatch.db").is_file() == (store_backend == "sqlite")
    with ws.engine.connect() as connection:
        if store_backend == "sqlite":
            assert connection.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
        else:  # geometries are PostGIS types with GiST indexes, in the CRS the domain types say
            srids = connection.execute(sa.text(
                "SELECT f_table_name, f_geometry_column, srid FROM geometry_columns ORDER BY 1")).all()
            assert srids == [("change_regions", "geometry_wkb", 0), ("detections", "geometry_wkb", 0),
                             ("scenes", "footprint_wkb", 4326), ("sites", "geometry_wkb", 4326),
                             ("zones", "geometry_wkb", 4326)]
            gist = connection.execute(sa.text(
                "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")).scalar_one()
            assert gist == 5
            inside = connection.execute(sa.text(
                "SELECT id FROM sites WHERE ST_Intersects(geometry_wkb, ST_SetSRID(ST_Point(125.78, 39.07), "
                "4326))")).scalars().all()
            assert inside == ["sanumdong"]  # the reference catalog's outline, queried by PostGIS


def test_init_again_keeps_data_and_user_edits(ws: Workspace) -> None:
    edited = builtin_sites()[0]
    ws.add_sites([dataclasses.replace(edited, notes="checked by hand")], replace=True)
    ws.add_scene(make_scene(1), stage(ws, make_scene(1)))
    ws.close()
    with Workspace.init(ws.root) as again:
        assert again.site(edited.id).notes == "checked by hand"
        assert len(again.sites()) == 3 and again.has_scene("scene-1")


def test_open_missing_workspace_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFoundError, match=r"run `sitewatch init .*nowhere`"):
        Workspace.open(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "sitewatch.toml").write_text('name = "half"\n')
    with pytest.raises(WorkspaceNotFoundError, match=r"no database sitewatch\.db"):
        Workspace.open(tmp_path / "half")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        Workspace.init(tmp_path / "file")


def test_settings_file_env_overrides_and_errors(tmp_path: Path) -> None:
    settings_file = tmp_path / "sitewatch.toml"
    settings_file.write_text('name = "watch"\nfalse_alarm_rate = 0.05\nchange_threshold = 1\n')
    settings = Settings.load(tmp_path, environ={"SITEWATCH_FALSE_ALARM_RATE": "0.001"})
    assert settings == Settings(name="watch", false_alarm_rate=0.001, change_threshold=1.0)
    assert isinstance(settings.change_threshold, float)
    assert Settings.load(tmp_path / "none", environ={}) == Settings()
    written = tmp_path / "w"
    written.mkdir()
    (written / "sitewatch.toml").write_text(Settings(name='say "hi"', min_valid_fraction=0.5).to_toml())
    assert Settings.load(written, environ={}) == Settings(name='say "hi"', min_valid_fraction=0.5)
    cases = [
        ({"SITEWATCH_FALSE_ALARM_RATE": "often"}, "false_alarm_rate: 'often'"),
        ({"SITEWATCH_FALSE_ALARM_RATE": "1.5"}, "false_alarm_rate: 1.5 must be between 0 and 1"),
        ({"SITEWATCH_MIN_VALID_FRACTION": "-0.1"}, "min_valid_fraction: -0.1 must be between 0 and 1"),
        ({"SITEWATCH_CHANGE_THRESHOLD": "nan"}, "change_threshold: nan is not a finite number"),
    ]
    for environ, message in cases:
        with pytest.raises(ValidationError, match=message):
            Settings.load(tmp_path, environ=environ)
    settings_file.write_text("false_alarm_rat = 0.1\n")
    with pytest.raises(ValidationError, match=r"false_alarm_rat: unknown setting .* known settings: name"):
        Settings.load(tmp_path, environ={})
    settings_file.write_text("name = \n")
    with pytest.raises(ValidationError, match="is not valid TOML"):
        Settings.load(tmp_path, environ={})


def test_workspace_reads_env_overrides(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws.close()
    monkeypatch.setenv("SITEWATCH_CHANGE_THRESHOLD", "0.42")
    with Workspace.open(ws.root) as reopened:
        assert reopened.settings.change_threshold == 0.42


# --- migrations -------------------------------------------------------------------------------------


def test_migrations_create_exactly_the_models_and_are_noops_at_head(
        tmp_path: Path, store_backend: str, request: pytest.FixtureRequest) -> None:
    if store_backend == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    else:  # a database without PostGIS: the migration enables the extension itself
        engine = sa.create_engine(request.getfixturevalue("postgres_server").create_database(postgis=False))
    try:
        with engine.connect() as connection:
            assert current_revision(connection) is None
        before, after = upgrade_to_head(engine)
        assert (before, after) == (None, head_revision())
        ours = set(metadata.tables)
        with engine.connect() as connection:
            assert ours <= set(sa.inspect(connection).get_table_names())
            context = MigrationContext.configure(connection, opts={
                "include_object": functools.partial(_ours_on, connection.dialect.name, ours),
                "compare_type": _same_type_on_this_backend})
            assert compare_metadata(context, metadata) == []
            schema_before = _ddl(connection)
        assert upgrade_to_head(engine) == (head_revision(), head_revision())
        with engine.connect() as connection:
            schema_after = _ddl(connection)
        assert schema_after == schema_before
    finally:
        engine.dispose()


def _ours_on(dialect: str, ours: set[str], obj: object, name: str | None, kind: str, *_: object) -> bool:
    """Our tables (PostGIS keeps its own, e.g. spatial_ref_sys), and indexes made on this dialect."""
    if kind == "table":
        return name in ours
    if kind == "index" and isinstance(obj, sa.Index) and obj._ddl_if is not None:
        return obj._ddl_if.dialect == dialect
    return True


def _same_type_on_this_backend(context: MigrationContext, inspected: sa.Column, declared: sa.Column,
                               inspected_type: object, declared_type: sa.types.TypeEngine) -> bool | None:
    """Compare a column against the type it has on this dialect (a PostGIS variant on PostgreSQL)."""
    variant = declared_type._variant_mapping.get(context.dialect.name)
    if variant is None:
        return None  # Alembic's own comparison
    def srid(geometry: object) -> int:  # unknown reads back as -1 (GeoAlchemy2) or 0 (PostGIS)
        return max(int(getattr(geometry, "srid", -1)), 0)

    return not (type(inspected_type).__name__ == "Geometry" and srid(inspected_type) == srid(variant))


def _ddl(connection: sa.Connection) -> list[str]:
    if connection.dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master"
    else:
        query = ("SELECT table_name || '.' || column_name || ' ' || udt_name FROM information_schema.columns "
                 "WHERE table_schema = 'public' UNION ALL SELECT indexdef FROM pg_indexes "
                 "WHERE schemaname = 'public'")
    return sorted(str(sql) for sql in connection.execute(sa.text(query)).scalars())


def test_schema_renders_for_postgresql() -> None:
    sql = render_upgrade_sql("postgresql://")
    assert "CREATE TABLE sites" in sql and "CREATE TABLE alert_events" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql and "BYTEA" in sql
    assert "PRAGMA" not in sql and "AUTOINCREMENT" not in sql
    assert "CREATE EXTENSION IF NOT EXISTS postgis" in sql
    assert "geometry(GEOMETRY, 4326)" in sql and "USING gist (geometry_wkb)" in sql


# --- sites ------------------------------------------------------------------------------------------


def test_site_lookup_and_add(ws: Workspace, tmp_path: Path) -> None:
    assert ws.site("Tongchang-ri").id == "sohae"
    assert ws.site("san'um-dong").id == "sanumdong"
    with pytest.raises(NotFoundError, match=r"no site 'atlantis' .*known: sanumdong, sohae, yongbyon"):
        ws.site("atlantis")
    sohae = ws.site("sohae")
    with pytest.raises(StoreError, match=r"sohae already in workspace.*--replace"):
        ws.add_sites([sohae])
    moved = dataclasses.replace(sohae, zones=sohae.zones[:2], gsd=0.3)
    assert ws.add_sites([moved], replace=True) == ["sohae"]
    assert ws.site("sohae") == moved
    with pytest.raises(UnsupportedInputError, match="more than once"):
        ws.add_sites([moved, moved], replace=True)


# --- scenes, observations and chips ----------------------------------------------------------------


def test_scene_and_observations_round_trip(ws: Workspace) -> None:
    scene = make_scene(1)
    pairs = stage(ws, scene, ("sanumdong", "yongbyon"))
    assert ws.add_scene(scene, pairs) is True
    assert ws.scene(scene.id) == scene
    assert ws.scenes() == [scene] and ws.scenes("sanumdong") == [scene] and ws.scenes("sohae") == []
    stored = ws.observations()
    assert stored == [o for o, _ in pairs]
    for observation, source in pairs:
        assert not source.exists()
        assert ws.chip_path(observation).read_bytes() == b"chip" + observation.id.encode()
        assert ws.observation(observation.id) == observation
    assert chip_files(ws) == sorted(o.chip_path for o, _ in pairs)
    optional_none = make_scene(2, cloud_cover=None, off_nadir=None, license=None, attribution=None)
    assert ws.add_scene(optional_none, [])
    assert ws.scene("scene-2") == optional_none


def test_registration_is_recorded_on_the_observation(ws: Workspace) -> None:
    scene = make_scene(1)
    ws.add_scene(scene, stage(ws, scene, ("sanumdong", "yongbyon")))
    first, other = ws.observations()
    updated = ws.set_registration(first.id, (-0.25, 1.5), 0.8)
    assert ws.observation(first.id) == updated == dataclasses.replace(first, shift=(-0.25, 1.5),
                                                                      shift_confidence=0.8)
    assert ws.observation(other.id) == other  # only that observation
    assert ws.set_registration(first.id, (0.0, 0.0), None).shift_confidence is None  # refused: none applied
    with pytest.raises(ValidationError, match="shift_confidence"):
        ws.set_registration(first.id, (0.0, 0.0), 1.5)
    with pytest.raises(NotFoundError, match="no observation 'missing'"):
        ws.set_registration("missing", (0.0, 0.0), None)


def test_add_scene_is_idempotent(ws: Workspace) -> None:
    scene = make_scene(1)
    assert ws.add_scene(scene, stage(ws, scene, content=b"first"))
    again = stage(ws, scene, content=b"second")
    assert ws.add_scene(scene, again) is False
    assert row_count(ws, "scenes") == 1 and row_count(ws, "observations") == 1
    assert ws.chip_path(ws.observations()[0]).read_bytes().startswith(b"first")
    assert again[0][1].exists()  # the caller's staged copy is untouched (staging is cleaned at next open)


def test_observation_filters_are_ordered_and_inclusive(ws: Workspace) -> None:
    for number in (3, 1, 2):
        ws.add_scene(make_scene(number), stage(ws, make_scene(number), ("sanumdong", "sohae")))
    times = [o.acquired for o in ws.observations("sanumdong")]
    assert times == sorted(times) and len(times) == 3
    window = ws.observations("sohae", since=T0 + timedelta(days=2), until=T0 + timedelta(days=3))
    assert [o.scene_id for o in window] == ["scene-2", "scene-3"]
    with pytest.raises(NotFoundError, match="no observation 'nope'"):
        ws.observation("nope")
    with pytest.raises(NotFoundError, match="no scene 'nope'"):
        ws.scene("nope")


def test_failed_write_leaves_no_rows_and_no_chips(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = make_scene(1)
    pairs = stage(ws, scene, ("sanumdong", "sohae", "yongbyon"))
    real_place = workspace_module.place_chip
    calls = []

    def place_then_fail(root: Path, source: Path, relpath: str) -> Path:
        calls.append(relpath)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_place(root, source, relpath)

    monkeypatch.setattr(workspace_module, "place_chip", place_then_fail)
    with pytest.raises(OSError, match="No space left"):
        ws.add_scene(scene, pairs)
    assert len(calls) == 3  # two chips were in place when the failure came
    assert not ws.has_scene(scene.id)
    assert row_count(ws, "scenes") == 0 and row_count(ws, "observations") == 0
    assert chip_files(ws) == []
    monkeypatch.setattr(workspace_module, "place_chip", real_place)
    assert ws.add_scene(scene, stage(ws, scene, ("sanumdong", "sohae", "yongbyon")))  # the re-run completes
    assert len(chip_files(ws)) == 3


def test_add_scene_rejects_bad_input_before_writing(ws: Workspace) -> None:
    scene = make_scene(1)
    (observation, source), = stage(ws, scene)
    cases = [
        ([(dataclasses.replace(observation, scene_id="other"), source)], "scene_id 'other'"),
        ([(dataclasses.replace(observation, chip_path="x.tif"), source)], "must be 'chips/"),
        ([(observation, source.with_name("missing.tif"))], "does not exist"),
        ([(observation, source), (observation, source)], "given twice"),
    ]
    for pairs, message in cases:
        with pytest.raises(UnsupportedInputError, match=message):
            ws.add_scene(scene, pairs)
    stranger = dataclasses.replace(observation, site_id="atlantis",
                                   chip_path=chip_relpath("atlantis", observation.id))
    with pytest.raises(NotFoundError, match=r"unknown site.*atlantis"):
        ws.add_scene(scene, [(stranger, source)])
    assert row_count(ws, "scenes") == 0 and chip_files(ws) == []
    with pytest.raises(StoreError, match="cannot name a chip file"):
        chip_relpath("sohae", "../escape")


def test_open_removes_staging_leftovers_and_orphan_chips(ws: Workspace,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    scene = make_scene(1)
    ws.add_scene(scene, stage(ws, scene))
    kept = chip_files(ws)
    stale = ws.staging_dir() / "half-written.tif"
    stale.write_bytes(b"partial")
    (ws.staging_dir() / "nested").mkdir()
    (ws.staging_dir() / "nested" / "x.tmp").write_bytes(b"x")
    orphan = ws.root / "chips" / "sohae" / "never-committed.tif"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"orphan")
    ws.close()
    with caplog.at_level(logging.WARNING, logger="sitewatch.store"), Workspace.open(ws.root) as reopened:
        assert chip_files(reopened) == kept
        assert list(reopened.staging_dir().iterdir()) == []
        assert not orphan.parent.exists()
    assert "stale staging file" in caplog.text and "half-written.tif" in caplog.text
    assert "orphan chip" in caplog.text and "never-committed.tif" in caplog.text


def test_cleanup_waits_while_another_process_has_the_workspace_open(ws: Workspace) -> None:
    in_flight = ws.staging_dir() / "being-written.tif"
    in_flight.write_bytes(b"another process is writing this")
    with Workspace.open(ws.root):  # `ws` is still open: its staging files are not leftovers
        assert in_flight.exists()
    ws.close()
    with Workspace.open(ws.root):
        assert not in_flight.exists()


def test_killed_mid_write_leaves_nothing_that_trips_the_rerun(ws: Workspace) -> None:
    """A real process dies (os._exit) after moving a chip and before committing."""
    ws.close()
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from datetime import datetime, timezone
        from shapely.geometry import box
        from sitewatch.core.types import Observation, Scene
        from sitewatch.store import Workspace, chip_relpath
        from sitewatch.store import workspace as module

        real = module.place_chip
        def place_then_die(root, source, relpath):
            real(root, source, relpath)
            os._exit(9)
        module.place_chip = place_then_die
        ws = Workspace.open(Path({str(ws.root)!r}))
        when = datetime(2019, 2, 22, tzinfo=timezone.utc)
        scene = Scene("killed", "/x.tif", "WV02", when, 0.5, "EPSG:32651", box(125.76, 39.06, 125.8, 39.08),
                      ("red",), 10, 10, "f" * 64)
        source = ws.staging_dir() / "killed.tif"
        source.write_bytes(b"chip")
        second = ws.staging_dir() / "killed-2.tif"
        second.write_bytes(b"chip")
        first = Observation("killed-1", "sanumdong", "killed", when, chip_relpath("sanumdong", "killed-1"), 1)
        other = Observation("killed-2", "sohae", "killed", when, chip_relpath("sohae", "killed-2"), 1)
        ws.add_scene(scene, [(first, source), (other, second)])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr
    assert (ws.root / "chips" / "sanumdong" / "killed-1.tif").exists()  # the half-done write is on disk
    with Workspace.open(ws.root) as reopened:
        assert not reopened.has_scene("killed") and reopened.observations() == []
        assert chip_files(reopened) == [] and list(reopened.staging_dir().iterdir()) == []
        scene = make_scene(1)
        assert reopened.add_scene(scene, stage(reopened, scene))


# --- analytics outputs ------------------------------------------------------------------------------


@pytest.fixture
def observed(ws: Workspace) -> list[Observation]:
    for number in (1, 2):
        ws.add_scene(make_scene(number), stage(ws, make_scene(number), ("sanumdong", "sohae")))
    return ws.observations()


def test_detections_round_trip_and_replace(ws: Workspace, observed: list[Observation]) -> None:
    first, second = observed[0].id, observed[2].id
    found = [
        Detection(first, "truck", 0.9, box(500000, 4300000, 500012, 4300003), "parking", "test"),
        Detection(first, "car", 0.6, Point(500010, 4300010)),
    ]
    ws.replace_detections(first, found)
    ws.replace_detections(second, [Detection(second, "crane", 0.7, box(0, 0, 30, 2))])
    assert ws.detections(observation_id=first) == found
    assert ws.detections(class_name="crane") == [Detection(second, "crane", 0.7, box(0, 0, 30, 2))]
    assert len(ws.detections(site_id=observed[0].site_id)) == 3
    ws.replace_detections(first, found[:1])
    assert ws.detections(observation_id=first) == found[:1]
    with pytest.raises(UnsupportedInputError, match="belong to"):
        ws.replace_detections(second, found)
    with pytest.raises(NotFoundError, match="no observation 'missing'"):
        ws.replace_detections("missing", [])


def test_change_regions_round_trip_and_replace(ws: Workspace, observed: list[Observation]) -> None:
    later, earlier = observed[1], observed[0]
    regions = [ChangeRegion(later.id, earlier.id, box(0, 0, 40, 50), 2000.0, 0.8, "rail_yard", "diff")]
    ws.replace_change_regions(later.id, regions)
    assert ws.change_regions(observation_id=later.id) == regions
    assert ws.change_regions(site_id=later.site_id) == regions
    assert ws.change_regions(site_id="yongbyon") == []
    ws.replace_change_regions(later.id, [])
    assert ws.change_regions() == []


def test_indicators_round_trip_not_observed_and_replace(ws: Workspace, observed: list[Observation]) -> None:
    observation = observed[0]
    site_id, when = observation.site_id, observation.acquired
    values = [
        IndicatorValue(observation.id, site_id, "parking", "vehicles", 4.0, 0.9, when),
        IndicatorValue(observation.id, site_id, "rail_yard", "vehicles", None, 0.0, when),
    ]
    ws.replace_indicators(observation.id, values)
    ws.replace_indicators(observation.id, values)  # re-run: replaced, not doubled
    stored = ws.indicators(observation.site_id)
    assert sorted(stored, key=lambda v: v.zone_id) == values
    assert [v.observed for v in ws.indicators(observation.site_id, zone_id="rail_yard")] == [False]
    assert ws.indicators(observation.site_id, name="cranes") == []
    wrong = IndicatorValue(observation.id, "yongbyon", "parking", "vehicles", 1.0, 1.0, observation.acquired)
    with pytest.raises(UnsupportedInputError, match="name site"):
        ws.replace_indicators(observation.id, [wrong])


# --- alerts, history and assessments ----------------------------------------------------------------


def make_alert(observation: Observation, number: int, **changes: object) -> Alert:
    values: dict[str, object] = dict(
        id=f"alert-{number}", site_id=observation.site_id, observation_id=observation.id,
        acquired=observation.acquired, created=observation.acquired + timedelta(hours=number),
        indicator="vehicles", value=12.0, baseline=2.0, score=4.0,
        explanation="12 vehicles where 2 are usual",
        zone_id="parking", p_value=0.004,
    )
    values.update(changes)
    return Alert(**values)  # type: ignore[arg-type]


def test_alerts_upsert_state_history_and_assessments(ws: Workspace, observed: list[Observation]) -> None:
    older, newer = make_alert(observed[0], 1), make_alert(observed[1], 2, p_value=None, zone_id=None)
    ws.upsert_alerts([older, newer])
    assert ws.alerts() == [newer, older]  # newest first
    assert ws.alert("alert-1") == older
    confirmed = ws.set_alert_state("alert-1", AlertState.CONFIRMED, who="analyst-a", comment="cranes seen")
    assert confirmed.state is AlertState.CONFIRMED
    rescored = make_alert(observed[0], 1, score=9.0, created=T0 + timedelta(days=30))
    ws.upsert_alerts([rescored])  # a re-run of the monitor updates the numbers, keeps the analyst's state
    stored = ws.alert("alert-1")
    assert stored.score == 9.0 and stored.state is AlertState.CONFIRMED and stored.created == older.created
    assert ws.alerts(state=AlertState.CONFIRMED) == [stored]
    assert ws.alerts(site_id=observed[1].site_id, state=AlertState.NEW) == [newer]
    history = ws.alert_history("alert-1")
    assert [(e.state, e.who, e.comment) for e in history] == [
        (AlertState.NEW, "sitewatch", "raised"), (AlertState.CONFIRMED, "analyst-a", "cranes seen")]
    assert history[0].when == older.created and history[1].when.tzinfo is not None
    with pytest.raises(NotFoundError, match="no alert 'alert-9'"):
        ws.set_alert_state("alert-9", AlertState.BENIGN, who="x", comment="a delivery")
    with pytest.raises(UnsupportedInputError, match="who="):
        ws.set_alert_state("alert-1", AlertState.BENIGN, who=" ")
    views = [
        Assessment("alert-1", "expert-a", T0, Likelihood.LIKELY, Confidence.MODERATE, "looks like assembly",
                   ("rocket assembly", "routine maintenance")),
        Assessment("alert-1", "expert-b", T0 + timedelta(hours=1), Likelihood.UNLIKELY, Confidence.LOW),
    ]
    for view in views:
        ws.add_assessment(view)
    assert ws.assessments("alert-1") == views  # disagreeing judgements are both kept
    with pytest.raises(NotFoundError, match="must refer to a stored alert"):
        ws.add_assessment(Assessment("alert-9", "x", T0, Likelihood.LIKELY, Confidence.LOW))


def test_the_store_refuses_moves_the_lifecycle_does_not_allow(ws: Workspace,
                                                                observed: list[Observation]) -> None:
    ws.upsert_alerts([make_alert(observed[0], 1)])
    assert ws.set_alert_state("alert-1", AlertState.ACKNOWLEDGED, who="ana").state is AlertState.ACKNOWLEDGED
    for refused in (AlertState.NEW, AlertState.ACKNOWLEDGED):
        with pytest.raises(AlertTransitionError, match="allowed from acknowledged"):
            ws.set_alert_state("alert-1", refused, who="ana")
    for dismissal in (AlertState.BENIGN, AlertState.FALSE_ALARM):  # never without a reason
        with pytest.raises(UnsupportedInputError, match="needs a reason"):
            ws.set_alert_state("alert-1", dismissal, who="ana", comment="  ")
    ws.set_alert_state("alert-1", AlertState.BENIGN, who="ana", comment="weekly market")
    with pytest.raises(AlertTransitionError, match="cannot become benign"):
        ws.set_alert_state("alert-1", AlertState.BENIGN, who="bo", comment="same")
    assert ws.alert("alert-1").state is AlertState.BENIGN  # a refused move changes nothing
    assert [e.state for e in ws.alert_history("alert-1")] == [
        AlertState.NEW, AlertState.ACKNOWLEDGED, AlertState.BENIGN]


def test_pages_filter_order_and_count_in_the_store(ws: Workspace, observed: list[Observation]) -> None:
    alerts = [make_alert(o, i) for i, o in enumerate(observed, start=1)]
    ws.upsert_alerts(alerts)
    newest_first = ws.alerts()
    page = ws.alerts_page(limit=1, offset=1)
    assert page.items == (newest_first[1],) and page.total == len(alerts)
    assert (page.limit, page.offset) == (1, 1)
    first = observed[0].acquired
    at_first = [a for a in newest_first if a.acquired == first]
    assert len(at_first) == 2 and ws.alerts(since=first, until=first) == at_first  # inclusive bounds
    assert ws.alerts_page(since=first + timedelta(seconds=1)).total == len(alerts) - 2
    sohae = tuple(a for a in at_first if a.site_id == "sohae")
    assert ws.alerts_page(site_id="sohae", until=first).items == sohae
    scenes = ws.scenes_page(limit=1)
    assert scenes.total == 2 and scenes.items == tuple(ws.scenes()[:1])
    observations = ws.observations_page(site_id=observed[0].site_id, until=first)
    assert observations.items == (observed[0],) and observations.total == 1
    with pytest.raises(ValidationError, match="limit"):
        ws.alerts_page(limit=0)


def test_the_workspace_is_a_store_and_records_evidence_in_one_transaction(
        ws: Workspace, observed: list[Observation]) -> None:
    assert isinstance(ws, Store)
    first = observed[0]
    detection = Detection(first.id, "truck", 0.9, box(500000, 4300000, 500012, 4300003), "parking", "test")
    value = IndicatorValue(first.id, first.site_id, "parking", "count_truck", 1.0, 1.0, first.acquired)
    wrong = IndicatorValue(first.id, "yongbyon", "parking", "count_truck", 1.0, 1.0, first.acquired)
    with pytest.raises(UnsupportedInputError, match="name site"):  # one bad part: nothing is stored
        ws.record_evidence(EvidenceRecord(first.id, registration=((1.5, -2.0), 0.8), detections=(detection,),
                                          indicators=(value, wrong)))
    assert ws.detections(observation_id=first.id) == [] and ws.observation(first.id) == first
    ws.record_evidence(EvidenceRecord(first.id, registration=((1.5, -2.0), 0.8), detections=(detection,),
                                      indicators=(value,)))
    ws.record_evidence(EvidenceRecord(first.id, indicators=(value,)))  # parts left None stay as stored
    assert ws.detections(observation_id=first.id) == [detection]
    assert ws.indicators(first.site_id) == [value]
    assert (ws.observation(first.id).shift, ws.observation(first.id).shift_confidence) == ((1.5, -2.0), 0.8)


def test_alert_for_unknown_observation_is_a_store_error(ws: Workspace) -> None:
    site = ws.site("sohae")
    ghost = Observation("ghost", site.id, "none", T0, chip_relpath(site.id, "ghost"), 1.0)
    with pytest.raises(StoreError, match=r"constraint.*the store is unchanged"):
        ws.upsert_alerts([make_alert(ghost, 1)])
    assert ws.alerts() == []


def test_alert_hypotheses_round_trip(ws: Workspace, observed: list[Observation]) -> None:
    ranked = (Hypothesis("launch_preparation", "launch or test preparation", False, 3.2e5, 0.93),
              Hypothesis("none", "none of these", False, 2.1e4, 0.07))
    alert = make_alert(observed[0], 1, hypotheses=ranked)
    ws.upsert_alerts([alert, make_alert(observed[1], 2)])
    assert ws.alert("alert-1").hypotheses == ranked
    assert ws.alert("alert-1").leading_hypothesis == ranked[0]
    assert ws.alert("alert-2").hypotheses == () and ws.alert("alert-2").leading_hypothesis is None


def test_the_revision_holds_still_on_reads_and_moves_on_every_commit(ws: Workspace) -> None:
    """What the web cache is tagged with, on both backends (SQLite's data_version, PostgreSQL's WAL
    position): known, unchanged by reads, changed by a commit from another handle."""
    first = ws.revision()
    assert isinstance(first, int)
    ws.sites(), ws.alerts(), ws.observations()
    assert ws.revision() == first
    with Workspace.open(ws.root) as other:
        other.add_scene(make_scene(1), stage(other, make_scene(1), ("sanumdong",)))
    assert ws.revision() != first
