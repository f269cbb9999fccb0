"""Re-derive the pixelized-source pipeline (rectangular / delaunay) from the reference's own objects.
Usage: /opt/refvenv/bin/python probe_mesh.py {rectangular|delaunay} [point_index]"""
import sys, os, json
sys.path.insert(0, os.path.dirname(__file__))
from reference import *  # noqa
import scipy.signal, scipy.optimize, scipy.spatial
kind = sys.argv[1]; ip = int(sys.argv[2]) if len(sys.argv) > 2 else 0
DS = "/work/shared/data/slacs/slacs2303+1422"
data, noise, psf, ps = load_arrays(DS, 0.05)
H_, W_ = data.shape
cy, cx = (H_ - 1) / 2, (W_ - 1) / 2
ref = Reference(DS, kind, pixel_scale=0.05)
im = ref.imaging
mask = ~np.asarray(im.mask)
P = json.load(open(f"benchmarks/parity/params_slacs2303_{kind}.json"))[ip]
terms, fit = ref.fit_terms(P)
print("terms", terms)
inv = fit.inversion
mapper = inv.linear_obj_list[-1]
print("linear objs", [type(o).__name__ for o in inv.linear_obj_list])
A = lambda x: np.asarray(x.array if hasattr(x, "array") else x)
interp = mapper.interpolator
dg = A(interp.data_grid)            # relocated traced pixel centres
mg = A(interp.mesh_grid)
print("data_grid", dg.shape, "mesh_grid", mg.shape)

# --- ray tracing at pixel centres (sub 1)
def tr(gy, gx, c, e):
    fac = min(np.hypot(*e), 0.999); q = (1 - fac) / (1 + fac)
    ang = np.degrees(0.5 * np.arctan2(e[0], e[1] if (e[0] or e[1]) else 1.0)); ang = ang + 180 if ang < -45 else ang
    phi = np.radians(ang); y, x = gy - c[0], gx - c[1]
    return q, phi, y*np.cos(phi) - x*np.sin(phi), x*np.cos(phi) + y*np.sin(phi)
def trace(g):
    gy, gx = g[:, 0], g[:, 1]
    e = (P["lens.mass.ell_comps_0"], P["lens.mass.ell_comps_1"]); b = P["lens.mass.einstein_radius"]
    q, phi, yp, xp = tr(gy, gx, (P["lens.mass.centre_0"], P["lens.mass.centre_1"]), e)
    s = np.sqrt(1 - q*q); psi = np.sqrt(q*q*xp*xp + yp*yp + 1e-16); f = 2*b/(1+q)*q/s
    ayp = f*np.arctanh(s*yp/psi); axp = f*np.arctan(s*xp/psi)
    ay = ayp*np.cos(phi) + axp*np.sin(phi); ax = axp*np.cos(phi) - ayp*np.sin(phi)
    g1, g2 = P["lens.shear.gamma_1"], P["lens.shear.gamma_2"]
    ay = ay + g2*gx - g1*gy; ax = ax + g1*gx + g2*gy
    return np.stack([gy - ay, gx - ax], 1)
grid = A(im.grid)
traced = trace(grid)
# --- border pixels: unmasked pixels with a clear line of masked pixels to the array edge in one of 4 directions
m2 = ~mask
rows, cols = np.nonzero(mask)
border = []
for k, (r, c) in enumerate(zip(rows, cols)):
    if m2[:r, c].all() or m2[r+1:, c].all() or m2[r, :c].all() or m2[r, c+1:].all():
        border.append(k)
border = np.array(border)
print("n border pixels", len(border), "matches reference:", np.array_equal(border, np.asarray(im.mask.derive_indexes.border_slim)))
# --- ellipse from traced border (PCA)
bg = traced[border]
o = bg.mean(0); dy = bg[:, 0] - o[0]; dx = bg[:, 1] - o[1]
X = np.stack([dx, dy], 1); C = X.T @ X / max(len(X) - 1, 1)
ev, evec = np.linalg.eigh(C); v = evec[:, -1]; phi = np.arctan2(v[1], v[0])
if (ev[-1] - ev[0]) / max(abs(ev).max(), 1e-12) <= np.sqrt(np.finfo(float).eps): phi = 0.0
c_, s_ = np.cos(phi), np.sin(phi)
a = np.abs(c_*dx + s_*dy).max() + 1e-12; b_ = np.abs(-s_*dx + c_*dy).max() + 1e-12
print("ellipse origin", o, "a,b", a, b_, "phi", phi)
def reloc(g):
    dy = g[:, 0] - o[0]; dx = g[:, 1] - o[1]
    xp_ = c_*dx + s_*dy; yp_ = -s_*dx + c_*dy
    qq = (xp_/a)**2 + (yp_/b_)**2; out = qq > 1
    sc = 1/np.sqrt(np.maximum(qq, 1 + 1e-12))
    x2, y2 = xp_*sc, yp_*sc
    mv = np.stack([o[0] + s_*x2 + c_*y2, o[1] + c_*x2 - s_*y2], 1)
    return np.where(out[:, None], mv, g), out
