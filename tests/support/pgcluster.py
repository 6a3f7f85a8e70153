"""A throwaway PostgreSQL cluster of the test's own, for tests that stop and start the server.

The shared server on 127.0.0.1:5432 serves every other test at the same time and must never
be stopped; this one lives in a temporary folder on a free port, with trust authentication,
and goes away with the test. ``initdb`` refuses to run as root, so as root the cluster is
made and run as the ``postgres`` system user (``runuser``), its folder owned by that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.shared import in_ci

START_TIMEOUT_SECONDS = 60
RUN_AS = "postgres"


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def require_pg_binaries() -> Path:
    """The bin folder, or skip (fail in CI, where the server package is installed)."""
    folder = postgres_bin()
    problem = None
    if folder is None or not (folder / "pg_ctl").exists():
        problem = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    elif os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_user(RUN_AS)):
        problem = f"running as root without runuser or a {RUN_AS!r} user for initdb"
    if problem is not None:
        if in_ci():
            pytest.fail(problem)
        pytest.skip(problem)
    assert folder is not None
    return folder


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One initialized cluster; ``start`` and ``stop`` wait until the server is up or gone."""

    def __init__(self, bin_dir: Path, directory: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.port = port

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=START_TIMEOUT_SECONDS,
            cwd=self.directory,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
        )

    def start(self) -> None:
        # The socket in our own folder: the system's /var/run/postgresql is the shared one's.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.directory} -c fsync=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A started cluster on a free port, stopped and deleted afterwards."""
    bin_dir = require_pg_binaries()
    directory = Path(tempfile.mkdtemp(prefix="aggregator-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(RUN_AS)
        os.chown(directory, user.pw_uid, user.pw_gid)
    cluster = Cluster(bin_dir, directory, free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
