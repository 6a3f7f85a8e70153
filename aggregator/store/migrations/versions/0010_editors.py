"""Editors' accounts, the audit log of their edits, and the admin sessions' signing key

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

- ``editors``: one row per editor (name, role, the token's public key and its scrypt hash,
  when it was created, rotated, revoked and by whom).
- ``audit_log``: who changed which source, rules, correction or account, when, and how.
- ``signing_keys``: the random key admin sessions are signed with when no shared token is set.

Migrations are frozen history once released: they use plain SQLAlchemy types, never the live
models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "editors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False, unique=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_key", sa.String(length=32), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("editor", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "signing_keys",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("secret", sa.String(length=128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("editors")
