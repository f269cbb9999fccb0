"""`lensserve evaluate --mass power_law`: the power-law model in process, its slope a parameter."""

import json
import math

from service.cli import main


def test_evaluate_a_power_law(tmp_path, capsys):
    assert main(["evaluate", "--mask-radius", "1.6", "--mass", "power_law", "--gradient"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert math.isfinite(result["log_evidence"])
    names = list(result["gradient"])
    assert names[names.index("lens.mass.einstein_radius") + 1] == "lens.mass.slope"
    assert all(math.isfinite(value) for value in result["gradient"].values())


def test_an_isothermal_model_has_no_slope(tmp_path, capsys):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"lens.mass.slope": 2.0}))
    assert main(["evaluate", "--mask-radius", "1.6", "--params", str(params)]) == 2
    assert "unknown parameters: lens.mass.slope" in capsys.readouterr().err
