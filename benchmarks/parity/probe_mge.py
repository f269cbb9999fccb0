"""MGE pipeline re-derivation from the reference's own objects (NumPy), term by term."""
import sys, os, json
sys.path.insert(0, os.path.dirname(__file__))
from reference import *  # noqa
import scipy.signal, scipy.optimize
DS = "/work/shared/data/slacs/slacs2303+1422"
data, noise, psf, ps = load_arrays(DS, 0.05)
H, W = data.shape
cy, cx = (H - 1) / 2, (W - 1) / 2
rows, cols = np.mgrid[:H, :W]
Y = (cy - rows) * ps; X = (cols - cx) * ps
ref = Reference(DS, "mge", pixel_scale=0.05)
im = ref.imaging
mask = ~np.asarray(im.mask)
bmask = ~np.asarray(im.grids.blurring.mask)
P = json.load(open("benchmarks/parity/params_slacs2303_mge.json"))[0]
terms, fit = ref.fit_terms(P)
print(terms)
inv = fit.inversion
B = np.asarray(inv.operated_mapping_matrix)
print("B shape", B.shape, "linear objs", [type(o).__name__ for o in inv.linear_obj_list])
# independent mapping matrix
oss = np.asarray(im.grids.lp.over_sample_size.array).astype(int)
osg = np.asarray(im.grids.lp.over_sampled.array)
starts = np.concatenate([[0], np.cumsum(oss**2)[:-1]])
def tr(gy, gx, c, e):
    fac = min(np.hypot(*e), 0.999); q = (1 - fac) / (1 + fac)
    ang = np.degrees(0.5 * np.arctan2(e[0], e[1] if (e[0] or e[1]) else 1.0)); ang = ang + 180 if ang < -45 else ang
    phi = np.radians(ang); y, x = gy - c[0], gx - c[1]
    return q, y*np.cos(phi) - x*np.sin(phi), x*np.cos(phi) + y*np.sin(phi)
def iso_defl(gy, gx, c, e, b):
    q, yp, xp = tr(gy, gx, c, e)
    fac = min(np.hypot(*e), 0.999); ang = np.degrees(0.5 * np.arctan2(e[0], e[1] if (e[0] or e[1]) else 1.0)); ang = ang + 180 if ang < -45 else ang
    phi = np.radians(ang)
    s2 = 1 - q*q; s = np.sqrt(s2); psi = np.sqrt(q*q*xp*xp + yp*yp + 1e-16)
    f = 2 * b / (1 + q) * q / s
    ayp = f * np.arctanh(s*yp/psi); axp = f*np.arctan(s*xp/psi)
    return ayp*np.cos(phi) + axp*np.sin(phi), axp*np.cos(phi) - ayp*np.sin(phi)
def trace(gy, gx):
    ay, ax = iso_defl(gy, gx, (P["lens.mass.centre_0"], P["lens.mass.centre_1"]), (P["lens.mass.ell_comps_0"], P["lens.mass.ell_comps_1"]), P["lens.mass.einstein_radius"])
    g1, g2 = P["lens.shear.gamma_1"], P["lens.shear.gamma_2"]
    ay = ay + g2*gx - g1*gy; ax = ax + g1*gx + g2*gy
    return gy - ay, gx - ax
def gauss(gy, gx, c, e, sig):
    q, yp, xp = tr(gy, gx, c, e)
    return np.exp(-(q*q*xp*xp + yp*yp)/(2*sig*sig))
log10s = lambda n: 10 ** np.linspace(np.log10(1e-4), np.log10(3.5), n)
cols_ = []
lc, le = (P["lens.bulge.centre_0"], P["lens.bulge.centre_1"]), (P["lens.bulge.ell_comps_0"], P["lens.bulge.ell_comps_1"])
sc, se = (P["source.bulge.centre_0"], P["source.bulge.centre_1"]), (P["source.bulge.ell_comps_0"], P["source.bulge.ell_comps_1"])
sy, sx = trace(osg[:, 0], osg[:, 1])
by, bx = Y[bmask], X[bmask]
bsy, bsx = trace(by, bx)
for sig in log10s(60):
    cols_.append((np.add.reduceat(gauss(osg[:,0], osg[:,1], lc, le, sig), starts)/oss**2, gauss(by, bx, lc, le, sig)))
for sig in log10s(20):
    cols_.append((np.add.reduceat(gauss(sy, sx, sc, se, sig), starts)/oss**2, gauss(bsy, bsx, sc, se, sig)))
Bm = np.zeros_like(B)
for j, (v, bv) in enumerate(cols_):
    img = np.zeros((H, W)); img[mask] = v; img[bmask] = bv
    Bm[:, j] = scipy.signal.convolve(img, psf, mode="same")[mask]
print("mapping matrix: max|B - mine| / max|B|:", np.abs(B - Bm).max() / np.abs(B).max())
# source traced over-sampled grid vs theirs
tg = fit.tracer.traced_grid_2d_list_from(grid=im.grids.lp)
print("traced grid(source plane) vs mine:", np.abs(np.asarray(tg[-1].over_sampled.array if hasattr(tg[-1], 'over_sampled') else tg[-1]) - np.stack([sy, sx],1)).max() if True else None)
d = np.asarray(im.data.array); sg = np.asarray(im.noise_map.array)
Bw = Bm / sg[:, None]
F = Bw.T @ Bw; D = Bm.T @ (d / sg**2)
Finv = np.asarray(inv.curvature_matrix)
print("F match (theirs has +1e-3 diag?):", np.abs(Finv - F).max(), "diag diff", np.unique(np.round(np.diag(Finv) - np.diag(F), 8)))
Q = F + 1e-3 * np.eye(F.shape[0])
# NNLS of 0.5 s^T Q s - D^T s: via cholesky  Q = L L^T -> min |L^T s - L^{-1} D|
L = np.linalg.cholesky(Q); s_n, _ = scipy.optimize.nnls(L.T, np.linalg.solve(L, D), maxiter=100000)
s_ref = np.asarray(inv.reconstruction)
print("reconstruction: max|s_ref - s_nnls|/max|s|", np.abs(s_ref - s_n).max() / np.abs(s_n).max(), "n zero ref", (s_ref == 0).sum(), (s_n == 0).sum())
for s, lab in ((s_n, "nnls"), (s_ref, "ref s")):
    model = Bm @ s; chi2 = np.sum(((d - model)/sg)**2); nn = np.sum(np.log(2*np.pi*sg**2))
    print(lab, "chi2", chi2, "noise_norm", nn, "logL", -0.5*(chi2+nn))
print("ref log_evidence (jit):", ref.log_evidence(P))
