"""Binder's build, done here: a fresh venv from binder/requirements.txt, then postBuild,
then the notebooks executed in it with no AWS account.

repo2docker does ``pip install -r binder/requirements.txt`` and then runs
``binder/postBuild`` from the repository root; this test does the same in a new
venv (pip uses this machine's configured indexes and wheel cache, so it is quick
after the first run), then runs the notebooks with that venv's own kernel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"

# pip install of ~100 pinned wheels dominates: minutes on a cold cache, less on a warm one.
pytestmark = [pytest.mark.binder, pytest.mark.slow, pytest.mark.timeout(1800)]

#: Run inside the Binder venv: execute both notebooks with nbclient and its own kernel.
RUN_NOTEBOOKS = r"""
import os, sys
import nbformat
from nbclient import NotebookClient
from jupyter_client.kernelspec import KernelSpecManager
ks = KernelSpecManager().get_kernel_spec("python3")
assert ks.argv[0] in ("python", sys.executable), ks.argv
for name in sys.argv[1:]:
    nb = nbformat.read(name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('KERNEL', sys.executable)"))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": os.getcwd()}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "KERNEL " + sys.executable in text, text[-500:]
    print("OK", name)
"""


def test_binder_environment_builds_and_runs_the_notebooks(tmp_path: Path) -> None:
    requirements = (BINDER / "requirements.txt").read_text().splitlines()
    pins = [line for line in requirements if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins), "every Binder requirement must be pinned"
    post_build = (BINDER / "postBuild").read_text().splitlines()
    assert post_build[0].startswith("#!") and post_build[1].strip() == "set -e"

    # A copy of the checkout, as repo2docker has it (no .venv, no caches).
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT, repo,
        ignore=shutil.ignore_patterns(".venv", ".git", "test-artifacts", "__pycache__", "*.egg-info",
                                      ".mypy_cache", ".ruff_cache", ".pytest_cache", "build"),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"],
        cwd=repo, env=env, capture_output=True, text=True,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    build = subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]

    # No AWS account, and never the instance metadata service.
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/batchkit-test/credentials",
        AWS_CONFIG_FILE="/nonexistent/batchkit-test/config",
        AWS_EC2_METADATA_DISABLED="true",
        BATCHKIT_SIM_SPEED="0",
        BATCHKIT_AUTO_KILL="1",
    )
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(key, None)
    run = subprocess.run(
        [str(py), "-c", RUN_NOTEBOOKS, "notebooks/01-incident-replay.ipynb", "notebooks/02-investigate-a-run.ipynb",
         "notebooks/03-submit-and-track.ipynb"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "OK notebooks/01-incident-replay.ipynb" in run.stdout
    assert "OK notebooks/02-investigate-a-run.ipynb" in run.stdout
    assert "OK notebooks/03-submit-and-track.ipynb" in run.stdout
