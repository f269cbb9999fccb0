"""The physics of lensserve: pure JAX functions from lens-model parameters to log-evidence."""

from likelihood.dataset import DatasetError, Imaging, imaging_from_arrays, load_imaging
from likelihood.model import KINDS, LensModel, UnknownKindError, build_model
from likelihood.settings import ModelSettings
from likelihood.simulate import default_dataset, default_truth

__all__ = [
    "KINDS",
    "DatasetError",
    "Imaging",
    "LensModel",
    "ModelSettings",
    "UnknownKindError",
    "build_model",
    "default_dataset",
    "default_truth",
    "imaging_from_arrays",
    "load_imaging",
]
