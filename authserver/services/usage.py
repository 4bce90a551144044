"""When each client last authenticated: collected in memory on the token path, written later.

The token endpoint never writes to the database: each worker's :class:`UsageRecorder` keeps the
latest moment per client, and the maintenance thread stores them with
:func:`record_last_used`, at most once a minute per client.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from authserver.models import Client

LAST_USED_RESOLUTION = timedelta(minutes=1)


class UsageRecorder:
    """When each client last authenticated, kept in memory by this worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_used: dict[str, datetime] = {}

    def record(self, client_id: str, moment: datetime) -> None:
        with self._lock:
            self._last_used[client_id] = moment

    def drain(self) -> dict[str, datetime]:
        with self._lock:
            drained, self._last_used = self._last_used, {}
        return drained


def record_last_used(session: Session, last_used: dict[str, datetime]) -> None:
    """Store when clients last authenticated, at most once a minute per client.

    Workers collect the times in memory and call this from a background thread, so the
    token endpoint itself never writes to the database.
    """
    for client_id, moment in last_used.items():
        session.execute(
            update(Client)
            .where(
                Client.client_id == client_id,
                or_(
                    Client.last_used_at.is_(None),
                    Client.last_used_at <= moment - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=moment)
        )
