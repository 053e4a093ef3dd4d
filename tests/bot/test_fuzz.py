"""Fuzz (hypothesis): whatever people type, and whatever a path holds, never crashes and never reaches a shell.

Random strings, mixed with shell-injection payloads aimed at a canary file, go in as ``!ritual``
arguments (the real bot in one SimCord guild, archiving to a local folder through real rclone) and
as archive-relative paths (``Outbox.enqueue`` and ``SyncService.archive``). The bot must answer
each with one sentence (or render the ritual the argument asked for); the sync layer must either
refuse the path with a PathError or archive the file inside the archive root. The canary must
never exist: nothing Helix does goes through a shell.

One event loop, one guild and one rclone per module: examples reuse them (the loop runs only while
an example does).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.settings import Settings
from bot.sim.world import World, simulated_guild
from sync._outbox.store import Outbox
from sync._paths import clean_relative
from sync._service import SyncService
from sync.errors import PathError
from sync.settings import SyncSettings
from tests.support.fault_bot import one_sentence

T = TypeVar("T")
CANARY = Path(f"/tmp/helix-canary-{secrets.token_hex(6)}")
PAYLOADS = [
    f"$(touch {CANARY})", f"`touch {CANARY}`", f";touch {CANARY}", f"; touch {CANARY} #", f"| touch {CANARY}",
    f"&& touch {CANARY}", f"\ntouch {CANARY}\n", f"$(touch${{IFS}}{CANARY})", f"' ; touch {CANARY} ; '",
    f'" ; touch {CANARY} ; "', f"--config=$(touch {CANARY})", f"../../../../{CANARY}",
]
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def with_payloads(test):
    """Every payload is tried explicitly (the canary proves something only if they all ran), then the rest."""
    for payload in PAYLOADS:
        test = example(payload)(test)
    return test

# Text people could type, payloads, and payloads spliced into text.
words = st.text(max_size=60)
hostile = st.one_of(words, st.sampled_from(PAYLOADS),
                    st.builds(lambda a, p, b: a + p + b, words, st.sampled_from(PAYLOADS), words))
arguments = st.one_of(hostile, st.integers(-10**12, 10**12).map(str), st.sampled_from(["", " ", "108", "1e3", "0x10",
                                                                                       "٣", "½", "1_000", "+5"]))
path_parts = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(["..", ".", "", "-rf", "~", "*", "?"]),
                       st.sampled_from(PAYLOADS))
paths = st.one_of(hostile, st.lists(path_parts, min_size=1, max_size=5).map("/".join),
                  st.lists(path_parts, min_size=1, max_size=4).map(lambda ps: "/" + "/".join(ps)))


@dataclass
class Fuzzed:
    """What the examples share: a loop that runs only during an example, and what lives in it."""

    runner: asyncio.Runner
    world: World
    service: SyncService
    outbox: Outbox
    src: Path

    def run(self, coro: Awaitable[T]) -> T:
        return self.runner.run(asyncio.wait_for(coro, 120))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    bot_settings = Settings(health=False, heartbeat_minutes=0, ritual_cooldown_s=0, stop_grace_s=2,
                            sync=SyncSettings(data_dir=root / "bot", retries=0, outbox_retry_base_s=0.1))
    runner = asyncio.Runner()
    ready: asyncio.Future[World] | None = None
    finished: asyncio.Event | None = None

    async def host() -> None:
        # SimCord's run() must be entered and left by one task: this one lives for the whole module.
        assert ready is not None and finished is not None
        async with simulated_guild(bot_settings, check_errors=False) as world:
            ready.set_result(world)
            await finished.wait()

    async def start() -> tuple[asyncio.Task[None], World, SyncService, Outbox]:
        nonlocal ready, finished
        ready, finished = asyncio.get_running_loop().create_future(), asyncio.Event()
        task = asyncio.create_task(host())
        world = await asyncio.wait_for(asyncio.shield(ready), 60)
        service = SyncService(SyncSettings(data_dir=root / "sync", retries=0))
        await service.start()
        outbox = await Outbox(root / "outbox").open()
        return task, world, service, outbox

    task, world, service, outbox = runner.run(start())
    src = root / "file.bin"
    src.write_bytes(os.urandom(1000))
    try:
        yield Fuzzed(runner, world, service, outbox, src)
    finally:
        async def stop() -> None:
            assert finished is not None
            finished.set()
            await outbox.close()
            await service.close()
            await task

        runner.run(stop())
        runner.close()


@pytest.fixture(autouse=True)
def no_shell_ran() -> Iterator[None]:
    yield
    assert not CANARY.exists(), f"a payload reached a shell: {CANARY} was created"


def _answer_lines(fuzzed: Fuzzed, text: str) -> list[str]:
    world = fuzzed.world
    return fuzzed.run(world.say(world.member("mallory"), text))


@FUZZ
@given(argument=arguments)
@with_payloads
def test_any_ritual_argument_gets_one_sentence_or_a_ritual(fuzzed: Fuzzed, argument: str) -> None:
    text = f"!ritual {argument}"
    before = fuzzed.world.env.error_cursor
    lines = _answer_lines(fuzzed, text)
    assert not CANARY.exists()
    assert lines, f"{text!r} got no answer"
    assert not any("went wrong" in line for line in lines), lines
    if any("Ritual of" in line for line in lines):  # a number it could draw: drawn and archived
        event("ritual drawn")
        assert any("archived to" in line for line in lines), lines
    else:
        event("refused with a sentence")
        assert len(lines) == 1 and one_sentence(lines[0]), lines
    # Only user mistakes (refused with their sentence) may have surfaced as command errors.
    for error in fuzzed.world.env.errors_since(before):
        assert type(error).__module__.startswith("discord.ext.commands") or \
            type(error).__name__ == "UserFacingError", repr(error)


@FUZZ
@given(rel=paths)
@with_payloads
def test_any_archive_path_is_refused_or_lands_inside_the_root(fuzzed: Fuzzed, rel: str) -> None:
    try:
        expected = clean_relative(rel)
    except PathError:
        expected = None

    # The outbox: refused with a PathError, or recorded under the cleaned name with its own copy.
    try:
        item = fuzzed.run(fuzzed.outbox.enqueue(fuzzed.src, rel, kind="fuzz"))
    except PathError:
        event("path refused")
        assert expected is None, f"{rel!r} is a valid path but the outbox refused it"
    else:
        event("path accepted")
        assert item.rel_path == expected
        assert item.local_path.resolve().is_relative_to(fuzzed.outbox.files_dir)
        fuzzed.run(fuzzed.outbox.drop(item.id))

    # The sync service: refused, or archived exactly at <root>/<cleaned path>, never outside it.
    root = Path(fuzzed.service.remote.root.fs)
    try:
        result = fuzzed.run(fuzzed.service.archive(fuzzed.src, rel))
    except PathError:
        assert expected is None, f"{rel!r} is a valid path but the service refused it"
    else:
        assert expected is not None and result.rel_path == expected
        landed = root / expected
        assert landed.resolve().is_relative_to(root.resolve()) and landed.read_bytes() == fuzzed.src.read_bytes()
    finally:
        for child in root.iterdir():  # the next example starts from an empty archive
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    assert not CANARY.exists()

