"""Reference log-evidence values from PyAutoLens 2026.10.26.1 (JAX path, float64).

Run ONLY with the separate reference interpreter, never as part of our package:

    /opt/refvenv/bin/python benchmarks/parity/reference.py \
        --dataset /work/shared/data/slacs/slacs2303+1422 --pixel-scale 0.05 \
        --kind mge --params benchmarks/parity/params_slacs2303_mge.json \
        --out tests/data/parity_slacs2303_mge.json [--time]

    # timing only (for our benchmark script, via subprocess):
    /opt/refvenv/bin/python benchmarks/parity/reference.py --dataset ... --kind mge \
        --params FILE.json --time-only --batches 3,8 --out timing.json

PyAutoLens is NOT a dependency of lensserve; this script drives the installed reference through its
public API to produce numbers our parity tests pin. No reference code is copied here.

The fiducial built here is the one documented in /work/shared/notes/pyautolens-reference.md and in
benchmarks/parity/CONVENTIONS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# The reference deadlocks in jit(vmap) on 2-core CPUs without this (see the notes); must be set
# before jax is imported (autolens imports jax).
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
# Keep the reference from grabbing all cores' worth of threads on the shared machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

for _var in ("PYAUTO_SMALL_DATASETS", "PYAUTO_TEST_MODE", "PYAUTO_DISABLE_JAX"):
    # These silently change the reference (e.g. SMALL_DATASETS -> 2 Gaussians, sub-size 2).
    if os.environ.get(_var) not in (None, "", "0"):
        raise SystemExit(f"{_var} is set; unset it to compute reference values")

import autofit as af  # noqa: E402

# autolens MUST be imported before jax, or float64 is never enabled (every log-evidence is NaN).
import autolens as al  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REFERENCE = "autolens " + al.__version__

KINDS = ("mge", "rectangular", "delaunay")

# Parameter names, in the order our parameter vectors are written; mapped to the model's own paths
# explicitly (never by position).
LENS_PARAMS = [
    "lens.bulge.centre_0",
    "lens.bulge.centre_1",
    "lens.bulge.ell_comps_0",
    "lens.bulge.ell_comps_1",
    "lens.mass.centre_0",
    "lens.mass.centre_1",
    "lens.mass.ell_comps_0",
    "lens.mass.ell_comps_1",
    "lens.mass.einstein_radius",
    "lens.shear.gamma_1",
    "lens.shear.gamma_2",
]
SOURCE_PARAMS = {
    "mge": [
        "source.bulge.centre_0",
        "source.bulge.centre_1",
        "source.bulge.ell_comps_0",
        "source.bulge.ell_comps_1",
    ],
    "rectangular": ["source.pixelization.coefficient"],
    "delaunay": ["source.pixelization.coefficient"],
}

# Fiducial settings (see CONVENTIONS.md).
MASK_RADIUS_DEFAULT = 3.5
OVERSAMPLE_SUB_SIZES = [4, 2, 1]
OVERSAMPLE_RADII = [0.3, 0.6]
OVERSAMPLE_CENTRE = (0.0, 0.0)
LENS_MGE_TOTAL = 60
LENS_MGE_PER_BASIS = 1
SOURCE_MGE_TOTAL = 20
RECT_SHAPE = (35, 35)
OVERLAY_SHAPE = (39, 39)
EDGE_POINTS = 30


MASSES = {"isothermal": "Isothermal", "power_law": "PowerLaw"}


def param_names(kind, mass="isothermal"):
    """Our vector order; the power law's slope follows the Einstein radius."""
    lens = list(LENS_PARAMS)
    if mass == "power_law":
        lens.insert(lens.index("lens.mass.einstein_radius") + 1, "lens.mass.slope")
    return lens + SOURCE_PARAMS[kind]


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------


def load_arrays(dataset, pixel_scale=None):
    """Return (data, noise_map, psf, pixel_scale) as float64 numpy arrays (PSF normalised to sum 1)."""
    p = Path(dataset)
    if p.suffix == ".npz":
        z = np.load(p)
        data = np.asarray(z["data"], dtype=np.float64)
        noise = np.asarray(z["noise_map"], dtype=np.float64)
        psf = np.asarray(z["psf"], dtype=np.float64)
        ps = float(z["pixel_scale"]) if pixel_scale is None else float(pixel_scale)
    else:
        from astropy.io import fits

        if pixel_scale is None:
            raise SystemExit("--pixel-scale is required for a FITS directory dataset")
        img = p / "image.fits"
        if not img.exists():
            img = p / "data.fits"
        data = np.asarray(fits.getdata(img), dtype=np.float64)
        noise = np.asarray(fits.getdata(p / "noise_map.fits"), dtype=np.float64)
        psf = np.asarray(fits.getdata(p / "psf.fits"), dtype=np.float64)
        ps = float(pixel_scale)
    psf = psf / psf.sum()
    return data, noise, psf, ps


