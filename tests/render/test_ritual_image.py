"""The ritual renderer: deterministic, small, pure, and visibly shaped by the step count."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from render.ritual_image import MAX_SIZE, Ritual, RitualSpec, render, seed_for

REPO = Path(__file__).resolve().parents[2]
WHEN = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
MIB = 1024 * 1024


def _render(steps: int, seed: int = 42, size: int = 768, **kw: object) -> Ritual:
    args = {"created_at": WHEN, "version": "1.2.3", "host": "test-host"} | kw
    return render(RitualSpec(steps=steps, seed=seed, size=size), **args)


def _decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_same_spec_gives_identical_bytes() -> None:
    assert _render(108).png == _render(108).png


def test_steps_and_seed_each_change_the_image() -> None:
    base = _render(108).png
    assert _render(109).png != base
    assert _render(108, seed=43).png != base


def test_when_and_where_stay_out_of_the_png() -> None:
    later = _render(108, created_at=WHEN + timedelta(days=3), version="9.9", host="elsewhere")
    assert later.png == _render(108).png
    assert later.manifest["created_at"] != _render(108).manifest["created_at"]


def test_png_decodes_at_the_requested_size_without_metadata() -> None:
    for size in (256, 768):
        image = _decode(_render(7, size=size).png)
        assert image.format == "PNG"
        assert image.size == (size, size)
        assert not set(image.info) & {"tIME", "Creation Time", "date:create", "Software"}


@pytest.mark.parametrize("steps", [1, 7, 108, 1000, 10000])
def test_png_stays_under_one_mib(steps: int) -> None:
    ritual = _render(steps)
    assert len(ritual.png) <= MIB
    assert _decode(ritual.png).size == (768, 768)


def test_largest_size_still_fits_one_mib() -> None:
    assert len(_render(10000, size=MAX_SIZE).png) <= MIB


def test_manifest_describes_the_png() -> None:
    ritual = _render(108)
    digest = hashlib.sha256(ritual.png).hexdigest()
    assert ritual.sha256 == digest
    assert ritual.manifest["png_sha256"] == digest
    assert ritual.manifest["png_bytes"] == len(ritual.png)
    assert ritual.manifest == json.loads(json.dumps(ritual.manifest))
    expected = {"steps": 108, "seed": 42, "size": 768, "version": "1.2.3", "host": "test-host"}
    assert expected.items() <= ritual.manifest.items()
    assert ritual.manifest["created_at"] == "2025-03-14T15:09:26Z"
    assert ritual.manifest["figure"] == "12-armed rose, 7 rings, 108 seeds"


def test_created_at_in_another_zone_is_written_as_utc() -> None:
    tokyo = WHEN.astimezone(timezone(timedelta(hours=9)))
    assert _render(7, created_at=tokyo).manifest["created_at"] == "2025-03-14T15:09:26Z"


def test_structure_follows_the_step_count() -> None:
    shapes = {steps: _render(steps, size=256).manifest["geometry"] for steps in (7, 108, 1000)}
    assert [(g["arms"], g["rings"], g["seeds"]) for g in shapes.values()] == [
        (3, 3, 7),
        (12, 7, 108),
        (16, 10, 1000),
    ]


@pytest.mark.parametrize("steps", [0, -1, -108])
def test_steps_below_one_are_refused(steps: int) -> None:
    with pytest.raises(ValueError, match="steps"):
        _render(steps)


@pytest.mark.parametrize(
    "spec",
    [RitualSpec(steps=True, seed=1), RitualSpec(steps=7, seed=1, size=8), RitualSpec(steps=7, seed=1.5)],
)
def test_malformed_specs_are_refused(spec: RitualSpec) -> None:
    with pytest.raises(ValueError):
        render(spec, created_at=WHEN, version="v", host="h")


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2025, 3, 14, 15, 9, 26)
    with pytest.raises(ValueError, match="timezone"):
        _render(7, created_at=naive)
    with pytest.raises(ValueError, match="timezone"):
        seed_for(7, naive)


def test_default_seed_is_one_per_utc_day() -> None:
    morning = datetime(2025, 3, 14, 0, 0, 1, tzinfo=UTC)
    night = datetime(2025, 3, 14, 23, 59, 59, tzinfo=UTC)
    assert seed_for(108, morning) == seed_for(108, night)
    assert seed_for(108, night) != seed_for(108, night + timedelta(seconds=1))
    assert seed_for(108, night) != seed_for(107, night)
    new_york = timezone(timedelta(hours=-5))
    assert seed_for(108, datetime(2025, 3, 14, 20, 0, tzinfo=new_york)) == seed_for(
        108, datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
    )
    documented = hashlib.sha256(b"helix-ritual:108:2025-03-14").digest()[:4]
    assert seed_for(108, night) == int.from_bytes(documented, "big")


def test_concurrent_renders_match_serial_ones() -> None:
    steps = [7, 108, 1000, 108]
    serial = [_render(s, size=256).png for s in steps]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda s: _render(s, size=256).png, steps))
    assert parallel == serial


@settings(max_examples=25, deadline=None)
@given(steps=st.integers(1, 10_000), seed=st.integers(-(2**63), 2**63))
def test_any_valid_spec_renders_a_consistent_ritual(steps: int, seed: int) -> None:
    ritual = _render(steps, seed=seed, size=64)
    assert _decode(ritual.png).size == (64, 64)
    assert ritual.sha256 == hashlib.sha256(ritual.png).hexdigest()
    geometry = ritual.manifest["geometry"]
    assert 3 <= geometry["arms"] <= 64
    assert geometry["rings"] == steps.bit_length()
    assert geometry["seeds"] == min(steps, 1500)


def test_import_pulls_in_neither_discord_nor_sync() -> None:
    check = (
        "import render.ritual_image, sys; "
        "assert 'discord' not in sys.modules; "
        "assert not [m for m in sys.modules if m == 'sync' or m.startswith('sync.')]"
    )
    subprocess.run([sys.executable, "-c", check], cwd=REPO, check=True)


def test_module_imports_only_stdlib_and_pillow() -> None:
    tree = ast.parse((REPO / "render" / "ritual_image.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots - {"PIL", "__future__"} <= set(sys.stdlib_module_names)
