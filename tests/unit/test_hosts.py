"""HostGate: turns per host (concurrency and spacing) and the host-wide Retry-After back-off."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.polling.hosts import HostGate, MemoryBackoffStore

NOW = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_first_request_to_a_host_starts_at_once(clock: FakeClock) -> None:
    gate = HostGate(max_per_host=2, min_delay=0.5, clock=clock)
    assert gate.acquire("a.example", timeout=0)
    assert gate.in_flight("a.example") == 1


def test_second_start_waits_for_the_minimum_delay(clock: FakeClock) -> None:
    gate = HostGate(max_per_host=2, min_delay=0.5, clock=clock)
    assert gate.acquire("a.example", timeout=0)
    clock.now += 0.49
    assert not gate.acquire("a.example", timeout=0)
    clock.now += 0.01
    assert gate.acquire("a.example", timeout=0)


def test_delay_counts_from_the_previous_start_not_its_end(clock: FakeClock) -> None:
    gate = HostGate(max_per_host=2, min_delay=0.5, clock=clock)
    assert gate.acquire("a.example", timeout=0)
    clock.now += 0.3
    gate.release("a.example")
    clock.now += 0.2
    assert gate.acquire("a.example", timeout=0)


def test_no_more_than_max_per_host_at_once(clock: FakeClock) -> None:
    gate = HostGate(max_per_host=2, min_delay=0.0, clock=clock)
    assert gate.acquire("a.example", timeout=0)
    assert gate.acquire("a.example", timeout=0)
    clock.now += 3600
    assert not gate.acquire("a.example", timeout=0)
    gate.release("a.example")
    assert gate.acquire("a.example", timeout=0)
    assert gate.in_flight("a.example") == 2


def test_hosts_are_independent_and_case_insensitive(clock: FakeClock) -> None:
    gate = HostGate(max_per_host=1, min_delay=10.0, clock=clock)
    assert gate.acquire("A.Example", timeout=0)
    assert not gate.acquire("a.example.", timeout=0)
    assert gate.acquire("b.example", timeout=0)


def test_release_without_acquire_is_a_bug(clock: FakeClock) -> None:
    gate = HostGate(clock=clock)
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        gate.release("a.example")


def test_slot_releases_even_when_the_block_raises(clock: FakeClock) -> None:
    gate = HostGate(max_per_host=1, min_delay=0.0, clock=clock)

    def request() -> None:
        with gate.slot("a.example"):
            assert gate.in_flight("a.example") == 1
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        request()
    assert gate.in_flight("a.example") == 0


def test_slot_times_out_instead_of_waiting_forever(clock: FakeClock) -> None:
    gate = HostGate(max_per_host=1, min_delay=0.0, clock=clock)
    assert gate.acquire("a.example", timeout=0)
    started = time.monotonic()
    with pytest.raises(TimeoutError), gate.slot("a.example", timeout=0.05):
        pass
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    "options", [{"max_per_host": 0}, {"min_delay": -1.0}, {"min_delay": float("inf")}]
)
def test_nonsense_configuration_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        HostGate(**options)  # type: ignore[arg-type]


def test_block_applies_until_the_given_time() -> None:
    gate = HostGate()
    until = NOW + timedelta(minutes=5)
    assert gate.blocked_until("a.example", NOW) is None
    gate.block("A.example", until)
    assert gate.blocked_until("a.example", NOW) == until
    assert gate.blocked_until("a.example", until - timedelta(seconds=1)) == until
    assert gate.blocked_until("a.example", until) is None
    assert gate.blocked_until("b.example", NOW) is None


def test_the_later_block_wins() -> None:
    gate = HostGate()
    gate.block("a.example", NOW + timedelta(hours=1))
    gate.block("a.example", NOW + timedelta(minutes=1))
    assert gate.blocked_until("a.example", NOW) == NOW + timedelta(hours=1)
    gate.block("a.example", NOW + timedelta(hours=2))
    assert gate.blocked_until("a.example", NOW) == NOW + timedelta(hours=2)


def test_expired_blocks_are_forgotten() -> None:
    store = MemoryBackoffStore()
    gate = HostGate(backoff=store)
    gate.block("a.example", NOW + timedelta(seconds=1))
    assert gate.blocked_until("a.example", NOW + timedelta(seconds=2)) is None
    assert store.get("a.example") is None


def test_block_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        HostGate().block("a.example", datetime(2026, 1, 1))


def test_threads_respect_concurrency_and_spacing() -> None:
    max_per_host, min_delay, workers = 2, 0.05, 8
    gate = HostGate(max_per_host=max_per_host, min_delay=min_delay)
    lock = threading.Lock()
    running = 0
    peak = 0
    starts: list[float] = []

    def request() -> None:
        nonlocal running, peak
        with gate.slot("busy.example", timeout=10):
            with lock:
                running += 1
                peak = max(peak, running)
                starts.append(time.monotonic())
            time.sleep(0.02)
            with lock:
                running -= 1

    threads = [threading.Thread(target=request) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(starts) == workers
    assert peak <= max_per_host
    # Starts are recorded just after the gate's decision, so single gaps jitter; the span from
    # the first to the last start cannot be shorter than the delays owed in between.
    assert max(starts) - min(starts) >= (workers - 1) * min_delay - 0.02
    assert gate.in_flight("busy.example") == 0


def test_waiters_sleep_instead_of_spinning() -> None:
    gate = HostGate(max_per_host=1, min_delay=0.0)
    assert gate.acquire("a.example")
    waiter = threading.Thread(target=lambda: gate.acquire("a.example", timeout=0.3))
    started = time.process_time()
    waiter.start()
    waiter.join(5)
    # A spinning waiter would burn about 0.3 s of CPU; a sleeping one next to nothing.
    assert time.process_time() - started < 0.15
