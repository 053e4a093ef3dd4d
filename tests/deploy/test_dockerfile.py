"""The image: what it copies, how it installs, how it starts, and that a broken one fails its own build.

Docker cannot run on these machines, so the Dockerfile is read as data (its instructions parsed
here), linted with hadolint, and its install and build-check steps are replayed for real: the
application is assembled from exactly what the Dockerfile's COPY lines copy, requirements.txt is
installed into a fresh virtualenv, and ``bash deploy_v15.3.sh --build`` runs there. A module the
Dockerfile forgets, or a package requirements.txt forgets, fails that replay as it would fail the
image build.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.programs import tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SCRIPT = "deploy_v15.3.sh"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, as Docker reads them."""
    out: list[Instruction] = []
    buffer, start = "", 0
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue
        if not buffer:
            start = lineno
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        keyword, _, args = buffer.strip().partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = ""
    return out


INSTRUCTIONS = parse_dockerfile()


def _all(keyword: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.keyword == keyword]


def copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from stages)."""
    out = []
    for inst in _all("COPY"):
        parts = [p for p in shlex.split(inst.args) if not p.startswith("--")]
        assert "--from" not in inst.args, "multi-stage COPY --from is not replayed here; extend the test"
        out.append((parts[:-1], parts[-1]))
    return out


def copied_paths() -> set[str]:
    return {src.rstrip("/") for sources, _ in copies() for src in sources}


def first_party_roots() -> set[str]:
    """Top-level packages and modules in the repository root that the app could import."""
    roots = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    roots |= {p.stem for p in ROOT.glob("*.py")}
    return roots


def packages_the_app_imports() -> set[str]:
    """First-party roots reachable from the entry point (``python -m bot``), following imports."""
    roots = first_party_roots()
    needed, todo = set(), ["bot"]
    while todo:
        package = todo.pop()
        if package in needed:
            continue
        needed.add(package)
        base = ROOT / package
        files = sorted(base.rglob("*.py")) if base.is_dir() else [ROOT / f"{package}.py"]
        for file in files:
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                todo += [n.split(".")[0] for n in names if n.split(".")[0] in roots]
    return needed


# -- what the Dockerfile says -------------------------------------------------------------------


def test_base_image_is_python_311_slim_bookworm_pinned_by_tag_and_digest() -> None:
    """The base is a build argument (the image tests pass a local one); its default is the pinned image."""
    froms = _all("FROM")
    assert froms, "the Dockerfile has no FROM"
    args = {}
    for inst in _all("ARG"):
        name, _, default = inst.args.partition("=")
        args[name.strip()] = default.strip()
    for inst in froms:
        image = inst.args.split()[0]
        if image in ("${BASE_IMAGE}", "$BASE_IMAGE"):
            image = args.get("BASE_IMAGE", "")
            assert _all("ARG")[0].line < inst.line, "declare ARG BASE_IMAGE before the FROM that uses it"
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", image), (
            f"line {inst.line}: pin the base image by patch tag and digest, not {image!r}")


def test_every_package_the_app_imports_is_copied_as_a_whole_folder() -> None:
    """Copying package folders (not single files) is what makes a forgotten new module impossible."""
    folder_copies = {src.rstrip("/") for sources, dest in copies() for src in sources
                     if src.endswith("/") and dest.rstrip("/") == src.rstrip("/")}
    needed = packages_the_app_imports()
    assert {"bot", "sync"} <= needed
    missing = sorted(needed - folder_copies)
    assert not missing, f"add `COPY {missing[0]}/ {missing[0]}/` to the Dockerfile: the app imports {missing}"
    for src in copied_paths():
        assert (ROOT / src).exists(), f"the Dockerfile copies {src}, which does not exist"


def test_the_start_script_and_requirements_are_copied_and_installed() -> None:
    assert {"requirements.txt", SCRIPT} <= copied_paths()
    runs = [i.args for i in _all("RUN")]
    assert any(re.search(r"pip install .*-r requirements\.txt", r) for r in runs), "requirements.txt is never installed"
    assert not any("curl" in r or "wget" in r or "apt-get" in r for r in runs), "rclone comes from the wheel"


def test_the_build_runs_the_build_time_preflight_after_copying_the_app() -> None:
    check = [i for i in _all("RUN") if re.search(rf"\b{re.escape(SCRIPT)} --build\b", i.args)]
    assert check, f"add `RUN bash {SCRIPT} --build` so a broken image fails its build"
    last_copy = max(i.line for i in _all("COPY"))
    assert check[0].line > last_copy, "the build check must run after everything is copied"


def test_nothing_is_piped_from_the_network_into_a_shell() -> None:
    pipe_to_shell = re.compile(r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da|k)?sh\b")
    for inst in INSTRUCTIONS:
        assert not pipe_to_shell.search(inst.args), f"line {inst.line}: download, verify, then run; never curl | sh"
        if inst.keyword == "ADD":
            assert not re.search(r"https?://", inst.args), f"line {inst.line}: ADD from a URL is unverified"


def test_python_output_is_unbuffered() -> None:
    env = " ".join(i.args for i in _all("ENV"))
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", env)


def test_it_starts_through_the_deploy_script_in_exec_form() -> None:
    (cmd,) = _all("CMD")
    assert json.loads(cmd.args) == ["bash", SCRIPT], "exec form, so no /bin/sh stands between Railway and the bot"
    for entry in _all("ENTRYPOINT"):
        assert entry.args.startswith("["), "a shell-form ENTRYPOINT would swallow SIGTERM"


def test_the_healthcheck_uses_python_against_health() -> None:
    (check,) = _all("HEALTHCHECK")
    argv = json.loads(check.args[check.args.index("CMD") + 3:].strip())
    assert argv[0] == "python" and "/health" in argv[-1] and "PORT" in argv[-1]


def test_the_deploy_script_checks_then_execs_the_bot() -> None:
    text = (ROOT / SCRIPT).read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    assert re.search(r"^\s*exec python -m bot run( --preflight)?\s*$", text, re.MULTILINE)
    for flag in ("--check", "--build", "--probe"):
        assert flag in text


def test_dockerignore_keeps_secrets_out_and_the_app_in() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    assert ".env" in patterns, ".env holds the token locally: keep it out of the build context"
    for path in copied_paths():
        for pattern in patterns:
            bare = pattern.rstrip("/")
            assert not (path == bare or path.startswith(bare + "/") or re.fullmatch(
                bare.replace(".", r"\.").replace("*", "[^/]*"), path)), f".dockerignore's {pattern!r} drops {path}"


def test_railway_toml_builds_the_dockerfile_checks_health_and_stops_gracefully() -> None:
    config = tomllib.loads((ROOT / "railway.toml").read_text(encoding="utf-8"))
    build, deploy = config["build"], config["deploy"]
    assert build["builder"] == "DOCKERFILE" and build.get("dockerfilePath", "Dockerfile") == "Dockerfile"
    (cmd,) = _all("CMD")
    assert shlex.split(deploy["startCommand"]) == json.loads(cmd.args), "railway.toml and the image start alike"
    assert deploy["healthcheckPath"] == "/health"
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    # Railway rejects the whole config when a number is a string: these must be TOML integers.
    for key in ("healthcheckTimeout", "restartPolicyMaxRetries", "drainingSeconds", "overlapSeconds"):
        assert type(deploy[key]) is int, f"{key} must be an integer"
    assert 0 < deploy["restartPolicyMaxRetries"] <= 10
    assert deploy["overlapSeconds"] == 0, "two connected instances answer every command twice"
    from bot.settings import Settings

    assert deploy["drainingSeconds"] > Settings().stop_grace_s, "SIGKILL would land before the bot's own stop"


# -- linters --------------------------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_shellcheck_finds_nothing_in_the_deploy_script() -> None:
    result = subprocess.run([tool("shellcheck"), "--severity=style", str(ROOT / SCRIPT)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the replayed build ---------------------------------------------------------------------------


@dataclass
class Image:
    app: Path
    python: Path
    env: dict[str, str]

    def run(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=self.app, env=self.env, capture_output=True, text=True,
                              timeout=timeout)


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for inst in _all("ENV"):
        for item in shlex.split(inst.args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def _assemble_app(dest: Path) -> None:
    """Copy into ``dest`` exactly what the Dockerfile's COPY lines copy, with Docker's rules.

    A directory source copies its contents into the destination; file sources go into a destination
    ending in ``/`` (or a file destination, for a single file).
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for sources, target in copies():
        into = (dest / target).resolve()
        for src in sources:
            source = ROOT / src
            if source.is_dir():
                shutil.copytree(source, into, ignore=ignore, dirs_exist_ok=True)
            elif target.endswith("/") or len(sources) > 1:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, into / source.name)
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, into)


