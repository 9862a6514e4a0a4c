"""The loop thread and the publish confirmations behind the networked transports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from opendrs.bus.confirms import Confirmations
from opendrs.bus.loop import LoopThread
from opendrs.domain.errors import DriverError


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread("test-loop")
    thread.start()
    yield thread
    thread.stop()


async def answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def refuse(what: str) -> None:
    raise ConnectionError(f"refused {what}")


def test_a_coroutine_runs_on_the_loop_and_answers(loop: LoopThread) -> None:
    assert loop.run(answer(7), timeout=5) == 7


def test_waiting_on_the_loop_from_the_loop_is_refused(loop: LoopThread) -> None:
    async def nested() -> str:
        inner = answer(1)
        try:
            loop.run(inner, timeout=1)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert "from the bus loop itself" in loop.run(nested(), timeout=5)


def test_no_answer_in_time_is_a_timeout(loop: LoopThread) -> None:
    never = asyncio.Event()
    with pytest.raises(TimeoutError, match=r"0\.05s"):
        loop.run(never.wait(), timeout=0.05)


def test_a_synchronous_publish_raises_its_own_failure(loop: LoopThread) -> None:
    confirms = Confirmations(loop, window=0, timeout=1, server="NATS at x")
    confirms.send(answer(1), "publish on a")
    with pytest.raises(DriverError, match="publish on b failed: ConnectionError") as caught:
        confirms.send(refuse("b"), "publish on b")
    assert caught.value.transient


def test_a_pipelined_failure_is_raised_by_the_next_wait(loop: LoopThread) -> None:
    confirms = Confirmations(loop, window=8, timeout=1, server="NATS at x")
    confirms.send(answer(1), "publish on a")
    confirms.send(refuse("b"), "publish on b")
    confirms.send(refuse("c"), "publish on c")
    with pytest.raises(DriverError, match=r"publish on b failed.*and 1 more"):
        confirms.wait_all()
    confirms.wait_all()  # reported once


def test_the_window_bounds_what_is_outstanding(loop: LoopThread) -> None:
    gate = asyncio.Event()

    async def held() -> None:
        await gate.wait()

    confirms = Confirmations(loop, window=2, timeout=0.2, server="x")
    confirms.send(held(), "one")
    confirms.send(held(), "two")
    with pytest.raises(DriverError, match="one failed: TimeoutError"):
        confirms.send(held(), "three")  # waits for "one", which never confirms
    loop.call_soon(gate.set)
    confirms.wait_all()


def test_a_negative_window_is_refused(loop: LoopThread) -> None:
    with pytest.raises(ValueError, match="negative"):
        Confirmations(loop, window=-1, timeout=1, server="x")
