"""Opening Helix's HTML pages in headless Chromium (Debian's package), as a person would.

Skipped with a reason where Chromium is missing, except under CI=true, where .ci/run installs it
and its absence is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

# After load, write what each image did into the DOM, where --dump-dom can read it.
_IMAGE_PROBE = """<script>
window.addEventListener('load', () => {
  const seen = [...document.images].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}));
  document.body.setAttribute('data-images', JSON.stringify(seen));
});</script></body>"""


def chromium() -> str:
    """Chromium's path; skips the test where it is missing (fails it under CI=true)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package for this test")
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    return found


def run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                           "--hide-scrollbars", *args], capture_output=True, text=True, timeout=120)


def images_seen(page: Path) -> list[dict[str, Any]]:
    """Open ``page`` (a copy with a probe beside it) and say, per image, whether it loaded."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", _IMAGE_PROBE))
    out = run_chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    found = re.search(r'data-images="([^"]*)"', out.stdout)
    assert found, f"no probe result in the DOM: {out.stderr[-800:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))
