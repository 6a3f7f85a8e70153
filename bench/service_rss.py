"""The main process of ``aggregator run`` before its first poll, step by step, at N sources:
RSS and PSS after its imports, the catalog, the store, the ``Service`` (which syncs the catalog
into a fresh store) and a round's due list, read whole (``Store.due_sources``, as before
branch i19mem) or as ``poll_due`` reads it now (``due_urls``, then one batch's statuses).

    .venv/bin/python bench/service_rss.py 10000

Each mode runs in a process of its own (its memory only grows), on a throwaway SQLite file.
Sources point at an unused loopback port: nothing is fetched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import oursprocs
import proctree

MODES = ("whole", "batched")


def _memory() -> dict[str, float]:
    now = proctree.tree_memory(os.getpid())
    return {"rss_mb": round(now.rss_mb, 1), "pss_mb": round(now.pss_mb, 1)}


def measure(workdir: Path, mode: str) -> dict[str, Any]:
    """The steps in this process; ``workdir`` holds the config and the database."""
    os.environ.update(
        AGGREGATOR_CONFIG=str(workdir / "config"),
        AGGREGATOR_DATABASE_URL=f"sqlite:///{workdir / 'ours.db'}",
        AGGREGATOR_CLUSTERING="exact",
    )
    steps: dict[str, Any] = {"start": _memory()}
    from aggregator.cli.context import Context  # noqa: PLC0415
    from aggregator.clock import utc_now  # noqa: PLC0415
    from aggregator.polling.due import DUE_BATCH, url_batches  # noqa: PLC0415
    from aggregator.runtime.service import Service  # noqa: PLC0415
    from aggregator.settings import Settings  # noqa: PLC0415

    steps["imports"] = _memory()
    settings = Settings.from_env()
    context = Context(settings=settings, args=argparse.Namespace())
    catalog = context.catalog()
    steps["catalog"] = _memory()
    store = context.store(auto_upgrade=True)
    steps["store"] = _memory()
    service = Service(settings, store, catalog)
    steps["service (catalog synced)"] = _memory()
    if mode == "whole":
        due = store.due_sources(utc_now(), everything=True)
        steps[f"due list, whole ({len(due)} statuses)"] = _memory()
    else:
        pairs = store.due_urls(utc_now(), everything=True)
        batch = store.active_sources(next(url_batches(pairs, DUE_BATCH)))
        steps[f"due list, batched ({len(pairs)} pairs, {len(batch)} statuses)"] = _memory()
    service.close()
    store.close()
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("feeds", type=int, nargs="?", default=10_000)
    parser.add_argument("--child", nargs=2, metavar=("WORKDIR", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), args.child[1])))
        return
    report: dict[str, Any] = {"feeds": args.feeds}
    for mode in MODES:
        with tempfile.TemporaryDirectory(prefix="service-rss-") as folder:
            workdir = Path(folder)
            oursprocs.write_config(
                workdir / "config",
                [
                    f"http://127.0.{i // 250 + 1}.{i % 250 + 1}:9/feed-{i}.xml"
                    for i in range(args.feeds)
                ],
            )
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(workdir), mode],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            ).stdout
        report[mode] = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
