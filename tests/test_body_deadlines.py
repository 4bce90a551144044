"""The body deadline's single timer: reads in time pass, stalled ones end in TimeoutError once
their deadline is past, and a cancellation from elsewhere stays a cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from authserver.http.deadlines import BodyDeadlines

DEADLINE = 0.2
#: The deadline, the timer's resolution, and room for a loaded machine.
GIVE_UP_AFTER = 5.0


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_a_read_in_time_gives_its_result_and_leaves_nothing_waiting() -> None:
    deadlines = BodyDeadlines(DEADLINE)

    async def main() -> bytes:
        async def body() -> bytes:
            await asyncio.sleep(0)
            return b"grant_type=client_credentials"

        return await deadlines.within(body())

    assert run(main()) == b"grant_type=client_credentials"
    assert not deadlines._waiting
    assert not deadlines._expired


def test_a_stalled_read_ends_in_timeout_after_its_deadline() -> None:
    deadlines = BodyDeadlines(DEADLINE)

    async def main() -> float:
        never = asyncio.Event()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(deadlines.within(never.wait()), GIVE_UP_AFTER)
        return time.monotonic() - started

    assert DEADLINE <= run(main()) < GIVE_UP_AFTER  # type: ignore[operator]


def test_each_request_has_its_own_deadline() -> None:
    """A read that starts later is not cut at an earlier read's deadline: it starts halfway
    through the first one's and takes 0.6 of its own, so it ends after the first one's."""
    deadline = 1.0
    deadlines = BodyDeadlines(deadline)

    async def main() -> list[object]:
        never = asyncio.Event()

        async def late_arrival() -> str:
            return await deadlines.within(_arrive_after(deadline * 0.6))

        async def _arrive_after(seconds: float) -> str:
            await asyncio.sleep(seconds)
            return "arrived"

        async def stalled() -> bool:
            return await deadlines.within(never.wait())

        first = asyncio.ensure_future(stalled())
        await asyncio.sleep(deadline / 2)
        second = asyncio.ensure_future(late_arrival())
        return await asyncio.gather(first, second, return_exceptions=True)

    stalled_result, late_result = run(main())  # type: ignore[misc]
    assert isinstance(stalled_result, TimeoutError)
    assert late_result == "arrived"


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = BodyDeadlines(GIVE_UP_AFTER)

    async def main() -> None:
        never = asyncio.Event()
        task = asyncio.ensure_future(deadlines.within(never.wait()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not deadlines._waiting

    run(main())
