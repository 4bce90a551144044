"""The fast tier's own rules hold: its guard refuses what would make a test slow."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest


def test_a_fast_test_cannot_sleep() -> None:
    with pytest.raises(AssertionError, match="ManualClock"):
        time.sleep(0)


def test_a_fast_test_cannot_connect_or_serve() -> None:
    with socket.socket() as client, pytest.raises(AssertionError, match="fast tier"):
        client.connect(("127.0.0.1", 9))
    with socket.socket() as listener, pytest.raises(AssertionError, match="fast tier"):
        listener.bind(("127.0.0.1", 0))


def test_a_fast_test_cannot_start_a_process() -> None:
    with pytest.raises(AssertionError, match="fast tier"):
        subprocess.run(["true"], check=False)
