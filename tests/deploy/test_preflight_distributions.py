"""The pycrypto failure, rebuilt for real: a venv where one small wheel writes over another's module.

``pip check`` passes in such a venv; the preflight must name both distributions, the file that was
written over, and a dependency installed at a version its requirer excludes. The wheels are made
here (a wheel is a zip with METADATA, WHEEL and RECORD) and installed by pip into a fresh venv; the
preflight then runs with that venv's Python, as it would in the image.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import packaging
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

REPORT = """
import json, sys
from pathlib import Path
from preflight.packages import check_requirements
print(json.dumps([[f.level, f.text] for f in check_requirements(Path(sys.argv[1]))]))
"""


def make_wheel(folder: Path, name: str, version: str, files: dict[str, str], requires: tuple[str, ...] = ()) -> Path:
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(path, "w") as whl:
        def add(arcname: str, text: str) -> None:
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            whl.writestr(arcname, data)
            records.append(f"{arcname},sha256={digest},{len(data)}")

        for arcname, text in files.items():
            add(arcname, text)
        add(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires))
        add(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: helix-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n")
        whl.writestr(f"{dist}.dist-info/RECORD", "\n".join([*records, f"{dist}.dist-info/RECORD,,"]) + "\n")
    return path


class Venv:
    """A bare venv; wheels are installed one pip call each, in order, as a requirements file would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
        self.python = path / "bin" / "python"
        # The preflight parses specifiers with `packaging`; give the venv that (and nothing else).
        self.vendor = path / "vendor"
        shutil.copytree(Path(packaging.__file__).parent, self.vendor / "packaging")

    def install(self, *wheels: Path) -> None:
        for wheel in wheels:
            subprocess.run([sys.executable, "-m", "pip", "--python", str(self.python), "install", "-q", "--no-index",
                            "--no-deps", str(wheel)], check=True, capture_output=True, timeout=120)

    def preflight(self, requirements: str) -> list[tuple[str, str]]:
        req = self.path / "requirements.txt"
        req.write_text(requirements)
        out = subprocess.run([str(self.python), "-c", REPORT, str(req)], capture_output=True, text=True,
                             timeout=120, cwd=ROOT,
                             env={"PYTHONPATH": f"{ROOT}:{self.vendor}", "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr
        return [tuple(f) for f in json.loads(out.stdout)]


@pytest.fixture(scope="module")
def clobbered(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """pycryptodome-lite installed, then mega-lite and the pycrypto-lite it needs, written over it."""
    wheels = tmp_path_factory.mktemp("wheels")
    venv = Venv(tmp_path_factory.mktemp("clobbered") / "venv")
    venv.install(
        make_wheel(wheels, "pycryptodome-lite", "3.20.0",
                   {"Crypto/__init__.py": "", "Crypto/Cipher.py": "AES = 'pycryptodome'\nMODE_GCM = 11\n"}),
        make_wheel(wheels, "pycrypto-lite", "2.6.1", {"Crypto/__init__.py": "", "Crypto/Cipher.py": "AES = 'old'\n"}),
        make_wheel(wheels, "mega-lite", "1.0.8", {"mega/__init__.py": "import Crypto.Cipher\n"},
                   requires=("pycrypto-lite>=2.6",)),
    )
    return venv


def problems(findings: list[tuple[str, str]]) -> list[str]:
    return [text for level, text in findings if level == "problem"]


def test_two_distributions_providing_one_package_are_both_named(clobbered: Venv):
    found = problems(clobbered.preflight("pycryptodome-lite>=3,<4\nmega-lite>=1,<2\n"))
    shared = [p for p in found if "`Crypto` package" in p]
    assert len(shared) == 1, found
    assert "pycrypto-lite 2.6.1 and pycryptodome-lite 3.20.0 both install the `Crypto` package" in shared[0]


def test_a_file_written_over_is_named_with_its_distribution(clobbered: Venv):
    found = problems(clobbered.preflight("pycryptodome-lite>=3,<4\nmega-lite>=1,<2\n"))
    written_over = [p for p in found if "since it was installed" in p]
    assert written_over == [
        "pycryptodome-lite 3.20.0's file Crypto/Cipher.py is changed since it was installed, which pycrypto-lite "
        "2.6.1 also installs: another package has written over it; remove that package and run "
        "`pip install --force-reinstall pycryptodome-lite`."], found


def test_a_dependency_at_a_version_its_requirer_excludes_is_named(tmp_path: Path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    venv = Venv(tmp_path / "venv")
    venv.install(
        make_wheel(wheels, "dep-lite", "2.0", {"dep_lite.py": ""}),
        make_wheel(wheels, "app-lite", "1.0", {"app_lite.py": "import dep_lite\n"}, requires=("dep-lite<2",)),
        make_wheel(wheels, "other-lite", "1.0", {"other_lite.py": ""}, requires=("dep-lite>=2",)),
    )
    findings = venv.preflight("app-lite>=1,<2\nother-lite>=1,<2\n")
    found = problems(findings)
    assert len(found) == 1, findings
    assert found[0].startswith("app-lite 1.0 needs dep-lite<2 but dep-lite 2.0 is installed"), found
    assert ("ok", "no two installed distributions provide the same top-level package") in findings
    assert ("ok", "the files of the 3 distributions requirements.txt pulls in match their RECORD") in findings
