"""Group commit: what arrives while one write is on its way shares the next one, and nobody hears
"done" before their write is."""

from __future__ import annotations

import asyncio

import pytest

from runtime.group_commit import GroupCommit


class Disk:
    """A write that takes a while, as a synced commit does, and remembers what each one held."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.writes: list[list[str]] = []
        self.fail_on = fail_on
        self.gate = asyncio.Event()

    async def write(self, requests: list[str]) -> list[str]:
        await self.gate.wait()
        if self.fail_on in requests:
            raise OSError("disk full")
        self.writes.append(list(requests))
        return [r.upper() for r in requests]


async def test_requests_that_arrive_during_a_write_share_the_next_one() -> None:
    disk = Disk()
    commit = GroupCommit(disk.write)
    first = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0)  # "a" is being written
    rest = [asyncio.create_task(commit.submit(x)) for x in "bcd"]
    await asyncio.sleep(0)
    assert not first.done()  # not told before its write ended
    disk.gate.set()
    assert await first == "A"
    assert [await t for t in rest] == ["B", "C", "D"]
    assert disk.writes == [["a"], ["b", "c", "d"]]


async def test_a_failed_write_fails_every_request_in_it_and_the_next_group_goes_on() -> None:
    disk = Disk(fail_on="b")
    commit = GroupCommit(disk.write)
    first = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0)
    group = [asyncio.create_task(commit.submit(x)) for x in "bc"]
    disk.gate.set()
    assert await first == "A"
    for task in group:
        with pytest.raises(OSError, match="disk full"):
            await task
    assert await commit.submit("d") == "D"
    assert disk.writes == [["a"], ["d"]]


async def test_a_request_cancelled_before_its_write_is_left_out() -> None:
    disk = Disk()
    commit = GroupCommit(disk.write)
    first = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0)
    gone = asyncio.create_task(commit.submit("b"))
    kept = asyncio.create_task(commit.submit("c"))
    await asyncio.sleep(0)
    gone.cancel()
    disk.gate.set()
    assert await first == "A" and await kept == "C"
    assert disk.writes == [["a"], ["c"]]
