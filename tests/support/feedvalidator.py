"""Run the W3C Feed Validator on our rendered bytes, in a subprocess, without the network.

The validator is not on PyPI and must never be vendored here: tests use the copy in
``../shared/tools/feedvalidator`` (see its README), or the directory named by
``AGGREGATOR_FEEDVALIDATOR_DIR`` (holding ``feedvalidator/`` or ``src/feedvalidator``), run with
that directory's own ``venv`` when there is one. Without it the tests skip, and fail in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.shared import in_ci, shared_dir

ENV_VAR = "AGGREGATOR_FEEDVALIDATOR_DIR"
# "AA" is the level the online validator reports: errors (must) and warnings (should).
DEFAULT_LEVEL = "AA"
LEVELS = ("A", "AA", "AAA")
TIMEOUT_SECONDS = 60
SEVERITY_ERROR = "error"
SEVERITY_WARNING = "warning"
SHARED_COPY = "tools/feedvalidator"

# Runs inside the validator's interpreter. Reads the document on stdin and prints one line per
# event, "severity ClassName: message", so callers can tell errors from warnings.
_SCRIPT = r"""
import sys
import feedvalidator
from feedvalidator import compatibility, logging
from feedvalidator.formatter.text_plain import Formatter

base, content_type, level = sys.argv[1:4]
result = feedvalidator.validateStream(
    sys.stdin.buffer, firstOccurrenceOnly=1, contentType=content_type, base=base
)
events = getattr(compatibility, level)(result["loggedEvents"])
formatter = Formatter(events)
for event, text in zip(events, formatter):
    severity = "error" if isinstance(event, logging.Error) else "warning"
    print(f"{severity} {type(event).__name__}: {text.strip()}")
"""


def _package_parent(path: Path) -> Path | None:
    """The directory to put on PYTHONPATH: the one that holds the ``feedvalidator`` package."""
    for parent in (path, path / "src"):
        if (parent / "feedvalidator" / "__init__.py").is_file():
            return parent
    return None


def validator_dir() -> Path | None:
    """The validator's directory (the configured one, else the shared copy), or None when it
    does not hold the package."""
    configured = os.environ.get(ENV_VAR)
    path = Path(configured) if configured else shared_dir() / SHARED_COPY
    return path if _package_parent(path) is not None else None


def skip_reason() -> str:
    configured = os.environ.get(ENV_VAR)
    if configured:
        return f"{ENV_VAR}={configured} does not contain feedvalidator/ or src/feedvalidator"
    return (
        f"the W3C feedvalidator is not at {shared_dir() / SHARED_COPY} (it is not on PyPI; "
        f"set {ENV_VAR} to a copy)"
    )


def require_validator() -> Path:
    """The validator's directory; skips the test when it is absent, and fails it in CI,
    where its absence would mean nothing was checked."""
    root = validator_dir()
    if root is None:
        if in_ci():
            pytest.fail(skip_reason())
        pytest.skip(skip_reason())
    return root


def _python(checkout: Path) -> str:
    venv_python = checkout / "venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def validate(
    data: bytes,
    *,
    base: str,
    content_type: str,
    level: str = DEFAULT_LEVEL,
    checkout: Path | None = None,
) -> list[str]:
    """Validate ``data`` as if served from ``base`` with ``content_type``.

    Returns one line per logged event at ``level``, each starting with "error" or "warning";
    an empty list means the document is valid. Raises RuntimeError when the validator itself
    fails to run (that must not read as "valid").
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    root = checkout or validator_dir()
    src = _package_parent(root) if root is not None else None
    if root is None or src is None:
        raise RuntimeError(skip_reason())
    env = {**os.environ, "PYTHONPATH": str(src), "LANGUAGE": "en"}
    proc = subprocess.run(
        [_python(root), "-c", _SCRIPT, base, content_type, level],
        input=data,
        capture_output=True,
        cwd=src,
        env=env,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"feedvalidator exited with {proc.returncode}: {proc.stderr.decode(errors='replace')}"
        )
    return [line for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(SEVERITY_ERROR)]


def warnings(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(SEVERITY_WARNING)]
