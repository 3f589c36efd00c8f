"""PDQ of turned, mirrored and cropped copies of a picture from one pass over its pixels.

PDQ blurs the luma plane with two box-filter passes along the rows and two along the
columns, then keeps 64x64 samples. All of that is linear and separable: the 64x64 grid is
``K_h @ Y @ K_w.T``, where row ``o`` of ``K_n`` (64 x n) is the one-dimensional kernel of
two `box1DFloat` passes read at decimation centre ``o``. Each kernel row is zero outside
about ``2 * window`` samples, and the centres are ``n / 64`` apart, so the whole product
costs about two multiply-adds per pixel: a fraction of one PDQ, which runs four filter
passes over every pixel.

The grids of the dihedral transforms follow without turning any pixels:

* a mirror of the picture is the picture read with the kernel rows reversed
  (``K[:, ::-1]``): that puts the decimation centres and the (asymmetric, for even
  windows) box windows exactly where PDQ of the mirrored picture puts them;
* a transpose swaps the roles of ``K_h`` and ``K_w``: its grid is the transpose of the
  grid computed with the same kernels (the filters commute).

So the four grids ``G[fy, fx] = K_h^(fy) @ Y @ (K_w^(fx)).T`` (``^(1)``: reversed rows) give
the eight dihedral hashes; a crop is the same product on the crop's pixels with the crop's
kernels. This is the same arithmetic as PDQ of the really turned (or cropped) picture,
only in another order and in float64 rather than float32 running sums: a bit flips only
where a DCT coefficient sits within rounding of the median (0-2 bits in practice,
tests/test_pdq_grid.py; docs/variants.md). It is *not* Meta's derived dihedral hashes
(``pdqhash.compute_dihedral``), which turn the plain grid and so sample the mirrored
picture one to three pixels off (32-86 bits off on fine textures).

Plain PDQ stays `vigie.signals.pdq_numba` (bit-exact with Meta's): this module only serves
the query variants.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np

from vigie.signals.pdq_types import DIHEDRAL_KINDS, PdqHash

__all__ = ["dihedral_grids", "hash_grid", "dihedral_hashes", "crop_hash"]

_MIN_HASHABLE_DIM = 5
_ZERO = PdqHash("0" * 64, 0)

#: Which grid and whether to transpose it, per dihedral kind: (fy, fx, transposed). Derived from
#: numpy's transforms: flipx = a[::-1], flipy = a[:, ::-1], rot90 = a.T[::-1] = (a[:, ::-1]).T, ...
_KIND_GRID = {
    "original": (0, 0, False),
    "flipx": (1, 0, False),
    "flipy": (0, 1, False),
    "rot180": (1, 1, False),
    "transpose": (0, 0, True),
    "rot90": (0, 1, True),
    "rot270": (1, 0, True),
    "transverse": (1, 1, True),
}


def _dct_matrix() -> np.ndarray:
    d = np.empty((16, 64))
    scale = math.sqrt(2.0 / 64.0)
    for i in range(16):
        for j in range(64):
            d[i, j] = scale * math.cos((math.pi / 2 / 64.0) * (i + 1) * (2 * j + 1))
    return d


_DCT = _dct_matrix()


@lru_cache(maxsize=256)
def _kernels(n: int, identity: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of K_n and of K_n reversed, sparse: (lo (2, 64), length (2, 64), weights (2, 64, L)): `_kernel_rows`
    (compiled; a crop's kernels are built for each new size, and numpy's two dozen small calls took 0.1 ms,
    as long as hashing a small crop), `_kernels_np` for a 64x64 picture."""
    if identity:
        return _kernels_np(n, identity)
    return _kernel_rows(n)


