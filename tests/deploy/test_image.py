"""The real image, built by Docker and run as Railway runs it: what a deploy would see.

Skipped with one line when no Docker engine is reachable, except under ``CI=true``, where a missing
engine fails (``.ci/run`` starts one). The base is a local stand-in for the pinned official image
(tests/support/image.py), passed as the Dockerfile's ``BASE_IMAGE`` build argument. Containers use
the host's network and only 127.0.0.1: the loopback Discord (tests/support/loopback.py) runs in
this process, on a port the container is told before the fake even starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.image import Build, base_image, build, context_copy, docker, engine_problem
from tests.support.loopback import LoopbackDiscord
from tests.support.remotes import LoopbackRemote, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TAG = "helix-test:latest"
GRACE_S = 5
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123"  # token-shaped, not a real one


@pytest.fixture(scope="session")
def engine() -> None:
    problem = engine_problem()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, and the image tests need a Docker engine: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def base(engine: None) -> str:
    return base_image()


@pytest.fixture(scope="session")
def image(base: str) -> Build:
    """Helix's image, built once per session from the working tree (the .dockerignore decides what goes in)."""
    built = build(ROOT, TAG, base=base, extra=["--build-arg", f"PREFLIGHT_RUN={time.time_ns()}"])
    assert built.ok, f"the image did not build:\n{built.log[-5000:]}"
    return built


@pytest.fixture
def containers() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        docker("rm", "-f", "-v", name, check=False)


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return docker("run", "--rm", "--network", "host", *args, check=False, timeout=timeout)


def bot_env(discord_port: int, health_port: int, **extra: str) -> list[str]:
    env = {"DISCORD_TOKEN": TOKEN, "PORT": str(health_port), "LOG_FORMAT": "json",
           "HELIX_DISCORD_API_BASE": f"http://127.0.0.1:{discord_port}/api/v10",
           "HELIX_DISCORD_GATEWAY": f"ws://127.0.0.1:{discord_port}/ws", "HELIX_DISCORD_RETRY_CAP_S": "1",
           "HELIX_STOP_GRACE_S": str(GRACE_S), "HELIX_HEARTBEAT_MINUTES": "0", "HELIX_RITUAL_COOLDOWN_S": "0",
           "HELIX_OUTBOX_RETRY_BASE_S": "0.2", "HELIX_OUTBOX_RETRY_CAP_S": "1", **extra}
    return [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]


async def http_status(port: int, path: str) -> int | None:
    try:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return resp.status
    except (aiohttp.ClientError, TimeoutError):
        return None


def logs(name: str) -> str:
    out = docker("logs", name, check=False)
    return out.stdout + out.stderr


def state(name: str) -> dict:
    return json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)


# -- the build ------------------------------------------------------------------------------------


def test_the_image_builds_with_the_preflight_passing(image: Build, capsys: pytest.CaptureFixture[str]):
    assert "deploy_v15.3.sh --build" in image.log
    assert re.search(r"all \d+ modules of [a-z, ]+ import", image.log), image.log[-3000:]
    assert "problem" not in image.log.split("deploy_v15.3.sh --build", 1)[1].split("Step", 1)[0]
    size = int(docker("image", "inspect", "-f", "{{.Size}}", TAG).stdout)
    with capsys.disabled():
        print(f"\nhelix image: {size / 1e6:.0f} MB, built in {image.seconds:.1f} s")


def test_the_image_holds_no_tests_git_env_or_bench(image: Build):
    probe = "import os; print(sorted(p for p in ('tests', '.git', '.env', 'bench', '.venv') if os.path.exists(p)))"
    out = run(TAG, "python", "-c", probe)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_a_dockerfile_without_one_package_copy_fails_at_build_naming_it(base: str, image: Build, tmp_path: Path):
    dockerfile = tmp_path / "Dockerfile"
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY render/ render/\n" in text
    dockerfile.write_text(text.replace("COPY render/ render/\n", ""))
    built = build(ROOT, "helix-test:no-render", base=base, dockerfile=dockerfile)
    assert not built.ok, "an image without render/ was built"
    assert "render/" in built.log and "COPY render/ render/" in built.log.split("--build", 1)[-1], built.log[-3000:]
    assert "Successfully built" not in built.log


def test_requirements_without_one_runtime_dependency_fail_at_build_naming_it(base: str, image: Build,
                                                                           tmp_path: Path):
    ctx = context_copy(ROOT, tmp_path / "ctx")
    req = ctx / "requirements.txt"
    lines = req.read_text().splitlines(keepends=True)
    req.write_text("".join(line for line in lines if not line.startswith("structlog")))
    built = build(ctx, "helix-test:no-structlog", base=base)
    assert not built.ok, "an image without structlog was built"
    after = built.log.split("--build", 1)[-1]
    assert "No module named 'structlog'" in after and "add its package" in after, built.log[-3000:]


# -- running it -----------------------------------------------------------------------------------


def test_check_without_a_token_names_the_token(image: Build):
    out = run("-e", f"PORT={free_port()}", TAG, "bash", "deploy_v15.3.sh", "--check")
    assert out.returncode != 0
    assert "DISCORD_TOKEN is not set" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_runs_as_uid_10001_and_a_root_owned_volume_gets_the_preflight_line(image: Build, tmp_path: Path):
    assert run(TAG, "id", "-u").stdout.strip() == "10001"
    volume = tmp_path / "root-volume"
    volume.mkdir(mode=0o755)
    os.chown(volume, 0, 0)
    out = run("-v", f"{volume}:/app/data", "-e", f"DISCORD_TOKEN={TOKEN}", "-e", "RAILWAY_VOLUME_MOUNT_PATH=/app/data",
              TAG, "bash", "deploy_v15.3.sh", "--check")
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert "HELIX_DATA_DIR /app/data is not writable by this process (uid 10001" in said, said
    assert "RAILWAY_RUN_UID=0" in said


