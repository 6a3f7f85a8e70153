"""Acceptance for webhooks: a real ``aggregator run`` delivers to a loopback receiver that
fails, times out and restarts mid-stream, and the aggregator itself is killed (SIGKILL) in the
middle of delivering and started again. The receiver ends with every event, each accepted
exactly once by its idempotency key once repeats are dropped, every request validly signed.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import aggregator, rss, write_config
from tests.support.receiver import FAIL, OK, SLOW, Receiver
from tests.support.workers import SharedStore, start_worker, wait_for, worker_env

SOURCES = 6
ITEMS = 5
SECRET = "e2e-webhook-secret-0123456789abcdef"
SCRIPT = {0: FAIL, 1: FAIL, 3: SLOW, 9: SLOW, 14: FAIL}


def test_every_event_arrives_once_by_key_through_receiver_and_aggregator_restarts(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    lines = []
    for n in range(SOURCES):
        items = [
            {
                "guid": f"s{n}-{i}",
                "title": f"Source {n} story {i}",
                "link": f"https://s{n}.example/{i}",
            }
            for i in range(ITEMS)
        ]
        feed_server.set(f"/s{n}.xml", Resource(body=rss(f"S{n}", items)))
        lines.append(
            f'[[source]]\nid = "s{n}"\nurl = "{feed_server.url(f"/s{n}.xml")}"\n'
            'categories = ["all"]\n'
        )
    config = write_config(
        tmp_path / "config", "\n".join(lines), '[[category]]\nid = "all"\ntitle = "All"\n'
    )
    receiver = Receiver(
        secret=SECRET, script=lambda n: SCRIPT.get(n, OK), slow_seconds=2.0, ok_seconds=0.15
    )
    receiver.start()
    (config / "webhooks.toml").write_text(
        f'[[subscriber]]\nid = "downstream"\nurl = "{receiver.url}"\n'
        'secret_env = "DOWNSTREAM_SECRET"\nevents = ["story.published"]\n',
        encoding="utf-8",
    )
    env = worker_env(
        AGGREGATOR_ALLOW_PRIVATE_ADDRESSES="true",
        AGGREGATOR_WEBHOOK_SECONDS="0.2",
        AGGREGATOR_WEBHOOK_TIMEOUT="1",
        AGGREGATOR_WEBHOOK_RETRY_SECONDS="0.2",
        AGGREGATOR_WEBHOOK_RETRY_MAX_SECONDS="1",
        DOWNSTREAM_SECRET=SECRET,
    )
    first = start_worker(config, database_url, tmp_path / "first.log", env)
    second = None
    try:
        wait_for(lambda: len(receiver.accepted()) >= 5, 90, "the first deliveries", [first])
        # The receiver goes away mid-stream and comes back on the same address.
        receiver.stop()
        time.sleep(1.0)
        receiver.start()
        wait_for(
            lambda: len(receiver.accepted()) >= 12,
            60,
            "deliveries after the receiver restarted",
            [first],
        )
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
        assert len(receiver.accepted()) < SOURCES * ITEMS, "the kill came after the last one"
        second = start_worker(config, database_url, tmp_path / "second.log", env)
        wait_for(
            lambda: len(receiver.accepted()) >= SOURCES * ITEMS,
            120,
            "every event after the aggregator restarted",
            [second],
        )
        # A little longer: nothing more, and nothing new, arrives.
        time.sleep(1.0)
        assert second.terminate() == 0, second.output()[-3000:]
    finally:
        for worker in (first, second):
            if worker is not None and worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(30)
        receiver.stop()

    store = SharedStore(database_url)
    try:
        keys = {key for (key,) in store.rows("SELECT key FROM webhook_events")}
        states = dict(store.rows("SELECT state, count(*) FROM webhook_deliveries GROUP BY state"))
    finally:
        store.close()
    expected = {f"s{n}-{i}" for n in range(SOURCES) for i in range(ITEMS)}
    accepted = receiver.accepted()
    assert set(accepted) == keys
    assert len(keys) == len(expected)
    assert states == {"delivered": len(expected)}
    assert all(r.signed for r in receiver.requests)
    titles = [r.body["data"]["story"]["title"] for r in receiver.requests]
    assert set(titles) == {f"Source {n} story {i}" for n in range(SOURCES) for i in range(ITEMS)}
    # Failures, timeouts and the restarts did make the sender repeat some events.
    assert len(receiver.requests) > len(expected)


def test_check_names_the_file_subscriber_and_key_of_a_bad_webhooks_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config",
        '[[source]]\nid = "a"\nurl = "https://a.example/f.xml"\ncategories = ["all"]\n',
        '[[category]]\nid = "all"\ntitle = "All"\n',
    )
    (config / "webhooks.toml").write_text(
        '[[subscriber]]\nid = "partner"\nurl = "https://hooks.example/in"\n'
        'secret = "long-enough-secret-value"\ncategories = ["sport"]\n',
        encoding="utf-8",
    )
    result = aggregator("check", "--config", str(config), check=False)
    assert result.returncode == 3
    assert "webhooks.toml" in result.stderr + result.stdout
    assert "id='partner'" in result.stderr + result.stdout
    assert "key='categories'" in result.stderr + result.stdout
    (config / "webhooks.toml").write_text(
        '[[subscriber]]\nid = "partner"\nurl = "https://hooks.example/in"\n'
        'secret = "long-enough-secret-value"\ncategories = ["all"]\n',
        encoding="utf-8",
    )
    result = aggregator("check", "--config", str(config))
    assert result.stdout.rstrip().endswith(", 1 webhook subscriber")
