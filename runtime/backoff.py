"""Capped exponential backoff with jitter, the one schedule every retry in Helix follows.

Jitter spreads the retries of many waiters (uploads, logins) so they do not hit a recovering
remote or Discord in step.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry): base·2^attempt, capped, ×[0.5, 1)."""
    exponent = min(max(attempt, 0), 32)
    return min(cap_s, base_s * 2**exponent) * random.uniform(0.5, 1.0)