def build_dataset(data, noise, psf, pixel_scale, mask_radius=MASK_RADIUS_DEFAULT):
    """Masked al.Imaging with the fiducial over-sampling (lp radial 4/2/1, pixelization 1)."""
    imaging = al.Imaging(
        data=al.Array2D.no_mask(values=data, pixel_scales=pixel_scale),
        noise_map=al.Array2D.no_mask(values=noise, pixel_scales=pixel_scale),
        psf=al.Convolver(kernel=al.Array2D.no_mask(values=psf, pixel_scales=pixel_scale)),
        use_normalized_psf=True,
    )
    mask = al.Mask2D.circular(
        shape_native=imaging.shape_native,
        pixel_scales=imaging.pixel_scales,
        radius=mask_radius,
    )
    imaging = imaging.apply_mask(mask=mask)
    over_sample_size = al.util.over_sample.over_sample_size_via_radial_bins_from(
        grid=imaging.grid,
        sub_size_list=OVERSAMPLE_SUB_SIZES,
        radial_list=OVERSAMPLE_RADII,
        centre_list=[OVERSAMPLE_CENTRE],
    )
    imaging = imaging.apply_over_sampling(
        over_sample_size_lp=over_sample_size,
        over_sample_size_pixelization=1,
    )
    return imaging


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


def delaunay_mesh_grid(imaging, mask_radius):
    image_mesh = al.image_mesh.Overlay(shape=OVERLAY_SHAPE)
    grid = image_mesh.image_plane_mesh_grid_from(mask=imaging.mask)
    n_inside = grid.shape[0]
    ps = imaging.pixel_scales[0]
    grid = al.image_mesh.append_with_circle_edge_points(
        image_plane_mesh_grid=grid,
        centre=imaging.mask.mask_centre,
        radius=mask_radius + ps / 2.0,
        n_points=EDGE_POINTS,
    )
    return grid, n_inside


def build_model(kind, mask_radius=MASK_RADIUS_DEFAULT, rectangular_mesh="bilinear", n_mesh=None,
                mass="isothermal"):
    lens_bulge = al.model_util.mge_model_from(
        mask_radius=mask_radius,
        total_gaussians=LENS_MGE_TOTAL,
        gaussian_per_basis=LENS_MGE_PER_BASIS,
    )
    lens = af.Model(
        al.Galaxy,
        redshift=0.5,
        bulge=lens_bulge,
        mass=getattr(al.mp, MASSES[mass]),
        shear=al.mp.ExternalShear,
    )
    if kind == "mge":
        source = af.Model(
            al.Galaxy,
            redshift=1.0,
            bulge=al.model_util.mge_model_from(
                mask_radius=mask_radius, total_gaussians=SOURCE_MGE_TOTAL
            ),
        )
    elif kind == "rectangular":
        mesh_cls = {
            "bilinear": al.mesh.RectangularBilinearAdaptDensity,
            "kernel": al.mesh.RectangularRTUAdaptDensity,
        }[rectangular_mesh]
        pixelization = af.Model(
            al.Pixelization,
            mesh=mesh_cls(shape=RECT_SHAPE),
            regularization=af.Model(al.reg.Constant),
        )
        source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)
    elif kind == "delaunay":
        pixelization = af.Model(
            al.Pixelization,
            mesh=al.mesh.Delaunay(pixels=n_mesh, zeroed_pixels=EDGE_POINTS),
            regularization=af.Model(al.reg.ConstantSplit),
        )
        source = af.Model(al.Galaxy, redshift=1.0, pixelization=pixelization)
    else:
        raise ValueError(kind)
    return af.Collection(galaxies=af.Collection(lens=lens, source=source))


def model_path_for(name):
    """Our name 'lens.mass.centre_0' -> the model path tuple
    ('galaxies', 'lens', 'mass', 'centre', 'centre_0')."""
    parts = name.split(".")
    out = ["galaxies"] + parts[:-1]
    last = parts[-1]
    if last.startswith("centre_"):
        out += ["centre", last]
    elif last.startswith("ell_comps_"):
        out += ["ell_comps", last]
    else:
        out += [last]
    return tuple(out)