def _kernels_np(n: int, identity: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_kernels` in numpy: the reference `_kernel_rows` is tested against (tests/test_variants_fast.py).

    Built the way box1DFloat counts: output o averages samples [o - p2 + 1, o + p1] that exist; two passes
    make row o of K_n the average, over the samples k of centre c's window, of k's window."""
    if identity:  # PDQ takes a 64x64 picture as already blurred and decimated
        lo = np.tile(np.arange(64), (2, 1))
        lo[1] = 63 - lo[1]
        return lo.astype(np.int64), np.ones((2, 64), np.int64), np.ones((2, 64, 1))
    win = (n + 127) // 128
    half = (win + 2) // 2
    p1, p2 = half - 1, win - half + 1
    length = 2 * win - 1
    # decimateFloat's centres, in double as the C++ computes them
    c = (((np.arange(64) + 0.5) * n) / 64).astype(np.int64)
    a, b = np.maximum(0, c - p2 + 1), np.minimum(n, c + p1 + 1)  # first pass: centre c's window [a, b)
    k = a[:, None] + np.arange(win)[None, :]                    # its samples (masked past b)
    valid = k < b[:, None]
    ka, kb = np.maximum(0, k - p2 + 1), np.minimum(n, k + p1 + 1)  # second pass: each sample's window
    v = np.where(valid, 1.0 / (b - a)[:, None] / np.maximum(1, kb - ka), 0.0)
    s, e = ka[:, 0], np.minimum(n, b - 1 + p1 + 1)               # the support [s, e) of row o
    # row o restricted to its support: a difference array over [s, s + length], summed
    # (np.bincount adds in the order np.add.at does, element by element: the same sums, without ufunc.at's cost)
    rows = np.repeat(np.arange(64), win) * (length + 1)
    at = np.concatenate([rows + (ka - s[:, None]).ravel(), rows + np.minimum(kb - s[:, None], length).ravel()])
    diff = np.bincount(at, np.concatenate([v.ravel(), -v.ravel()]), 64 * (length + 1)).reshape(64, length + 1)
    row = np.cumsum(diff[:, :length], axis=1)
    ln = e - s
    t = np.arange(length)[None, :]
    row = np.where(t < ln[:, None], row, 0.0)
    lo = np.stack([s, n - e])
    # the same kernel read from the other end (PDQ of the mirrored picture): weight t of row o is row[o, ln - 1 - t]
    back = np.take_along_axis(row, np.clip(ln[:, None] - 1 - t, 0, length - 1), axis=1)
    wts = np.stack([row, np.where(t < ln[:, None], back, 0.0)])
    return lo.astype(np.int64), np.stack([ln, ln]).astype(np.int64), wts


@lru_cache(maxsize=256)
def _feeds(n: int, identity: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K_n inverted: for each input line i and kernel set (plain, reversed), the outputs it feeds and with what
    weight: (outputs (2, n, F), weights (2, n, F), count (2, n)); compiled (`_feed_rows`) but for 64x64."""
    if identity:
        return _feeds_np(n, identity)
    return _feed_rows(n, *_kernels(n, identity))


def _feeds_np(n: int, identity: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_feeds` in numpy (the reference `_feed_rows` is tested against)."""
    lo, ln, wts = _kernels_np(n, identity)
    m_, o_, t_ = np.nonzero(np.arange(wts.shape[2])[None, None, :] < ln[:, :, None])
    i_ = lo[m_, o_] + t_
    w_ = wts[m_, o_, t_]
    order = np.lexsort((o_, i_, m_))
    m_, o_, i_, w_ = m_[order], o_[order], i_[order], w_[order]
    cnt = np.bincount(m_ * n + i_, minlength=2 * n).reshape(2, n).astype(np.int64)
    f = max(1, int(cnt.max()))
    start = np.concatenate(([0], np.cumsum(cnt.ravel())[:-1]))
    rank = np.arange(m_.size) - start[m_ * n + i_]
    idx = np.zeros((2, n, f), np.int64)
    wgt = np.zeros((2, n, f))
    idx[m_, i_, rank] = o_
    wgt[m_, i_, rank] = w_
    return idx, wgt, cnt


@numba.njit(cache=True, nogil=True)
def _kernel_rows(n):  # pragma: no cover - jitted
    """`_kernels_np(n, False)` compiled, the same float64 operations in the same order (the difference array
    filled as np.bincount fills it: every window start in (o, sample) order, then every window end; then
    summed along each row as np.cumsum does), so the same weights to the last bit."""
    win = (n + 127) // 128
    half = (win + 2) // 2
    p1 = half - 1
    p2 = win - half + 1
    length = 2 * win - 1
    s = np.empty(64, np.int64)
    e = np.empty(64, np.int64)
    diff = np.zeros((64, length + 1))
    for sign in range(2):
        for o in range(64):
            c = np.int64(((o + 0.5) * n) / 64)
            a = max(0, c - p2 + 1)
            b = min(n, c + p1 + 1)
            s[o] = max(0, a - p2 + 1)
            e[o] = min(n, b - 1 + p1 + 1)
            for j in range(win):
                k = a + j
                if k >= b:
                    continue  # np.bincount adds 0.0 there: no change to any sum
                ka = max(0, k - p2 + 1)
                kb = min(n, k + p1 + 1)
                v = 1.0 / (b - a) / max(1, kb - ka)
                if sign == 0:
                    diff[o, ka - s[o]] += v
                else:
                    diff[o, min(kb - s[o], length)] += -v
    lo = np.empty((2, 64), np.int64)
    ln = np.empty((2, 64), np.int64)
    wts = np.zeros((2, 64, length))
    for o in range(64):
        m = e[o] - s[o]
        lo[0, o] = s[o]
        lo[1, o] = n - e[o]
        ln[0, o] = m
        ln[1, o] = m
        acc = 0.0
        for t in range(length):
            acc += diff[o, t]
            if t < m:
                wts[0, o, t] = acc
        for t in range(m):
            wts[1, o, t] = wts[0, o, m - 1 - t]
    return lo, ln, wts


@numba.njit(cache=True, nogil=True)
def _feed_rows(n, lo, ln, wts):  # pragma: no cover - jitted
    """`_feeds_np` compiled: for each kernel set and input line, the outputs it feeds in increasing order (as
    the numpy version's sort by set, line, output leaves them) and their weights."""
    cnt = np.zeros((2, n), np.int64)
    for m in range(2):
        for o in range(64):
            for t in range(ln[m, o]):
                cnt[m, lo[m, o] + t] += 1
    f = max(1, cnt.max())
    idx = np.zeros((2, n, f), np.int64)
    wgt = np.zeros((2, n, f))
    pos = np.zeros((2, n), np.int64)
    for m in range(2):
        for o in range(64):
            for t in range(ln[m, o]):
                i = lo[m, o] + t
                idx[m, i, pos[m, i]] = o
                wgt[m, i, pos[m, i]] = wts[m, o, t]
                pos[m, i] += 1
    return idx, wgt, cnt


@numba.njit(cache=True, nogil=True)
def _grids(src, y0, y1, x0, x1, rlo, rln, rw, nr, cidx, cwt, ccnt, nc):  # pragma: no cover - jitted
    """out[fy, fx] = K_h^(fy) @ luma(src[y0:y1, x0:x1]) @ (K_w^(fx)).T, for fy < nc and fx < nr.

    Columns first, one line at a time: each line is added (a contiguous multiply-add, SIMD) into the one or
    two output rows whose kernels cover it; the rows (64 per set) are then reduced along their length.
    (Making the shared downscaled copy in this same pass was measured slower than a pass of its own.)"""
    hc = y1 - y0
    wc = x1 - x0
    acc = np.zeros((nc, 64, wc), dtype=np.float32)
    line = np.empty(wc, dtype=np.float32)
    for i in range(hc):
        px = src[y0 + i]
        if src.ndim == 3:
            for j in range(wc):
                # pdqhash's luma (0.299 R + 0.587 G + 0.114 B) in integers: exact, and SIMD-friendly; the
                # scale by 1/1000 is done on the output grids
                line[j] = np.float32(np.int32(px[x0 + j, 0]) * 299 + np.int32(px[x0 + j, 1]) * 587
                                     + np.int32(px[x0 + j, 2]) * 114)
        else:
            for j in range(wc):
                line[j] = px[x0 + j] * np.float32(1000.0)
        for fy in range(nc):
            for k in range(ccnt[fy, i]):
                a = acc[fy, cidx[fy, i, k]]
                wgt = np.float32(cwt[fy, i, k])
                for j in range(wc):
                    a[j] += wgt * line[j]
    out = np.zeros((nc, nr, 64, 64))
    for fy in range(nc):
        for fx in range(nr):
            for p in range(64):
                a = acc[fy, p]
                for o in range(64):
                    lo = rlo[fx, o]
                    s = 0.0
                    for t in range(rln[fx, o]):
                        s += rw[fx, o, t] * a[lo + t]
                    out[fy, fx, p, o] = s / 1000.0
    return out


def dihedral_grids(src: np.ndarray, box: tuple[int, int, int, int] | None = None, *,
                   mirrors: bool = True) -> np.ndarray:
    """PDQ's 64x64 grids of the picture (or of `box` = (y0, y1, x0, x1) inside it): (2, 2, 64, 64) with the
    mirror combinations [fy, fx] when `mirrors`, else (1, 1, 64, 64). `src` is HxWx3 uint8 or an HxW
    float32 luma plane. The box must be at least 5 pixels a side."""
    h, w = src.shape[:2]
    y0, y1, x0, x1 = box if box is not None else (0, h, 0, w)
    hc, wc = y1 - y0, x1 - x0
    ident = hc == 64 and wc == 64
    rlo, rln, rw = _kernels(wc, ident)
    cidx, cwt, ccnt = _feeds(hc, ident)
    n = 2 if mirrors else 1
    if src.dtype != np.uint8 and src.dtype != np.float32:
        src = src.astype(np.float32)
    return _grids(src, y0, y1, x0, x1, rlo, rln, rw, n, cidx, cwt, ccnt, n)


def _quality(a: np.ndarray) -> int:
    """pdqImageDomainQualityMetric on a float32 grid, in numpy: the reference `_qualities` is tested against."""
    hundred, d255 = np.float32(100.0), np.float32(255.0)
    dy = (((a[:-1] - a[1:]) * hundred) / d255).astype(np.int64)
    dx = (((a[:, :-1] - a[:, 1:]) * hundred) / d255).astype(np.int64)
    return min(100, int((np.abs(dy).sum() + np.abs(dx).sum()) // 90))


@numba.njit(cache=True, nogil=True)
def _qualities(g):  # pragma: no cover - jitted
    """`_quality` of each grid of g (n, 64, 64) float32 in one call: the same float32 operations, truncated
    and summed as numpy does (four numpy evaluations cost half of what hashing the eight grids costs)."""
    out = np.zeros(g.shape[0], np.int64)
    hundred, d255 = np.float32(100.0), np.float32(255.0)
    for k in range(g.shape[0]):
        a = g[k]
        total = 0
        for i in range(63):
            for j in range(64):
                total += abs(np.int64(((a[i, j] - a[i + 1, j]) * hundred) / d255))
        for i in range(64):
            for j in range(63):
                total += abs(np.int64(((a[i, j] - a[i, j + 1]) * hundred) / d255))
        out[k] = min(100, total // 90)
    return out


def hash_grid(grid: np.ndarray) -> PdqHash:
    """PDQ hash of a 64x64 grid: 16x16 DCT corner, one bit per coefficient above the median
    (python-threatexchange's hex layout, as `pdq_numba`)."""
    b = (_DCT @ np.asarray(grid, dtype=np.float64) @ _DCT.T).ravel()
    med = np.partition(b, 127)[127]  # Torben's (n + 1) / 2-th smallest
    bits = (b > med).astype(np.uint8)
    hexed = np.packbits(bits.reshape(32, 8), axis=1, bitorder="little")[::-1, 0].tobytes().hex()
    return PdqHash(hexed, int(_qualities(np.ascontiguousarray(grid, dtype=np.float32)[None])[0]))


def _too_small(h: int, w: int) -> bool:
    return h < _MIN_HASHABLE_DIM or w < _MIN_HASHABLE_DIM


def dihedral_hashes(src: np.ndarray, box: tuple[int, int, int, int] | None = None) -> dict[str, PdqHash]:
    """The eight dihedral hashes (DIHEDRAL_KINDS order) of the picture or of `box` inside it, each within a few
    bits (usually none) of PDQ of the really turned picture."""
    h, w = src.shape[:2]
    y0, y1, x0, x1 = box if box is not None else (0, h, 0, w)
    if _too_small(y1 - y0, x1 - x0):
        return {k: _ZERO for k in DIHEDRAL_KINDS}
    return _hashes_of(dihedral_grids(src, (y0, y1, x0, x1)))


def _hashes_of(g: np.ndarray) -> dict[str, PdqHash]:
    """The eight hashes of the four mirror grids `g` (2, 2, 64, 64), as `hash_grid` of each (transposed where
    the kind is): the eight DCTs in one stacked product, the medians in one partition, and the quality once
    per grid (a transpose only swaps the grid's vertical and horizontal differences: the same sum)."""
    kinds = DIHEDRAL_KINDS
    stack = np.empty((len(kinds), 64, 64))
    for i, k in enumerate(kinds):
        fy, fx, tr = _KIND_GRID[k]
        stack[i] = g[fy, fx].T if tr else g[fy, fx]
    b = np.matmul(np.matmul(_DCT, stack), _DCT.T).reshape(len(kinds), 256)
    med = np.partition(b, 127, axis=1)[:, 127:128]
    bits = (b > med).astype(np.uint8).reshape(len(kinds), 32, 8)
    packed = np.packbits(bits, axis=2, bitorder="little")[:, ::-1, 0]
    q4 = _qualities(np.ascontiguousarray(g, dtype=np.float32).reshape(4, 64, 64)).reshape(2, 2)
    quality = {(fy, fx): int(q4[fy, fx]) for fy in range(2) for fx in range(2)}
    out = {}
    for i, k in enumerate(kinds):
        fy, fx, _ = _KIND_GRID[k]
        out[k] = PdqHash(packed[i].tobytes().hex(), quality[fy, fx])
    return out


def crop_hash(src: np.ndarray, box: tuple[int, int, int, int]) -> PdqHash:
    """PDQ of `src[y0:y1, x0:x1]` without copying or filtering the crop: one pass over its pixels."""
    y0, y1, x0, x1 = box
    if _too_small(y1 - y0, x1 - x0):
        return _ZERO
    return hash_grid(dihedral_grids(src, box, mirrors=False)[0, 0])
