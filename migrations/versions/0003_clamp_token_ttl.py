"""Clamp client token lifetimes to a day (MAX_ACCESS_TOKEN_TTL).

Earlier versions stored any ``--token-ttl``; a value past what a ``timedelta`` can hold broke
key retention for every client (the JWKS, introspection and ``authserver keys`` failed).
Lifetimes are now 1 to 86400 seconds; the numbers are written out so the migration keeps its
meaning if the bound moves.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MAX_ACCESS_TOKEN_TTL = 86_400


def upgrade() -> None:
    clients = sa.table("clients", sa.column("token_ttl", sa.Integer))
    op.execute(
        clients.update()
        .where(clients.c.token_ttl > MAX_ACCESS_TOKEN_TTL)
        .values(token_ttl=MAX_ACCESS_TOKEN_TTL)
    )


def downgrade() -> None:
    """Nothing to undo: the lifetimes that were clamped are not kept."""
