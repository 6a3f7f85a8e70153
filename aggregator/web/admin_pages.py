"""The HTML of the /admin/ pages, built from plain data: every text through ``html.escape``,
every outside link through ``safe_link``, so nothing a source sends can become markup or
script. Readable without JavaScript and without any file from elsewhere.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from aggregator.catalog import CategoryConfig
from aggregator.clustering.explain import explain
from aggregator.editorial.dryrun import DryRun, DryRunEntry
from aggregator.publishing.formats.common import clean, safe_link
from aggregator.store.accounts import AuditView, EditorView
from aggregator.store.overrides import OverrideView
from aggregator.store.search import MAX_QUERY_LENGTH, SearchHit
from aggregator.store.stories import EntryDetail, StoryDetail
from aggregator.store.webhooks import HealthMark
from aggregator.types import Role, SourceState, SourceStatus, StoryView
from aggregator.web.auth import ADMIN_PREFIX, CSRF_FIELD

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:72rem;padding:0 1rem;"
    "line-height:1.4}table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid "
    "#ddd;padding:.3rem .4rem;text-align:left;vertical-align:top}nav a,nav form{margin-right:"
    ".8rem;display:inline}form.inline{display:inline}.flash{background:#eef6ee;border:1px "
    "solid #8b8;padding:.5rem}.error{background:#fbeaea;border:1px solid #c88;padding:.5rem}"
    "textarea{width:100%;font-family:monospace}.meta,small{color:#555}.state-paused,"
    ".state-gone,.state-removed{color:#a40}ul.why{margin:.2rem 0;padding-left:1.2rem}"
)


@dataclass(frozen=True)
class Chrome:
    """What every signed-in page shows around its content."""

    csrf: str
    editor: str
    flash: str | None = None
    error: str | None = None
    role: Role = Role.ADMIN


def text(value: object) -> str:
    return html.escape(clean(str(value)) if value is not None else "", quote=False)


def attr(value: object) -> str:
    return html.escape(clean(str(value)) if value is not None else "", quote=True)


def admin_url(*parts: object) -> str:
    """An /admin/ URL; each part is one path segment, percent-encoded."""
    return "/".join([ADMIN_PREFIX, *(quote(str(p), safe="") for p in parts)])


def link(href: str, label: object) -> str:
    return f'<a href="{attr(href)}">{text(label)}</a>'


def outside_link(url: str | None, label: object) -> str:
    """A link to a source's page only when it is plain http(s); otherwise just the label."""
    safe = safe_link(url)
    if safe is None:
        return text(label)
    return f'<a href="{attr(safe)}" rel="noopener noreferrer nofollow">{text(label)}</a>'


def when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return (
        f'<time datetime="{attr(moment.isoformat())}">'
        f"{text(moment.strftime('%Y-%m-%d %H:%M'))} UTC</time>"
    )


def hidden(name: str, value: object) -> str:
    return f'<input type="hidden" name="{attr(name)}" value="{attr(value)}">'


def post_form(
    action: str, csrf: str, button: str, *fields: str, inline: bool = True, name: str | None = None
) -> str:
    css = ' class="inline"' if inline else ""
    label = f' aria-label="{attr(name)}"' if name else ""
    inner = "".join(fields) + f"<button>{text(button)}</button>"
    if not inline:
        inner = f"<p>{inner}</p>"
    return (
        f'<form method="post" action="{attr(action)}"{css}{label}>'
        f"{hidden(CSRF_FIELD, csrf)}{inner}</form>"
    )


