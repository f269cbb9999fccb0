"""Frozen dataclasses as pytrees: array fields are leaves, the fields that fix shapes are static.

A model's dataset-dependent arrays (data, noise, PSF, coordinates) are leaves, so a compiled
program takes them as arguments and serves any dataset of the same shapes; its integer and boolean
geometry (masks, pixel indices, groupings, held columns) and settings are static: they fix the
program. equinox's `field(static=True)` does the same; this is the few lines of it we need.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np


class Static:
    """A static field's value in a treedef. Two treedefs are equal when their static values are,
    so arrays compare by content (identity first: the common case, a model against itself)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __eq__(self, other) -> bool:
        if not isinstance(other, Static):
            return NotImplemented
        a, b = self.value, other.value
        if a is b:
            return True
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                    and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b))
        return bool(a == b)

    def __hash__(self) -> int:
        # Shape and dtype only: cheap, and equal values still hash equally.
        value = self.value
        return hash((value.shape, value.dtype.str)) if isinstance(value, np.ndarray) else hash(value)


def pytree_dataclass(*, static: tuple[str, ...] = ()):
    """Register a dataclass as a pytree whose `static` fields go in the treedef."""

    def register(cls):
        names = tuple(field.name for field in dataclasses.fields(cls))
        unknown = set(static) - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
        children = tuple(name for name in names if name not in static)

        def flatten(node):
            return (tuple(getattr(node, name) for name in children),
                    tuple(Static(getattr(node, name)) for name in static))

        def unflatten(aux, leaves):
            node = object.__new__(cls)  # no __init__/__post_init__: leaves may be tracers
            for name, value in zip(children, leaves, strict=True):
                object.__setattr__(node, name, value)
            for name, value in zip(static, aux, strict=True):
                object.__setattr__(node, name, value.value)
            return node

        jax.tree_util.register_pytree_node(cls, flatten, unflatten)
        return cls

    return register
