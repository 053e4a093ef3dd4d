"""Medians and percentiles, and the round-robin that alternates contenders fairly."""

from __future__ import annotations

import math
import statistics
from collections.abc import Awaitable, Callable, Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default), ``pct`` from 0 to 100."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def spread(values: Sequence[float]) -> list[float]:
    """The middle half of the runs (25th to 75th percentile): how far apart the rounds were."""
    return [percentile(values, 25), percentile(values, 75)]


def summary(values: Sequence[float], ndigits: int = 4) -> dict[str, float | int]:
    """What the results file keeps of a distribution: enough to judge its spread."""
    return {"n": len(values), "median": round(median(values), ndigits), "min": round(min(values), ndigits),
            "max": round(max(values), ndigits), "p90": round(percentile(values, 90), ndigits)}


Contender = Callable[[], Awaitable[float]]


async def alternate(contenders: dict[str, Contender], rounds: int, *,
                    between: Callable[[], Awaitable[None]] | None = None,
                    warmup: int = 1) -> dict[str, list[float]]:
    """Run each contender once per round, rotating who goes first; return each one's timings.

    A contender times itself (so it can leave set-up and clean-up out) and returns seconds.
    ``between`` runs after every single run, untimed: it removes what the run wrote and flushes
    dirty pages, so no contender pays for another's writeback. Warm-up rounds are not recorded.
    """
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = await contenders[name]()
            if r >= warmup:
                times[name].append(seconds)
            if between is not None:
                await between()
    return times


def ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Per-round ratios: each round's contenders ran back to back, so they share that moment's noise."""
    return [a / b for a, b in zip(num, den, strict=True)]
