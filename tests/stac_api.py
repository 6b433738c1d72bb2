"""A real STAC API on loopback for the tests: stac-fastapi-pgstac over a pgstac database.

The schema is loaded with ``pypgstac migrate`` and collections and items with ``pypgstac load``, the
commands an operator of an in-house pgstac server runs (docs/stac.md); the API is
``stac_fastapi.pgstac.app:create_app`` under uvicorn in a subprocess on 127.0.0.1, with every extension the
package enables by default (filter/CQL2, query, sort, fields, ...), and no transaction endpoints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 60.0
"""How long the API may take to answer its first ping."""


def _bin(name: str) -> str:
    """A console script of the interpreter running the tests (the project's venv)."""
    return str(Path(sys.executable).with_name(name))


@dataclass(frozen=True)
class StacApi:
    """A running STAC API: search it at :attr:`url`; :meth:`load` puts collections and items in it."""

    url: str
    """Landing page, ``http://127.0.0.1:<port>/``."""
    dsn: str
    """libpq connection string of its pgstac database."""
    workdir: Path
    """Where the server's log and the files handed to ``pypgstac load`` are written."""

    def load(self, collections: Iterable[Mapping[str, Any]] = (),
             items: Iterable[Mapping[str, Any]] = ()) -> None:
        """``pypgstac load`` (upsert) of ``collections`` then ``items``: they are in the next search."""
        for table, documents in (("collections", list(collections)), ("items", list(items))):
            if documents:
                self._pypgstac_load(table, documents)

    def clear(self) -> None:
        """Deletes every item and collection, so a test module starts from an empty catalog."""
        _run([_bin("python"), "-c", _CLEAR, self.dsn])

    def _pypgstac_load(self, table: str, documents: list[Mapping[str, Any]]) -> None:
        ndjson = self.workdir / f"{table}-{time.monotonic_ns()}.ndjson"
        ndjson.write_text("".join(json.dumps(document) + "\n" for document in documents))
        _run([_bin("pypgstac"), "load", table, str(ndjson), "--dsn", self.dsn, "--method", "upsert"])


_CLEAR = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as connection:
    connection.execute("DELETE FROM pgstac.items")
    connection.execute("DELETE FROM pgstac.collections")
"""


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr or done.stdout}")


@contextmanager
def running_stac_api(dsn: str, port: int, workdir: Path) -> Iterator[StacApi]:
    """``pypgstac migrate`` on ``dsn`` (an empty PostGIS database), then the API on ``port`` until exit.

    ``dsn`` must name host, port, user and database (the API's settings are PG* variables).
    """
    from psycopg.conninfo import conninfo_to_dict

    _run([_bin("pypgstac"), "migrate", "--dsn", dsn])
    params = conninfo_to_dict(dsn)
    environment = {
        **os.environ,
        "PGHOST": str(params["host"]), "PGPORT": str(params["port"]), "PGUSER": str(params["user"]),
        "PGPASSWORD": str(params.get("password") or "unused"), "PGDATABASE": str(params["dbname"]),
        "DB_MIN_CONN_SIZE": "1", "DB_MAX_CONN_SIZE": "4",
        "STAC_FASTAPI_TITLE": "sitewatch tests", "STAC_FASTAPI_DESCRIPTION": "pgstac on loopback",
        "STAC_FASTAPI_LANDING_ID": "sitewatch-tests", "STAC_FASTAPI_VERSION": "0",
    }
    log = workdir / "stac-api.log"
    url = f"http://127.0.0.1:{port}/"
    # cwd: the settings read a .env file from the working folder; the tests' folder has none.
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [_bin("python"), "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            cwd=workdir, env=environment, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(url, process, log)
        yield StacApi(url=url, dsn=dsn, workdir=workdir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the STAC API exited ({process.returncode}) on start-up: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "_mgmt/ping", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the STAC API did not answer {url} within {STARTUP_TIMEOUT_S:.0f} s: "
                       f"{log.read_text()}")
