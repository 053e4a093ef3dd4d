"""The table (stdout and README) and ``results.json``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.goals import CONTEXT, FIGURES, Figure, goal_text, met


def _fmt(fig: Figure, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{fig.digits}f} {fig.unit}".replace(" ×", "×")


def _verdict(fig: Figure, value: float | None) -> str:
    ok = met(fig, value) if value is not None else None
    return "" if ok is None else ("yes" if ok else "NO")


def _spread(fig: Figure, band: list[float] | None) -> str:
    if not band:
        return ""
    return f"{band[0]:.{fig.digits}f}–{band[1]:.{fig.digits}f}"


def table_rows(figures: dict, spreads: dict | None = None) -> list[tuple[str, ...]]:
    rows = []
    for fig in FIGURES + CONTEXT:
        if fig.key in figures:
            value = figures[fig.key]
            rows.append((fig.key, fig.label, _fmt(fig, value), _spread(fig, (spreads or {}).get(fig.key)),
                         goal_text(fig), _verdict(fig, value)))
    return rows


HEADER = ("figure", "what", "value", "p25–p75 of runs", "goal", "met?")


def text_table(figures: dict, spreads: dict | None = None) -> str:
    rows = [HEADER, *table_rows(figures, spreads)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    main_count = sum(1 for f in FIGURES if f.key in figures)
    lines.insert(2 + main_count, "  ".join("·" * w for w in widths))  # context below the dotted line
    return "\n".join(lines)


def markdown_table(figures: dict, spreads: dict | None = None) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for key, *cells in table_rows(figures, spreads):
        out.append(f"| `{key}` | " + " | ".join(cells) + " |")
    return "\n".join(out)


def results_document(figures: dict, spreads: dict, machine: dict, details: dict, meta: dict) -> dict:
    """Every figure at the top level (the keys the table names), then the machine, goals and details."""
    doc: dict = {k: _clean(v) for k, v in figures.items()}
    doc.update(cpu_count=machine["cpu_count"], python=machine["python"], rclone=machine["rclone"])
    doc["goals"] = {f.key: {"goal": goal_text(f), "met": met(f, figures.get(f.key))}
                    for f in FIGURES if f.goal and f.key in figures}
    doc["spread_p25_p75"] = {k: [_clean(x) for x in v] for k, v in spreads.items()}
    doc["machine"] = machine
    doc["run"] = meta
    doc["details"] = details
    return doc


def write_results(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n")


def _clean(value: object) -> object:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    return value


if __name__ == "__main__":  # python -m bench.report bench/results.json: the table as Markdown, for the README
    import sys

    doc = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results.json").read_text())
    print(markdown_table({k: v for k, v in doc.items() if isinstance(v, (int, float)) and k != "cpu_count"},
                         doc.get("spread_p25_p75")))