def document(title: str, body: Iterable[str], chrome: Chrome | None = None) -> str:
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text(title)} · aggregator admin</title>\n<style>{STYLE}</style>\n"
        "</head>\n<body>\n"
    ]
    if chrome is not None:
        pages = [
            ("", "Overview"),
            ("sources", "Sources"),
            ("categories", "Categories"),
            ("stories", "Stories"),
            ("corrections", "Corrections"),
            ("audit", "Audit log"),
            ("webhooks", "Webhooks"),
        ]
        if chrome.role.allows(Role.ADMIN):
            pages.append(("editors", "Editors"))
        parts.append(
            "<nav>"
            + " ".join(link(admin_url(p) if p else ADMIN_PREFIX + "/", label) for p, label in pages)
            + f' <span class="meta">signed in as {text(chrome.editor)} '
            f"({text(chrome.role.value)})</span> "
            + post_form(admin_url("logout"), chrome.csrf, "Log out")
            + "</nav>\n"
        )
        if not chrome.role.allows(Role.EDITOR):
            parts.append(
                '<p class="meta" id="read-only">You have the viewer role: these pages '
                "are yours to read; their buttons are refused.</p>\n"
            )
        if chrome.flash:
            parts.append(f'<p class="flash" role="status">{text(chrome.flash)}</p>\n')
        if chrome.error:
            parts.append(f'<p class="error" role="alert">{text(chrome.error)}</p>\n')
    parts.append(f"<h1>{text(title)}</h1>\n")
    parts.extend(f"{part}\n" for part in body)
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def message_page(title: str, message: str, back: str | None = None) -> str:
    """A page saying only ``message``; ``back`` links a signed-in editor on, since a refusal
    page has no navigation and the browser's back button would resend the form."""
    body = [f"<p>{text(message)}</p>"]
    if back is not None:
        body.append(f'<p id="back">{link(back, "Back to the admin pages")}</p>')
    return document(title, body)


def login_page(next_path: str, error: str | None = None) -> str:
    body = []
    if error:
        body.append(f'<p class="error" role="alert">{text(error)}</p>')
    body.append(
        f'<form method="post" action="{attr(admin_url("login"))}">'
        + hidden("next", next_path)
        + '<p><label>Your token <input type="password" name="token" required '
        'autocomplete="current-password" autofocus></label></p>'
        "<p><label>Your name, only with the shared admin token (an account signs in under "
        'its own) <input type="text" name="editor" '
        'maxlength="64" autocomplete="username"></label></p>'
        "<p><button>Log in</button></p></form>"
    )
    return document("Log in", body)


def overview_page(
    chrome: Chrome,
    sources: Sequence[SourceStatus],
    categories: Sequence[CategoryConfig],
    corrections: Sequence[OverrideView],
    counts: dict[str, int],
    alerts: Sequence[HealthMark] = (),
) -> str:
    states: dict[str, int] = {}
    for source in sources:
        states[source.state] = states.get(source.state, 0) + 1
    failing = [s for s in sources if s.error_count and s.state == SourceState.ACTIVE]
    body = [
        "<ul>",
        f"<li>{link(admin_url('sources'), 'Sources')}: {len(sources)} ("
        + ", ".join(f"{n} {text(state)}" for state, n in sorted(states.items()))
        + f"); {len(failing)} failing</li>",
        f"<li>{link(admin_url('categories'), 'Categories')}: {len(categories)}</li>",
        f"<li>{link(admin_url('stories'), 'Stories')}: {counts.get('stories', 0)} "
        f"from {counts.get('entries', 0)} entries</li>",
        f"<li>{link(admin_url('corrections'), 'Corrections')} in force: {len(corrections)}</li>",
        "</ul>",
    ]
    if alerts:
        body.append(alerts_block(alerts))
    if failing:
        body.append(
            "<h2>Failing sources</h2><ul>"
            + "".join(
                f"<li>{text(s.id)}: {s.error_count} errors, last "
                f"({text(s.last_error_kind or '?')}): {text(s.last_error or '?')}</li>"
                for s in failing[:20]
            )
            + "</ul>"
        )
    return document("Overview", body, chrome)


def alerts_block(alerts: Sequence[HealthMark]) -> str:
    """The overview's list of sources needing an editor (empty when none does)."""
    if not alerts:
        return ""
    return (
        '<h2 id="alerts">Source-health alerts</h2><ul class="alerts">'
        + "".join(
            f'<li><a href="{attr(admin_url("sources"))}#source-{attr(a.source_id)}">'
            f"{text(a.source_id)}</a>: <strong>{text(a.health)}</strong> since {when(a.since)}"
            f" — {text(a.detail)}</li>"
            for a in alerts
        )
        + "</ul>"
    )


