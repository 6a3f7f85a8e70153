"""The audit log as the admin page shows it: each stored change in words an editor reads
(``True → False``, ``added ferry, removed robot``), never a Python repr, and markup in a
change shown as text; a refusal page links back into the pages."""

from __future__ import annotations

from datetime import UTC, datetime

from aggregator.store.accounts import AuditView
from aggregator.web.admin_pages import Chrome, audit_page, message_page

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _row(row_id: int, kind: str, action: str, target: str, detail: dict[str, object]) -> AuditView:
    return AuditView(
        id=row_id, at=AT, editor="mia", kind=kind, action=action, target=target, detail=detail
    )


def test_nested_changes_read_as_words() -> None:
    page = audit_page(
        Chrome(csrf="x", editor="mia"),
        [
            _row(
                3,
                "rules",
                "save",
                "tech",
                {
                    "include": {"added": ["ferry", "ship"], "removed": ["robot"]},
                    "exclude": {"added": [], "removed": []},
                },
            ),
            _row(2, "source", "pause", "wire", {"enabled": {"before": True, "after": False}}),
            _row(
                1,
                "rules",
                "apply",
                "tech",
                {"days": 7, "added": 1, "removed": 0, "note": "<b>ferries</b>"},
            ),
        ],
        more=False,
    )
    assert ("exclude: no change; include: added ferry, ship, removed robot") in page
    assert "enabled: True → False" in page
    assert "added: 1; days: 7; note: &lt;b&gt;ferries&lt;/b&gt;; removed: 0" in page
    assert "{" not in page.split("<body>", 1)[1]
    assert "[" not in page.split("<body>", 1)[1]


def test_a_refusal_page_links_back_only_when_asked() -> None:
    assert 'id="back"><a href="/admin/">' in message_page("Not allowed", "no", back="/admin/")
    assert 'id="back"' not in message_page("Form too large", "no")
