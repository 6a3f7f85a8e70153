"""The /admin/webhooks page: subscribers with add and remove, and the delivery log with "send
again" for failed deliveries; plus the source-health alerts block of the overview. Handlers
and HTML together, on the admin pages' session, CSRF and flash plumbing (``admin``).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI, Request, Response

from aggregator.catalog import CategoryConfig
from aggregator.editorial.operations import Workbench
from aggregator.store.webhooks import DeliveryView
from aggregator.types import DeliveryState, EventKind, Subscriber
from aggregator.web.admin import AdminPages, _first, _said, admin_route_class
from aggregator.web.admin_pages import (
    Chrome,
    admin_url,
    attr,
    document,
    post_form,
    text,
    when,
)
from aggregator.web.auth import ADMIN_PREFIX, Auth

LOG_LINES = 100


def _filters(subscriber: Subscriber) -> str:
    parts = [
        (name, values)
        for name, values in (
            ("categories", subscriber.categories),
            ("languages", subscriber.languages),
            ("events", subscriber.events),
        )
        if values
    ]
    return "; ".join(f"{name}: {', '.join(values)}" for name, values in parts) or "everything"


def webhooks_page(
    chrome: Chrome,
    subscribers: Sequence[Subscriber],
    deliveries: Sequence[DeliveryView],
    categories: Sequence[CategoryConfig],
) -> str:
    rows = []
    for s in subscribers:
        action = (
            post_form(
                admin_url("webhooks", s.id, "remove"), chrome.csrf, "Remove", name=f"remove {s.id}"
            )
            if s.origin == "api"
            else "<small>in webhooks.toml</small>"
        )
        rows.append(
            f'<tr id="subscriber-{attr(s.id)}"><td>{text(s.id)}</td>'
            f"<td>{text(s.url)}</td><td>{text(_filters(s))}</td>"
            f"<td>{text(s.origin)}</td><td>{action}</td></tr>"
        )
    table = (
        (
            "<table><thead><tr><th>id</th><th>URL</th><th>filters</th><th>from</th>"
            "<th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
        if rows
        else "<p>No subscribers.</p>"
    )
    options = "".join(f'<option value="{attr(c.id)}">{text(c.title)}</option>' for c in categories)
    kinds = "".join(
        f'<label><input type="checkbox" name="events" value="{attr(k.value)}"> '
        f"{text(k.value)}</label> "
        for k in EventKind
    )
    add = post_form(
        admin_url("webhooks", "add"),
        chrome.csrf,
        "Add subscriber",
        '<label>Id <input type="text" name="id" required pattern="[a-z0-9-]+" '
        'maxlength="64"></label> <label>URL <input type="url" name="url" required '
        'size="50"></label><br>',
        '<label>Secret <input type="password" name="secret" required minlength="16" '
        'maxlength="512" autocomplete="off"></label><br>',
        f'<label>Categories (none: all) <select name="categories" multiple>{options}'
        "</select></label><br>",
        '<label>Languages (none: all) <input type="text" name="languages" '
        'placeholder="en, fr"></label><br>',
        f"Events (none: all) {kinds}<br>",
        inline=False,
        name="add subscriber",
    )
    log_rows = []
    for d in deliveries:
        retry = (
            post_form(
                admin_url("webhooks", "deliveries", d.id, "retry"),
                chrome.csrf,
                "Send again",
                name=f"retry {d.id}",
            )
            if d.state == DeliveryState.FAILED
            else ""
        )
        outcome = (f"HTTP {d.last_status}" if d.last_status is not None else "") + (
            f" {d.last_error}" if d.last_error else ""
        )
        log_rows.append(
            f'<tr id="delivery-{d.id}"><td>{d.id}</td><td>{text(d.event_kind)}<br>'
            f"<small>{text(d.event_key)}</small></td><td>{text(d.subscriber_id)}</td>"
            f'<td class="state">{text(d.state)}</td><td>{d.attempts}</td>'
            f"<td>{text(outcome.strip())}</td><td>{when(d.last_attempt_at)}</td>"
            f"<td>{when(d.next_attempt_at) if d.state == DeliveryState.PENDING else ''}"
            f"</td><td>{retry}</td></tr>"
        )
    log = (
        (
            "<table><thead><tr><th>#</th><th>event</th><th>subscriber</th><th>state</th>"
            "<th>attempts</th><th>last answer</th><th>last attempt</th><th>next attempt</th>"
            "<th></th></tr></thead><tbody>" + "".join(log_rows) + "</tbody></table>"
        )
        if log_rows
        else "<p>No deliveries yet.</p>"
    )
    return document(
        "Webhooks",
        [
            table,
            "<h2>Add a subscriber</h2>",
            add,
            f"<h2>Delivery log</h2><p>The last {LOG_LINES}.</p>",
            log,
        ],
        chrome,
    )


class WebhookPages:
    """The handlers of /admin/webhooks over the admin pages' plumbing."""

    def __init__(self, pages: AdminPages) -> None:
        self.pages = pages
        self.bench: Workbench = pages.bench

    def show(self, request: Request) -> Response:
        return self.pages.show(
            request,
            webhooks_page(
                self.pages.chrome(request),
                self.bench.webhook_subscribers(),
                self.bench.webhook_deliveries(limit=LOG_LINES),
                self.bench.catalog.categories,
            ),
        )

    def add(self, request: Request) -> Response:
        form = self.pages.form(request)
        languages = [
            part.strip()
            for part in _first(form, "languages").replace(",", " ").split()
            if part.strip()
        ]
        data = {
            "id": _first(form, "id").strip(),
            "url": _first(form, "url").strip(),
            "secret": _first(form, "secret"),
            "categories": form.get("categories", []),
            "languages": languages,
            "events": form.get("events", []),
        }
        return self.pages.act(admin_url("webhooks"), lambda: _said(self.bench.add_webhook(data)))

    def remove(self, request: Request) -> Response:
        subscriber_id = request.path_params["subscriber_id"]
        return self.pages.act(
            admin_url("webhooks"), lambda: _said(self.bench.remove_webhook(subscriber_id))
        )

    def retry(self, request: Request) -> Response:
        raw = request.path_params["delivery_id"]
        delivery_id = int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else 0
        return self.pages.act(
            admin_url("webhooks"), lambda: _said(self.bench.redeliver(delivery_id))
        )


def include_admin_webhooks(app: FastAPI, bench: Workbench, auth: Auth) -> None:
    handlers = WebhookPages(AdminPages(bench, auth))
    inside = APIRouter(
        prefix=ADMIN_PREFIX,
        include_in_schema=False,
        route_class=admin_route_class(auth, signed_in=True),
    )
    inside.add_api_route("/webhooks", handlers.show, methods=["GET"])
    inside.add_api_route("/webhooks/add", handlers.add, methods=["POST"])
    inside.add_api_route("/webhooks/{subscriber_id}/remove", handlers.remove, methods=["POST"])
    inside.add_api_route(
        "/webhooks/deliveries/{delivery_id}/retry", handlers.retry, methods=["POST"]
    )
    app.include_router(inside)
