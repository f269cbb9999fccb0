"""Regularization matrices of source meshes."""

from likelihood.regularization.constant import (
    ConstantRegularization,
    lattice_regularization,
    log_det_regularization,
    regularization_matrix,
)

__all__ = [
    "ConstantRegularization",
    "lattice_regularization",
    "log_det_regularization",
    "regularization_matrix",
]
