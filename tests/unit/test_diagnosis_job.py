"""A diagnosis runs beside the recovery wait and is always owned: awaited, or cancelled on the way out."""

import asyncio

import pytest

from chaosdemo.run.diagnosis import DiagnosisJob


class Work:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.started, self.finished, self.cancelled = seconds, False, False, False

    async def __call__(self) -> None:
        self.started = True
        try:
            await asyncio.sleep(self.seconds)
            self.finished = True
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def no_timeout(limit: float) -> None:
    raise AssertionError("not expected to time out")


async def test_a_watch_that_fails_while_the_diagnosis_runs_leaves_no_diagnosis_behind():
    work = Work(10)
    with pytest.raises(RuntimeError):
        async with DiagnosisJob(work, 60, no_timeout) as job:
            job.start()
            await asyncio.sleep(0.01)
            raise RuntimeError("the watch died (Unavailable, a cancellation...)")
    assert work.cancelled and not work.finished
    assert not job.running
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_a_cancelled_watch_cancels_its_diagnosis_and_still_ends_cancelled():
    work = Work(10)

    async def watch() -> None:
        async with DiagnosisJob(work, 60, no_timeout) as job:
            job.start()
            await asyncio.sleep(10)

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert work.cancelled


async def test_finish_waits_for_the_diagnosis():
    work = Work(0.05)
    async with DiagnosisJob(work, 60, no_timeout) as job:
        job.start()
        await job.finish()
    assert work.finished


async def test_a_diagnosis_past_its_limit_is_cancelled_and_reported():
    work, timed_out = Work(10), []

    async def on_timeout(limit: float) -> None:
        timed_out.append(limit)

    async with DiagnosisJob(work, 0.05, on_timeout) as job:
        job.start()
        await job.finish()
    assert work.cancelled and timed_out == [0.05]


async def test_starting_twice_runs_one_diagnosis():
    calls = []

    async def work() -> None:
        calls.append(1)

    async with DiagnosisJob(work, 60, no_timeout) as job:
        job.start()
        job.start()
        await job.finish()
    assert calls == [1]
