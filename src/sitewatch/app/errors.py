"""The one table mapping library errors to CLI exit codes and messages."""

from __future__ import annotations

from sitewatch.core.errors import (
    AlertTransitionError,
    CatalogError,
    ConfigError,
    ContextError,
    ImageryError,
    NotFoundError,
    PatternError,
    SitewatchError,
    StoreError,
    UnsupportedInputError,
    ValidationError,
    WorkspaceNotFoundError,
)

# Most specific first. Exit codes: 1 generic failure, 2 usage (typer's own),
# 3 not found, 4 bad input data, 5 imagery problem, 6 store problem, 7 a move the alert
# lifecycle does not allow from the alert's current state (a conflict, like HTTP 409).
EXIT_CODES: tuple[tuple[type[SitewatchError], int], ...] = (
    (AlertTransitionError, 7),
    (WorkspaceNotFoundError, 3),
    (NotFoundError, 3),
    (CatalogError, 4),
    (ConfigError, 4),
    (ContextError, 4),
    (PatternError, 4),
    (ValidationError, 4),
    (UnsupportedInputError, 4),
    (ImageryError, 5),
    (StoreError, 6),
    (SitewatchError, 1),
)


def exit_code_for(error: SitewatchError) -> int:
    for error_type, code in EXIT_CODES:
        if isinstance(error, error_type):
            return code
    return 1