def _our_name_for_path(path):
    """('galaxies','lens','bulge','profile_list','7','centre','centre_0') -> 'lens.bulge.centre_0'."""
    p = list(path)
    if p[0] != "galaxies":
        raise RuntimeError(f"unexpected model path {path}")
    p = p[1:]
    if "profile_list" in p:  # MGE basis: all Gaussians share one centre / ell_comps prior
        i = p.index("profile_list")
        p = p[:i] + p[i + 2:]
    if p[-2:] == ["regularization", "coefficient"]:
        p = p[:-2] + ["coefficient"]
    if len(p) >= 2 and p[-2] in ("centre", "ell_comps"):
        p = p[:-2] + [p[-1]]
    return ".".join(p)


def resolve_indices(model, kind, mass="isothermal"):
    """Index into the model's parameter vector for each of our names.

    The vector order is the model's unique priors ordered by id (`model.all_paths`, which groups all
    paths sharing one prior). Every path of each unique prior must reduce to the same one of our names,
    and every one of our names must be hit exactly once, so an ordering mistake is impossible.
    """
    names = param_names(kind, mass)
    groups = model.all_paths
    if len(groups) != model.prior_count or model.prior_count != len(names):
        raise RuntimeError(f"model has {model.prior_count} free parameters, expected {len(names)}")
    idx = {}
    for i, group in enumerate(groups):
        reduced = {_our_name_for_path(p) for p in group}
        if len(reduced) != 1:
            raise RuntimeError(f"prior {i} is shared by different names: {reduced}")
        (name,) = reduced
        if name not in names or name in idx:
            raise RuntimeError(f"prior {i} -> {name}: unknown or duplicate")
        idx[name] = i
    if set(idx) != set(names):
        raise RuntimeError(f"unmapped names: {set(names) - set(idx)}")
    return idx


def vector_from(params: dict, idx: dict):
    v = [None] * len(idx)
    for name, i in idx.items():
        v[i] = float(params[name])
    return v


# ---------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------


