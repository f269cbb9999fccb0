"""Probe (a)-(b): mask, over-sampling, blurring grid. Run with /opt/refvenv/bin/python from the repo root. Not a test.
Each check compares the reference's own arrays with an independent NumPy re-derivation."""
import sys, os
sys.path.insert(0, os.path.dirname(__file__))
from reference import *  # noqa  (imports autolens before jax)
import scipy.signal, scipy.ndimage

DS = "/work/shared/data/slacs/slacs2303+1422"
data, noise, psf, ps = load_arrays(DS, 0.05)
H, W = data.shape
print("shape", data.shape, "psf", psf.shape, "ps", ps)
ref = Reference(DS, "mge", pixel_scale=0.05)
im = ref.imaging
R = 3.5
# (a) mask
cy, cx = (H - 1) / 2, (W - 1) / 2
rows, cols = np.mgrid[:H, :W]
Y = (cy - rows) * ps; X = (cols - cx) * ps
r2 = Y**2 + X**2
theirs = ~np.asarray(im.mask)
print("(a) mask count", theirs.sum(), "strict<", (r2 < R**2).sum(), "<=", (r2 <= R**2).sum(),
      "match strict:", np.array_equal(theirs, r2 < R**2))
print("    pixels with r exactly == R:", np.isclose(np.sqrt(r2), R, atol=1e-12).sum())
# slim order
g = np.asarray(im.grid.array)
print("    slim order row-major:", np.allclose(g, np.stack([Y[theirs], X[theirs]], 1)))
# (b) over-sampling
oss = np.asarray(im.grids.lp.over_sample_size.array).astype(int)
r = np.sqrt(Y[theirs]**2 + X[theirs]**2)
mine = np.where(r <= 0.3, 4, np.where(r <= 0.6, 2, 1))
print("(b) sub sizes match (<=0.3:4, <=0.6:2, else 1):", np.array_equal(oss, mine), np.bincount(oss))
print("    pixels with r exactly 0.3 or 0.6:", np.isclose(r, 0.3, atol=1e-12).sum(), np.isclose(r, 0.6, atol=1e-12).sum())
osg = im.grids.lp.over_sampled
osg = np.asarray(osg.array if hasattr(osg, "array") else osg)
mine_sub = []
for (yc, xc), s in zip(np.stack([Y[theirs], X[theirs]], 1), mine):
    d = ps / s
    yo = yc + ps / 2 - d / 2 - d * np.arange(s)
    xo = xc - ps / 2 + d / 2 + d * np.arange(s)
    yy, xx = np.meshgrid(yo, xo, indexing="ij")
    mine_sub.append(np.stack([yy.ravel(), xx.ravel()], 1))
mine_sub = np.concatenate(mine_sub)
print("    over-sampled grid matches (per pixel, y descending outer, x ascending inner):", osg.shape,
      np.abs(osg - mine_sub).max())
print("    pixelization grid over_sample_size unique:", np.unique(np.asarray(im.grids.pixelization.over_sample_size.array)))
# blurring grid
bg = im.grids.blurring
bmask = ~np.asarray(bg.mask)
k = psf.shape[0]
dil = scipy.ndimage.binary_dilation(theirs, structure=np.ones(psf.shape, bool))
print("    blurring mask = dilation(mask, ones(psf)) minus mask:", np.array_equal(bmask, dil & ~theirs), bmask.sum())
print("    blurring over_sample_size:", np.unique(np.asarray(bg.over_sample_size.array)) if hasattr(bg, 'over_sample_size') else None)
bo = bg.over_sampled
bo = np.asarray(bo.array if hasattr(bo, "array") else bo)
print("    blurring over-sampled grid == pixel centres:", bo.shape, np.allclose(bo, np.stack([Y[bmask], X[bmask]], 1)))
np.savez("/tmp/probe_grids.npz", mask=theirs, oss=oss, bmask=bmask)
