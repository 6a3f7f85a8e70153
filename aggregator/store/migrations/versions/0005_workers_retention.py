"""many workers and retention: tombstones, host holds, output change marks, lease index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
``tombstones`` remember pruned entries per (source, identity key) so a feed that still lists
them does not bring them back; ``host_holds`` share a host's Retry-After between workers;
``output_marks`` let exactly one worker announce each change of a category's outputs; the index
on ``sources.leased_until`` serves the claim query's "hosts busy elsewhere" lookup, the one on
``entries.origin_story_id`` retention's "is this story still referenced" check.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tombstones",
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("identity_key", sa.String(length=512), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source_id", "identity_key"),
    )
    with op.batch_alter_table("tombstones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tombstones_pruned_at"), ["pruned_at"],
                              unique=False)

    op.create_table(
        "host_holds",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("host"),
    )

    op.create_table(
        "output_marks",
        sa.Column("category_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("category_id"),
    )

    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sources_leased_until"), ["leased_until"],
                              unique=False)
    # Retention deletes a story only when no entry still names it as its origin.
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entries_origin_story_id"), ["origin_story_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entries_origin_story_id"))
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sources_leased_until"))
    op.drop_table("output_marks")
    op.drop_table("host_holds")
    with op.batch_alter_table("tombstones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tombstones_pruned_at"))
    op.drop_table("tombstones")
