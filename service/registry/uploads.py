"""Registration bodies (`POST /v1/models`): a spec and a dataset's arrays, read from the wire.

JSON or msgpack: a map of the `RegistrationSpec` fields plus `data`, `noise_map` and `psf`, each a
packed array as the log-evidence answers carry them (`service.wire`: shape, dtype `<f8`, raw
little-endian bytes; msgpack only) or a list of rows of numbers. multipart/form-data: the same
fields as form fields (`settings`, `priors`, `fixed` as JSON text) and the three arrays as FITS
files. Nothing is unpickled. Whether the arrays make a dataset is `likelihood`'s to say (the
registry checks them as `load_imaging` does); here only their form is checked.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
from pydantic import ValidationError

from service.schemas import RegistrationSpec
from service.wire import JSON, MSGPACK, WireError, media_type, unpack_array, validation_message

ARRAYS = ("data", "noise_map", "psf")
MULTIPART = "multipart/form-data"
_JSON_FIELDS = ("settings", "priors", "fixed", "buckets")


@dataclass(frozen=True)
class Registration:
    """A model to register: its spec and its dataset's arrays (float64, by `ARRAYS` name)."""

    spec: RegistrationSpec
    arrays: dict[str, np.ndarray]


def is_multipart(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == MULTIPART


def decode_registration(body: bytes, content_type: str | None, max_bytes: int) -> Registration:
    """A JSON or msgpack registration body; raises `WireError` (413, 415 or 422)."""
    kind = media_type(content_type)
    if kind is None:
        raise WireError(415, f"unsupported Content-Type {content_type!r}; use {JSON}, {MSGPACK} "
                        f"or {MULTIPART} (FITS files)")
    if kind == JSON:
        try:
            fields = json.loads(body)
        except ValueError as error:
            raise WireError(422, f"body is not valid JSON: {error}") from None
    else:
        fields = _unpack(body, max_bytes)
    if not isinstance(fields, dict):
        raise WireError(422, "body must be a map of the registration's fields")
    arrays = {what: _array(fields.pop(what, None), what, max_bytes) for what in ARRAYS}
    return Registration(_spec(fields), arrays)


def registration_from_form(form: Any) -> Registration:
    """A multipart registration: `form` is the parsed form (Starlette's `FormData`), the arrays
    FITS files (`data` or `image`, `noise_map`, `psf`), every other field text."""
    files = {key: value for key, value in form.multi_items() if hasattr(value, "file")}
    fields: dict[str, Any] = {key: value for key, value in form.multi_items()
                              if not hasattr(value, "file")}
    if "data" not in files and "image" in files:
        files["data"] = files.pop("image")
    unexpected = set(files) - set(ARRAYS)
    if unexpected:
        raise WireError(422, f"unexpected files {sorted(unexpected)}; send {', '.join(ARRAYS)}")
    missing = [what for what in ARRAYS if what not in files]
    if missing:
        raise WireError(422, f"missing FITS files: {', '.join(missing)}")
    for key in _JSON_FIELDS:
        if key in fields:
            try:
                fields[key] = json.loads(fields[key])
            except ValueError as error:
                raise WireError(422, f"{key} must be JSON text: {error}") from None
    arrays = {what: fits_image(files[what].file.read(), what) for what in ARRAYS}
    return Registration(_spec(fields), arrays)


def fits_image(raw: bytes, what: str) -> np.ndarray:
    """The first image in a FITS file's bytes, as float64."""
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(raw)) as hdus:
            for hdu in hdus:
                if hdu.data is not None:
                    return np.asarray(hdu.data, dtype=np.float64)
    except (OSError, ValueError, TypeError) as error:
        raise WireError(422, f"{what} is not a readable FITS file: {error}") from None
    raise WireError(422, f"{what}: the FITS file holds no image data")


def _spec(fields: dict[str, Any]) -> RegistrationSpec:
    try:
        return RegistrationSpec.model_validate(fields)
    except ValidationError as error:
        raise WireError(422, validation_message(error)) from None


def _unpack(body: bytes, max_bytes: int) -> Any:
    try:
        # Declared sizes are checked before anything is built: a small body cannot make a huge one.
        return msgpack.unpackb(body, raw=False, strict_map_key=True, ext_hook=_refuse_ext,
                               max_bin_len=max_bytes, max_str_len=4096, max_map_len=256,
                               max_array_len=max(2, max_bytes // 8))
    except WireError:
        raise
    except Exception as error:  # msgpack raises several unrelated types on bad input
        raise WireError(422, f"body is not valid msgpack: {str(error) or type(error).__name__}"
                        ) from None


def _refuse_ext(code: int, data: bytes) -> None:
    raise WireError(422, f"msgpack extension types are not accepted (got type {code})")


def _array(value: Any, what: str, max_bytes: int) -> np.ndarray:
    """`value`, a packed array or a list of rows of numbers, as a float64 array."""
    if value is None:
        raise WireError(422, f"{what} is missing: send data, noise_map and psf")
    if isinstance(value, dict):
        shape = value.get("shape")
        if isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape):
            declared = math.prod(shape) * 8
            if declared > max_bytes:
                raise WireError(413, f"{what} declares shape {shape}, {declared} bytes of "
                                f"float64; a registration may hold {max_bytes} (max_dataset_bytes)")
        return unpack_array(value, what)
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise WireError(422, f"{what} must be a packed array or a list of rows of numbers")
    for r, row in enumerate(value):
        for c, number in enumerate(row):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise WireError(422, f"{what}[{r}][{c}] is {number!r}, not a number")
    if len({len(row) for row in value}) > 1:
        raise WireError(422, f"{what} must be rectangular: its rows differ in length")
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        raise WireError(422, f"{what} holds an integer too large for a float64") from None