class Reference:
    """The fiducial reference for one dataset and kind."""

    def __init__(self, dataset, kind, pixel_scale=None, mask_radius=MASK_RADIUS_DEFAULT,
                 rectangular_mesh="bilinear", mass="isothermal"):
        self.dataset_path = str(dataset)
        self.kind = kind
        self.mass = mass
        self.mask_radius = float(mask_radius)
        self.rectangular_mesh = rectangular_mesh
        data, noise, psf, ps = load_arrays(dataset, pixel_scale)
        self.pixel_scale = ps
        self.imaging = build_dataset(data, noise, psf, ps, self.mask_radius)
        adapt_images = None
        self.n_mesh_inside = None
        n_mesh = None
        if kind == "delaunay":
            grid, n_inside = delaunay_mesh_grid(self.imaging, self.mask_radius)
            self.n_mesh_inside = n_inside
            n_mesh = grid.shape[0]
            adapt_images = al.AdaptImages(
                galaxy_name_image_plane_mesh_grid_dict={str(("galaxies", "source")): grid}
            )
            self.mesh_grid = np.asarray(grid.array if hasattr(grid, "array") else grid)
        self.model = build_model(kind, self.mask_radius, rectangular_mesh, n_mesh=n_mesh, mass=mass)
        self.idx = resolve_indices(self.model, kind, mass)
        self.settings = al.Settings()
        self.analysis = al.AnalysisImaging(
            dataset=self.imaging, adapt_images=adapt_images, settings=self.settings, use_jax=True
        )
        self._jit = None

    # -- settings record ------------------------------------------------------------------------
    def settings_record(self):
        s = self.settings
        rec = {
            "mask": {"kind": "circular", "radius": self.mask_radius, "centre": [0.0, 0.0]},
            "pixels_in_mask": int(self.imaging.mask.pixels_in_mask),
            "shape_native": list(self.imaging.shape_native),
            "psf_shape": list(self.imaging.psf.kernel.shape_native),
            "over_sample_lp": {
                "sub_size_list": OVERSAMPLE_SUB_SIZES,
                "radial_list": OVERSAMPLE_RADII,
                "centre": list(OVERSAMPLE_CENTRE),
            },
            "over_sample_pixelization": 1,
            "lens_light": f"mge_model_from(mask_radius={self.mask_radius}, total_gaussians="
                          f"{LENS_MGE_TOTAL}, gaussian_per_basis={LENS_MGE_PER_BASIS})",
            "lens_mass": f"{MASSES[self.mass]} + ExternalShear",
            "parameter_order": param_names(self.kind, self.mass),
            "model_vector_order": [_our_name_for_path(g[0]) for g in self.model.all_paths],
        }
        if self.kind == "mge":
            rec["source"] = (f"mge_model_from(mask_radius={self.mask_radius}, "
                             f"total_gaussians={SOURCE_MGE_TOTAL})")
        elif self.kind == "rectangular":
            name = {"bilinear": "RectangularBilinearAdaptDensity",
                    "kernel": "RectangularRTUAdaptDensity"}[
                self.rectangular_mesh]
            rec["source"] = f"{name}(shape={RECT_SHAPE}) + Constant"
        else:
            rec["source"] = (f"Overlay(shape={OVERLAY_SHAPE}) inside mask "
                             f"({self.n_mesh_inside} points) + "
                             f"{EDGE_POINTS} circle edge points at r=mask_radius+pixel_scale/2; "
                             f"Delaunay(pixels={self.n_mesh_inside + EDGE_POINTS}, "
                             f"zeroed_pixels={EDGE_POINTS})"
                             f" + ConstantSplit")
        for key in (
            "use_positive_only_solver", "use_edge_zeroed_pixels", "use_border_relocator",
            "no_regularization_add_to_curvature_diag_value", "log_det_method",
            "regularization_term_method", "positive_only_solver", "use_mixed_precision",
        ):
            try:
                val = getattr(s, key)
                if isinstance(val, (np.floating, np.integer, np.bool_)):
                    val = val.item()
                rec[key] = val if isinstance(val, (int, float, str, bool, type(None))) else repr(val)
            except Exception as e:  # pragma: no cover
                rec[key] = f"<error {type(e).__name__}>"
        return rec

    # -- evaluation -----------------------------------------------------------------------------
    def loglike_fn(self):
        model, analysis = self.model, self.analysis

        def f(vec):
            instance = model.instance_from_vector(vector=vec, ignore_assertions=True, xp=jnp)
            return analysis.log_likelihood_function(instance=instance)

        return f

    def jitted(self):
        if self._jit is None:
            self._jit = jax.jit(self.loglike_fn())
        return self._jit

    def vector(self, params):
        return vector_from(params, self.idx)

    def fit_terms(self, params):
        """Per-term values from the (non-jitted, JAX-array) FitImaging object."""
        vec = self.vector(params)
        instance = self.model.instance_from_vector(vector=vec, ignore_assertions=True, xp=jnp)
        fit = self.analysis.fit_from(instance=instance)
        terms = {}

        def fl(x):
            try:
                return float(np.asarray(x))
            except Exception as e:
                return f"<error {type(e).__name__}: {e}>"

        terms["chi_squared"] = fl(fit.chi_squared)
        terms["noise_normalization"] = fl(fit.noise_normalization)
        terms["log_likelihood"] = fl(fit.log_likelihood)
        terms["figure_of_merit"] = fl(fit.figure_of_merit)
        inv = fit.inversion
        if inv is not None:
            terms["regularization_term"] = fl(inv.regularization_term)
            terms["log_det_curvature_reg_matrix_term"] = fl(inv.log_det_curvature_reg_matrix_term)
            terms["log_det_regularization_matrix_term"] = fl(inv.log_det_regularization_matrix_term)
            terms["log_evidence"] = fl(fit.log_evidence)
            terms["total_linear_params"] = int(np.asarray(inv.reconstruction).shape[0])
        else:
            terms["log_evidence"] = None
        return terms, fit

    def log_evidence(self, params):
        return float(self.jitted()(jnp.asarray(self.vector(params))))


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def _block(x):
    return jax.block_until_ready(x)


