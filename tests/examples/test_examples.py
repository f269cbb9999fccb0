"""Each example, run short (a small model, a few hundred likelihood calls) as a user runs it: it
starts its own `lensserve serve`, shows progress bars, and saves a finite picture to its default
`--out` in the current directory, leaving the committed pictures alone.

The examples run in their own processes (and their services in theirs), so the compiled programs
stay out of this one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from tests.service.conftest import CACHE_DIR

REPOSITORY = Path(__file__).resolve().parents[2]
SLACS1430 = REPOSITORY.parent / "shared" / "data" / "slacs" / "slacs1430+4105"
SHORT = ["--n-live", "30", "--n-eff", "50", "--timeout-minutes", "0.1",
         "--lens-gaussians", "2", "--source-gaussians", "2"]
EXAMPLES = {
    "fit_default_nautilus.py": (["--mask-radius", "1.0", *SHORT], "default_fit.png"),
    "fit_slacs1430_mge.py": (["--bin", "4", "--mask-radius", "2.0", *SHORT], "slacs1430_fit.png"),
}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_a_short_run_shows_progress_and_saves_a_finite_picture(example, tmp_path):
    if example == "fit_slacs1430_mge.py" and not SLACS1430.is_dir():
        pytest.skip(f"the SLACS images are not at {SLACS1430}")
    arguments, picture = EXAMPLES[example]
    committed = {path: path.read_bytes() for path in (REPOSITORY / "examples").glob("*.png")}
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY),
                   "LENSSERVE_COMPILATION_CACHE_DIR": str(CACHE_DIR)}
    done = subprocess.run([sys.executable, str(REPOSITORY / "examples" / example), *arguments],
                          cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    for bar in ("buckets compiled", "nautilus: likelihood calls", "rendering the picture"):
        assert bar in done.stderr, done.stderr[-3000:]
    assert re.search(r"likelihood calls: \d+pt .*best log-evidence -?\d", done.stderr)
    chi_squared = re.search(r"saved .* \(chi\^2 per pixel (\S+)\)", done.stdout)
    assert chi_squared and np.isfinite(float(chi_squared[1])), done.stdout[-2000:]

    pixels = matplotlib.image.imread(tmp_path / picture)
    assert pixels.shape[0] > 100 and np.isfinite(pixels).all()
    assert {path: path.read_bytes() for path in committed} == committed


def test_a_missing_image_directory_is_explained(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPOSITORY / "examples" / "fit_slacs1430_mge.py"),
         "--data", str(tmp_path)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, capture_output=True,
        text=True, timeout=300)
    assert done.returncode == 1
    assert "not in this repository" in done.stderr
    assert "autolens_workspace" in done.stderr
