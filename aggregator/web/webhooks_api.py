"""The webhooks' part of the JSON API, all behind the admin token: subscribers (list, add,
remove), the delivery log with "send again", and the source-health alerts. Every change goes
through the editors' workbench, so its refusals are the same ``EditRefused`` as elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Security
from pydantic import BaseModel, ConfigDict, Field

from aggregator.delivery.subscribers import MAX_FILTER_VALUES, MAX_SECRET_LENGTH
from aggregator.editorial.operations import Workbench
from aggregator.store.webhooks import DeliveryView
from aggregator.types import DeliveryState, EventKind, Subscriber
from aggregator.web.api import ERRORS, MAX_ID, DoneOut
from aggregator.web.auth import Auth, bearer_scheme, token_route_class

Filter = list[Annotated[str, Field(max_length=64)]]


class SubscriberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=64, description="a slug naming the subscriber")
    url: str = Field(max_length=2048, description="where events are POSTed")
    secret: str = Field(
        max_length=MAX_SECRET_LENGTH,
        description="signs every request (HMAC-SHA256); never shown again",
    )
    categories: Filter = Field(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description="only events of these categories (empty: all)",
    )
    languages: Filter = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    events: list[EventKind] = Field(
        default_factory=list,
        max_length=len(EventKind),
        description="only these event types (empty: all)",
    )


class SubscriberOut(BaseModel):
    id: str
    url: str
    categories: list[str]
    languages: list[str]
    events: list[str]
    origin: str = Field(description="file (webhooks.toml) or api")
    active: bool
    secret_from: str | None = Field(
        description="stored, or env:NAME; the secret itself is never shown"
    )
    created_at: datetime | None


class DeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="the event's idempotency key")
    type: str
    subscriber_id: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class AlertOut(BaseModel):
    source_id: str
    health: str = Field(description="failing, gone, moved, empty or silent")
    detail: str
    since: datetime


def subscriber_out(subscriber: Subscriber) -> SubscriberOut:
    return SubscriberOut.model_validate(subscriber.as_json())


def delivery_out(view: DeliveryView) -> DeliveryOut:
    return DeliveryOut.model_validate(view.as_json())


def include_webhooks_api(app: FastAPI, bench: Workbench, auth: Auth) -> None:
    router = APIRouter(
        prefix="/api",
        tags=["webhooks"],
        route_class=token_route_class(auth),
        dependencies=[Security(bearer_scheme())],
        responses=ERRORS,
    )

    @router.get("/webhooks", response_model=list[SubscriberOut])
    def subscribers() -> list[SubscriberOut]:
        """Active subscribers, from webhooks.toml and added here (secrets never shown)."""
        return [subscriber_out(s) for s in bench.webhook_subscribers()]

    @router.post("/webhooks", response_model=DoneOut, status_code=201)
    def add(body: SubscriberIn) -> DoneOut:
        """Add a subscriber; its URL follows the address rules of API-added sources."""
        done = bench.add_webhook(body.model_dump())
        return DoneOut(message=done.message, applied=done.applied)

    @router.delete("/webhooks/{subscriber_id}", response_model=DoneOut)
    def remove(subscriber_id: Annotated[str, Path(max_length=64)]) -> DoneOut:
        """Stop sending to a subscriber added here; what it was owed is marked failed."""
        done = bench.remove_webhook(subscriber_id)
        return DoneOut(message=done.message, applied=done.applied)

    @router.get("/webhooks/deliveries", response_model=list[DeliveryOut])
    def deliveries(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        subscriber_id: Annotated[str | None, Query(max_length=64)] = None,
        state: Annotated[DeliveryState | None, Query()] = None,
    ) -> list[DeliveryOut]:
        """The delivery log, newest first: attempts, last status or error, next attempt."""
        return [
            delivery_out(d)
            for d in bench.webhook_deliveries(limit=limit, subscriber_id=subscriber_id, state=state)
        ]

    @router.post("/webhooks/deliveries/{delivery_id}/retry", response_model=DoneOut)
    def retry(delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> DoneOut:
        """Queue a failed delivery again."""
        done = bench.redeliver(delivery_id)
        return DoneOut(message=done.message, applied=done.applied)

    @router.get("/alerts", response_model=list[AlertOut])
    def alerts() -> list[AlertOut]:
        """Sources failing N times in a row, gone, moved, empty, or silent far beyond their
        rhythm (the same alerts as /admin/ and the source.health events)."""
        return [AlertOut.model_validate(a.as_json()) for a in bench.source_alerts()]

    app.include_router(router)
