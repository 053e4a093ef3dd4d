"""``!find`` over a big catalogue, its size, and how fast it is rebuilt: the ``find`` section of ``python -m bench``.

    python -m bench --only find                 # as a section (config from bench/plan.py)
    python -m bench.find --messages 100000 --rebuild-messages 50000 --rounds 3 --out /tmp/find.json

- latency: in-process, from the query text to the rendered page (parse, the catalogue's SQL with
  the visibility set in it, the page's text), for a member who reads every channel and for one
  who reads a tenth of them; p99 per round over a mix of common, rare, two-word, prefix and
  filtered queries, median of the rounds.
- size: the catalogue's file per million messages.
- rebuild: an empty catalogue filled from a local remote's segments (``capture.rebuild``: listed
  through the rclone daemon, read where they are, as Helix reads a plain local archive folder),
  against a plain ``json.loads`` loop over the same files; they alternate round by round and the
  figure is the median of the per-round ratios. Beside them, the same rebuild from the same
  folder named as an rclone connection string (``:local:``), which Helix treats as any other
  remote: one rclone job copies the segments first (``rebuild_copied_ratio``). And
  SQLite's share alone (``rebuild_floor_ratio``): the same messages, parsed beforehand, written
  by plain ``sqlite3`` into the least a words index of them needs (one table of their searched
  columns, FTS5 over it, an index per channel and per author, WAL synced as Helix's), with
  nothing read, parsed, fetched or kept besides. No catalogue can be rebuilt faster than that.

The archive is written as Helix writes it (canonical JSON lines, 1,000-line segments, a
``channel.json`` per channel) and streamed to disk, so a million messages never sit in memory.
The big catalogue is filled through the catalogue's own bulk path (``capture.rebuild.read_into``)
straight from that folder: it is the same catalogue a rebuild makes, without copying the files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stats import alternate, median, percentile, ratios, spread
from bench.workload import scratch
from bot.cogs.find import filters_of, results_page
from capture.rebuild import RebuildProgress, read_into, read_manifests, rebuild
from catalogue import Catalogue
from catalogue.query import parse_query
from sync import SyncService, SyncSettings

GUILD = 1_000_000_000_000_000_000
DISCORD_EPOCH_MS = 1_420_070_400_000
START = datetime(2026, 1, 1, tzinfo=UTC)
CHANNELS = 100
SEGMENT_LINES = 1_000
WORDS = [f"w{i}" for i in range(20_000)]
AUTHORS = [(10 + i, f"member{i}") for i in range(500)]
QUERIES = ["w0", "w1", "w5", "w40", "w300", "w2000", "w15000", "w0 w1", "w3 w9", '"w0 w1"', "w12*", "w7 from:13",
           "w7 from:member3", "w2 has:image", "has:file", "w0 after:2026-06-01", "w11 before:2026-03-01",
           "zzz-nothing"]


def _content(rng: random.Random) -> str:
    # Zipf-like: a few words are everywhere, most are rare, as in chat.
    return " ".join(WORDS[min(int(rng.paretovariate(1.1)) - 1, len(WORDS) - 1)] for _ in range(rng.randint(6, 20)))


def snowflake(at: datetime, seq: int) -> int:
    """A Discord id: milliseconds since Discord's epoch in the high bits, so ids sort by time."""
    return (int(at.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22 | (seq & 0x3FFFFF)


def records(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``n`` archived messages over a year, round-robin over the channels, a tenth with a file."""
    rng = random.Random(seed)
    for i in range(n):
        at = START + timedelta(seconds=i * (365 * 86_400) // max(n, 1))
        mid = snowflake(at, i)
        author = AUTHORS[rng.randrange(len(AUTHORS))]
        atts = []
        if rng.random() < 0.1:
            sha = f"{rng.getrandbits(256):064x}"
            ext = rng.choice(["png", "jpg", "pdf", "txt"])
            atts.append({"id": str(mid), "filename": f"file{i}.{ext}", "size": rng.randint(1000, 10**7),
                         "content_type": "image/png" if ext in ("png", "jpg") else "application/octet-stream",
                         "sha256": sha, "blob": f"blobs/sha256/{sha[:2]}/{sha}", "status": "saved"})
        yield {"type": "message", "id": str(mid), "channel_id": str(1000 + i % CHANNELS), "guild_id": str(GUILD),
               "revision": 0, "author": {"id": str(author[0]), "name": author[1], "bot": False},
               "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "edited_at": None, "content": _content(rng),
               "reply_to": None, "embeds": [], "stickers": [], "reactions": [], "attachments": atts,
               "message_type": "default"}


def _line(record: dict[str, Any]) -> str:
    """As capture/segments.py writes a line: canonical JSON."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def write_archive(root: Path, n: int, seed: int) -> list[tuple[int, int, str, str]]:
    """An archive of ``n`` messages under ``root``; its segments as ``capture.rebuild.plan`` lists them."""
    pending: dict[int, list[str]] = {}
    first: dict[int, str] = {}
    segments: list[tuple[int, int, str, str]] = []

    def flush(cid: int, last: str) -> None:
        stem = f"{first[cid]}-{last}"
        rel = f"discord/{GUILD}/{cid}/messages/{stem}.jsonl"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(pending.pop(cid)), encoding="utf-8")
        segments.append((GUILD, cid, rel, f"discord/{GUILD}/{cid}/transcript/{stem}.html"))

    last: dict[int, str] = {}
    for rec in records(n, seed):
        cid = int(rec["channel_id"])
        lines = pending.setdefault(cid, [])
        if not lines:
            first[cid] = rec["id"]
        lines.append(_line(rec) + "\n")
        last[cid] = rec["id"]
        if len(lines) >= SEGMENT_LINES:
            flush(cid, rec["id"])
    for cid in list(pending):
        flush(cid, last[cid])
    for cid in last:
        manifest = {"format": 1, "guild_id": str(GUILD), "cursor": last[cid], "watched": False, "segments": [],
                    "channel": {"id": str(cid), "name": f"channel-{cid}", "topic": None, "type": "text",
                                "parent_id": None}}
        (root / f"discord/{GUILD}/{cid}/channel.json").write_text(json.dumps(manifest), encoding="utf-8")
    segments.sort(key=lambda s: (int(s[2].rsplit("/", 1)[-1].split("-", 1)[0]), s[1], s[2]))
    return segments


def _sizes(root: Path, segments: list[tuple[int, int, str, str]]) -> dict[str, int]:
    return {rel: (root / rel).stat().st_size for _, _, rel, _ in segments}


async def build(cat: Catalogue, root: Path, segments: list[tuple[int, int, str, str]]) -> int:
    manifests = [f"discord/{GUILD}/{cid}/channel.json" for cid in sorted({s[1] for s in segments})]
    await cat.call("restore_channels", await asyncio.to_thread(read_manifests, root, manifests))
    sizes = await asyncio.to_thread(_sizes, root, segments)
    progress = RebuildProgress()
    await cat.call("rebuild_mode", True)
    try:
        await read_into(cat, root, segments, sizes, progress)
    finally:
        await cat.call("rebuild_mode", False)
    return progress.lines_added


async def latency(cat: Catalogue, channels: list[int], queries: int) -> list[float]:
    times = []
    for r in range(queries):
        text = QUERIES[r % len(QUERIES)]
        started = time.perf_counter()
        parsed = parse_query(text)
        found = await cat.call("find", channels, filters_of(parsed), limit=5)
        page = results_page(f"`{text}`", 0, found, {}, live=lambda _cid: True, notes=parsed.notes)
        times.append(time.perf_counter() - started)
        assert page
    return times


FLOOR_SCHEMA = """
CREATE TABLE messages (id INTEGER PRIMARY KEY, channel_id INTEGER NOT NULL, author_id INTEGER NOT NULL,
                       author_name TEXT NOT NULL, created_at TEXT NOT NULL, content TEXT NOT NULL, files TEXT NOT NULL);
CREATE VIRTUAL TABLE message_text USING fts5(content, author_name, files, content = 'messages',
                                             content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2');
"""


def floor_rows(files: list[Path]) -> list[tuple[Any, ...]]:
    """The searched columns of every message in ``files``, in id order (parsed here, untimed)."""
    rows = []
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                rows.append((int(r["id"]), int(r["channel_id"]), int(r["author"]["id"]), r["author"]["name"],
                             r["created_at"], r["content"], " ".join(a["filename"] for a in r["attachments"])))
    return sorted(rows)


def sqlite_floor(rows: list[tuple[Any, ...]], db: Path) -> float:
    """Seconds for SQLite alone to hold ``rows`` searchable (see the module's docstring)."""
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA cache_size = -65536")
        conn.executescript(FLOOR_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("CREATE INDEX messages_channel ON messages (channel_id, id)")
        conn.execute("CREATE INDEX messages_author ON messages (author_id, id)")
        conn.execute("INSERT INTO message_text (message_text) VALUES ('rebuild')")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def plain_loop(files: list[Path]) -> tuple[float, int]:
    """The reference: read the same segment files with a plain ``json.loads`` per line."""
    started, n = time.perf_counter(), 0
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                json.loads(line)
                n += 1
    return time.perf_counter() - started, n


async def _search(work: Path, messages: int, rounds: int) -> dict[str, Any]:
    root = work / "big-archive"
    started = time.perf_counter()
    segments = await asyncio.to_thread(write_archive, root, messages, 7)
    write_s = time.perf_counter() - started
    data = work / "catalogue"
    p99: dict[str, list[float]] = {"all": [], "tenth": []}
    p50: dict[str, list[float]] = {"all": [], "tenth": []}
    queries = len(QUERIES) * (20 if messages >= 100_000 else 5)
    async with Catalogue(data) as cat:
        started = time.perf_counter()
        added = await build(cat, root, segments)
        build_s = time.perf_counter() - started
        assert added == messages, (added, messages)
        await asyncio.to_thread(shutil.rmtree, root, True)
        every = list(range(1000, 1000 + CHANNELS))
        sets = {"all": every, "tenth": every[::10]}
        await latency(cat, every, len(QUERIES))  # warm the page cache; not recorded
        for _ in range(rounds):
            for name, channels in sets.items():
                times = await latency(cat, channels, queries)
                p99[name].append(percentile(times, 99) * 1000)
                p50[name].append(percentile(times, 50) * 1000)
    size = sum(p.stat().st_size for p in data.glob("catalogue.sqlite3*"))
    return {"messages": messages, "channels": CHANNELS, "segments": len(segments), "write_s": round(write_s, 1),
            "build_s": round(build_s, 1), "build_msgs_per_s": round(messages / build_s),
            "queries_per_round": queries, "p99_ms": p99, "p50_ms": p50, "catalogue_mb": round(size / 1e6, 1),
            "catalogue_mb_per_million": size / 1e6 / messages * 1_000_000}


async def _rebuild(work: Path, messages: int, rounds: int) -> dict[str, Any]:
    settings = SyncSettings(data_dir=work / "rebuild-data")
    segments = await asyncio.to_thread(write_archive, Path(settings.archive_dir), messages, 11)
    files = [Path(settings.archive_dir) / rel for _, _, rel, _ in segments]
    results: list[RebuildProgress] = []
    folder = await asyncio.to_thread(Path(settings.archive_dir).resolve)
    copying = SyncSettings(data_dir=work / "rebuild-data", archive=f":local:{folder}")
    async with SyncService(settings) as svc, SyncService(copying) as copied_svc:
        async def helix(service: SyncService = svc) -> float:
            async with Catalogue(work / "rebuilt") as cat:
                started = time.perf_counter()
                results.append(await rebuild(cat, service, work / "scratch"))
                return time.perf_counter() - started

        async def copied() -> float:
            return await helix(copied_svc)

        async def plain() -> float:
            seconds, n = await asyncio.to_thread(plain_loop, files)
            assert n == messages
            return seconds

        rows = await asyncio.to_thread(floor_rows, files)

        async def floor() -> float:
            (work / "floor").mkdir(exist_ok=True)
            return await asyncio.to_thread(sqlite_floor, rows, work / "floor" / "floor.sqlite3")

        async def between() -> None:
            for folder in ("rebuilt", "floor"):
                await asyncio.to_thread(shutil.rmtree, work / folder, True)
            await asyncio.to_thread(os.sync)

        times = await alternate({"rebuild": helix, "json": plain, "floor": floor, "copied": copied}, rounds,
                                between=between)
    assert all(p.state == "done" and p.lines_added == messages for p in results), results[-1]
    per_round = ratios(times["json"], times["rebuild"])
    return {"messages": messages, "segments": len(files), "rounds": rounds, "rebuild_s": times["rebuild"],
            "json_s": times["json"], "floor_s": times["floor"], "copied_s": times["copied"], "ratios": per_round,
            "floor_ratios": ratios(times["json"], times["floor"]),
            "copied_ratios": ratios(times["json"], times["copied"]),
            "rebuild_msgs_per_s": round(messages / median(times["rebuild"])),
            "json_msgs_per_s": round(messages / median(times["json"]))}


async def run(config: dict) -> dict:
    rounds = int(config.get("rounds", 3))
    with scratch("find") as work:
        search = await _search(work, int(config["messages"]), rounds)
        rebuilt = await _rebuild(work, int(config["rebuild_messages"]), rounds)
    samples = {"find_p99_ms": search["p99_ms"]["all"], "find_p99_tenth_ms": search["p99_ms"]["tenth"],
               "rebuild_ratio": rebuilt["ratios"], "rebuild_floor_ratio": rebuilt["floor_ratios"],
               "rebuild_copied_ratio": rebuilt["copied_ratios"]}
    return {
        "figures": {**{k: median(v) for k, v in samples.items()},
                    "catalogue_mb_per_million": search["catalogue_mb_per_million"]},
        "spread": {k: spread(v) for k, v in samples.items()},
        "details": {"search": search, "rebuild": rebuilt},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.find", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--rebuild-messages", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    result = asyncio.run(run({"messages": args.messages, "rebuild_messages": args.rebuild_messages,
                              "rounds": args.rounds}))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