def test_a_named_volume_works(image: Build):
    volume = f"helix-test-{os.getpid()}"
    docker("volume", "create", volume)
    try:
        out = run("-v", f"{volume}:/app/data", "-e", f"DISCORD_TOKEN={TOKEN}",
                  "-e", "RAILWAY_VOLUME_MOUNT_PATH=/app/data", TAG, "bash", "deploy_v15.3.sh", "--check")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "data directory /app/data is writable" in out.stdout
    finally:
        docker("volume", "rm", "-f", volume, check=False)


async def test_discord_unreachable_health_within_3_s_then_the_bot_connects(image: Build, containers: list[str],
                                                                         capsys: pytest.CaptureFixture[str]):
    discord_port, health = free_port(), free_port()
    name = f"helix-test-unreachable-{os.getpid()}"
    containers.append(name)
    docker("create", "--name", name, "--network", "host", *bot_env(discord_port, health), TAG)
    docker("start", name)
    started = time.perf_counter()
    await wait_until(lambda: http_status(health, "/health"), 20, lambda: f"/health; logs:\n{logs(name)}")
    took = time.perf_counter() - started
    assert await http_status(health, "/health") == 200
    assert took < 3.0, f"/health answered {took:.1f} s after the container started"
    with capsys.disabled():
        print(f"\n/health answered {took:.2f} s after `docker start`")
    await wait_until(lambda: "discord_retry" in logs(name), 30, "a retry line")
    assert await http_status(health, "/ready") == 503

    async with LoopbackDiscord(port=discord_port) as fake:
        await fake.wait_until(lambda: fake.identifies, within=30)
        reply = await fake.ask("!heartbeat", within=20)
        assert reply["content"].startswith("💓 alive"), reply
        docker("stop", "-t", "30", name)
    assert state(name)["ExitCode"] == 0, logs(name)
    assert "Traceback" not in logs(name)


def outbox(data: Path) -> list[dict]:
    conn = sqlite3.connect(f"file:{data / 'outbox.sqlite3'}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM items ORDER BY id")]
    finally:
        conn.close()


async def test_docker_stop_mid_upload_exits_0_and_a_restart_lands_it_once(image: Build, containers: list[str],
                                                                          tmp_path: Path, webdav: LoopbackRemote,
                                                                          capsys: pytest.CaptureFixture[str]):
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 10001, 10001)
    name = f"helix-test-stop-{os.getpid()}"
    containers.append(name)
    async with LoopbackDiscord() as fake:
        # 32 KiB/s: a ritual's PNG (about 270 KB) takes several seconds, more than the stop leaves it.
        # To loopback WebDAV: into a local archive folder the outbox's copy would be renamed at once.
        docker("create", "--name", name, "--network", "host", "-v", f"{data}:/app/data",
               *bot_env(fake.port, free_port(), HELIX_BWLIMIT="32K", HELIX_ARCHIVE=webdav.archive,
                        **webdav.env()), TAG)
        docker("start", name)
        await fake.wait_until(lambda: fake.identifies, within=60)
        await fake.ask("!ritual 400", within=30)
        await fake.wait_for_message(lambda m: "uploading" in (m["content"] or ""), within=30)
        assert any(r["state"] == "uploading" for r in outbox(data)), outbox(data)

        started = time.perf_counter()
        docker("stop", "-t", "30", name, timeout=60)
        took = time.perf_counter() - started
        assert state(name)["ExitCode"] == 0, logs(name)
        assert took < GRACE_S + 1, f"docker stop took {took:.1f} s (HELIX_STOP_GRACE_S={GRACE_S})"
        with capsys.disabled():
            print(f"\ndocker stop mid-upload: {took:.2f} s (HELIX_STOP_GRACE_S={GRACE_S})")
        assert "Traceback" not in logs(name)
        rows = outbox(data)
        assert rows and all(r["state"] in ("pending", "done") for r in rows), rows
        assert any(r["state"] == "pending" for r in rows), f"the upload was not in flight at the stop: {rows}"

        docker("start", name)
        await wait_until(lambda: all(r["state"] == "done" for r in outbox(data)), 90,
                         lambda: f"every item landed after the restart: {outbox(data)}")
        docker("stop", "-t", "30", name, timeout=60)

    rows = outbox(data)
    archive = webdav.root
    files = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*") if p.is_file())
    assert files == sorted(r["rel_path"] for r in rows), (files, rows)  # nothing lost, nothing twice
    assert not [f for f in files if ".helix-partial-" in f]
    for r in rows:
        assert hashlib.sha256((archive / r["rel_path"]).read_bytes()).hexdigest() == r["sha256"]


async def test_docker_stop_during_the_preflight_exits_0_at_once(image: Build, containers: list[str]):
    """The preflight runs with /health up and SIGTERM handled: a stop then ends the start at once."""
    name = f"helix-test-preflight-{os.getpid()}"
    containers.append(name)
    health = free_port()
    docker("create", "--name", name, "--network", "host", *bot_env(free_port(), health), TAG)
    docker("start", name)

    async def phase() -> str | None:
        try:
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{health}/ready") as resp:
                return (await resp.json()).get("phase")
        except aiohttp.ClientError:
            return None

    assert await wait_until(phase, 20, lambda: f"/ready; logs:\n{logs(name)}", every=0.05) == "preflight"
    docker("stop", "-t", "30", name, timeout=60)
    assert state(name)["ExitCode"] == 0, logs(name)
    assert "rclone_started" not in logs(name), "the bot went on although the stop came during the preflight"
    assert "Traceback" not in logs(name)
