"""``bench/chart.png``: each goal's figure as value ÷ goal on a log scale, drawn with Pillow.

Left of the 1.0 line the goal is met, right of it missed (for "≥" goals the ratio is inverted,
goal ÷ value, so left is always better). Two loop-lag references are drawn in grey: the same
ticker while a plain rclone process is awaited (what this machine allows at best) and while a
blocking ``subprocess.run`` holds the loop (what a blocking bot would show).
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bench.goals import FIGURES, Figure, goal_ratio, goal_text

W, ROW, TOP, LEFT, RIGHT = 1600, 58, 150, 650, 60
LO, HI = 0.01, 100.0  # the x axis, as value ÷ goal
GREEN, RED, GREY = (46, 160, 67), (207, 34, 46), (150, 150, 150)
INK, FAINT, BG = (30, 30, 30), (225, 225, 225), (255, 255, 255)


_ASCII = str.maketrans({"÷": "/", "×": "x", "−": "-", "≤": "<=", "≥": ">=", "→": "->", "“": '"', "”": '"', "·": "|"})


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in font, so no font file has to ship; it has no ÷ × ≤ ≥, hence ``_ascii``."""
    return ImageFont.load_default(size=size)


def _ascii(text: str) -> str:
    return text.translate(_ASCII)


def _x(ratio: float) -> float:
    r = min(max(ratio, LO), HI)
    return LEFT + (W - LEFT - RIGHT) * (math.log10(r) - math.log10(LO)) / (math.log10(HI) - math.log10(LO))


def _value(fig: Figure, value: float) -> str:
    return f"{value:.{fig.digits}f}{fig.unit}" if fig.unit == "×" else f"{value:.{fig.digits}f} {fig.unit}"


def draw(figures: dict, path: Path, subtitle: str) -> None:
    bars: list[tuple[str, str, float, tuple[int, int, int]]] = []
    for fig in FIGURES:
        value = figures.get(fig.key)
        ratio = goal_ratio(fig, value) if value is not None else None
        if ratio is None:
            continue
        colour = GREEN if ratio <= 1.0 else RED
        bars.append((fig.label, f"{_value(fig, value)}   (goal {goal_text(fig)})", ratio, colour))
        if fig.key == "loop_lag_max_ms":
            for key, label in (("loop_lag_rclone_max_ms", "reference: awaiting a plain rclone"),
                               ("loop_lag_blocking_max_ms", "reference: a blocking subprocess.run")):
                if figures.get(key) is not None:
                    bars.append((label, f"{figures[key]:.0f} ms   (same goal)", figures[key] / fig.goal[1], GREY))
    height = TOP + ROW * len(bars) + 90
    img = Image.new("RGB", (W, height), BG)
    d = ImageDraw.Draw(img)
    d.text((24, 20), "Helix against its goals: value / goal", fill=INK, font=_font(34))
    d.text((24, 66), "log scale | left of the line: goal met (green), right: missed (red) | "
                     "for a \">=\" goal the bar is goal / value, so left is still better", fill=INK, font=_font(19))
    d.text((24, 94), _ascii(subtitle), fill=(90, 90, 90), font=_font(17))
    axis_y = TOP + ROW * len(bars) + 8
    for tick in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100):
        x = _x(tick)
        d.line([(x, TOP - 10), (x, axis_y)], fill=FAINT if tick != 1 else INK, width=1 if tick != 1 else 3)
        d.text((x, axis_y + 8), f"{tick:g}", fill=INK, font=_font(18), anchor="ma")
    d.text((_x(1.0), TOP - 14), "goal", fill=INK, font=_font(18), anchor="md")
    d.text(((LEFT + W - RIGHT) / 2, axis_y + 36), "value / goal", fill=INK, font=_font(18), anchor="ma")
    label_font, value_font = _font(21), _font(18)
    for i, (label, text, ratio, colour) in enumerate(bars):
        y = TOP + i * ROW
        d.text((LEFT - 16, y + ROW / 2 - 4), _ascii(label), fill=INK if colour != GREY else (90, 90, 90),
               font=label_font, anchor="rm")
        x0, x1 = _x(LO), _x(ratio)
        d.rectangle([x0, y + 10, x1, y + ROW - 18], fill=colour)
        inside = x1 > _x(HI) - 330  # no room on the right: write inside the bar
        at, anchor = (x1 - 10, "rm") if inside else (x1 + 10, "lm")
        if not inside:  # keep the goal line from running through the words
            box = d.textbbox((at, y + ROW / 2 - 4), _ascii(text), font=value_font, anchor=anchor)
            d.rectangle([box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3], fill=BG)
        d.text((at, y + ROW / 2 - 4), _ascii(text), fill=BG if inside else INK, font=value_font, anchor=anchor)
    img.save(path, optimize=True)
