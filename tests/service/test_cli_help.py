"""`lensserve --help` answers without loading JAX; `evaluate` refuses to guess another lens's
parameters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from likelihood.dataset import DEFAULT_MASK_RADIUS
from service import cli

REPOSITORY = Path(__file__).resolve().parents[2]
HEAVY = ("jax", "jaxlib", "numpy", "scipy", "numba", "likelihood", "fastapi", "uvicorn")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [[], ["serve"], ["evaluate"], ["simulate"], ["register"], ["fit"]])
def test_help_loads_no_jax_numpy_or_likelihood(command):
    code = (
        "import sys\nfrom service.cli import main\n"
        f"try:\n    main({[*command, '--help']!r})\nexcept SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=120)
    assert done.returncode == 0, done.stderr
    *help_text, loaded = done.stdout.strip().splitlines()
    assert loaded == "[]", f"--help imported {loaded}"
    assert "usage: lensserve" in help_text[0]


def test_the_help_states_the_likelihoods_default_mask_radius():
    assert float(cli.DEFAULT_MASK_RADIUS_TEXT) == DEFAULT_MASK_RADIUS


def test_evaluate_with_another_dataset_needs_parameters(capsys, tmp_path):
    assert cli.main(["evaluate", "--dataset", str(tmp_path / "lens.npz")]) == 2
    error = capsys.readouterr().err
    assert "--dataset needs --params" in error
    assert "embedded simulated lens's truth" in error
