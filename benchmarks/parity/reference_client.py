"""Call the PyAutoLens reference (separate venv) from our own environment, via subprocess.

Standard library only: importable from lensserve's benchmark scripts without PyAutoLens installed.

    from benchmarks.parity.reference_client import reference_timings
    t = reference_timings("/work/shared/data/slacs/slacs2303+1422", "mge", params, batches=(3, 8),
                          pixel_scale=0.05)
    t["single"]["median_s"], t["vmap"]["8"]["per_eval_s"], t["single"]["first_call_s"]
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

REFERENCE_PYTHON = os.environ.get("LENSSERVE_REFERENCE_PYTHON", "/opt/refvenv/bin/python")
SCRIPT = Path(__file__).with_name("reference.py")


def reference_timings(dataset, kind, params, batches=(3, 8), pixel_scale=None, mask_radius=3.5,
                      repeats=5, rectangular_mesh="bilinear", timeout=3600, python=REFERENCE_PYTHON):
    """Time the reference's JAX likelihood in a subprocess; returns the dict `reference.py
    --time-only` writes (keys: single{first_call_s, median_s, times_s}, vmap{"<b>": {first_call_s,
    median_batch_s, per_eval_s, times_s, values}}, loadavg_start/end, xla_flags, jax, ...).

    params: a list of {parameter path: value} dicts (our names, see reference.param_names).
    """
    with tempfile.TemporaryDirectory() as tmp:
        pfile = Path(tmp) / "params.json"
        ofile = Path(tmp) / "timing.json"
        pfile.write_text(json.dumps(list(params)))
        cmd = [python, str(SCRIPT), "--dataset", str(dataset), "--kind", kind, "--params", str(pfile),
               "--time-only", "--out", str(ofile), "--batches", ",".join(str(int(b)) for b in batches),
               "--repeats", str(int(repeats)), "--mask-radius", str(mask_radius),
               "--rectangular-mesh", rectangular_mesh]
        if pixel_scale is not None:
            cmd += ["--pixel-scale", str(pixel_scale)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"reference timing failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(ofile.read_text())
