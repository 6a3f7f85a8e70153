"""The int8 graph kept between processes (``dedup/e5int8``): built in a child once, read from
its folder after, rebuilt when its file is corrupt, and the same vectors whichever way it came.

Slow: each build quantizes the model (a few seconds).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aggregator.clustering.dedup import e5int8
from aggregator.clustering.dedup.embed import REFERENCE_TEXTS, Embedder, model_file
from aggregator.clustering.stage import MODEL_CACHE, ClusteringStage, model_cache
from aggregator.runtime.service import make_stage
from aggregator.settings import Settings, user_cache_dir
from aggregator.store import Store, open_store

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow

TEXTS = list(REFERENCE_TEXTS[:6])


def _vectors(cache: Path | None) -> np.ndarray[Any, np.dtype[np.float32]]:
    return Embedder(engine="onnx-int8", cache=cache).embed(TEXTS)


def _kept(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{e5int8.PREFIX}*{e5int8.SUFFIX}"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray[Any, Any]]:
    """A folder holding the int8 graph, and the vectors of a load that built it."""
    folder = tmp_path_factory.mktemp("cache") / MODEL_CACHE
    return folder, _vectors(folder)


def test_a_first_load_keeps_the_graph_named_by_its_recipe_and_digest(
    built: tuple[Path, np.ndarray[Any, Any]],
) -> None:
    folder, _ = built
    (kept,) = _kept(folder)
    key = e5int8.recipe_key(model_file())
    assert kept.name == (
        f"{e5int8.PREFIX}{key}-{e5int8.file_digest(kept)[: e5int8.DIGEST_CHARS]}{e5int8.SUFFIX}"
    )
    assert not [p for p in folder.iterdir() if p not in (kept,)]  # no building leftovers


def test_a_later_load_reads_the_kept_graph_and_quantizes_nothing(
    built: tuple[Path, np.ndarray[Any, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, first = built

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("quantized again")

    monkeypatch.setattr(subprocess, "run", no_build)
    assert np.array_equal(_vectors(folder), first)


def test_kept_built_now_and_built_without_a_folder_give_the_same_vectors(
    built: tuple[Path, np.ndarray[Any, Any]],
) -> None:
    _, first = built
    assert np.array_equal(_vectors(None), first)


def test_a_corrupt_or_stale_file_is_built_again(
    built: tuple[Path, np.ndarray[Any, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, first = built
    folder = tmp_path / MODEL_CACHE
    folder.mkdir()
    (kept,) = _kept(source)
    corrupt = folder / kept.name
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    stale = folder / f"{e5int8.PREFIX}0000000000000000-1111111111111111{e5int8.SUFFIX}"
    stale.write_bytes(b"another model's graph")
    hours_ago = time.time() - 2 * e5int8.ABANDONED_SECONDS
    os.utime(stale, (hours_ago, hours_ago))
    # Another version's graph made lately: that version may be about to read it.
    recent = folder / f"{e5int8.PREFIX}2222222222222222-3333333333333333{e5int8.SUFFIX}"
    recent.write_bytes(b"another version's graph")
    builds: list[object] = []
    real = subprocess.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        builds.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counted)
    assert np.array_equal(_vectors(folder), first)
    assert len(builds) == 1
    assert not stale.exists()
    assert recent.exists()
    (rebuilt,) = [path for path in _kept(folder) if path != recent]
    assert rebuilt.read_bytes() == kept.read_bytes()


def test_a_stage_keeps_the_model_beside_its_sqlite_file(
    sqlite_store: Store, tmp_path: Path
) -> None:
    assert model_cache(sqlite_store) == (tmp_path / "store.db").resolve().parent / MODEL_CACHE
    assert ClusteringStage(sqlite_store).models.cache == model_cache(sqlite_store)
    memory = open_store("sqlite://")
    try:
        assert model_cache(memory) == user_cache_dir() / MODEL_CACHE
    finally:
        memory.close()


def test_the_user_cache_follows_xdg_and_the_operator_names_another(
    sqlite_store: Store, tmp_path: Path
) -> None:
    assert user_cache_dir({"XDG_CACHE_HOME": "/srv/cache"}) == Path("/srv/cache/aggregator")
    # The rule ignores a relative XDG_CACHE_HOME.
    assert user_cache_dir({"XDG_CACHE_HOME": "rel"}) == Path.home() / ".cache" / "aggregator"
    settings = Settings.from_env({"AGGREGATOR_MODEL_CACHE": str(tmp_path / "models")})
    assert make_stage(settings, sqlite_store).models.cache == tmp_path / "models"
    assert Settings.from_env({}).model_cache_dir is None


def test_a_folder_it_cannot_write_costs_a_build_not_the_model(
    built: tuple[Path, np.ndarray[Any, Any]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, first = built
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert np.array_equal(_vectors(blocked / MODEL_CACHE), first)
    assert "cannot keep the int8 graph" in caplog.text
    assert blocked.read_text() == "not a folder"


def test_a_dead_builds_folder_is_swept_and_a_live_one_kept(tmp_path: Path) -> None:
    dead, live = tmp_path / f"{e5int8.BUILDING}dead", tmp_path / f"{e5int8.BUILDING}live"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "e5.weights").write_bytes(b"float32 weights")
    now = live.stat().st_mtime
    old = now - e5int8.ABANDONED_SECONDS - 1
    os.utime(dead, (old, old))
    e5int8.sweep(tmp_path, now)
    assert not dead.exists()
    assert live.exists()
