"""Poll worker processes: fetch and prepare in child processes so a big poll uses every core.

Parsing holds the GIL, and so does requests' per-request Python on a 304-heavy poll, so one
process tops out at one core. Each worker owns the hosts that hash to it, which keeps per-host
politeness (``HostGate``) exact without sharing state between processes; it runs its own fetch
threads and sends back what it fetched and prepared. Store writes stay in the parent (one
writer). A worker that dies costs only its in-flight sources, reported as errors, and is
replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import signal
import threading
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from urllib.parse import urlsplit

from aggregator.catalog import CategoryConfig
from aggregator.clock import utc_now
from aggregator.errors import SourceError
from aggregator.polling.fetch import Fetcher
from aggregator.polling.prepared import PreparedFeed
from aggregator.types import FetchResult, SourceStatus

log = logging.getLogger("aggregator.pollworkers")

Group = tuple[SourceStatus, ...]
Prepared = PreparedFeed | SourceError | None
FetcherFactory = Callable[[], Fetcher]

# Fetches in flight per fetch thread; bounds how many bodies wait in memory.
INFLIGHT_PER_THREAD = 2
# How long a stopping worker may take to finish its in-flight fetches before it is killed.
STOP_TIMEOUT = 70.0
# How long a killed worker's exit is waited for. Its exit status comes through the fork server,
# which reports it once it has reaped the worker; a fork server that is gone or stuck must not
# hold the service's shutdown for ever.
KILL_WAIT = 5.0
# Workers that die within one poll before it gives up on processes and lets the caller fetch
# the rest itself (a worker that cannot even start would otherwise be replaced forever).
MAX_DEATHS_PER_POLL = 3
# What the fork server imports before forking workers: the main module (multiprocessing's
# default, for targets defined there) and the workers' own modules, frozen for the collector.
FORKSERVER_PRELOAD = ("__main__", "aggregator.polling.workerboot")


def skip_resource_tracker() -> bool:
    """Let the fork server start without multiprocessing's resource tracker process.

    The fork server starts that tracker and hands its pipe to every child it forks, so that
    named semaphores and shared memory left behind by a dead process get unlinked. Poll
    workers talk through plain pipes and create neither; the tracker was one more Python
    process (13 MB RSS, 7 MB PSS) for nothing. Its pipe is pointed at ``os.devnull``, which
    multiprocessing takes for a live tracker. That holds for the whole process: nothing else
    in the service uses multiprocessing. False, changing nothing, when a tracker already runs
    or this Python's multiprocessing keeps it differently.
    """
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if getattr(tracker, "_fd", 0) is not None or not hasattr(tracker, "_check_alive"):
        return False
    assert tracker is not None
    tracker._fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    return True


@dataclass(frozen=True)
class Fetched:
    """One URL's fetch, for the sources sharing it.

    ``prepared`` is filled by a worker process: per source, in order, its prepared feed, the
    error preparing it, or None when there was nothing to prepare (no body, or the same bytes
    as last time); ``result`` then holds no body, only its size and digest (``without_body``).
    It is None for fetches made in the parent, which prepares them itself.
    """

    sources: Group
    result: FetchResult | SourceError
    prepared: tuple[Prepared, ...] | None = None


def body_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def digest_of(result: FetchResult) -> str:
    """The SHA-256 of ``result``'s body, which must have one (``has_body``)."""
    if result.body_sha256 is not None:
        return result.body_sha256
    assert result.content is not None
    return body_hash(result.content)


def without_body(result: FetchResult, digest: str) -> FetchResult:
    """``result`` as the saving process needs it once its body has been prepared: the body's
    size and digest instead of its bytes, which would cross the pipe (about half an answer)
    and be unpickled there for nothing."""
    assert result.content is not None
    return replace(result, content=None, body_size=len(result.content), body_sha256=digest)


def fetch_group(fetcher: Fetcher, group: Group) -> FetchResult | SourceError:
    """Fetch the URL that every source of ``group`` shares, once."""
    first = group[0]
    # Validators only help when every source sharing the URL holds the same ones.
    same = all((s.etag, s.last_modified) == (first.etag, first.last_modified) for s in group)
    try:
        return fetcher.fetch(
            first.url,
            etag=first.etag if same else None,
            last_modified=first.last_modified if same else None,
            allow_private=not any(s.public_only for s in group),
            options=first.fetch_options,
        )
    except SourceError as exc:
        return exc


