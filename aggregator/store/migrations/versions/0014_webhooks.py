"""Webhooks: subscribers, the event outbox, deliveries, and the event detector's marks

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

- ``webhook_subscribers``: downstream sites (from ``webhooks.toml`` or the API) and filters.
- ``webhook_events``: the outbox, one row per event with its unique idempotency key.
- ``webhook_deliveries``: one event owed to one subscriber; retries and the delivery log.
- ``webhook_marks``: what the detector last saw of a story, a source or a cursor.
- an index on ``entries.fetched_at``: the detector asks for entries rewritten since its last
  look, every few seconds.

Migrations are frozen history once released: they use plain SQLAlchemy types, never the live
models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = True, index: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def upgrade() -> None:
    op.create_table(
        "webhook_subscribers",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=512), nullable=True),
        sa.Column("secret_env", sa.String(length=128), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _when("created_at", nullable=False),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=255), nullable=False, unique=True),
        sa.Column("kind", sa.String(length=32), nullable=False, index=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        _when("created_at", nullable=False, index=True),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("webhook_events.id"),
                  nullable=False, index=True),
        sa.Column("subscriber_id", sa.String(length=64), nullable=False, index=True),
        sa.Column("state", sa.String(length=16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at", index=True),
        _when("last_attempt_at"),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        _when("delivered_at"),
        sa.UniqueConstraint("event_id", "subscriber_id", name="uq_delivery_event_subscriber"),
    )
    op.create_table(
        "webhook_marks",
        sa.Column("subject", sa.String(length=128), primary_key=True),
        sa.Column("state", sa.JSON(), nullable=False),
        _when("updated_at", nullable=False),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entries_fetched_at"), ["fetched_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entries_fetched_at"))
    op.drop_table("webhook_marks")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhook_subscribers")
