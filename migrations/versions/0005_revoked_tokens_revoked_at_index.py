"""Index the deny-list by when entries were revoked.

Every worker polls the deny-list for entries revoked since its last poll, twice a second;
without this index each poll reads the whole table, which grows with the revocations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_revoked_tokens_revoked_at"), "revoked_tokens", ["revoked_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_revoked_tokens_revoked_at"), table_name="revoked_tokens")
