"""Model settings: the user's vocabulary (the keys of a model's `settings` in lensserve.toml) for
everything that fixes a model's shapes.

Each component reads its own keys when it is made (e.g. `AdaptiveRectangular.from_settings`), and
keeps them as its own static fields; nothing below reads this flat class while tracing.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSettings:
    """The production fiducial by default: the reference system's production settings for the
    lens light (60 Gaussians), source MGE (20), rectangular mesh (35 x 35) and Delaunay overlay
    (39 x 39).

    lens_gaussians / source_gaussians: MGE sizes; mesh_shape: the adaptive rectangular source
    mesh; rectangular_transform: "rank" (PyAutoLens' RectangularBilinearAdaptDensity, piecewise
    constant in the lens parameters) or "kernel" (smooth kernel-density CDF); delaunay_overlay:
    the image-plane overlay grid shape whose in-mask points become Delaunay vertices;
    border_relocation: move traced points outside the traced mask border back onto it;
    mass: the lens mass profile (with external shear), "isothermal" or "power_law"
    (`mass.MASSES`; the power law adds `lens.mass.slope` after `lens.mass.einstein_radius`).
    """

    lens_gaussians: int = 60
    source_gaussians: int = 20
    mesh_shape: tuple[int, int] = (35, 35)
    rectangular_transform: str = "rank"
    delaunay_overlay: tuple[int, int] = (39, 39)
    border_relocation: bool = True
    mass: str = "isothermal"
