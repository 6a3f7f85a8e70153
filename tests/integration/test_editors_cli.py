"""``aggregator editors``: the token printed once on standard output and kept only hashed,
list and audit without it, rotate and revoke ending the old token at once, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.safety.tokens import token_key
from aggregator.store import open_store
from tests.support.feeds import toml_tables, write_config


@pytest.fixture
def args(tmp_path: Path) -> list[str]:
    config = write_config(
        tmp_path / "config",
        toml_tables(
            "source", {"id": "a", "url": "https://a.example/f.xml", "categories": ["news"]}
        ),
        toml_tables("category", {"id": "news", "title": "News"}),
    )
    database = f"sqlite:///{tmp_path / 'agg.db'}"
    assert main(["db", "upgrade", "--database", database]) == 0
    return ["--config", str(config), "--database", database]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_rotate_revoke(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "ops-olga")
    capsys.readouterr()
    code, out, err = _run(capsys, "editors", "add", "mia", "--role", "viewer", *args)
    assert code == 0
    token = out.strip()
    key = token_key(token)
    assert key is not None
    assert "shown once" in err
    code, out, _ = _run(capsys, "editors", "list", "--json", *args)
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert (listed["name"], listed["role"], listed["active"], listed["created_by"]) == (
        "mia",
        "viewer",
        True,
        "ops-olga",
    )
    assert token not in out
    code, out, err = _run(capsys, "editors", "add", "mia", *args)
    assert code != 0
    assert "already exists" in err
    code, out, _ = _run(capsys, "editors", "rotate", "mia", *args)
    assert code == 0
    new_key = token_key(out.strip())
    store = open_store(args[-1])
    try:
        assert store.editor_by_key(key) is None
        assert new_key is not None
        assert store.editor_by_key(new_key) is not None
        code, _, _ = _run(capsys, "editors", "revoke", "mia", *args)
        assert code == 0
        assert store.editor_by_key(new_key) is None
    finally:
        store.close()
    code, _, err = _run(capsys, "editors", "revoke", "nobody", *args)
    assert code != 0
    assert "no active editor 'nobody'" in err
    code, _, err = _run(capsys, "editors", "add", "bad name!", *args)
    assert code != 0
    assert "name" in err
    code, out, _ = _run(capsys, "editors", "audit", "--json", *args)
    actions = [json.loads(line)["action"] for line in out.splitlines()]
    assert actions == ["revoke", "rotate", "add"]
    assert token not in out
