"""Ritual renderer: a generative mandala whose structure is read off the step count.

This module is deliberately pure (spec in, PNG bytes and manifest out; no Discord, no I/O, no
global mutable state) so the bot can run it in a worker thread with ``asyncio.to_thread`` and
tests can pin its output byte for byte.

How ``steps`` shapes the figure, so that 7, 108 and 1000 look plainly different:

* **arms** -- one petal per divisor of ``steps`` (at least 3, at most 64): primes get a bare
  trefoil, 108 gets 12 arms, 1000 gets 16, 7560 gets 64.
* **rings** -- ``steps.bit_length()``: one orbit per doubling, so the halo grows with the log.
* **seeds** -- one seed per step (capped at :data:`MAX_SEEDS`) in a golden-angle sunflower at
  the centre, so the seed head fills in as the count grows.

The ``seed`` only varies the look (palette, rotation, the chord pattern of the web), never the
structure, so two rituals of the same length are recognisably the same figure.

Output is deterministic for a given Pillow and zlib build: the PNG carries no timestamp or
text chunks, and ``created_at`` goes only into the manifest.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

MAX_STEPS = 1_000_000
"""Largest step count the renderer accepts; bounds the divisor search (``isqrt`` ≤ 1000)."""

MAX_SEEDS = 1500
"""Seed dots are capped so that steps=10000 costs about as much as steps=1500."""

MIN_SIZE, MAX_SIZE = 64, 1024
"""Side limits in px: below 64 nothing is legible; up to 1024 every ritual stays under 1 MiB."""

MAX_ARMS = 64

_GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
_WEB_SEGMENTS = 360
# Chord angles coprime to 360, so the web visits all 360 vertices before it closes; from 89 degrees
# up, chords cross the petals (a web or shaded petals) instead of tracing their outline.
_WEB_STEPS = tuple(d for d in range(89, 180) if math.gcd(d, 360) == 1)
_ROSE_POINTS_PER_ARM = 48
_COLOUR_BANDS = 36
_PALETTE_COLOURS = 256
_CAPTION_MIN_SIZE = 256  # below this the caption is wider than the image


@dataclass(frozen=True)
class RitualSpec:
    """What to draw; everything that changes the pixels lives here and nothing else does."""

    steps: int
    seed: int
    size: int = 768


@dataclass(frozen=True)
class Ritual:
    """A rendered ritual; ``sha256`` lets the archive verify the PNG after a round trip."""

    png: bytes
    manifest: dict
    sha256: str


@dataclass(frozen=True)
class _Geometry:
    arms: int
    rings: int
    seeds: int
    web_step: int

    @property
    def summary(self) -> str:
        seeds = f"{self.seeds} seed{'s' * (self.seeds != 1)}"
        rings = f"{self.rings} ring{'s' * (self.rings != 1)}"
        return f"{self.arms}-armed rose, {rings}, {seeds}"


def seed_for(steps: int, when: datetime) -> int:
    """Default seed: the same step count on the same UTC day gives the same ritual.

    The seed is the first 4 bytes (big-endian) of ``sha256(b"helix-ritual:<steps>:<YYYY-MM-DD>")``
    where the date is ``when`` converted to UTC. Tying it to the day rather than the second makes
    "today's 108" a shared figure, and anyone can recompute it from the manifest. ``when`` must be
    timezone-aware, or the day would depend on the host's clock zone.
    """
    day = _as_utc(when).date().isoformat()
    digest = hashlib.sha256(f"helix-ritual:{steps}:{day}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def render(spec: RitualSpec, *, created_at: datetime, version: str, host: str) -> Ritual:
    """Draw the ritual and describe it; CPU-bound (tens of milliseconds), so run it off the event loop.

    Raises ``ValueError`` for ``steps`` outside 1..MAX_STEPS, a size outside MIN_SIZE..MAX_SIZE,
    or a naive ``created_at``.
    """
    if not _is_int(spec.steps) or not 1 <= spec.steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS}, got {spec.steps!r}")
    if not _is_int(spec.size) or not MIN_SIZE <= spec.size <= MAX_SIZE:
        raise ValueError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {spec.size!r}")
    if not _is_int(spec.seed):
        raise ValueError(f"seed must be an integer, got {spec.seed!r}")
    stamp = _as_utc(created_at)

    rng = random.Random(spec.seed)
    arms = min(MAX_ARMS, max(3, _divisor_count(spec.steps)))
    geometry = _Geometry(
        arms=arms,
        rings=spec.steps.bit_length(),
        seeds=min(spec.steps, MAX_SEEDS),
        web_step=rng.choice(_WEB_STEPS),
    )
    hue = rng.random()
    rotation = rng.random() * 2 * math.pi / geometry.arms

    image = _compose(spec, geometry, hue, rotation)
    png = _encode(image)
    digest = hashlib.sha256(png).hexdigest()
    manifest = {
        "kind": "helix-ritual",
        "schema": 1,
        "steps": spec.steps,
        "seed": spec.seed,
        "size": spec.size,
        "created_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "png_sha256": digest,
        "png_bytes": len(png),
        "version": version,
        "host": host,
        "figure": geometry.summary,
        "geometry": {
            "arms": geometry.arms,
            "rings": geometry.rings,
            "seeds": geometry.seeds,
            "web_step_degrees": geometry.web_step,
        },
    }
    return Ritual(png=png, manifest=manifest, sha256=digest)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (e.g. datetime.now(UTC))")
    return when.astimezone(UTC)


def _divisor_count(n: int) -> int:
    count = 0
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            count += 1 if d * d == n else 2
    return count


def _colour(hue: float, t: float, alpha: int = 255) -> tuple[int, int, int, int]:
    """Sweep a third of the colour wheel, brightest mid-way, so gradients read as one palette."""
    h = (hue + 0.33 * t) % 1.0
    v = 0.75 + 0.25 * math.sin(math.pi * t)
    r, g, b = colorsys.hsv_to_rgb(h, 0.72, v)
    return round(r * 255), round(g * 255), round(b * 255), alpha


def _banded_polyline(
    draw: ImageDraw.ImageDraw,
    points: list[tuple[float, float]],
    hue: float,
    width: int,
    alpha: int,
    phase: float = 0.0,
) -> None:
    """Draw a gradient polyline in a fixed number of calls, whatever its length."""
    bands = min(_COLOUR_BANDS, len(points) - 1)
    for b in range(bands):
        lo = b * (len(points) - 1) // bands
        hi = (b + 1) * (len(points) - 1) // bands
        t = (b + 0.5) / bands
        draw.line(points[lo : hi + 1], fill=_colour(hue, (t + phase) % 1.0, alpha), width=width)


def _compose(spec: RitualSpec, geometry: _Geometry, hue: float, rotation: float) -> Image.Image:
    """Draw the figure at 2x on black, downsample (anti-aliasing), then glow and background."""
    side = spec.size * 2
    c = side / 2
    outer = side * 0.38
    inner = outer * 0.34
    px = side / 1536  # line widths were tuned at the default size

    figure = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(figure, "RGBA")

    def petal_radius(theta: float, depth: float) -> float:
        return inner + (outer - inner) * depth * abs(math.sin(geometry.arms * theta / 2))

    def at(theta: float, r: float) -> tuple[float, float]:
        return c + r * math.cos(theta), c + r * math.sin(theta)

    # Orbits, one per doubling of steps, evenly spread between the petal tips and the frame.
    for i in range(geometry.rings):
        r = outer * (1.04 + 0.14 * (i + 1) / geometry.rings)
        t = i / max(1, geometry.rings - 1)
        width = max(1, round((3 if i == geometry.rings - 1 else 2) * px))
        draw.ellipse((c - r, c - r, c + r, c + r), outline=_colour(hue, t, 120), width=width)
        beads = geometry.arms * (1 + i % 3)
        bead = max(1.5, 3.5 * px)
        for k in range(beads if i % 2 == 0 else 0):
            x, y = at(rotation + 2 * math.pi * (k + 0.5 * (i % 4 == 2)) / beads, r)
            draw.ellipse((x - bead, y - bead, x + bead, y + bead), fill=_colour(hue, t, 230))

    # The web: a Maurer rose on the petal curve, chords every `web_step` degrees.
    web = [
        at(rotation + theta, petal_radius(theta, 1.0))
        for theta in (math.radians(k * geometry.web_step) for k in range(_WEB_SEGMENTS + 1))
    ]
    # Hairlines: Pillow draws width-1 lines directly but wider ones as polygons, 6x slower here.
    _banded_polyline(draw, web, hue, max(1, round(px)), 140)

    # Petals: the outer rose, and an inner one offset by half an arm.
    n = geometry.arms * _ROSE_POINTS_PER_ARM
    for depth, offset, width, phase in ((1.0, 0.0, 5, 0.0), (0.62, math.pi / geometry.arms, 3, 0.5)):
        rose = [
            at(rotation + offset + theta, petal_radius(theta, depth))
            for theta in (2 * math.pi * k / n for k in range(n + 1))
        ]
        _banded_polyline(draw, rose, hue + 0.5 * (depth < 1), max(1, round(width * px)), 235, phase)

    # Seed head: a dark disc with one seed per step on a golden-angle (Vogel) spiral.
    draw.ellipse((c - inner, c - inner, c + inner, c + inner), fill=(0, 0, 0, 255))
    head = inner * 0.92
    spacing = head * math.sqrt(math.pi / geometry.seeds)
    dot = max(1.2 * px, min(0.36 * spacing, inner * 0.13))
    for k in range(geometry.seeds):
        f = math.sqrt(k / geometry.seeds)
        x, y = at(rotation + k * _GOLDEN_ANGLE, (head - dot) * f)
        s = dot * (0.75 + 0.25 * f)
        draw.ellipse((x - s, y - s, x + s, y + s), fill=_colour(hue + 0.08, 1.0 - f))

    small = figure.reduce(2)
    # Background and glow are smooth, so they are built at half size and upscaled once.
    half = small.reduce(2)
    background = ImageOps.colorize(
        Image.radial_gradient("L").resize(half.size, Image.Resampling.BILINEAR),
        black=_shade(hue, 0.20),
        white=(4, 4, 8),
    )
    glow = ImageChops.add(background, half.filter(ImageFilter.GaussianBlur(spec.size / 128)))
    image = ImageChops.screen(glow.resize(small.size, Image.Resampling.BILINEAR), small)
    if spec.size >= _CAPTION_MIN_SIZE:
        _caption(image, geometry, spec)
    return image


def _shade(hue: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((hue + 0.66) % 1.0, 0.6, value)
    return round(r * 255), round(g * 255), round(b * 255)


def _caption(image: Image.Image, geometry: _Geometry, spec: RitualSpec) -> None:
    """Label the step count; Pillow's built-in font, so no font file has to ship."""
    font_size = max(10, spec.size // 48)
    font = ImageFont.load_default(size=font_size)
    text = f"{spec.steps} step{'s' * (spec.steps != 1)}  ·  {geometry.summary}"
    draw = ImageDraw.Draw(image)
    draw.text((spec.size / 2, spec.size - font_size), text, fill=(150, 150, 170), font=font, anchor="ms")


def _encode(image: Image.Image) -> bytes:
    """Palette PNG: a third of the bytes of RGB and faster to compress, so far under 1 MiB.

    The octree palette is fast but coarse in the dark tones, so pixels are mapped onto it with
    Floyd-Steinberg dithering; without it the glow posterises into visible bands.
    """
    palette = image.reduce(2).quantize(_PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE)
    paletted = image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    buffer = io.BytesIO()
    # Dither noise barely compresses, so zlib's higher levels buy ~8 % for twice the time.
    paletted.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
