"""``python -m bench.find``: ``!find`` over a big catalogue, its size, and how fast it is rebuilt.

    python -m bench.find                       # 1,000,000 messages, 200,000 for the rebuild
    python -m bench.find --messages 100000 --rebuild-messages 50000 --out /tmp/find.json

- latency: in-process, from the query text to the rendered page (parse, the catalogue's SQL with
  the visibility set in it, the page's text), for a member who reads every channel and for one
  who reads a tenth of them; p50 and p99 over a mix of common, rare, two-word and filtered queries.
- size: the catalogue's file per million messages.
- rebuild: messages per second read back from a local remote's segments into an empty catalogue,
  divided by messages per second of a plain ``json.loads`` loop over the same files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stats import percentile
from bot.cogs.find import filters_of, results_page
from capture.rebuild import rebuild
from catalogue import Catalogue
from catalogue.query import parse_query
from sync import SyncService, SyncSettings

GUILD = 1_000_000_000_000_000_000
DISCORD_EPOCH_MS = 1_420_070_400_000
START = datetime(2026, 1, 1, tzinfo=UTC)
CHANNELS = 100
BATCH = 5_000
SEGMENT_LINES = 1_000
WORDS = [f"w{i}" for i in range(20_000)]
AUTHORS = [(10 + i, f"member{i}") for i in range(500)]


def _content(rng: random.Random) -> str:
    # Zipf-like: a few words are everywhere, most are rare, as in chat.
    return " ".join(WORDS[min(int(rng.paretovariate(1.1)) - 1, len(WORDS) - 1)] for _ in range(rng.randint(6, 20)))


def snowflake(at: datetime, seq: int) -> int:
    """A Discord id: milliseconds since Discord's epoch in the high bits, so ids sort by time."""
    return (int(at.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22 | (seq & 0x3FFFFF)


def records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
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
        out.append({"type": "message", "id": str(mid), "channel_id": str(1000 + i % CHANNELS), "guild_id": str(GUILD),
                    "revision": 0, "author": {"id": str(author[0]), "name": author[1], "bot": False},
                    "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "edited_at": None, "content": _content(rng), "reply_to": None, "embeds": [], "stickers": [],
                    "reactions": [], "attachments": atts})
    return out


async def fill(cat: Catalogue, recs: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for cid in range(1000, 1000 + CHANNELS):
        await cat.call("upsert_channel", {"id": str(cid), "guild_id": str(GUILD), "name": f"channel-{cid}"})
    for i in range(0, len(recs), BATCH):
        await cat.call("add_messages", recs[i:i + BATCH])
    return time.perf_counter() - started


QUERIES = ["w0", "w1", "w5", "w40", "w300", "w2000", "w15000", "w0 w1", "w3 w9", '"w0 w1"', "w12*", "w7 from:13",
           "w7 from:member3",
           "w2 has:image", "has:file", "w0 after:2026-06-01", "w11 before:2026-03-01", "zzz-nothing"]


async def latency(cat: Catalogue, channels: list[int], rounds: int) -> dict[str, float]:
    times = []
    for r in range(rounds):
        text = QUERIES[r % len(QUERIES)]
        started = time.perf_counter()
        parsed = parse_query(text)
        found = await cat.call("find", channels, filters_of(parsed), limit=5)
        page = results_page(f"`{text}`", 0, found, {}, live=lambda _cid: True, notes=parsed.notes)
        times.append(time.perf_counter() - started)
        assert page
    return {"p50_ms": round(percentile(times, 50) * 1000, 2), "p99_ms": round(percentile(times, 99) * 1000, 2),
            "max_ms": round(max(times) * 1000, 2), "queries": rounds}


def write_segments(root: Path, recs: list[dict[str, Any]]) -> list[Path]:
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by_channel.setdefault(r["channel_id"], []).append(r)
    files = []
    for cid, lines in by_channel.items():
        for i in range(0, len(lines), SEGMENT_LINES):
            part = lines[i:i + SEGMENT_LINES]
            path = root / f"discord/{GUILD}/{cid}/messages/{part[0]['id']}-{part[-1]['id']}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in part))
            files.append(path)
    return files


def plain_loop(files: list[Path]) -> tuple[float, int]:
    started, n = time.perf_counter(), 0
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                json.loads(line)
                n += 1
    return time.perf_counter() - started, n


async def run(messages: int, rebuild_messages: int, rounds: int, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"messages": messages, "channels": CHANNELS}
    recs = records(messages)
    data = work / "catalogue"
    async with Catalogue(data) as cat:
        out["fill_s"] = round(await fill(cat, recs), 1)
        every = list(range(1000, 1000 + CHANNELS))
        await latency(cat, every, len(QUERIES))  # warm the page cache
        out["find_all_channels"] = await latency(cat, every, rounds)
        out["find_tenth_of_channels"] = await latency(cat, every[:: 10], rounds)
    size = sum(p.stat().st_size for p in data.glob("catalogue.sqlite3*"))
    out["catalogue_mb"] = round(size / 1e6, 1)
    out["catalogue_mb_per_million"] = round(size / 1e6 / messages * 1_000_000, 1)
    del recs

    recs = records(rebuild_messages, seed=11)
    settings = SyncSettings(data_dir=work / "rebuild-data")
    files = write_segments(settings.archive_dir, recs)
    del recs
    plain_s, n = plain_loop(files)
    async with SyncService(settings) as svc, Catalogue(work / "rebuilt") as cat:
        started = time.perf_counter()
        progress = await rebuild(cat, svc, work / "scratch")
        rebuild_s = time.perf_counter() - started
    assert progress.state == "done" and progress.lines_added == n, progress
    out["rebuild"] = {"messages": n, "segments": len(files), "rebuild_s": round(rebuild_s, 2),
                      "plain_json_s": round(plain_s, 2), "rebuild_msgs_per_s": round(n / rebuild_s),
                      "plain_msgs_per_s": round(n / plain_s), "ratio": round(plain_s / rebuild_s, 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.find", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--rebuild-messages", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=340)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="helix-bench-find-") as tmp:
        result = asyncio.run(run(args.messages, args.rebuild_messages, args.rounds, Path(tmp)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
