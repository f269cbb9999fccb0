"""Parity with PyAutoLens: every kind at the production fiducial, at every recorded point."""

import pytest

from likelihood import KINDS
from tests.likelihood.parity import record_parity, recorded


def test_every_kind_has_a_record():
    assert [kind for kind in KINDS if not recorded(kind)] == []


@pytest.mark.parametrize("path", [path for kind in KINDS for path in recorded(kind)],
                         ids=lambda path: path.stem)
def test_parity_with_pyautolens(path):
    # The production sizes, compiled once per record file (Delaunay: ~40 s on 2 shared cores).
    record_parity(path)
