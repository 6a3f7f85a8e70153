"""The deploy files (issue 8, acceptance 1) checked by the tools that will read them.

- ``systemd-analyze verify`` on deploy/aggregator.service, in a throwaway root that holds
the
  system's own units and a stand-in for /opt/aggregator/bin/aggregator (verify refuses a unit
  whose ExecStart binary is missing); ``systemd-analyze security`` scores its hardening.
- ``docker compose config`` (or Debian's ``docker-compose config``) on deploy/compose.yaml, set
  up as deploy/README.md says (an aggregator.env copied from the example, POSTGRES_PASSWORD).
  Both parse without a Docker engine.

Each tool is expected in CI (.ci/run installs Debian's systemd and docker-compose when they are
missing), so there a missing tool fails; elsewhere it skips with the reason. The Dockerfile's
install steps are run by .ci/run through deploy/install-check.sh (no engine here to build it);
its structure is checked below.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.shared import in_ci

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "aggregator.service"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
# systemd-analyze security: 0 is fully locked down, 10 is unprotected; ours scored 1.7.
MAX_EXPOSURE = 2.0
TOOL_TIMEOUT = 120


def require_tool(*command: str) -> list[str]:
    """The first command of ``command`` that exists (``"docker compose"`` is one), else skip;
    in CI, where .ci/run installs them, fail."""
    for candidate in command:
        parts = candidate.split()
        if shutil.which(parts[0]) is None:
            continue
        if len(parts) > 1:
            probe = subprocess.run(
                [*parts, "version"], capture_output=True, check=False, timeout=TOOL_TIMEOUT
            )
            if probe.returncode != 0:
                continue
        return parts
    message = f"none of {', '.join(command)} is installed"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


# -- systemd ---------------------------------------------------------------------------------


def executables(unit_text: str) -> list[str]:
    """Absolute paths of the programs Exec*= lines run (prefixes such as ``-`` dropped)."""
    found = []
    for line in unit_text.splitlines():
        match = re.match(r"^Exec[A-Za-z]*=([-@:+!]*)(/\S+)", line)
        if match:
            found.append(match[2])
    return found


@pytest.fixture
def unit_root(tmp_path: Path) -> Path:
    """A file-system root for ``--root``: the system's units, ours, and stand-in programs."""
    if not SYSTEM_UNITS.is_dir():
        message = f"{SYSTEM_UNITS} is missing (no systemd installed)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system/aggregator.service")
    for program in executables(UNIT.read_text(encoding="utf-8")):
        stand_in = root / program.lstrip("/")
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        stand_in.chmod(0o755)
    return root


def test_systemd_analyze_verify(unit_root: Path) -> None:
    tool = require_tool("systemd-analyze")
    result = subprocess.run(
        [*tool, "verify", f"--root={unit_root}", "aggregator.service"],
        capture_output=True,
        text=True,
        check=False,
        timeout=TOOL_TIMEOUT,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    # Unknown keys and bad values are only warnings: any line about our unit is a failure.
    assert [line for line in output.splitlines() if "aggregator.service" in line] == []


def test_systemd_hardening_score(unit_root: Path) -> None:
    tool = require_tool("systemd-analyze")
    result = subprocess.run(
        [*tool, "security", "--offline=true", f"--root={unit_root}", "aggregator.service"],
        capture_output=True,
        text=True,
        check=False,
        timeout=TOOL_TIMEOUT,
    )
    match = re.search(
        r"Overall exposure level for aggregator\.service: ([0-9.]+)", result.stdout + result.stderr
    )
    assert match is not None, result.stdout + result.stderr
    assert float(match[1]) <= MAX_EXPOSURE


def test_every_unit_directive_is_commented() -> None:
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    bare = [
        line
        for previous, line in zip(["", *lines], lines, strict=False)
        if line and not line.startswith(("#", "[")) and not previous.startswith("#")
    ]
    assert bare == []
    text = "\n".join(lines)
    for directive in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "ReadWritePaths=/var/lib/aggregator",
        "User=aggregator",
        "EnvironmentFile=",
        "Restart=on-failure",
        "ExecStart=/opt/aggregator/bin/aggregator run",
    ):
        assert f"\n{directive}" in text, directive


