"""The layer rule (docs/architecture.md) holds, and its check would catch a wrong import.

``lint-imports`` reads the contracts in pyproject.toml; CI runs it too. Here it also runs on a
copy of the package with one upward import planted, which must break a contract. Poll worker
processes and ``aggregator --help`` must not pay for the store or the web stack.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "fastapi",
    "uvicorn",
    "aggregator.store",
    "aggregator.web",
)


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(tool), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_layer_contracts_hold_and_fail_on_a_wrong_import(tmp_path: Path) -> None:
    kept = _lint_imports(ROOT)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    copy = tmp_path / "tree"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(
        ROOT / "aggregator", copy / "aggregator", ignore=shutil.ignore_patterns("__pycache__")
    )
    core = copy / "aggregator" / "clustering" / "dedup" / "match.py"
    core.write_text(core.read_text() + "\nfrom aggregator.store import Store  # planted\n")
    broken = _lint_imports(copy)
    assert broken.returncode != 0
    assert "aggregator.clustering.dedup.match -> aggregator.store" in broken.stdout
    assert "BROKEN" in broken.stdout.upper()


def _modules_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(out.split())


def test_poll_workers_and_help_import_neither_the_store_nor_the_web_stack() -> None:
    # What a forkserver worker imports: the main module (the CLI), its target's module and the
    # fetcher factory it unpickles, all loaded by the fork server before it forks
    # (``workers.FORKSERVER_PRELOAD``).
    from aggregator.polling.workers import FORKSERVER_PRELOAD

    assert FORKSERVER_PRELOAD == ("__main__", "aggregator.polling.workerboot")
    worker = _modules_after("import aggregator.__main__, aggregator.polling.workerboot")
    assert {"aggregator.polling.workers", "aggregator.polling.fetch.configured"} <= worker
    assert "aggregator.polling.pipeline" in worker
    assert not {m for m in worker if m.split(".")[0] in HEAVY or m.startswith(HEAVY)}

    help_text = _modules_after("from aggregator.cli import build_parser\nbuild_parser()")
    assert not {m for m in help_text if m.startswith(HEAVY)}
