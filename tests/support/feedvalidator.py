"""Run the W3C Feed Validator on our rendered bytes, in a subprocess, without the network.

The validator is not on PyPI and must never be vendored here, so tests find an unpacked checkout
through ``AGGREGATOR_FEEDVALIDATOR_DIR`` (the directory holding ``src/feedvalidator``) and run it
with that checkout's own ``venv`` when there is one. See ../shared/data/feeds/README.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENV_VAR = "AGGREGATOR_FEEDVALIDATOR_DIR"
# "AA" is the level the online validator reports: errors (must) and warnings (should).
DEFAULT_LEVEL = "AA"
LEVELS = ("A", "AA", "AAA")
TIMEOUT_SECONDS = 60
SEVERITY_ERROR = "error"
SEVERITY_WARNING = "warning"

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


def validator_dir() -> Path | None:
    """The configured checkout, or None when it is not set or does not look like one."""
    configured = os.environ.get(ENV_VAR)
    if not configured:
        return None
    path = Path(configured)
    return path if (path / "src" / "feedvalidator").is_dir() else None


def skip_reason() -> str:
    configured = os.environ.get(ENV_VAR)
    if not configured:
        return (
            f"{ENV_VAR} is not set; the W3C feedvalidator is not on PyPI, so these checks only "
            "run where a checkout was unpacked (see ../shared/data/feeds/README.md)"
        )
    return f"{ENV_VAR}={configured} does not contain src/feedvalidator"


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
    if root is None:
        raise RuntimeError(skip_reason())
    src = root / "src"
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
