"""What ``pip check`` cannot see: one installed distribution overwriting another's files.

The old bot's worst deploy failure: ``mega.py`` pulled in ``pycrypto``, whose ``Crypto`` package
was written over ``pycryptodome``'s. Both stay "installed" at accepted versions with their
dependencies met, so every metadata check passes; only the files say what happened. Two checks:

- two distributions that both install the same top-level import package (``Crypto``), by name;
- a required distribution whose files no longer match the hashes in its ``RECORD`` (what pip
  wrote at install time), with the file and, when another distribution lists it, that one too.

Standard library only, like the rest of the preflight's top level.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
from collections.abc import Iterable
from pathlib import Path

from preflight.findings import Finding, canonical, ok, problem

_SHOWN = 3  # files named per distribution; the rest are counted


def provided_packages(dist: md.Distribution) -> set[str]:
    """Top-level packages and modules a distribution really installs (namespace folders excepted).

    A namespace package (PEP 420: a folder without ``__init__.py``) is shared by design, so only an
    ``__init__.py``, a ``name.py`` or an extension module counts as owning a name.
    """
    names = set()
    for file in dist.files or []:
        parts = file.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(parts) == 2 and parts[1] == "__init__.py":
            names.add(parts[0])
        elif len(parts) == 1 and parts[0].endswith(".py"):
            names.add(parts[0][:-3])
        elif len(parts) == 1 and parts[0].endswith((".so", ".pyd")):
            names.add(parts[0].split(".", 1)[0])
    return {n for n in names if n.isidentifier()}


def _first_of_each() -> list[md.Distribution]:
    """Each distribution once: a second copy further down sys.path is shadowed, not written over."""
    seen: set[str] = set()
    out = []
    for dist in md.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name or canonical(name) in seen:
            continue
        seen.add(canonical(name))
        out.append(dist)
    return out


def _label(dist: md.Distribution) -> str:
    return f"{dist.metadata['Name']} {dist.version}"


def check_shared_packages() -> list[Finding]:
    owners: dict[str, dict[str, md.Distribution]] = {}
    for dist in _first_of_each():
        for top in provided_packages(dist):
            owners.setdefault(top, {})[canonical(dist.metadata["Name"])] = dist
    findings = []
    for top, by_name in sorted(owners.items()):
        if len(by_name) < 2:
            continue
        dists = sorted(by_name.values(), key=lambda d: canonical(d.metadata["Name"]))
        names = " and ".join(_label(d) for d in dists)
        findings.append(problem(
            f"{names} both install the `{top}` package, so one has overwritten the other's files: keep the one "
            f"Helix needs, `pip uninstall` the other and drop the requirement that pulls it in, then "
            f"`pip install --force-reinstall` the one kept."))
    if not findings:
        findings.append(ok("no two installed distributions provide the same top-level package"))
    return findings


def _digest(path: Path, mode: str) -> str:
    with open(path, "rb") as fh:
        raw = hashlib.file_digest(fh, mode).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _changed_files(dist: md.Distribution) -> list[tuple[str, str]]:
    """(file as RECORD names it, "changed" or "missing") for every hashed file that differs."""
    changed = []
    for file in dist.files or []:
        if file.hash is None or file.hash.mode not in hashlib.algorithms_available:
            continue
        path = Path(str(dist.locate_file(file)))
        try:
            if _digest(path, file.hash.mode) != file.hash.value:
                changed.append((str(file), "changed"))
        except FileNotFoundError:
            changed.append((str(file), "missing"))
        except OSError:
            continue  # unreadable is a different problem, reported by the import checks
    return changed


def _who_else(dist: md.Distribution, rel: str) -> list[str]:
    target = Path(str(dist.locate_file(rel))).resolve()
    others = []
    for other in _first_of_each():
        if canonical(other.metadata["Name"]) == canonical(dist.metadata["Name"]):
            continue
        if any(Path(str(other.locate_file(f))).resolve() == target for f in other.files or []):
            others.append(_label(other))
    return others


def check_installed_files(names: Iterable[str]) -> list[Finding]:
    """Every file of these distributions is what pip wrote (the hash in RECORD)."""
    findings = []
    checked = 0
    for name in sorted(set(names), key=canonical):
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # reported by the requirement checks
        checked += 1
        changed = _changed_files(dist)
        if not changed:
            continue
        rel, how = changed[0]
        others = _who_else(dist, rel) if how == "changed" else []
        by = f", which {' and '.join(others)} also installs" if others else ""
        more = f" (and {len(changed) - 1} more: {', '.join(r for r, _ in changed[1:_SHOWN + 1])}…)" \
            if len(changed) > 1 else ""
        findings.append(problem(
            f"{_label(dist)}'s file {rel} is {how} since it was installed{by}{more}: another package has "
            f"written over it; remove that package and run `pip install --force-reinstall {dist.metadata['Name']}`."))
    if not findings and checked:
        findings.append(ok(f"the files of the {checked} distributions requirements.txt pulls in match their RECORD"))
    return findings
