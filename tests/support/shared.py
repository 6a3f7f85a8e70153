"""Access to the read-only reference data in ``../shared`` beside the project.

Tests must not depend on it to pass when it is absent: outside CI they skip with a clear reason,
in CI (``CI=true``) they fail, because there its absence means the run is not checking anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    override = os.environ.get("AGGREGATOR_SHARED_DIR")
    return Path(override) if override else PROJECT_ROOT.parent / "shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_shared(relative: str) -> Path:
    """Return ``shared/relative``; skip (or fail in CI) when it is missing."""
    path = shared_dir() / relative
    if not path.exists():
        message = f"reference data {path} is absent (set AGGREGATOR_SHARED_DIR to point at it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path
