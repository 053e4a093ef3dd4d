"""``python -m bench [--quick] [--out DIR] [--only SECTION ...]``: measure, print the table, write results and chart."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import chart, machine, plan, report
from bench.isolate import SectionFailed, run_section
from preflight.packages import FIRST_PARTY

HERE = Path(__file__).resolve().parent


def _commit() -> dict:
    """Which code was measured: the commit, and whether bot/ or sync/ had uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False)
        return done.stdout.strip()
    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "dirty": sorted(filter(None, git("status", "--porcelain", "--", *FIRST_PARTY).splitlines()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small files, few rounds: a smoke run (about a minute)")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.json and chart.png go (default: bench/)")
    parser.add_argument("--only", nargs="+", choices=sorted(plan.FULL), help="run only these sections")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    sections = plan.QUICK if args.quick else plan.FULL
    names = [n for n in sections if not args.only or n in args.only]
    box = machine.describe()
    print(f"Helix benchmark ({'quick' if args.quick else 'full'}): {box['cpu_count']} × {box['cpu_model']}, "
          f"{box['mem_total_mib']} MiB, Python {box['python']}, rclone {box['rclone']}, "
          f"load {box['load_avg_at_start']}", flush=True)
    figures: dict = {}
    spreads: dict = {}
    details: dict = {}
    took: dict[str, float] = {}
    failed: dict[str, str] = {}
    for name in names:
        print(f"  {name} {sections[name]} …", end="", flush=True)
        try:
            result, seconds = run_section(name, sections[name])
        except (SectionFailed, OSError) as exc:
            print(" FAILED", flush=True)
            failed[name] = str(exc)
            continue
        print(f" {seconds:.0f} s", flush=True)
        figures.update(result["figures"])
        spreads.update(result.get("spread", {}))
        details[name] = result["details"]
        took[name] = round(seconds, 1)
    run_s = time.perf_counter() - started
    meta = {"mode": "quick" if args.quick else "full", "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "run_s": round(run_s, 1), "sections_s": took, "plan": {n: sections[n] for n in names},
            "failed": failed, "load_avg_at_end": [round(x, 2) for x in os.getloadavg()], "code": _commit()}
    print()
    print(report.text_table(figures, spreads))
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_results(args.out / "results.json", report.results_document(figures, spreads, box, details, meta))
    subtitle = (f"{meta['mode']} run {meta['at']} · {box['cpu_count']} × {box['cpu_model']} · "
                f"Python {box['python']} · rclone {box['rclone']}")
    chart.draw(figures, args.out / "chart.png", subtitle)
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'chart.png'} in {run_s:.0f} s")
    for name, why in failed.items():
        print(f"section {name} failed: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
