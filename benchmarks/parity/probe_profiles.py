"""Probe (d)-(f): Isothermal, ExternalShear, Gaussian vs independent formulas. Run with /opt/refvenv/bin/python from the repo root."""
import sys, os
sys.path.insert(0, os.path.dirname(__file__))
from reference import *  # noqa
import scipy.signal
DS = "/work/shared/data/slacs/slacs2303+1422"
data, noise, psf, ps = load_arrays(DS, 0.05)
H, W = data.shape
cy, cx = (H - 1) / 2, (W - 1) / 2
rows, cols = np.mgrid[:H, :W]
Y = (cy - rows) * ps; X = (cols - cx) * ps
ref = Reference(DS, "mge", pixel_scale=0.05)
im = ref.imaging
mask = ~np.asarray(im.mask)
r = np.sqrt(Y[mask]**2 + X[mask]**2)
oss = np.asarray(im.grids.lp.over_sample_size.array).astype(int)
for t in (0.3, 0.6):
    sel = np.isclose(r, t, atol=1e-12)
    print("radius ~", t, "r-t:", (r[sel] - t), "sub:", oss[sel])
d2 = X**2 + Y**2
sel = np.isclose(np.sqrt(d2), 3.5, atol=1e-12)
for rr, cc in zip(rows[sel], cols[sel]):
    print("edge px", rr - cy, cc - cx, "d2-R2=", d2[rr, cc] - 3.5**2, "in mask:", mask[rr, cc])

# (d),(e) deflections
iso = al.mp.Isothermal(centre=(0.03, -0.02), ell_comps=(0.05, -0.03), einstein_radius=1.6)
sh = al.mp.ExternalShear(gamma_1=0.02, gamma_2=-0.01)
grid = im.grid
a = np.asarray(iso.deflections_yx_2d_from(grid=grid).array)
gy, gx = np.asarray(grid.array).T
def my_iso(gy, gx, c, e, b):
    fac = min(np.hypot(*e), 0.999)
    q = (1 - fac) / (1 + fac)
    phi = 0.5 * np.arctan2(e[0], e[1]) if (e[0] != 0 or e[1] != 0) else 0.0
    phi_deg = np.degrees(phi); phi_deg = phi_deg + 180 if phi_deg < -45 else phi_deg
    phi = np.radians(phi_deg)
    y, x = gy - c[0], gx - c[1]
    yp = y * np.cos(phi) - x * np.sin(phi); xp = x * np.cos(phi) + y * np.sin(phi)
    # einstein radius (intermediate-axis parameter) -> rescaled
    b_major = b  # PowerLaw? check below
    return q, phi, yp, xp
q, phi, yp, xp = my_iso(gy, gx, (0.03, -0.02), (0.05, -0.03), 1.6)
s = np.sqrt(1 - q**2)
psi = np.sqrt(q**2 * xp**2 + yp**2 + 1e-16)
for label, bres in [("b*2/(1+q)", 1.6 * 2 / (1 + q)), ("b/sqrt(q)", 1.6/np.sqrt(q)), ("b", 1.6), ("b*q... (1+q)/2 sqrt q", 1.6*np.sqrt(q)*2/(1+q))]:
    f = 2 * bres / (1 + q) * q / s  # rescaled = (3-2)/(1+q) * b_major
    ayp = f * np.arctanh(s * yp / psi); axp = f * np.arctan(s * xp / psi)
    ay = ayp * np.cos(phi) + axp * np.sin(phi); ax = axp * np.cos(phi) - ayp * np.sin(phi)
    print("iso", label, np.abs(np.stack([ay, ax], 1) - a).max())
print("iso einstein_radius_rescaled", float(iso.einstein_radius_rescaled()), "1/(1+q)*b", 1.6/(1+q), "q", q, float(iso.axis_ratio()))
ash = np.asarray(sh.deflections_yx_2d_from(grid=grid).array)
g1, g2 = 0.02, -0.01
print("shear: ax = g1 x + g2 y, ay = g2 x - g1 y:", np.abs(ash - np.stack([g2*gx - g1*gy, g1*gx + g2*gy], 1)).max())
# q=1 exact and r=0
iso0 = al.mp.Isothermal(centre=(0.0, 0.0), ell_comps=(0.0, 0.0), einstein_radius=1.6)
pts = al.Grid2DIrregular([[0.0, 0.0], [1.0, 0.5], [0.0, 1e-9]])
print("q=1 defl", np.asarray(iso0.deflections_yx_2d_from(grid=pts).array), "expected b*(y,x)/r at (1,0.5):", 1.6*np.array([1,0.5])/np.hypot(1,0.5))
iso1 = al.mp.Isothermal(centre=(0.0, 0.0), ell_comps=(0.05, -0.03), einstein_radius=1.6)
print("r=0 ellip defl", np.asarray(iso1.deflections_yx_2d_from(grid=pts).array)[0])
iso2 = al.mp.Isothermal(centre=(0.0, 0.0), ell_comps=(0.0, 1e-5), einstein_radius=1.6)
print("near-circ (series branch) q=", float(iso2.axis_ratio()), np.asarray(iso2.deflections_yx_2d_from(grid=pts).array)[1])
# jax path q=1 identical?
import jax.numpy as jnp
print("jax q=1:", np.asarray(iso0.deflections_yx_2d_from(grid=pts, xp=jnp).array if hasattr(iso0.deflections_yx_2d_from(grid=pts, xp=jnp), 'array') else iso0.deflections_yx_2d_from(grid=pts, xp=jnp)))
# angle examples
for e in [(0.05, -0.03), (-0.05, -0.03), (0.0, -0.1), (0.0, 0.0)]:
    p = al.mp.Isothermal(ell_comps=e)
    print("ell_comps", e, "q", float(p.axis_ratio()), "angle", float(p.angle()))
p = al.mp.Isothermal(ell_comps=(0.0, 0.9995))
print("clamp: ell (0,0.9995) q=", float(p.axis_ratio()), (1-0.999)/(1+0.999))

# (f) Gaussian
gs = al.lp_linear.Gaussian(centre=(0.01, -0.02), ell_comps=(0.05, -0.03), sigma=0.3)
img = np.asarray(gs.image_2d_from(grid=grid).array)
q, phi, yp, xp = my_iso(*np.asarray(grid.over_sampled.array if hasattr(grid.over_sampled,'array') else grid.over_sampled).T, (0.01, -0.02), (0.05, -0.03), 0)
vals = np.exp(-(q**2 * xp**2 + yp**2) / (2 * 0.3**2))
oss = np.asarray(im.grids.lp.over_sample_size.array).astype(int)
binned = np.add.reduceat(vals, np.concatenate([[0], np.cumsum(oss**2)[:-1]])) / oss**2
print("gauss exp(-(q^2 x'^2 + y'^2)/(2 s^2)) averaged over sub-pixels:", np.abs(binned - img).max(), img.max())