# -- compose ---------------------------------------------------------------------------------


@pytest.fixture
def compose_project(tmp_path: Path) -> Path:
    """deploy/ as an operator prepares it (README: copy the env example), with the folders the
    file refers to (``..`` as build context, ``../config``)."""
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    for name in ("compose.yaml", "Dockerfile"):
        shutil.copy(DEPLOY / name, deploy / name)
    shutil.copy(DEPLOY / "aggregator.env.example", deploy / "aggregator.env")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return deploy


def test_docker_compose_config(compose_project: Path) -> None:
    tool = require_tool("docker compose", "docker-compose")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGGREGATOR_", "COMPOSE_", "POSTGRES_"))
    }
    env["POSTGRES_PASSWORD"] = "not-a-secret"
    result = subprocess.run(
        [*tool, "-f", "compose.yaml", "config"],
        cwd=compose_project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=TOOL_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    service = resolved["services"]["aggregator"]
    url = "postgresql://aggregator:not-a-secret@postgres:5432/aggregator"
    assert service["environment"]["AGGREGATOR_DATABASE_URL"] == url
    assert "/etc/aggregator/config" in read_only_targets(service["volumes"])
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert resolved["services"]["migrate"]["depends_on"]["postgres"]["condition"] == (
        "service_healthy"
    )


def read_only_targets(volumes: list[Any]) -> set[str]:
    """Mount targets marked read-only, in the short (v1) or long (v2) syntax."""
    targets = set()
    for volume in volumes:
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) == 3 and parts[2] == "ro":
                targets.add(parts[1])
        elif volume.get("read_only"):
            targets.add(volume["target"])
    return targets


def test_compose_refuses_to_start_without_a_password(compose_project: Path) -> None:
    tool = require_tool("docker compose", "docker-compose")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
    result = subprocess.run(
        [*tool, "-f", "compose.yaml", "config"],
        cwd=compose_project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=TOOL_TIMEOUT,
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_order_and_mounts() -> None:
    services = compose()["services"]
    postgres, migrate, service = (services[n] for n in ("postgres", "migrate", "aggregator"))
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["command"] == ["run"]
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "../config:/etc/aggregator/config:ro" in service["volumes"]
    named = {v.split(":")[0] for v in service["volumes"] if not v.startswith((".", "/"))}
    assert named
    assert named <= set(compose()["volumes"])
    # One image for both, built from this tree, never pulled from a registry by its name.
    assert migrate["image"] == service["image"]
    assert migrate["pull_policy"] == service["pull_policy"] == "build"


def test_open_file_limits_leave_room_for_many_connections() -> None:
    """Each client connection holds a descriptor: the default 1024 is a slowloris' target."""
    unit = (ROOT / "deploy" / "aggregator.service").read_text(encoding="utf-8")
    assert re.search(r"^LimitNOFILE=65536$", unit, re.MULTILINE)
    nofile = compose()["services"]["aggregator"]["ulimits"]["nofile"]
    assert nofile == {"soft": 65536, "hard": 65536}


# -- Dockerfile --------------------------------------------------------------------------------


def stages(dockerfile: str) -> list[list[str]]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    result: list[list[str]] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(stripped)
    return result


def test_dockerfile_final_stage() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    build, final = stages(text)
    assert any("deploy/install-check.sh install" in line for line in build)
    assert any("install-check.sh verify" in line for line in final)
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["aggregator"]' in final
    assert any(line.startswith("HEALTHCHECK") and "/healthz" in line for line in final)
    # No compilers or package installs in what ships.
    assert not any(re.search(r"apt-get|apk add|build-essential|gcc", line) for line in final)
    assert (DEPLOY / "install-check.sh").stat().st_mode & 0o111
