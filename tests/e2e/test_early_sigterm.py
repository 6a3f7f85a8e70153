"""A SIGTERM that reaches `aggregator run` after its own handler is set but before uvicorn
takes signals over (while the web app loads) still stops it, in order, with exit code 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.feeds import cli_env, toml_tables, write_config

pytestmark = pytest.mark.slow

DEADLINE_SECONDS = 90
# Sends the process a SIGTERM at the last moment before uvicorn installs its handlers, then
# runs the real command.
_PROBE = """
import os, signal, sys
import uvicorn.server
from aggregator.cli import main

capture = uvicorn.server.Server.capture_signals

def late(self):
    os.kill(os.getpid(), signal.SIGTERM)
    return capture(self)

uvicorn.server.Server.capture_signals = late
sys.exit(main(sys.argv[1:]))
"""


def test_a_sigterm_before_uvicorn_listens_for_it_stops_the_service(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config",
        toml_tables(
            "source",
            {
                "id": "resting",
                "url": "http://127.0.0.1:9/feed.xml",
                "categories": ["news"],
                "enabled": False,
            },
        ),
        toml_tables("category", {"id": "news", "title": "News"}),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _PROBE,
            "run",
            "--config",
            str(config),
            "--database",
            f"sqlite:///{tmp_path / 'agg.db'}",
            "--port",
            "0",
        ],
        env=cli_env(AGGREGATOR_CLUSTERING="exact"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = process.communicate(timeout=DEADLINE_SECONDS)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
        pytest.fail(f"still running {DEADLINE_SECONDS} s after the SIGTERM:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]
    assert "action=shutdown reason=signal" in output
    assert "action=shutdown outcome=done" in output
