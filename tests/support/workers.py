"""Worker processes for the multi-worker tests: real ``aggregator run`` commands sharing one
database, each logging to a file of its own (a pipe nobody reads would fill and stall it), and
a view of the shared store the tests wait on and check."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aggregator.store import open_store
from tests.support.feeds import cli_env

STOP_SECONDS = 60


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def terminate(self) -> int:
        """SIGTERM and wait: the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_SECONDS)


def worker_env(**extra: str) -> dict[str, str]:
    """Settings every multi-worker test shares: loopback hosts without politeness delays, the
    exact clustering (no model to load in each process), a web server on any free port."""
    base = {
        "AGGREGATOR_PORT": "0",
        "AGGREGATOR_TICK_SECONDS": "1",
        "AGGREGATOR_CLUSTERING": "exact",
        "AGGREGATOR_HOST_DELAY": "0",
        "AGGREGATOR_HOST_CONCURRENCY": "16",
        "AGGREGATOR_FETCH_WORKERS": "8",
        "AGGREGATOR_POLL_PROCESSES": "0",
        "AGGREGATOR_FEED_RECHECK_SECONDS": "0",
    }
    return cli_env(**{**base, **extra})


def start_worker(config: Path, database: str, log: Path, env: dict[str, str]) -> Worker:
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator",
            "run",
            "--config",
            str(config),
            "--database",
            database,
        ],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    return Worker(process, log)


@contextmanager
def running_workers(
    count: int,
    config: Path,
    database: str,
    folder: Path,
    env: dict[str, str],
    *,
    machines: bool = False,
) -> Iterator[list[Worker]]:
    """``count`` workers; whatever the test did, none outlives it. With ``machines`` each
    worker names a machine of its own, as if they ran on different hosts."""
    workers = [
        start_worker(
            config,
            database,
            folder / f"worker{n}.log",
            {**env, "AGGREGATOR_WORKER_NAME": f"machine{n}"} if machines else env,
        )
        for n in range(count)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(STOP_SECONDS)


class SharedStore:
    """Plain SQL on the workers' database, from the test's side."""

    def __init__(self, database: str) -> None:
        self.store = open_store(database)

    def close(self) -> None:
        self.store.close()

    def rows(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.store.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(query), params)]

    def value(self, query: str, **params: Any) -> Any:
        return self.rows(query, **params)[0][0]

    def execute(self, query: str, **params: Any) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(sa.text(query), params)


def wait_for(
    condition: Callable[[], bool], seconds: float, what: str, workers: list[Worker] | None = None
) -> None:
    """Poll ``condition`` until true; fail naming ``what`` (and show the workers' logs)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        for worker in workers or ():
            if worker.process.poll() is not None and worker.process.returncode != -9:
                raise AssertionError(
                    f"worker {worker.pid} exited {worker.process.returncode} "
                    f"while waiting for {what}:\n{worker.output()[-3000:]}"
                )
        time.sleep(0.2)
    logs = "\n".join(f"--- worker {w.pid}\n{w.output()[-2000:]}" for w in workers or ())
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}\n{logs}")
