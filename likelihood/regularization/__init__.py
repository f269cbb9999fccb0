"""Regularizations of source meshes: the interface and its implementations."""

from likelihood.regularization.constant import ConstantLattice
from likelihood.regularization.constant_split import ConstantSplit
from likelihood.regularization.regularization import Regularization, RegularizationTerms

__all__ = ["ConstantLattice", "ConstantSplit", "Regularization", "RegularizationTerms"]
