"""The physics of lensserve: pure JAX functions from lens-model parameters to log-evidence."""

from likelihood.dataset import DatasetError, Imaging, imaging_from_arrays, load_imaging
from likelihood.execution import Execution, execution_for
from likelihood.model import KINDS, LensModel, UnknownKindError, build_model
from likelihood.parameters import ParameterError
from likelihood.settings import ModelSettings
from likelihood.simulate import default_dataset, default_truth

__all__ = [
    "KINDS",
    "DatasetError",
    "Execution",
    "Imaging",
    "LensModel",
    "ParameterError",
    "ModelSettings",
    "UnknownKindError",
    "build_model",
    "default_dataset",
    "default_truth",
    "execution_for",
    "imaging_from_arrays",
    "load_imaging",
]
