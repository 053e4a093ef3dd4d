"""How a Helix process ends, as its exit code: what Railway's restart policy and scripts read.

A configuration error is not a crash: restarting will not fix it, and the operator must act.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the work failed (a probe, the demo, an upload): the sentence says why
    CONFIG = 2  # a setting, a token or the environment is wrong: fix it, then start again
    INTERRUPTED = 130  # Ctrl-C
