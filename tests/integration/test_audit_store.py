"""The audit log and editors' accounts in the store, on SQLite and PostgreSQL: an audit row
commits with its edit and is rolled back with it; accounts keep only hashes and stay listed
after revocation; the sessions' signing key is made once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aggregator.safety.tokens import new_token, token_matches
from aggregator.store import Store
from aggregator.store.accounts import AuditNote
from aggregator.types import AuditKind, Role
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source


def _filled(store: Store) -> dict[str, int]:
    store.sync_sources(catalog(source("a")), NOW)
    store.save_poll(
        "a",
        fetched(),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[(entry(key, title=f"Story {key}"), [match("news")]) for key in ("1", "2")],
        next_check_at=NOW + timedelta(minutes=30),
        now=NOW,
    )
    settle(store)
    return {e.title: s.story_id for s in store.category_stories("news", 10) for e in s.entries}


def _note(action: str, target: str) -> AuditNote:
    return AuditNote("eva", AuditKind.CORRECTION, action, target, {"why": "test"})


def test_an_audit_row_commits_and_rolls_back_with_its_edit(store: Store) -> None:
    stories = _filled(store)
    one, two = stories["Story 1"], stories["Story 2"]
    with pytest.raises(ValueError, match="no story 999999"):
        store.merge_stories(one, 999_999, by="eva", now=NOW, audit=_note("merge", "x"))
    assert store.audit_log(10) == []
    made = store.merge_stories(one, two, by="eva", now=NOW, audit=_note("merge", "story"))
    [row] = store.audit_log(10)
    assert (row.editor, row.kind, row.action, row.at) == ("eva", "correction", "merge", NOW)
    assert row.detail == {"why": "test", "override_id": made}
    # A file edit that fails takes its row with it.
    with pytest.raises(RuntimeError), store.audited(_note("save", "rules"), NOW):
        raise RuntimeError("the file could not be written")
    assert [r.action for r in store.audit_log(10)] == ["merge"]
    with store.audited(_note("save", "rules"), NOW + timedelta(seconds=1)):
        pass
    assert [r.action for r in store.audit_log(10)] == ["save", "merge"]
    # Paged newest first by id.
    [older] = store.audit_log(10, before=store.audit_log(1)[0].id)
    assert older.action == "merge"


def test_accounts_keep_hashes_and_history(store: Store) -> None:
    made = new_token()
    note = AuditNote("setup", AuditKind.EDITOR, "add", "eva")
    store.change_editor(
        "add", "eva", now=NOW, audit=note, role="editor", key=made.key, hashed=made.hashed
    )
    with pytest.raises(ValueError, match="already exists"):
        store.change_editor(
            "add", "eva", now=NOW, audit=note, role="admin", key="k" * 16, hashed="x"
        )
    found = store.editor_by_key(made.key)
    assert found is not None
    view, hashed = found
    assert (view.name, view.role) == ("eva", Role.EDITOR)
    assert made.token not in hashed
    assert token_matches(made.token, hashed)
    assert not token_matches(made.token[:-1] + "x", hashed)
    assert store.active_editor_count() == 1
    revoking = AuditNote("ada", AuditKind.EDITOR, "revoke", "eva")
    store.change_editor("revoke", "eva", now=NOW, audit=revoking)
    assert store.editor_by_key(made.key) is None
    assert store.active_editor_count() == 0
    [listed] = store.editors()
    assert (listed.active, listed.revoked_at, listed.revoked_by) == (False, NOW, "ada")
    with pytest.raises(ValueError, match="no active editor"):
        store.change_editor("revoke", "eva", now=NOW, audit=revoking)
    # The refused changes wrote no audit rows: add and revoke only.
    assert [r.action for r in store.audit_log(10)] == ["revoke", "add"]
    again = new_token()
    store.change_editor(
        "add", "eva", now=NOW, audit=note, role="viewer", key=again.key, hashed=again.hashed
    )
    assert store.editor_by_key(again.key) is not None
    assert store.signing_secret() == store.signing_secret()
