"""Small text helpers shared by the cogs: sizes, durations, progress bars, in one style."""

from __future__ import annotations

import resource

from runtime.units import human_size

__all__ = ["counted", "human_duration", "human_size", "latency_ms", "progress_bar", "rss_mb"]


def counted(n: int, noun: str) -> str:
    """``1 message``, ``2,000 messages``: a count a member reads, in the noun's right number."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    s = int(seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if minutes or hours or days:
        parts.append(f"{minutes}m")
    if not days:
        parts.append(f"{s}s")
    return " ".join(parts)


def progress_bar(fraction: float, width: int = 20) -> str:
    fraction = max(0.0, min(1.0, fraction))
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction * 100:3.0f}%"


def latency_ms(seconds: float) -> str:
    """discord.py reports inf/nan before the first heartbeat ACK: say so instead of printing nan."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "n/a"
    return f"{seconds * 1000:.0f} ms"


def rss_mb() -> float:
    """Resident memory now (from /proc), falling back to the peak reported by getrusage."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * resource.getpagesize() / 1_048_576
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