def reference_timings(dataset, kind, params, batches=(3, 8), pixel_scale=None,
                      mask_radius=MASK_RADIUS_DEFAULT, repeats=5, rectangular_mesh="bilinear",
                      ref=None):
    """Time the reference's JAX likelihood.

    dataset: path (npz or FITS dir); params: list of parameter dicts (ours), cycled to fill batches.
    Returns {"single": {...}, "vmap": {"<b>": {...}}, ...}; seconds throughout.
    """
    if ref is None:
        ref = Reference(dataset, kind, pixel_scale=pixel_scale, mask_radius=mask_radius,
                        rectangular_mesh=rectangular_mesh)
    vecs = np.array([ref.vector(p) for p in params], dtype=np.float64)
    f = ref.loglike_fn()
    out = {"reference": REFERENCE, "kind": kind, "xla_flags": os.environ.get("XLA_FLAGS"),
           "loadavg_start": list(os.getloadavg()), "nproc": os.cpu_count(),
           "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}

    fj = jax.jit(f)
    t0 = time.perf_counter()
    _block(fj(jnp.asarray(vecs[0])))
    compile_single = time.perf_counter() - t0
    ts = []
    for r in range(repeats):
        v = jnp.asarray(vecs[r % len(vecs)])
        t0 = time.perf_counter()
        _block(fj(v))
        ts.append(time.perf_counter() - t0)
    out["single"] = {"first_call_s": compile_single, "median_s": float(np.median(ts)),
                     "times_s": ts}

    out["vmap"] = {}
    for b in batches:
        fv = jax.jit(jax.vmap(f))
        batch = jnp.asarray(np.array([vecs[i % len(vecs)] for i in range(b)]))
        t0 = time.perf_counter()
        vals = _block(fv(batch))
        first = time.perf_counter() - t0
        reps = max(1, min(repeats, 3))
        tb = []
        for _ in range(reps):
            t0 = time.perf_counter()
            _block(fv(batch))
            tb.append(time.perf_counter() - t0)
        med = float(np.median(tb))
        out["vmap"][str(b)] = {"first_call_s": first, "median_batch_s": med,
                               "per_eval_s": med / b, "times_s": tb,
                               "values": [float(v) for v in np.asarray(vals)]}
    out["loadavg_end"] = list(os.getloadavg())
    return out


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--pixel-scale", type=float, default=None)
    ap.add_argument("--mask-radius", type=float, default=MASK_RADIUS_DEFAULT)
    ap.add_argument("--kind", choices=KINDS, required=True)
    ap.add_argument("--rectangular-mesh", choices=("bilinear", "kernel"), default="bilinear")
    ap.add_argument("--mass", choices=tuple(MASSES), default="isothermal",
                    help="lens mass profile (+ ExternalShear); recorded as the record's `mass`")
    ap.add_argument("--params", required=True, help="JSON list of {model path: value} dicts")
    ap.add_argument("--out", default=None)
    ap.add_argument("--time", action="store_true", help="also time the reference's JAX likelihood")
    ap.add_argument("--time-only", action="store_true", help="only time; write the timing dict as JSON")
    ap.add_argument("--batches", default="3,8")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    params = json.loads(Path(args.params).read_text())
    if isinstance(params, dict):
        params = [params]
    batches = [int(b) for b in args.batches.split(",") if b]

    ref = Reference(args.dataset, args.kind, pixel_scale=args.pixel_scale,
                    mask_radius=args.mask_radius, rectangular_mesh=args.rectangular_mesh,
                    mass=args.mass)

    if args.time_only:
        timing = reference_timings(args.dataset, args.kind, params, batches=batches,
                                   repeats=args.repeats, ref=ref)
        if args.out:
            Path(args.out).write_text(json.dumps(timing, indent=2) + "\n")
        # The reference logs INFO lines to stdout; the result is the single last line, prefixed.
        print("REFERENCE_TIMINGS_JSON: " + json.dumps(timing), flush=True)
        return 0

    kind_label = args.kind if args.kind != "rectangular" or args.rectangular_mesh == "bilinear" \
        else "rectangular_kernel"
    result = {
        "reference": REFERENCE,
        "jax": jax.__version__,
        "dataset": args.dataset,
        "pixel_scale": ref.pixel_scale,
        "mask_radius": ref.mask_radius,
        "kind": kind_label,
        "mass": args.mass,
        "settings": ref.settings_record(),
        "points": [],
        "timing": {},
    }
    f = ref.jitted()
    for p in params:
        p = {k: float(p[k]) for k in param_names(args.kind, args.mass)}
        t0 = time.perf_counter()
        le = float(f(jnp.asarray(ref.vector(p))))
        t_jit = time.perf_counter() - t0
        terms, _ = ref.fit_terms(p)
        point = {"parameters": p, "log_evidence": le, "terms": terms, "eval_s_incl_compile": t_jit}
        print(json.dumps({**terms, "log_evidence_jit": le}), flush=True)
        result["points"].append(point)

    def write(result):
        text = json.dumps(result, indent=2)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(text + "\n")
        return text

    if args.time:
        if args.out:  # values first, so a long timing run never loses them
            write(result)
        result["timing"] = reference_timings(args.dataset, args.kind, params, batches=batches,
                                             repeats=args.repeats, ref=ref)
    text = write(result)
    if not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