def _replayed_steps() -> list[str]:
    """The RUN steps that install and check (user creation and chown need root and change nothing here)."""
    return [i.args for i in _all("RUN") if "pip install" in i.args or SCRIPT in i.args]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    base = tmp_path_factory.mktemp("image")
    app, venv, home = base / "app", base / "venv", base / "home"
    app.mkdir()
    home.mkdir()
    _assemble_app(app)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    drop = ("DISCORD_", "HELIX_", "RCLONE_", "LOG_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(_dockerfile_env())
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", HOME=str(home),
               VIRTUAL_ENV=str(venv), HELIX_DATA_DIR=str(base / "data"))
    yield Image(app=app, python=venv / "bin" / "python", env=env)


@pytest.mark.slow
def test_replayed_image_build_installs_requirements_and_passes_the_build_check(image: Image) -> None:
    steps = _replayed_steps()
    assert any("pip install" in s for s in steps) and any("--build" in s for s in steps)
    for step in steps:
        result = image.run("sh", "-c", step)
        assert result.returncode == 0, f"RUN {step}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    # The app inside is only what COPY copied: the tests and the rest of the repository are not there.
    assert not (image.app / "tests").exists() and (image.app / "preflight" / "checks.py").is_file()
    assert "preflight (build): all checks passed." in result.stdout


@pytest.mark.slow
def test_replayed_image_build_fails_naming_a_missing_package_and_a_broken_one(image: Image) -> None:
    """A package from requirements.txt missing, and one broken by its dependency's removal: both named."""
    if not (image.python.parent / "pip").exists():
        pytest.skip("the replayed image was not built")
    removed = image.run(str(image.python), "-m", "pip", "uninstall", "-y", "python-dotenv", "yarl")
    assert removed.returncode == 0, removed.stderr
    try:
        result = image.run("bash", SCRIPT, "--build")
        problems = [line for line in result.stderr.splitlines() if line.startswith("problem: ")]
        assert result.returncode != 0
        assert any(line.startswith("problem: python-dotenv is not installed") for line in problems), problems
        assert any(re.match(r"problem: aiohttp \S+ needs yarl", line) for line in problems), problems
        assert any("import aiohttp" in line and "yarl" in line for line in problems), problems
    finally:
        image.run(str(image.python), "-m", "pip", "install", "-q", "-r", "requirements.txt")
