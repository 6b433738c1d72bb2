"""How a dask task finds the workspace it works on, on whichever machine it runs.

A task gets the workspace folder (settings and chips) as an fsspec URL, a path or ``file://…`` on
storage every worker mounts (NFS, a shared disk), and the store's URL. It opens the folder and checks
that the folder's settings name that same store: a worker whose ``SITEWATCH_DATABASE_URL`` or mount
differs from the client's would otherwise write somewhere else. Object stores (``s3://``,
``gs://``) are refused for now: chips are read with rasterio from local paths and written by a rename
out of the staging folder; an object store needs reads through GDAL's ``/vsis3/`` (or fsspec file
objects) and writes as whole-object uploads, which is the next step (docs/deploy.md, "A cluster").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sitewatch.core.errors import StoreError, UnsupportedInputError
from sitewatch.store.protocol import Store
from sitewatch.store.settings import Settings
from sitewatch.store.workspace import Workspace, database_url, shown_url


@dataclass(frozen=True, slots=True)
class WorkspaceTarget:
    """The workspace a task opens."""

    folder: str
    """The workspace folder as the workers see it: a path or ``file://`` URL (fsspec)."""
    store_url: str
    """The SQLAlchemy URL of its store (the SQLite file in the folder, or a PostGIS URL)."""

    @classmethod
    def of(cls, workspace: Store, folder: str | None = None) -> WorkspaceTarget:
        """The target of ``workspace`` open here; ``folder`` when workers mount it elsewhere."""
        root = workspace.root.resolve()
        return cls(folder or str(root), database_url(root, workspace.settings))

    def local_folder(self) -> Path:
        from fsspec.core import url_to_fs
        from fsspec.utils import get_protocol

        if get_protocol(self.folder) not in ("file", "local"):
            raise UnsupportedInputError(
                f"workspace folder {self.folder}: workers read chips from a mounted folder for now (a path "
                "or file:// URL on storage every worker mounts); an object store needs chip reads through "
                "GDAL's /vsis3/ and whole-object writes, not done yet")
        return Path(url_to_fs(self.folder)[1])

    def open(self) -> Workspace:
        """Open the workspace, refusing one whose settings name another store."""
        root = self.local_folder()
        found = database_url(root, Settings.load(root))
        if found != self.store_url:
            raise StoreError(
                f"worker sees store {shown_url(found)} in workspace {root}, the run uses "
                f"{shown_url(self.store_url)}; mount the same workspace folder on every worker and give them "
                "the same database_url (sitewatch.toml or SITEWATCH_DATABASE_URL)")
        return Workspace.open(root)
