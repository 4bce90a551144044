"""Workload identity federation: trusted issuers, each authenticating as one client.

A new table only: existing databases are upgraded in place.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusts",
        sa.Column("trust_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("jwks_uri", sa.Text(), nullable=True),
        sa.Column("allow_reuse", sa.Boolean(), nullable=False),
        sa.Column("max_lifetime", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_trusts_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trust_id", name=op.f("pk_trusts")),
    )
    op.create_index(op.f("ix_trusts_client_id"), "trusts", ["client_id"], unique=False)
    op.create_index(op.f("ix_trusts_issuer"), "trusts", ["issuer"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_trusts_issuer"), table_name="trusts")
    op.drop_index(op.f("ix_trusts_client_id"), table_name="trusts")
    op.drop_table("trusts")
