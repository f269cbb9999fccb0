"""The body of a model registration (`POST /v1/models`), from a dataset in any of its forms.

A directory of FITS files (`data.fits` or `image.fits`, `noise_map.fits`, `psf.fits`) is uploaded
as it is (multipart/form-data); an `.npz` file, a mapping of arrays or an object with `data`,
`noise_map` and `psf` attributes (a `likelihood.Imaging`) is sent as msgpack packed arrays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import msgpack
import numpy as np

from client.protocol import MSGPACK

ARRAYS = ("data", "noise_map", "psf")
# `POST /v1/models` fields a client's `register` takes among its keyword arguments.
SPEC_OPTIONS = ("mass", "priors", "fixed", "buckets")


def split_registration_options(options: Mapping[str, Any]) -> tuple[dict, dict]:
    """`register`'s keyword arguments: (spec fields, the client's own arguments)."""
    spec = {key: value for key, value in options.items() if key in SPEC_OPTIONS}
    return spec, {key: value for key, value in options.items() if key not in SPEC_OPTIONS}


def registration_request(dataset: Any, fields: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    """Body and headers registering `dataset` with the spec `fields` (kind, pixel_scale, ...:
    the service's `RegistrationSpec`; None values are left out, and `pixel_scale` defaults to
    the dataset's own where it has one)."""
    fields = {key: value for key, value in fields.items() if value is not None}
    if isinstance(dataset, str | Path) and Path(dataset).is_dir():
        return _fits_upload(Path(dataset), fields)
    arrays, pixel_scale = _arrays(dataset)
    if "pixel_scale" not in fields and pixel_scale is not None:
        fields["pixel_scale"] = pixel_scale
    body = {**fields, **{what: _pack(arrays[what]) for what in ARRAYS}}
    return msgpack.packb(body, use_bin_type=True), {"Content-Type": MSGPACK}


def _arrays(dataset: Any) -> tuple[Mapping[str, Any], float | None]:
    """The arrays of an `.npz` path, a mapping or an object, and its pixel scale if it has one."""
    if isinstance(dataset, str | Path):
        path = Path(dataset)
        if not path.is_file():
            raise ValueError(f"no dataset at {path}: give an .npz file or a FITS directory")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: np.asarray(npz[key]) for key in npz.files}
    elif isinstance(dataset, Mapping):
        arrays = dict(dataset)
    else:
        arrays = {what: getattr(dataset, what) for what in (*ARRAYS, "pixel_scale")
                  if hasattr(dataset, what)}
    missing = [what for what in ARRAYS if what not in arrays]
    if missing:
        raise ValueError(f"the dataset has no {', '.join(missing)}")
    pixel_scale = arrays.get("pixel_scale")
    return arrays, None if pixel_scale is None else float(pixel_scale)


def _pack(array: Any) -> dict[str, Any]:
    array = np.ascontiguousarray(array, dtype="<f8")
    return {"shape": list(array.shape), "dtype": "<f8", "data": array.tobytes()}


def _fits_upload(directory: Path, fields: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    names = {"data": ("data.fits", "image.fits"), "noise_map": ("noise_map.fits",),
             "psf": ("psf.fits",)}
    files = {}
    for what, candidates in names.items():
        path = next((directory / name for name in candidates if (directory / name).is_file()),
                    None)
        if path is None:
            raise ValueError(f"{directory} has no {' or '.join(candidates)}")
        files[what] = (path.name, path.read_bytes(), "application/fits")
    form = {key: value if isinstance(value, str) else json.dumps(value)
            for key, value in fields.items()}
    # httpx encodes the form; reading the request sends nothing.
    request = httpx.Request("POST", "http://localhost/", data=form, files=files)
    return request.read(), {"Content-Type": request.headers["content-type"]}
