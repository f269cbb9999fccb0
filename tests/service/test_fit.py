"""`lensserve fit` as a user runs it, short: the embedded lens on a 1.2" mask with tiny models (two
Gaussians per MGE, a 9x9 Delaunay overlay) and a few hundred likelihood calls per stage. Its own
`lensserve serve` process runs every stage through the real client and nautilus.

The first run is interrupted (SIGINT) once stage 1 has finished; the second resumes from there,
quietly, serving only the stages still to run. Outputs and the report are checked after it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from client.pipeline import passed_prior, stages
from tests.service.conftest import CACHE_DIR

REPOSITORY = Path(__file__).resolve().parents[2]
TINY = ["--mask-radius", "1.2", "--lens-gaussians", "2", "--source-gaussians", "2",
        "--overlay-size", "9", "--n-live", "20", "--n-batch", "32", "--n-eff", "50",
        "--max-calls", "96"]
PARAMETERS = {"stage1_mge": 15, "stage2_delaunay": 12, "stage3_delaunay_power_law": 13}


def start_fit(output: Path, *extra: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY),
                   "LENSSERVE_COMPILATION_CACHE_DIR": str(CACHE_DIR)}
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "fit", "default", "--output", str(output), *TINY,
         *extra], cwd=output.parent, env=environment, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)


def stop_group(process: subprocess.Popen) -> None:
    """End the fit's process group (it and its service) if anything is left of it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.timeout(600)
def test_a_short_fit_runs_every_stage_resumes_and_reports(tmp_path):
    output = tmp_path / "fit"
    started = time.monotonic()
    first = start_fit(output)
    try:
        stage1 = output / "stage1_mge" / "summary.json"
        while not stage1.exists():
            assert first.poll() is None, first.communicate()[1][-3000:]
            assert time.monotonic() - started < 400, "stage 1 did not finish in 400 s"
            time.sleep(0.5)
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        stop_group(first)
    assert first.returncode != 0
    assert "stage1_mge: likelihood calls" in stderr and "log Z" in stderr, stderr[-3000:]
    assert "starting the service: buckets compiled" in stderr
    assert not (output / "stage2_delaunay" / "summary.json").exists()
    stage1_text = stage1.read_text()

    second = start_fit(output, "--quiet")
    try:
        stdout, stderr = second.communicate(timeout=480)
    finally:
        stop_group(second)
    assert second.returncode == 0, stderr[-3000:]
    assert "likelihood calls" not in stderr and "buckets compiled" not in stderr, stderr[-3000:]
    print(f"the fit, interrupted and resumed, took {time.monotonic() - started:.0f} s")

    # Resumed: stage 1 was not run again, and the second service served the other two only.
    assert stage1.read_text() == stage1_text
    served = (output / "service.toml").read_text()
    assert "fit-mge" not in served and "fit-delaunay-power_law" in served

    summaries = {}
    for stage in stages("delaunay"):
        directory = output / stage.name
        summary = summaries[stage.name] = json.loads((directory / "summary.json").read_text())
        n_params = PARAMETERS[stage.name]
        samples = np.load(directory / "samples.npz")
        assert samples["points"].shape == (len(samples["log_weight"]), n_params)
        assert list(samples["names"]) == list(summary["parameters"])
        header = (directory / "samples.csv").read_text().splitlines()[0].split(",")
        assert header == [*summary["parameters"], "log_weight", "log_likelihood"]
        for key in ("log_z", "log_z_error", "chi_squared_per_pixel", "wall_time_s",
                    "best_log_likelihood"):
            assert np.isfinite(summary[key]), (stage.name, key)
        assert summary["likelihood_calls"] >= 96 and summary["service_batches"] > 0
        assert summary["mass"] == stage.mass and summary["kind"] == stage.kind
        for name, marginal in summary["parameters"].items():
            assert marginal["p16"] <= marginal["median"] <= marginal["p84"], name
        for picture in ("fit.png", "corner.png"):
            pixels = matplotlib.image.imread(directory / picture)
            assert pixels.shape[0] > 100 and np.isfinite(pixels).all()

    # Priors passed from stage to stage; the slope keeps its default.
    radius = "lens.mass.einstein_radius"
    stage2, stage3 = summaries["stage2_delaunay"], summaries["stage3_delaunay_power_law"]
    expected = passed_prior(radius, summaries["stage1_mge"]["parameters"][radius],
                            _published_radius_prior())
    assert stage2["priors"][radius] == {"type": "Uniform", "lower": expected.lower,
                                        "upper": expected.upper}
    assert stage3["priors"]["lens.mass.slope"] == {"type": "Uniform", "lower": 1.5, "upper": 3.0}
    assert stage3["priors"]["source.pixelization.coefficient"]["type"] == "LogUniform"

    report = (output / "report.md").read_text()
    for stage in PARAMETERS:
        for link in ("summary.json", "fit.png", "corner.png", "samples.npz", "samples.csv"):
            assert f"({stage}/{link})" in report
    assert "(median - truth) / sigma" in report


def _published_radius_prior():
    from client.priors import Uniform

    return Uniform(0.0, 8.0)


@pytest.mark.timeout(300)
def test_a_fit_against_a_running_service_uses_its_models_and_skips_what_it_lacks(served, tmp_path):
    """With --url the fit uses the models named by --models; this service has stage 1's only."""
    from tests.service.conftest import TOKEN

    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    done = subprocess.run(  # the default --output, ./fit
        [sys.executable, "-m", "service.cli", "fit", "default", "--mask-radius", "1.0", "--url",
         served.url, "--token", TOKEN, "--models", "mge,absent-pixelized,absent-power-law",
         "--n-live", "20", "--n-batch", "32", "--n-eff", "50", "--max-calls", "64"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stage2_delaunay: the service has no model 'absent-pixelized'; skipped" in done.stderr
    fit_directory = tmp_path / "fit"
    summary = json.loads((fit_directory / "stage1_mge" / "summary.json").read_text())
    assert summary["model"] == "mge" and summary["settings"]["source_gaussians"] == 2
    assert np.isfinite(summary["chi_squared_per_pixel"]) and summary["service_batches"] > 0
    assert not (fit_directory / "stage2_delaunay").exists()
    assert not (fit_directory / "service.toml").exists()
    assert "| stage2_delaunay | not run |" in (fit_directory / "report.md").read_text()

    # Resumed with a model of the wrong kind for stage 2: refused before sampling.
    wrong = subprocess.run(
        [sys.executable, "-m", "service.cli", "fit", "default", "--mask-radius", "1.0", "--url",
         served.url, "--token", TOKEN, "--models", "mge,mge,mge", "--quiet"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0
    assert "stage2_delaunay fits a delaunay source with isothermal mass; the served model mge " \
        "is mge with isothermal" in wrong.stderr, wrong.stderr[-2000:]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("dataset", "extra", "message"), [
    ("no-such-directory", [], "no dataset at"),
    ("default", ["--mask-radius", "-1"], "mask radius must be a positive number"),
])
def test_a_bad_dataset_is_refused_in_one_line_before_any_service_starts(
        tmp_path, dataset, extra, message):
    output = tmp_path / "fit"
    finished = subprocess.run(
        [sys.executable, "-m", "service.cli", "fit", dataset, "--output", str(output), "--quiet",
         *extra], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        capture_output=True, text=True, timeout=110)
    assert finished.returncode != 0
    assert finished.stderr.strip().startswith("lensserve fit: ") and message in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not output.exists()
