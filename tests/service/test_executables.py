"""Executables that make host callbacks (the pixelized kinds') survive a restart: a second process
loads what the first compiled (`service.executables`), and its answers are the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: what a restarted service does.
PROGRAM = """
import json, sys
from pathlib import Path
from service.environment import set_default_environment
set_default_environment()
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from likelihood import ModelSettings, build_model, default_dataset
from service.executables import compile_batched
import dataclasses
dataset = dataclasses.replace(default_dataset(), mask_radius=1.0)
model = build_model(dataset, "delaunay", ModelSettings(lens_gaussians=2, delaunay_overlay=(11, 11)))
compiled = compile_batched(model.evidence_function, model.core, 2, len(model.parameter_names),
                           Path(sys.argv[1]))
points = model.reference_parameters + np.array([[0.0], [0.01]])
print(json.dumps({"source": compiled.source, "values": compiled.run(model.core, points).tolist(),
                  "memory": dataclasses.asdict(compiled.memory)}))
"""


def run_in_a_new_process(cache: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(cache)], cwd=REPOSITORY,
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(900)
def test_a_host_callback_executable_is_loaded_by_the_next_process(tmp_path):
    first = run_in_a_new_process(tmp_path)
    second = run_in_a_new_process(tmp_path)
    assert (first["source"], second["source"]) == ("compiled", "cache")
    assert len(list((tmp_path / "host-callbacks").glob("*.xla"))) == 1
    assert second["values"] == first["values"]  # the same executable: the same bits
    # XLA's memory analysis comes with the loaded executable as with the compiled one.
    assert second["memory"] == first["memory"]
    assert first["memory"]["batch"] == 2 * 12 * 8 and first["memory"]["temporaries"] > 0


@pytest.mark.timeout(900)
def test_a_corrupt_cache_entry_is_compiled_again(tmp_path):
    run_in_a_new_process(tmp_path)
    (entry,) = (tmp_path / "host-callbacks").glob("*.xla")
    entry.write_bytes(b"not an executable")
    assert run_in_a_new_process(tmp_path)["source"] == "compiled"
