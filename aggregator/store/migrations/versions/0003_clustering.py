"""clustering stage: entry features, decisions and pending marker, language centering, overrides

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
Existing entries become pending (``clustered_at`` NULL); the stage takes the ones older than its
horizon through the cheap path, so an upgraded store is not re-embedded wholesale.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_by", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin_story_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("story_decision", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("story_evidence", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("story_decided_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("clustered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key("fk_entries_origin_story_id_stories", "stories",
                                    ["origin_story_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_entries_clustered_at"), ["clustered_at"],
                              unique=False)
    op.execute("UPDATE entries SET origin_story_id = story_id")

    op.create_table(
        "entry_features",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("lang", sa.String(length=35), nullable=True),
        sa.Column("title_lang", sa.String(length=35), nullable=True),
        sa.Column("body_lang", sa.String(length=35), nullable=True),
        sa.Column("lang_confidence", sa.Float(), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("minhash", sa.LargeBinary(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"]),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    with op.batch_alter_table("entry_features", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entry_features_published"), ["published"],
                              unique=False)

    op.create_table(
        "language_centering",
        sa.Column("lang", sa.String(length=35), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("vector_sum", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lang"),
    )

    op.create_table(
        "clustering_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO clustering_state (id, version) VALUES (1, 0)")

    op.create_table(
        "story_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("other_entry_id", sa.Integer(), nullable=True),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.Column("other_story_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"]),
        sa.ForeignKeyConstraint(["other_entry_id"], ["entries.id"]),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"]),
        sa.ForeignKeyConstraint(["other_story_id"], ["stories.id"]),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("story_overrides")
    op.drop_table("clustering_state")
    op.drop_table("language_centering")
    with op.batch_alter_table("entry_features", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entry_features_published"))
    op.drop_table("entry_features")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entries_clustered_at"))
        batch_op.drop_constraint("fk_entries_origin_story_id_stories", type_="foreignkey")
        for column in ("clustered_at", "story_decided_at", "story_evidence", "story_decision",
                       "origin_story_id"):
            batch_op.drop_column(column)
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_column("merged_at")
        batch_op.drop_column("merged_by")