def prepare_for(
    source: SourceStatus,
    result: FetchResult,
    categories: Mapping[str, CategoryConfig],
    now: datetime,
) -> PreparedFeed:
    """Parse, normalize and classify ``result``'s body as ``source``; raises ``ParseError``."""
    # Imported here: a service whose polls all run in worker processes (``Refresher``) never
    # parses, and need not hold the parser's modules (the fork server loads them for the
    # workers, ``workerboot``).
    from aggregator.polling.pipeline import prepare_feed  # noqa: PLC0415

    assert result.content is not None
    return prepare_feed(
        result.content,
        url=result.url,
        headers=dict(result.headers),
        source_language=source.language,
        source_categories=source.categories,
        categories=categories,
        now=now,
        source_id=source.id,
    )


def fetch_and_prepare(
    fetcher: Fetcher, group: Group, categories: Mapping[str, CategoryConfig]
) -> Fetched:
    result = fetch_group(fetcher, group)
    if isinstance(result, SourceError) or result.content is None:
        return Fetched(group, result, (None,) * len(group))
    digest = body_hash(result.content)
    prepared: list[Prepared] = []
    for source in group:
        if source.body_hash == digest:
            prepared.append(None)
            continue
        try:
            prepared.append(prepare_for(source, result, categories, utc_now()))
        except SourceError as exc:
            prepared.append(exc)
        except Exception as exc:  # a bug must cost one source, not the worker
            prepared.append(
                SourceError(f"internal error: {type(exc).__name__}: {exc}", kind="internal")
            )
    return Fetched(group, without_body(result, digest), tuple(prepared))


def _serve(
    factory: FetcherFactory,
    categories: Mapping[str, CategoryConfig],
    threads: int,
    jobs: Connection,
    results: Connection,
) -> None:
    """A worker process: fetch and prepare each job on a thread, send the result back."""
    # The parent decides when workers stop (it closes the job pipe); a Ctrl-C or a SIGTERM
    # sent to the whole process group must not cut fetches short behind its back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fetcher = factory()
    send_lock = threading.Lock()

    def run(job_id: int, group: Group) -> None:
        try:
            fetched = fetch_and_prepare(fetcher, group, categories)
        except BaseException as exc:  # the parent waits for every job: always answer
            fetched = Fetched(
                group,
                SourceError(
                    f"internal error in poll worker: {type(exc).__name__}: {exc}", kind="internal"
                ),
            )
        # A send that fails means the parent is gone: nobody is left to tell.
        with send_lock, contextlib.suppress(BrokenPipeError, EOFError, OSError):
            results.send((job_id, fetched))

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch") as pool:
        while True:
            try:
                item = jobs.recv()
            except (EOFError, OSError):
                break
            if item is None:
                break
            pool.submit(run, *item)
    fetcher.close()


@dataclass
class _Worker:
    process: BaseProcess
    jobs: Connection
    results: Connection
    inflight: dict[int, Group] = field(default_factory=dict)
    backlog: deque[Group] = field(default_factory=deque)
    answered: int = 0


