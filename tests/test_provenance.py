"""Code version and host description stored with every result."""
import re

from cosmopipe.pipeline import __version__
from cosmopipe.provenance import code_version, host_info


def test_code_version_format():
    # Plain version, or version+g<sha>[.dirty] inside a git checkout with commits.
    assert re.fullmatch(re.escape(__version__) + r"(\+g[0-9a-f]{4,40}(\.dirty)?)?", code_version())


def test_host_info_keys():
    info = host_info()
    assert set(info) == {"hostname", "platform", "python", "numpy", "cpu_count"}
    assert info["cpu_count"] >= 1


def test_code_version_in_a_git_checkout(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    # The foundation package alone, in a fresh repository laid out like this one
    # (pipeline/foundation/ is the cosmopipe package), imported as cosmopipe from there.
    src = Path(__file__).resolve().parents[1] / "pipeline" / "foundation"
    shutil.copytree(src, tmp_path / "pipeline" / "foundation", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "cosmopipe").symlink_to(tmp_path / "pipeline" / "foundation")

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    def version():
        code = ("import cosmopipe.provenance as p; assert p.__file__.startswith(%r), p.__file__; "
                "print(p.code_version())" % str(tmp_path))
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    assert version() == __version__  # no commit yet
    git("add", "pipeline")
    git("commit", "-q", "-m", "init")
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert version() == f"{__version__}+g{sha}"
    with open(tmp_path / "pipeline" / "foundation" / "_version.py", "a") as f:
        f.write("# local change\n")
    assert version() == f"{__version__}+g{sha}.dirty"