rg, out = reloc(traced)
print("relocated data grid: max|mine - ref|", np.abs(rg - dg).max(), "n relocated", out.sum())
Nsrc = mg.shape[0]
if kind == "rectangular":
    S = 35
    mu = rg.mean(0); scale = rg.std(0).min()
    kn = (rg - mu) / scale
    t = np.arange(1, len(kn) + 1) / (len(kn) + 1)
    u = np.stack([np.interp(kn[:, d], np.sort(kn[:, d]), t, left=0, right=1) for d in range(2)], 1)
    g = (S - 3) * u + 1
    ixd = np.clip(np.floor(g[:, 0]), 0, S - 2); iyd = np.clip(np.floor(g[:, 1]), 0, S - 2)
    tr_, tc = g[:, 0] - ixd, g[:, 1] - iyd
    idx = np.stack([(S - (ixd + 1)) * S + iyd, (S - (ixd + 1)) * S + iyd + 1, (S - ixd) * S + iyd, (S - ixd) * S + iyd + 1], 1).astype(int)
    w = np.stack([tr_*(1-tc), tr_*tc, (1-tr_)*(1-tc), (1-tr_)*tc], 1)
    M = np.zeros((len(rg), S*S))
    np.add.at(M, (np.repeat(np.arange(len(rg)), 4), idx.ravel()), w.ravel())
    used = np.nonzero(M.sum(0))[0]
    print("rows of 35x35 lattice receiving weight:", sorted(set(used // S)), "cols:", sorted(set(used % S))[:3], "...", sorted(set(used % S))[-3:])
    # neighbours / H
    lam = P["source.pixelization.coefficient"]
    Hm = np.zeros((S*S, S*S))
    for r in range(S):
        for c in range(S):
            i = r*S + c
            for rr, cc in ((r-1, c), (r+1, c), (r, c-1), (r, c+1)):
                if 0 <= rr < S and 0 <= cc < S:
                    Hm[i, i] += lam**2; Hm[i, rr*S+cc] -= lam**2
    Hm += 1e-8*np.eye(S*S)
    zeroed = np.array([r*S+c for r in range(S) for c in range(S) if r in (0, S-1) or c in (0, S-1)])
else:
    # Delaunay: vertices = traced image-plane mesh grid, relocated
    mesh_ip = ref.mesh_grid
    # overlay re-derivation
    ys = (cy - np.nonzero(mask)[0]) * ps; xs = (np.nonzero(mask)[1] - cx) * ps
    n = 39
    pso = ((ys.max() - ys.min()) + ps) / n, ((xs.max() - xs.min()) + ps) / n
    oy = ((n - 1) / 2 - np.arange(n)) * pso[0]; ox = (np.arange(n) - (n - 1) / 2) * pso[1]
    OY, OX = np.meshgrid(oy, ox, indexing="ij"); og = np.stack([OY.ravel(), OX.ravel()], 1)
    pr = (-og[:, 0] / ps + cy + 0.5).astype(int); pc = (og[:, 1] / ps + cx + 0.5).astype(int)
    keepo = mask[pr, pc]
    ov = og[keepo]
    th = np.linspace(0, 2*np.pi, 30, endpoint=False); rr = 3.5 + ps/2
    ov = np.vstack([ov, np.stack([rr*np.sin(th), rr*np.cos(th)], 1)])
    print("overlay pixel scale", pso, "inside", keepo.sum(), "mesh grid matches:", ov.shape == mesh_ip.shape and np.abs(ov - mesh_ip).max())
    print("vertex exactly at (0,0):", np.nonzero((mesh_ip == 0).all(1))[0])
    vt = trace(mesh_ip)
    vr, vout = reloc(vt)
    print("mesh vertices: max|mine - ref|", np.abs(vr - mg).max(), "n relocated vertices", vout.sum(), "of", len(vr))
    tri = scipy.spatial.Delaunay(vr)
    simp = tri.find_simplex(rg)
    M = np.zeros((len(rg), len(vr)))
    def bary(qpts, simp_idx):
        idx = np.full((len(qpts), 3), -1); w = np.zeros((len(qpts), 3))
        inside = simp_idx >= 0
        verts = tri.simplices[simp_idx[inside]]
        p0, p1, p2 = vr[verts[:, 0]], vr[verts[:, 1]], vr[verts[:, 2]]
        qq = qpts[inside]
        cr = lambda u, v: np.abs(u[:, 0]*v[:, 1] - u[:, 1]*v[:, 0])
        a0 = cr(p2 - p1, qq - p1); a1 = cr(p2 - p0, qq - p0); a2 = cr(p1 - p0, qq - p0)
        ssum = a0 + a1 + a2
        w[inside] = np.stack([a0, a1, a2], 1) / ssum[:, None]
        idx[inside] = verts
        nn = scipy.spatial.cKDTree(vr).query(qpts[~inside])[1]
        idx[~inside, 0] = nn; w[~inside, 0] = 1.0
        return idx, w
    idx, w = bary(rg, simp)
    print("data points outside hull:", (simp < 0).sum())
    for j in range(3):
        ok = idx[:, j] >= 0
        np.add.at(M, (np.nonzero(ok)[0], idx[ok, j]), w[ok, j])
    # ConstantSplit
    areas = np.zeros(len(vr))
    pts = vr[tri.simplices]
    ta = 0.5*np.abs((pts[:, 1, 0]-pts[:, 0, 0])*(pts[:, 2, 1]-pts[:, 0, 1]) - (pts[:, 1, 1]-pts[:, 0, 1])*(pts[:, 2, 0]-pts[:, 0, 0]))
    for k in range(3): np.add.at(areas, tri.simplices[:, k], ta/3)
    d = 0.5*np.sqrt(areas)
    sp = np.concatenate([np.stack([vr[:, 0]+d, vr[:, 1]], 1)[:, None], np.stack([vr[:, 0]-d, vr[:, 1]], 1)[:, None],
                         np.stack([vr[:, 0], vr[:, 1]+d], 1)[:, None], np.stack([vr[:, 0], vr[:, 1]-d], 1)[:, None]], 1).reshape(-1, 2)
    sidx, sw = bary(sp, tri.find_simplex(sp))
    lam = P["source.pixelization.coefficient"]
    G = np.zeros((len(sp), len(vr)))
    for j in range(3):
        ok = sidx[:, j] >= 0
        np.add.at(G, (np.nonzero(ok)[0], sidx[ok, j]), -sw[ok, j])
    G[np.arange(len(sp)), np.arange(len(sp)) // 4] += 1.0
    Hm = lam**2 * (G.T @ G) + 1e-8*np.eye(len(vr))
    print("split points outside hull:", (tri.find_simplex(sp) < 0).sum(), "of", len(sp))
    zeroed = np.arange(len(vr) - 30, len(vr))
Mref = np.asarray(mapper.mapping_matrix)
print("mapping matrix: max|mine - ref|", np.abs(M - Mref).max(), Mref.shape)
Href = np.asarray(inv.regularization_matrix)[-Nsrc:, -Nsrc:]
print("H: max|mine - ref|", np.abs(Hm - Href).max(), "max|H|", np.abs(Href).max(), "diag(ref)-diag(mine) sample", (np.diag(Href) - np.diag(Hm))[:3])
# full evidence
B = np.asarray(inv.operated_mapping_matrix)
nm = B.shape[1] - Nsrc
Bm = np.zeros((mask.sum(), Nsrc))
for j in range(Nsrc):
    img = np.zeros((H_, W_)); img[mask] = M[:, j]
    Bm[:, j] = scipy.signal.convolve(img, psf, mode="same")[mask]
print("blurred mesh mapping matrix: max|mine - ref| / max", np.abs(Bm - B[:, nm:]).max() / np.abs(B[:, nm:]).max())
Bfull = np.hstack([B[:, :nm], Bm])
d_ = A(im.data); sg = A(im.noise_map)
Bw = Bfull / sg[:, None]; F = Bw.T @ Bw; D = Bfull.T @ (d_ / sg**2)
F[np.arange(nm), np.arange(nm)] += 1e-3
Hfull = np.zeros_like(F); Hfull[nm:, nm:] = Hm
Q = F + Hfull
keep = np.setdiff1d(np.arange(F.shape[0]), nm + zeroed)
Qk = Q[np.ix_(keep, keep)]; L = np.linalg.cholesky(Qk)
sk, _ = scipy.optimize.nnls(L.T, np.linalg.solve(L, D[keep]), maxiter=200000)
s = np.zeros(F.shape[0]); s[keep] = sk
sref = np.asarray(inv.reconstruction)
print("zeroed exact in ref:", np.all(sref[nm + zeroed] == 0), "max|s-sref|/max", np.abs(s - sref).max() / np.abs(sref).max())
def terms_of(s):
    chi2 = np.sum(((d_ - Bfull @ s) / sg)**2)
    sr = s[nm:]; reg = sr @ Hm @ sr
    ld = lambda X: 2*np.sum(np.log(np.diag(np.linalg.cholesky(X))))
    ldq = ld(Q[nm:, nm:]); ldh = ld(Hm); nn = np.sum(np.log(2*np.pi*sg**2))
    return dict(chi2=chi2, reg=reg, ldQ=ldq, ldH=ldh, nn=nn, logev=-0.5*(chi2+reg+ldq-ldh+nn))
print("mine (exact NNLS):", terms_of(s))
print("mine with ref s  :", terms_of(sref))
print("ref jit log_evidence:", ref.log_evidence(P))
