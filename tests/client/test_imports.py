"""The client runs on a sampler machine with numpy, msgpack and httpx only."""

import subprocess
import sys

FORBIDDEN = ("jax", "jaxlib", "likelihood", "service", "scipy", "nnls")


def test_client_imports_no_jax_likelihood_or_service():
    code = (
        "import sys, client, client.samplers, client.gradients\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
