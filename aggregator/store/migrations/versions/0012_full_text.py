"""Full text of truncated feeds: each opted-in entry's article page, checked and extracted

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

- ``entry_full_texts``: one row per entry of a ``full_text = true`` source whose page the
  full-text stage checked: the outcome (extracted, empty, failed) and error, the sanitized
  main text, the page's validators and body hash (an unchanged page is not fetched or
  extracted again), the entry's content hash when checked, failures in a row, and when.
- ``sources.full_text``: the editors' ``full_text = true``, shown with the source's health.

Migrations are frozen history once released: they use plain SQLAlchemy types, never the live
models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entry_full_texts",
        sa.Column("entry_id", sa.Integer(), sa.ForeignKey("entries.id"), primary_key=True),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("content_html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=1024), nullable=True),
        sa.Column("last_modified", sa.String(length=128), nullable=True),
        sa.Column("body_hash", sa.String(length=64), nullable=True),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_entry_full_texts_source_id", "entry_full_texts", ["source_id"])
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("full_text", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("full_text")
    op.drop_index("ix_entry_full_texts_source_id", table_name="entry_full_texts")
    op.drop_table("entry_full_texts")