def sources_page(
    chrome: Chrome, sources: Sequence[SourceStatus], categories: Sequence[CategoryConfig]
) -> str:
    rows = []
    for s in sources:
        if s.state == SourceState.PAUSED:
            action = post_form(
                admin_url("sources", s.id, "resume"), chrome.csrf, "Resume", name=f"resume {s.id}"
            )
        elif s.state == SourceState.REMOVED:
            action = ""
        else:
            action = post_form(
                admin_url("sources", s.id, "pause"), chrome.csrf, "Pause", name=f"pause {s.id}"
            )
        if s.state != SourceState.REMOVED:
            action += " " + post_form(
                admin_url("sources", s.id, "remove"), chrome.csrf, "Remove", name=f"remove {s.id}"
            )
        error = (
            f'<span class="error-kind">{text(s.last_error_kind or "error")}</span>: '
            f"{text(s.last_error)}"
            if s.last_error
            else ""
        )
        warning = (
            f'<br><small class="warning">warning: {text(s.warning)}</small>' if s.warning else ""
        )
        if s.full_text_summary:
            warning += f'<br><small class="full-text">{text(s.full_text_summary)}</small>'

        rows.append(
            f'<tr id="source-{attr(s.id)}"><td>{text(s.id)}</td>'
            f"<td>{outside_link(s.url, s.title or s.url)}<br>"
            f"<small>{text(', '.join(s.categories))}</small></td>"
            f'<td class="state state-{attr(s.state)}">{text(s.state)}{warning}</td>'
            f"<td>{when(s.last_success_at)}</td>"
            f"<td>{text(s.last_status if s.last_status is not None else '')}</td>"
            f"<td>{s.error_count}<br><small>{error}</small></td>"
            f"<td>{when(s.next_check_at)}</td><td>{action}</td></tr>"
        )
    table = (
        (
            "<table><thead><tr><th>id</th><th>feed</th><th>state</th><th>last success</th>"
            "<th>HTTP</th><th>errors</th><th>next check</th><th></th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
        if rows
        else "<p>No sources.</p>"
    )
    options = "".join(f'<option value="{attr(c.id)}">{text(c.title)}</option>' for c in categories)
    add = post_form(
        admin_url("sources", "add"),
        chrome.csrf,
        "Add source",
        '<label>Feed URL <input type="url" name="url" required size="60"></label><br>',
        '<label>Categories <select name="categories" multiple required>'
        f"{options}</select></label><br>",
        '<label>Id (optional) <input type="text" name="id" pattern="[a-z0-9-]+" '
        'maxlength="64"></label> <label>Title (optional) <input type="text" name="title" '
        'maxlength="300"></label><br>',
        inline=False,
        name="add source",
    )
    return document("Sources", [table, "<h2>Add a source</h2>", add], chrome)


def categories_page(chrome: Chrome, categories: Sequence[CategoryConfig]) -> str:
    rows = "".join(
        f"<tr><td>{link(admin_url('categories', c.id), c.id)}</td><td>{text(c.title)}</td>"
        f"<td>{text(', '.join(c.languages))}</td><td>{len(c.include)}</td>"
        f"<td>{len(c.exclude)}</td></tr>"
        for c in categories
    )
    return document(
        "Categories",
        [
            "<table><thead><tr><th>id</th><th>title</th><th>languages</th><th>include rules</th>"
            f"<th>exclude rules</th></tr></thead><tbody>{rows}</tbody></table>"
        ],
        chrome,
    )


def _dry_run_list(title: str, entries: Sequence[DryRunEntry], css: str) -> str:
    if not entries:
        return f"<h3>{text(title)}: none</h3>"
    items = "".join(
        f"<li>{outside_link(e.url, e.title)} <small>#{e.entry_id} {text(e.source_id)}, "
        f"{when(e.published_at)}: {text(e.reason)}</small></li>"
        for e in entries
    )
    return f'<h3>{text(title)}: {len(entries)}</h3><ul class="{css}">{items}</ul>'


def category_page(
    chrome: Chrome,
    category: CategoryConfig,
    include: str,
    exclude: str,
    since: str,
    dry_run: DryRun | None,
) -> str:
    body = []
    if category.description:
        body.append(f"<p>{text(category.description)}</p>")
    body.append(
        f'<p class="meta">Languages: {text(", ".join(category.languages) or "any")}. '
        "One rule per line: a keyword, or a regex written /…/; matched case- and "
        "accent-insensitively.</p>"
    )
    body.append(
        f'<form method="post" action="{attr(admin_url("categories", category.id))}">'
        + hidden(CSRF_FIELD, chrome.csrf)
        + '<p><label>Include<br><textarea name="include" rows="8">'
        + text(include)
        + "</textarea></label></p>"
        + '<p><label>Exclude<br><textarea name="exclude" rows="6">'
        + text(exclude)
        + "</textarea></label></p>"
        + '<p><label>Dry run over the last <input type="text" name="since" size="5" '
        f'value="{attr(since)}"></label> '
        '<button name="action" value="dry-run">Dry run</button> '
        '<button name="action" value="save">Save</button></p></form>'
    )
    body.append(
        post_form(
            admin_url("categories", category.id),
            chrome.csrf,
            "Apply",
            hidden("action", "apply"),
            '<label>Apply the saved rules to the entries of the last <input type="number" '
            'name="days" min="1" max="366" value="7" required> days</label> '
            '<label>Note <input type="text" name="note" maxlength="500"></label> ',
            inline=False,
            name="apply rules",
        )
    )
    body.append(
        '<p class="meta">Saved rules take new entries; Apply re-files the stored ones '
        "as a dry run of the saved rules shows, as one correction you can undo.</p>"
    )
    if dry_run is not None:
        body.append(
            f'<section id="dry-run"><h2>Dry run over the last {text(since)}</h2>'
            f'<p class="meta">{dry_run.examined} stored entries examined, '
            f"{dry_run.unchanged} unchanged. Nothing is saved until you press "
            "Save.</p>"
            + _dry_run_list("Would be added", dry_run.added, "added")
            + _dry_run_list("Would be removed", dry_run.removed, "removed")
            + "</section>"
        )
    return document(f"Category {category.title}", body, chrome)


def search_form(action: str, query: str, label: str) -> str:
    return (
        f'<form method="get" action="{attr(action)}" role="search">'
        f'<label>{text(label)} <input type="search" name="q" value="{attr(query)}" '
        f'maxlength="{MAX_QUERY_LENGTH}" required></label> <button>Search</button></form>'
    )


def search_results(
    chrome: Chrome, query: str, hits: Sequence[SearchHit], merge_into: int | None = None
) -> str:
    """The entries found, each with its story; on a story's page, a button to merge each
    other story into it."""
    if not hits:
        return f'<p id="search-results">Nothing found for {text(query)}.</p>'
    rows = []
    for hit in hits:
        story = (
            link(admin_url("stories", hit.story_id), f"#{hit.story_id} {hit.story_title}")
            if hit.story_id is not None
            else "not clustered yet"
        )
        action = ""
        if merge_into is not None and hit.story_id is not None and hit.story_id != merge_into:
            action = post_form(
                admin_url("stories", merge_into, "merge"),
                chrome.csrf,
                "Merge into this story",
                hidden("other_story_id", hit.story_id),
                name=f"merge story {hit.story_id}",
            )
        rows.append(
            f"<tr><td>#{hit.entry_id}<br><small>{text(hit.source_id)}</small></td>"
            f"<td>{outside_link(hit.url, hit.title)}<br><small>"
            f"{text(hit.language or '?')}, {when(hit.published_at)}</small></td>"
            f"<td>{story}</td><td>{action}</td></tr>"
        )
    return (
        '<table id="search-results"><thead><tr><th>entry</th><th>title</th><th>story</th>'
        "<th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def stories_page(
    chrome: Chrome,
    per_category: Sequence[tuple[CategoryConfig, Sequence[StoryView]]],
    query: str = "",
    hits: Sequence[SearchHit] | None = None,
) -> str:
    body = [
        f'<form method="get" action="{attr(admin_url("stories"))}">'
        '<label>Story id <input type="number" name="id" min="1" required></label> '
        "<button>Show</button></form>",
        search_form(admin_url("stories"), query, "Search entries"),
    ]
    if hits is not None:
        body.append(f"<h2>Found for {text(query)}</h2>" + search_results(chrome, query, hits))
    for category, stories in per_category:
        body.append(f"<h2>{text(category.title)}</h2>")
        if not stories:
            body.append("<p>No stories yet.</p>")
            continue
        body.append(
            "<ul>"
            + "".join(
                f"<li>{link(admin_url('stories', s.story_id), s.representative.title)} "
                f"<small>#{s.story_id}, {len(s.entries)} entries, updated "
                f"{when(s.updated_at)}</small></li>"
                for s in stories
            )
            + "</ul>"
        )
    return document("Stories", body, chrome)


def corrections_table(chrome: Chrome, corrections: Sequence[OverrideView], back: str) -> str:
    if not corrections:
        return "<p>No corrections.</p>"
    rows = []
    for c in corrections:
        if c.undone_at is None:
            state = post_form(
                admin_url("corrections", c.id, "undo"),
                chrome.csrf,
                "Undo",
                hidden("back", back),
                name=f"undo correction {c.id}",
            )
        else:
            state = f"undone by {text(c.undone_by)} {when(c.undone_at)}"
        rows.append(
            f'<tr id="correction-{c.id}"><td>#{c.id}</td><td>{text(c.describe())}</td>'
            f"<td>{text(c.created_by)} {when(c.created_at)}"
            f"<br><small>{text(c.note or '')}</small></td><td>{state}</td></tr>"
        )
    return (
        "<table><thead><tr><th>id</th><th>correction</th><th>who, when, why</th>"
        "<th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _entry_row(chrome: Chrome, story: StoryDetail, entry: EntryDetail) -> str:
    why = "".join(f"<li>{text(line)}</li>" for line in explain(entry.evidence_row()))
    taken = (
        "".join(
            f"<li>{text(c.category)}: {text(c.reason)} <small>(score {c.score:g})</small></li>"
            for c in entry.categories
        )
        or "<li>no category took it</li>"
    )
    split = ""
    if len(story.entries) > 1:
        split = post_form(
            admin_url("stories", story.story_id, "split"),
            chrome.csrf,
            "Split out",
            hidden("entry_id", entry.entry_id),
            name=f"split entry {entry.entry_id}",
        )
    language = entry.languages.get("lang") if entry.languages else None
    return (
        f'<tr id="entry-{entry.entry_id}"><td>#{entry.entry_id}<br>'
        f"<small>{text(entry.source_id)}</small></td>"
        f"<td>{outside_link(entry.url, entry.title)}<br><small>"
        f"{text(language or entry.declared_language or '?')}, "
        f"{when(entry.published_at)}</small></td>"
        f'<td><ul class="why">{why}</ul></td><td><ul class="why">{taken}</ul></td>'
        f"<td>{split}</td></tr>"
    )


def story_page(
    chrome: Chrome,
    story: StoryDetail,
    categories: Sequence[CategoryConfig],
    query: str = "",
    hits: Sequence[SearchHit] | None = None,
) -> str:
    body = []
    facts = [
        f"uid {text(story.uid)}",
        f"published {when(story.published_at)}",
        f"updated {when(story.updated_at)}",
    ]
    if story.pinned_in:
        facts.append("pinned in " + text(", ".join(story.pinned_in)))
    if story.hidden_everywhere:
        facts.append("hidden everywhere")
    elif story.hidden_in:
        facts.append("hidden in " + text(", ".join(story.hidden_in)))
    body.append(f'<p class="meta">{"; ".join(facts)}</p>')
    if story.merged_into_id is not None:
        target = link(admin_url("stories", story.merged_into_id), f"story #{story.merged_into_id}")
        body.append(f"<p>Merged into {target} ({text(story.merged_by or 'clustering')}).</p>")
    if story.entries:
        body.append(
            "<h2>Entries</h2><table><thead><tr><th>entry</th><th>title</th>"
            "<th>why in this story</th><th>why in its categories</th><th></th></tr></thead>"
            "<tbody>"
            + "".join(_entry_row(chrome, story, e) for e in story.entries)
            + "</tbody></table>"
        )
    else:
        body.append("<p>No entries.</p>")
    options = "".join(f'<option value="{attr(c.id)}">{text(c.title)}</option>' for c in categories)
    note = '<label>Note <input type="text" name="note" maxlength="500"></label> '
    body.append("<h2>Correct</h2>")
    body.append(
        post_form(
            admin_url("stories", story.story_id, "merge"),
            chrome.csrf,
            "Merge",
            '<label>Merge with story id <input type="number" name="other_story_id" min="1" '
            "required></label> " + note,
            inline=False,
            name="merge",
        )
    )
    body.append(
        search_form(
            admin_url("stories", story.story_id), query, "Find the story to merge with this one"
        )
    )
    if hits is not None:
        body.append(search_results(chrome, query, hits, merge_into=story.story_id))
    body.append(
        post_form(
            admin_url("stories", story.story_id, "pin"),
            chrome.csrf,
            "Pin",
            f'<label>Pin first in <select name="category">{options}</select></label> ' + note,
            inline=False,
            name="pin",
        )
    )
    body.append(
        post_form(
            admin_url("stories", story.story_id, "hide"),
            chrome.csrf,
            "Hide",
            '<label>Hide in <select name="category"><option value="">every category</option>'
            f"{options}</select></label> " + note,
            inline=False,
            name="hide",
        )
    )
    body.append("<h2>Corrections in force</h2>")
    body.append(corrections_table(chrome, story.corrections, admin_url("stories", story.story_id)))
    return document(f"Story #{story.story_id}: {story.title}", body, chrome)


def corrections_page(chrome: Chrome, corrections: Sequence[OverrideView]) -> str:
    return document(
        "Corrections", [corrections_table(chrome, corrections, admin_url("corrections"))], chrome
    )


def audit_page(chrome: Chrome, rows: Sequence[AuditView], *, more: bool) -> str:
    """Who changed what and when, newest first, a page at a time."""
    if not rows:
        return document("Audit log", ["<p>No edits recorded yet.</p>"], chrome)
    body = [
        "<table><thead><tr><th>when</th><th>who</th><th>what</th><th>change</th></tr>"
        "</thead><tbody>"
        + "".join(
            f'<tr id="audit-{r.id}"><td>{when(r.at)}</td><td>{text(r.editor)}</td>'
            f"<td>{text(r.kind)} {text(r.action)}: {text(r.target)}</td>"
            f"<td><small>{text(_detail(r.detail))}</small></td></tr>"
            for r in rows
        )
        + "</tbody></table>"
    ]
    if more:
        body.append(f"<p>{link(admin_url('audit') + f'?before={rows[-1].id}', 'Older')}</p>")
    return document("Audit log", body, chrome)


def _detail(detail: dict[str, object]) -> str:
    return "; ".join(f"{key}: {_change(value)}" for key, value in sorted(detail.items()))


def _change(value: object) -> str:
    """A nested audit value in words (``True → False``, ``added ferry, removed robot``): the
    page is for editors, who should not have to read Python reprs."""
    if isinstance(value, dict):
        if set(value) == {"before", "after"}:
            return f"{_change(value['before'])} → {_change(value['after'])}"
        said = [
            f"{key} {_change(item)}"
            for key, item in value.items()
            if item not in ([], {}, None, "")
        ]
        return ", ".join(said) or "no change"
    if isinstance(value, list | tuple):
        return ", ".join(_change(item) for item in value) or "none"
    return str(value)


def editors_page(
    chrome: Chrome, editors: Sequence[EditorView], token: tuple[str, str] | None
) -> str:
    """The accounts with revoke and rotate buttons; a new token shown once, right here."""
    body = []
    if token is not None:
        message, value = token
        body.append(
            f'<div class="flash" role="status"><p>{text(message)}. Copy the token '
            "now: it is shown this once and only its hash is kept.</p>"
            f'<p><code id="new-token">{text(value)}</code></p></div>'
        )
    rows = []
    for e in editors:
        if e.active:
            actions = (
                post_form(
                    admin_url("editors", e.name, "rotate"),
                    chrome.csrf,
                    "New token",
                    name=f"rotate {e.name}",
                )
                + " "
                + post_form(
                    admin_url("editors", e.name, "revoke"),
                    chrome.csrf,
                    "Revoke",
                    name=f"revoke {e.name}",
                )
            )
            state = "active"
        else:
            actions = ""
            state = f"revoked by {text(e.revoked_by)} {when(e.revoked_at)}"
        rows.append(
            f'<tr id="editor-{attr(e.name)}"><td>{text(e.name)}</td>'
            f"<td>{text(e.role.value)}</td><td>{state}</td>"
            f"<td>{text(e.created_by)} {when(e.created_at)}</td><td>{actions}</td></tr>"
        )
    body.append(
        "<table><thead><tr><th>name</th><th>role</th><th>state</th><th>added</th>"
        "<th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        if rows
        else "<p>No accounts yet.</p>"
    )
    options = "".join(
        f'<option value="{attr(r.value)}">{text(r.value)}</option>'
        for r in (Role.EDITOR, Role.VIEWER, Role.ADMIN)
    )
    body.append(
        "<h2>Add an editor</h2>"
        + post_form(
            admin_url("editors", "add"),
            chrome.csrf,
            "Add",
            '<label>Name <input type="text" name="name" required maxlength="64"></label> ',
            f'<label>Role <select name="role">{options}</select></label> ',
            inline=False,
            name="add editor",
        )
    )
    return document("Editors", body, chrome)
