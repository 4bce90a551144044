"""Scheduled key rotation (``AUTHSERVER_KEY_ROTATION_DAYS``), run beside each server worker.

Every worker of every instance checks, and that is safe: ``rotate_if_due`` does nothing while
a successor is staged, and the key store lets only one caller rotate a given key.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from authserver.errors import AuthServerError
from authserver.extensions import db
from authserver.services.clients import longest_token_ttl
from authserver.services.keys import retention, rotate_if_due

log = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 60.0


def start_rotation_scheduler(app: Flask) -> threading.Thread | None:
    settings = app.config["AUTHSERVER_SETTINGS"]
    if settings.key_rotation_days is None:
        return None

    def run() -> None:
        while True:
            try:
                with app.app_context():
                    longest = longest_token_ttl(db.session(), settings.access_token_ttl)
                    staged = rotate_if_due(settings, retention(settings, longest))
                if staged:
                    log.warning("scheduled rotation staged key %s", staged.kid)
            except (AuthServerError, OSError) as exc:
                log.error("scheduled key rotation failed: %s", exc)
            except Exception:
                log.exception("scheduled key rotation failed")
            time.sleep(CHECK_INTERVAL_SECONDS)

    thread = threading.Thread(target=run, name="key-rotation", daemon=True)
    thread.start()
    return thread
