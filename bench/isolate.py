"""Run one benchmark section in a fresh Python process and bring its result back as JSON.

``python -m bench.isolate SECTION '<config json>'`` imports ``bench.<SECTION>``, runs its
``async run(config)`` and prints ``BENCH-RESULT <json>`` as its last line. A fresh process per
section keeps memory figures honest (nothing another section loaded is resident) and a crash
in one section is reported, not fatal to the others.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MARK = "BENCH-RESULT "
ROOT = Path(__file__).resolve().parents[1]


class SectionFailed(RuntimeError):
    pass


def run_section(name: str, config: dict, timeout_s: float = 3600.0) -> tuple[dict, float]:
    """The section's result and its wall time in seconds; its stderr passes through (warnings only)."""
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "bench.isolate", name, json.dumps(config)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, text=True, timeout=timeout_s, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise SectionFailed(f"section {name} exited with {done.returncode}: {done.stdout[-1500:]}")
    return json.loads(lines[-1][len(MARK):]), time.perf_counter() - t0


def main(argv: list[str]) -> int:
    name, config = argv[0], json.loads(argv[1])
    from runtime import logs

    # Warnings only, and on stderr: stdout carries the result.
    logs.configure(level="WARNING", fmt="json", stream=sys.stderr)
    module = importlib.import_module(f"bench.{name}")
    result = asyncio.run(module.run(config))
    print(MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
