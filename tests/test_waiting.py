"""The polling helpers of ``tests.support.waiting``: what they return, and that a wait that
never ends fails naming what it waited for."""

from __future__ import annotations

import itertools

import pytest

from tests.support.waiting import holds_throughout, poll, wait_until


def test_poll_returns_the_first_truthy_value_without_waiting_further() -> None:
    answers = iter([None, 0, "", "found", "later"])
    assert poll(lambda: next(answers), 5, interval=0) == "found"
    assert next(answers) == "later"


def test_poll_gives_none_after_the_timeout_having_asked_at_least_twice() -> None:
    asked = itertools.count()
    assert poll(lambda: next(asked) < 0, 0.02, interval=0.005) is None
    assert next(asked) >= 2


def test_wait_until_fails_naming_what_never_happened_and_the_detail() -> None:
    with pytest.raises(AssertionError, match=r"the moon turning blue: not within 0\.01 s\nlog"):
        wait_until(lambda: False, 0.01, "the moon turning blue", detail=lambda: "log")


def test_holds_throughout_fails_as_soon_as_the_claim_stops_holding() -> None:
    checks = iter([True, True, False])
    with pytest.raises(AssertionError, match="the claim: stopped after"):
        holds_throughout(lambda: next(checks), 5, "the claim", interval=0)


def test_holds_throughout_checks_once_more_at_the_end() -> None:
    checked = itertools.count()
    holds_throughout(lambda: next(checked) >= 0, 0.02, "the claim", interval=0.005)
    assert next(checked) >= 2