class PollWorkers:
    """``count`` worker processes, started on first use and kept for later polls."""

    def __init__(
        self,
        count: int,
        factory: FetcherFactory,
        categories: Mapping[str, CategoryConfig],
        *,
        threads: int,
    ) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        self.count = count
        self.factory = factory
        self.categories = dict(categories)
        self.threads = max(1, threads)
        # forkserver: never fork a process that runs threads (web server, scheduler).
        self._context = multiprocessing.get_context("forkserver")
        # Before the fork server starts (a later call changes nothing): it loads the workers'
        # modules once, and the workers share those pages (``workerboot``).
        self._context.set_forkserver_preload(list(FORKSERVER_PRELOAD))
        skip_resource_tracker()
        self._workers: list[_Worker | None] = [None] * count
        self._next_job = 0
        self._deaths = 0

    def _start(self) -> _Worker:
        jobs_out, jobs_in = self._context.Pipe(duplex=False)
        results_out, results_in = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_serve,
            name="aggregator-poll-worker",
            daemon=True,
            args=(self.factory, self.categories, self.threads, jobs_out, results_in),
        )
        process.start()
        # The child holds its own ends now; closing ours lets EOF reach the other side.
        jobs_out.close()
        results_in.close()
        return _Worker(process, jobs_in, results_out)

    def _worker(self, index: int) -> _Worker:
        """The worker at ``index``, started afresh if it never ran or died while idle."""
        worker = self._workers[index]
        if worker is not None and not worker.process.is_alive():
            log.warning(
                "action=poll-worker outcome=replaced exitcode=%s: it died between polls",
                worker.process.exitcode,
            )
            worker.jobs.close()
            worker.results.close()
            worker = None
        if worker is None:
            worker = self._workers[index] = self._start()
        return worker

    def shard(self, group: Group) -> int:
        """The worker that owns ``group``'s host: the same one on every poll."""
        host = urlsplit(group[0].url).hostname or ""
        return zlib.crc32(host.encode("utf-8", "surrogatepass")) % self.count

    def run(self, groups: Sequence[Group], handle: Callable[[Fetched], None]) -> list[Group]:
        """Fetch and prepare every group in the workers, calling ``handle`` in this thread
        for each result as it arrives (in completion order).

        Returns the groups left undone when workers kept dying (``MAX_DEATHS_PER_POLL``), for
        the caller to fetch another way; normally none.
        """
        workers = [self._worker(i) for i in range(self.count)]
        for group in groups:
            workers[self.shard(group)].backlog.append(group)
        limit = self.threads * INFLIGHT_PER_THREAD
        self._deaths = 0
        try:
            for worker in workers:
                self._fill(worker, limit)
            while any(w.inflight for w in workers):
                busy = [w for w in workers if w.inflight]
                ready = wait([w.results for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if worker.results in ready or worker.process.sentinel in ready:
                        self._drain(worker, handle)
                    if not worker.process.is_alive() and worker.inflight:
                        self._replace(workers, worker, handle)
                if self._deaths >= MAX_DEATHS_PER_POLL:
                    return self._give_up(workers, handle)
                for worker in workers:
                    self._fill(worker, limit)
        except BaseException:
            # ``handle`` failed (the store is gone, say): answers still on their way would
            # reach the next poll, so these workers go and the next poll starts fresh ones.
            self.close(timeout=0)
            raise
        return []

    def _give_up(self, workers: list[_Worker], handle: Callable[[Fetched], None]) -> list[Group]:
        """Finish what live workers hold, stop them all, and hand back the rest."""
        log.error(
            "action=poll-worker outcome=giving-up deaths=%d: the rest of this poll is "
            "fetched in the main process",
            self._deaths,
        )
        while any(w.inflight and w.process.is_alive() for w in workers):
            busy = [w for w in workers if w.inflight and w.process.is_alive()]
            wait([w.results for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                self._drain(worker, handle)
        left = [group for w in workers for group in (*w.inflight.values(), *w.backlog)]
        self.close(timeout=0)
        return left

    def _fill(self, worker: _Worker, limit: int) -> None:
        while worker.backlog and len(worker.inflight) < limit:
            group = worker.backlog.popleft()
            self._next_job += 1
            worker.inflight[self._next_job] = group
            try:
                worker.jobs.send((self._next_job, group))
            except (BrokenPipeError, OSError):
                return  # the worker died; the loop notices and replaces it

    @staticmethod
    def _drain(worker: _Worker, handle: Callable[[Fetched], None]) -> None:
        while worker.inflight:
            try:
                if not worker.results.poll():
                    return
                job_id, fetched = worker.results.recv()
            except (EOFError, OSError):
                return
            group = worker.inflight.pop(job_id, None)
            if group is not None:
                worker.answered += 1
                handle(fetched)

    def _replace(
        self, workers: list[_Worker], dead: _Worker, handle: Callable[[Fetched], None]
    ) -> None:
        """Start a new worker in place of a dead one.

        A worker that died before answering anything most likely never started (it could not
        import or build its fetcher): its jobs go back in the queue. One that died mid-work
        may have been killed by one of them (memory, a crash in a parser), so they are
        reported as errors rather than tried again.
        """
        code = dead.process.exitcode
        self._deaths += 1
        log.error(
            "action=poll-worker outcome=died exitcode=%s answered=%d inflight=%d",
            code,
            dead.answered,
            len(dead.inflight),
        )
        lost, dead.inflight = list(dead.inflight.values()), {}
        if dead.answered == 0:
            dead.backlog.extendleft(reversed(lost))
        else:
            for group in lost:
                handle(
                    Fetched(
                        group,
                        SourceError(
                            f"internal error: the poll worker process fetching "
                            f"{group[0].url} exited (exit code {code})",
                            kind="internal",
                        ),
                    )
                )
        index = workers.index(dead)
        replacement = self._start()
        replacement.backlog = dead.backlog
        workers[index] = self._workers[index] = replacement
        dead.jobs.close()
        dead.results.close()

    def close(self, timeout: float = STOP_TIMEOUT) -> None:
        """Let each worker finish what it holds (for up to ``timeout`` s), then stop it."""
        for worker in self._workers:
            if worker is not None:
                with contextlib.suppress(BrokenPipeError, OSError):
                    worker.jobs.send(None)
        for index, worker in enumerate(self._workers):
            if worker is None:
                continue
            worker.process.join(timeout)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(KILL_WAIT)
            worker.jobs.close()
            worker.results.close()
            self._workers[index] = None

    def pids(self) -> list[int]:
        """Process ids of the running workers (for tests and diagnostics)."""
        return [
            w.process.pid
            for w in self._workers
            if w is not None and w.process.pid is not None and w.process.is_alive()
        ]
