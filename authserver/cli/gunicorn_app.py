"""gunicorn embedded as a library, so ``authserver serve`` needs no separate config file."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from authserver import create_app
from authserver.config import Settings


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Runs gunicorn in-process with our options; each worker builds its own app after fork."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        return create_app(self._settings)
