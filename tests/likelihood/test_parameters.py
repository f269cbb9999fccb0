"""Every kind's parameters: PyAutoLens model paths, the lens's then the source's, each with a
prior and a reference value."""

import pytest

from likelihood import KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_are_the_lens_then_the_source(small_models, kind):
    model = small_models(kind).model
    names = model.parameter_names
    lens = [name for name in names if name.startswith("lens.")]
    assert names[:11] == tuple(lens) and "lens.mass.einstein_radius" in lens
    assert all(name.startswith("source.") for name in names[len(lens):])
    assert len(set(names)) == len(names) == len(model.priors) == len(model.reference_parameters)
    if "source.pixelization.coefficient" in names:
        assert names[-1] == "source.pixelization.coefficient"
