"""The command line's contract with scripts and people: one exit code per kind of outcome,
``--json`` summaries, one-line errors (a busy port, a refused connection, a database that is
not where the command looked), ``run --host/--port``, a ``demo`` that refuses what it would
ignore, and ``sources list`` showing sources never polled."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from aggregator.cli import ExitCode, build_parser, main
from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import aggregator, cli_env, rss, write_config
from tests.support.webserver import wait_until_serving

ITEMS = [
    {"guid": f"g{i}", "title": f"Story {i}", "link": f"https://n.example/{i}"} for i in range(3)
]
CATEGORIES = '[[category]]\nid = "all"\ntitle = "All"\n'
DEADLINE_SECONDS = 60


def _sources(**urls: str) -> str:
    return "".join(
        f'[[source]]\nid = "{sid}"\nurl = "{url}"\ncategories = ["all"]\n\n'
        for sid, url in urls.items()
    )


def _good_config(tmp_path: Path, feed_server: FeedServer) -> Path:
    """A config folder with one source, ``good``, that answers a valid feed."""
    feed_server.set("/good.xml", Resource(body=rss("Good", ITEMS)))
    return write_config(
        tmp_path / "config", _sources(good=feed_server.url("/good.xml")), CATEGORIES
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _exact_clustering(monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands run in this process: no model loading for a few test stories.
    monkeypatch.setenv("AGGREGATOR_CLUSTERING", "exact")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_json(out: str) -> dict[str, object]:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


# -- exit codes ---------------------------------------------------------------------------


def test_usage_errors_exit_2_in_one_line() -> None:
    unknown = aggregator("poll", "--no-such-option", check=False)
    assert unknown.returncode == ExitCode.USAGE.value == 2
    for args in (("demo", "--config", "x"), ("--database", "sqlite:///x.db", "demo")):
        refused = aggregator(*args, check=False)
        assert refused.returncode == 2, refused.stderr
        assert "Traceback" not in refused.stderr
    assert "does not take --database" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_config_errors_exit_3_and_check_json_names_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "config", _sources(a="https://a.example/f.xml") * 2, CATEGORIES
    )
    code, out, _ = _run(capsys, "check", "--json", "--config", str(config))
    assert code == ExitCode.CONFIG.value == 3
    report = _one_json(out)
    assert report["ok"] is False
    assert (report["file"], report["id"], report["key"]) == (
        str(config / "sources.toml"),
        "a",
        "id",
    )
    good = write_config(tmp_path / "good", _sources(a="https://a.example/f.xml"), CATEGORIES)
    code, out, _ = _run(capsys, "check", "--json", "--config", str(good))
    assert code == 0
    assert _one_json(out) == {"ok": True, "config_dir": str(good), "sources": 1, "categories": 1}


def test_poll_exit_codes_and_json(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.set("/good.xml", Resource(body=rss("Good", ITEMS)))
    feed_server.set("/missing.xml", Resource(status=404, body=b"no"))
    refused = f"http://127.0.0.1:{_closed_port()}/feed.xml"
    database = f"sqlite:///{tmp_path / 'agg.db'}"
    some = write_config(
        tmp_path / "some",
        _sources(good=feed_server.url("/good.xml"), bad=feed_server.url("/missing.xml")),
        CATEGORIES,
    )
    code, out, _ = _run(
        capsys, "poll", "--all", "--json", "--config", str(some), "--database", database
    )
    assert code == ExitCode.PROBLEMS.value == 1
    summary = _one_json(out)
    assert summary["sources"] == 2
    assert summary["new_entries"] == 3
    assert summary["results"] == {
        "updated": 1,
        "not_modified": 0,
        "unchanged": 0,
        "error": 1,
        "deferred": 0,
        "lease_lost": 0,
    }
    assert summary["errors"] == [
        {
            "source_id": "bad",
            "error_kind": "http",
            "error": summary["errors"][0]["error"],  # type: ignore[index]
            "status": 404,
        }
    ]
    clustered = summary["clustered"]
    assert isinstance(clustered, dict)
    assert clustered["entries"] == 3
    assert set(clustered) == {"entries", "new", "join", "merge", "kept", "paths", "horizon_hours"}
    paths = clustered["paths"]
    assert isinstance(paths, dict)
    assert sum(paths.values()) == 3  # every entry says how it was read

    every = write_config(
        tmp_path / "every", _sources(bad=feed_server.url("/missing.xml"), down=refused), CATEGORIES
    )
    code, out, _ = _run(
        capsys,
        "poll",
        "--all",
        "--config",
        str(every),
        "--database",
        f"sqlite:///{tmp_path / 'other.db'}",
    )
    assert code == ExitCode.ALL_FAILED.value == 4
    # A refused connection is one short line, without the HTTP library's internals.
    assert f"  down: connection: cannot connect to {refused}: connection refused\n" in out
    assert "HTTPConnectionPool" not in out
    assert "Max retries" not in out

    fine = write_config(tmp_path / "fine", _sources(good=feed_server.url("/good.xml")), CATEGORIES)
    code, _, _ = _run(capsys, "poll", "--all", "--config", str(fine), "--database", database)
    assert code == 0


def test_publish_and_prune_json(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _good_config(tmp_path, feed_server)
    common = ["--config", str(config), "--database", f"sqlite:///{tmp_path / 'agg.db'}"]
    assert _run(capsys, "poll", "--all", *common)[0] == 0
    out_dir = tmp_path / "site"
    code, out, _ = _run(
        capsys,
        "publish",
        "--out",
        str(out_dir),
        "--json",
        "--base-url",
        "https://news.example",
        *common,
    )
    assert code == 0
    first = _one_json(out)
    assert first["out"] == str(out_dir)
    assert "feeds/all.atom" in first["written"]  # type: ignore[operator]
    assert first["unchanged"] == 0
    again = _one_json(
        _run(
            capsys,
            "publish",
            "--out",
            str(out_dir),
            "--json",
            "--base-url",
            "https://news.example",
            *common,
        )[1]
    )
    assert (again["written"], again["unchanged"]) == ([], len(first["written"]))  # type: ignore[arg-type]
    code, out, _ = _run(capsys, "prune", "--dry-run", "--days", "1", "--json", *common)
    assert code == 0
    # The test stories are dated 17 November 2026: older than a day.
    assert _one_json(out) == {
        "retention_days": 1,
        "dry_run": True,
        "entries": 3,
        "stories": 3,
        "corrections": 0,
        "tombstones": 0,
    }


# -- ports ----------------------------------------------------------------------------------


def test_a_busy_port_is_one_line_for_run_and_demo(tmp_path: Path, busy_port: int) -> None:
    config = write_config(tmp_path / "config", _sources(a="https://a.example/f.xml"), CATEGORIES)
    database = f"sqlite:///{tmp_path / 'agg.db'}"
    for args in (
        ("run", "--config", str(config), "--database", database, "--port", str(busy_port)),
        ("demo", "--once", "--port", str(busy_port)),
    ):
        result = aggregator(*args, check=False)
        assert result.returncode == ExitCode.CONFIG, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"configuration error: key='AGGREGATOR_PORT': port {busy_port} on 127.0.0.1 is "
            "already in use (another aggregator?); choose another with --port"
        ]


def test_run_listens_on_the_host_and_port_given(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", _sources(a="https://a.example/f.xml"), CATEGORIES)
    port = _closed_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator",
            "run",
            "--config",
            str(config),
            "--database",
            f"sqlite:///{tmp_path / 'agg.db'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=cli_env(AGGREGATOR_PORT="1", AGGREGATOR_CLUSTERING="exact"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(process, base, DEADLINE_SECONDS)
        assert requests.get(f"{base}/healthz", timeout=DEADLINE_SECONDS).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=DEADLINE_SECONDS)[0]
    assert process.returncode == 0, output


def test_demo_help_lists_only_what_it_honours() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    demo = commands.choices["demo"]  # type: ignore[index]
    text = demo.format_help()
    assert "--port" in text
    assert "--config" not in text
    assert "--database" not in text
    assert "exit codes:" in text


def test_help_documents_the_exit_codes() -> None:
    text = aggregator("--help").stdout
    for code in ("0", "1", "2", "3", "4"):
        assert f"\n  {code}    " in text


# -- sources list and the database's place --------------------------------------------------


def test_sources_list_shows_sources_never_polled(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _good_config(tmp_path, feed_server)
    database = f"sqlite:///{tmp_path / 'agg.db'}"
    common = ["--config", str(config), "--database", database]
    # Before any poll, with no database yet: the configured source, as new.
    code, out, err = _run(capsys, "sources", "list", "--json", *common)
    assert code == 0
    assert [(s["id"], s["state"]) for s in map(json.loads, out.splitlines())] == [("good", "new")]
    assert "no database at" in err
    assert not (tmp_path / "agg.db").exists()
    assert _run(capsys, "poll", "--all", *common)[0] == 0
    # An editor adds a source after the poll.
    write_config(
        config,
        _sources(good=feed_server.url("/good.xml"), later=feed_server.url("/later.xml")),
        CATEGORIES,
    )
    code, out, _ = _run(capsys, "sources", "list", *common)
    assert code == 0
    rows = {
        line.split()[0]: line.split()[1]
        for line in out.splitlines()[1:]
        if line and not line.startswith(" ")
    }
    assert rows == {"good": "active", "later": "new"}
    assert "never polled" in out


def test_a_database_that_is_not_here_is_named_not_created(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = aggregator("stories", cwd=elsewhere, check=False)
    assert result.returncode == ExitCode.PROBLEMS
    assert result.stderr.strip().splitlines() == [
        f"error: no database at {elsewhere / 'var' / 'aggregator.db'} "
        f"(sqlite:///var/aggregator.db is relative to the current folder {elsewhere}); run "
        "from the folder that holds it, or give --database (or AGGREGATOR_DATABASE_URL) an "
        "absolute sqlite:////path"
    ]
    assert list(elsewhere.iterdir()) == []


def test_a_new_database_is_announced_with_its_place(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", _sources(a="http://127.0.0.1:9/f.xml"), CATEGORIES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = aggregator(
        "poll",
        "--config",
        str(config),
        cwd=elsewhere,
        env=cli_env(AGGREGATOR_CLUSTERING="exact"),
        check=False,
    )
    database = elsewhere / "var" / "aggregator.db"
    assert database.exists()
    assert (
        f"action=db-create outcome=start path={database} note='sqlite:///var/aggregator.db "
        f"is relative to the current folder {elsewhere}'"
    ) in result.stderr


def test_sources_list_shows_the_error_kind(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.set("/quiet.xml", Resource(body=rss("Quiet", [])))
    config = write_config(
        tmp_path / "config", _sources(quiet=feed_server.url("/quiet.xml")), CATEGORIES
    )
    common = ["--config", str(config), "--database", f"sqlite:///{tmp_path / 'agg.db'}"]
    assert _run(capsys, "poll", "--all", *common)[0] == ExitCode.ALL_FAILED
    out = _run(capsys, "sources", "list", *common)[1]
    assert "    last error (empty): the feed is well-formed but lists no entries" in out
    listed = json.loads(_run(capsys, "sources", "list", "--json", *common)[1])
    assert (listed["last_error_kind"], listed["last_status"]) == ("empty", 200)
