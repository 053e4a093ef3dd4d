"""One line of the preflight's report, and the name normalisation every package check shares.

Its own module so the package checks (packages.py, distributions.py) share it without importing
each other in a circle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One line of the preflight report: ``level`` is ok, warning or problem."""

    level: str
    text: str


def ok(text: str) -> Finding:
    return Finding("ok", text)


def warning(text: str) -> Finding:
    return Finding("warning", text)


def problem(text: str) -> Finding:
    return Finding("problem", text)


def canonical(name: str) -> str:
    """PEP 503 normalisation: Pillow == pillow, python_dotenv == python-dotenv."""
    return re.sub(r"[-_.]+", "-", name).lower()
