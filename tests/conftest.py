"""Shared fixtures. Real third-party data lives in ../shared/data; tests needing it skip without it."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from stac_api import StacApi, running_stac_api

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"
SHARED_DATA = Path(os.environ.get("SITEWATCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test with a clear reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data folder {SHARED_DATA} not found: this test reads third-party imagery that is not "
            "shipped with the repository (set SITEWATCH_SHARED_DATA to point at it)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_data() -> Path:
    return TEST_DATA


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """scrypt at N=2^10 instead of the shipped 2^17 (seconds per hash on a busy CI machine).

    It is the workspace setting ``password_hash_cost`` (SITEWATCH_PASSWORD_HASH_COST), set for
    the whole session so module-scoped workspaces and served subprocesses see it too.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SITEWATCH_PASSWORD_HASH_COST", "10")
        yield


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's workspace or settings."""
    monkeypatch.delenv("SITEWATCH_WORKSPACE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# --- a real PostgreSQL + PostGIS server for the store's second backend ----------------------------------

PG_BIN_ROOT = Path("/usr/lib/postgresql")
"""Where Debian's postgresql-NN packages put initdb and pg_ctl (`make system-deps` installs them)."""
PG_TEMPLATE = "sitewatch_postgis"
"""A database with the PostGIS extension, copied for each test's fresh database (CREATE EXTENSION is slow)."""


@dataclass(frozen=True)
class PostgresServer:
    """A throwaway server: trust auth, listening on a unix socket in ``socket_dir`` and 127.0.0.1 only."""

    socket_dir: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self, *, postgis: bool = True) -> str:
        """A new empty database (with PostGIS unless ``postgis=False``); returns its URL."""
        name = f"sw_{uuid.uuid4().hex[:16]}"
        template = PG_TEMPLATE if postgis else "template1"
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT",
                                  poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        engine.dispose()
        return self.url(name)


def _postgres_binaries() -> tuple[Path, Path] | None:
    """(bin folder, share folder) of the newest Debian PostgreSQL with PostGIS, or None."""
    for bin_dir in sorted(PG_BIN_ROOT.glob("*/bin"), key=lambda p: p.parent.name, reverse=True):
        share = Path("/usr/share/postgresql") / bin_dir.parent.name
        if (bin_dir / "initdb").is_file() and (share / "extension" / "postgis.control").is_file():
            return bin_dir, share
    return None


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the unprivileged `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL + PostGIS server in a temporary folder for the whole session, stopped afterwards.

    Skips with the reason when Debian's binaries are absent (`make system-deps` installs
    postgresql-15-postgis-3). Never touches any other server: its own data folder, port and socket.
    """
    found = _postgres_binaries()
    if found is None:
        pytest.skip("PostgreSQL with PostGIS not installed (no /usr/lib/postgresql/*/bin/initdb with the "
                    "postgis extension): run `make system-deps` (Debian package postgresql-15-postgis-3)")
    bin_dir, _share = found
    root = Path(tempfile.mkdtemp(prefix="sitewatch-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = _free_port()
    run = functools.partial(subprocess.run, check=True, capture_output=True, text=True, timeout=120)
    try:
        run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                             "--no-sync"]))
        # Durability is not what these tests check: fsync off keeps each test's database cheap.
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                             str(root / "server.log"), "-w", "start"]))
        server = PostgresServer(root, port)
        engine = sa.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT",
                                  poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{PG_TEMPLATE}"'))
        engine.dispose()
        engine = sa.create_engine(server.url(PG_TEMPLATE), isolation_level="AUTOCOMMIT",
                                  poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            connection.execute(sa.text("CREATE EXTENSION postgis"))
        engine.dispose()
        yield server
    except subprocess.CalledProcessError as error:
        log = root / "server.log"
        raise RuntimeError(f"could not start PostgreSQL in {root}: {error.stderr}"
                           f"{log.read_text() if log.is_file() else ''}") from error
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                            "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_backend(request: pytest.FixtureRequest) -> str:
    """Each store test runs twice: on the embedded SQLite file and on PostgreSQL + PostGIS."""
    return str(request.param)


@pytest.fixture
def database_url(store_backend: str, request: pytest.FixtureRequest) -> str | None:
    """The ``database_url`` a workspace under test gets: None (SQLite file) or a fresh PostGIS database."""
    if store_backend == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


# --- a real STAC API (stac-fastapi-pgstac over pgstac) in the PostgreSQL server above -------------------

@pytest.fixture(scope="session")
def stac_api(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StacApi]:
    """stac-fastapi-pgstac on 127.0.0.1 over a fresh pgstac database (``pypgstac migrate``), for the session.

    ``stac_api.url`` is the landing page; ``stac_api.load(collections, items)`` puts STAC documents in it
    with ``pypgstac load``; ``stac_api.clear()`` empties it (a module that needs a known catalog clears
    it first, as the server is shared by the session). Skips when the dev extra is not installed.
    """
    for module in ("stac_fastapi.pgstac", "pypgstac"):
        pytest.importorskip(module, reason=f"{module} is not installed: run `pip install -e '.[dev]'` "
                                           "(make test does)")
    database = sa.engine.make_url(postgres_server.create_database()).database
    dsn = f"postgresql://postgres@127.0.0.1:{postgres_server.port}/{database}"
    with running_stac_api(dsn, _free_port(), tmp_path_factory.mktemp("stac-api")) as api:
        yield api
