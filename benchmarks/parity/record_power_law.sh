#!/usr/bin/env bash
# Record the power-law parity fixtures, tests/data/parity_<dataset>_power_law_<kind>.json, with
# PyAutoLens 2026.10.26.1's PowerLaw (its JAX path), from the repository root:
#     REFERENCE_PYTHON=/tmp/refvenv/bin/python bash benchmarks/parity/record_power_law.sh [KIND ...]
# The interpreter is a separate venv (Python >= 3.12, `pip install autolens==2026.10.26.1`), never
# a dependency of lensserve. Vectors: benchmarks/parity/params_<dataset>_power_law_<kind>.json
# (slopes 2.0, 1.7, 2.4, 2.15). Kinds one after another: a pixelized reference takes GBs.
set -euo pipefail
python="${REFERENCE_PYTHON:-/opt/refvenv/bin/python}"
export XLA_FLAGS="${XLA_FLAGS:---xla_cpu_multi_thread_eigen=false}"  # see CONVENTIONS.md (l)
kinds=("${@:-mge rectangular delaunay}")
for kind in ${kinds[*]}; do
    "$python" benchmarks/parity/reference.py --dataset likelihood/data/default.npz --kind "$kind" \
        --mass power_law --params "benchmarks/parity/params_default_power_law_$kind.json" \
        --out "tests/data/parity_default_power_law_$kind.json"
    slacs=/work/shared/data/slacs/slacs2303+1422
    if [ -d "$slacs" ]; then
        "$python" benchmarks/parity/reference.py --dataset "$slacs" --pixel-scale 0.05 \
            --kind "$kind" --mass power_law \
            --params "benchmarks/parity/params_slacs2303_power_law_$kind.json" \
            --out "tests/data/parity_slacs2303_power_law_$kind.json"
    fi
done
