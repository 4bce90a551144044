"""Per-client token quotas: ``clients.max_tokens_per_hour`` (NULL: unlimited).

A nullable column only: existing clients stay unlimited, and databases are upgraded in place.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("max_tokens_per_hour", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("max_tokens_per_hour")
