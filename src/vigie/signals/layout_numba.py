"""The per-line scans of border and region detection (`vigie.signals.variants`), compiled.

Region detection asks, for every box of a recursive XY-cut, which rows and columns are one
colour and where the colour jumps across a whole line. In numpy each question is a few
passes over the box plus a median per candidate line (a sort): tens of milliseconds per
picture, more than all its PDQ hashes. Here each is one pass, with the same decisions
(same thresholds, same medians), so the detected boxes are the same.

`shrink` is the shared downscaled copy both detectors work on: a box average like Pillow's
`Image.reduce`, from the array as it is (no conversion to a Pillow image first).
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)

#: Pixels this far apart in a flat line differ by at most 2 x tol too (as neighbours do): a smooth gradient,
#: which has no rough neighbour pair, is ruled out by these pairs without its median being taken.
LONG_STEP = 16


def shrink(rgb: np.ndarray, f: int) -> np.ndarray:
    """Box average of HxWx3 (uint8 or int16, values 0..255) over f x f blocks (edge blocks: the pixels they
    have), as int16, rounded half up. Output ceil(H / f) x ceil(W / f).

    The f rows of a block are first added down the columns (contiguous, SIMD), then across."""
    return _shrink(np.ascontiguousarray(rgb), int(f))


@_jit
def _shrink(rgb, f):  # pragma: no cover - jitted
    h, w = rgb.shape[0], rgb.shape[1]
    sh, sw = (h + f - 1) // f, (w + f - 1) // f
    flat = rgb.reshape(h, 3 * w)
    rows = np.zeros(3 * w, dtype=np.int32)
    out = np.empty((sh, sw, 3), dtype=np.int16)
    for by in range(sh):
        rows[:] = 0
        y1 = min(h, by * f + f)
        for y in range(by * f, y1):
            r = flat[y]
            for k in range(3 * w):
                rows[k] += r[k]
        block_row(rows, y1 - by * f, f, w, out[by])
    return out


@_jit
def block_row(rows, ny, f, w, out):  # pragma: no cover - jitted
    """out[bx, c] = rounded mean of the f-wide blocks of `rows` (3 * w column sums of ny lines), half up.

    Blocks are summed by adding the f columns of each block one offset at a time (contiguous, SIMD), then
    divided by a float reciprocal corrected to the exact quotient (integer division is slow)."""
    sw = out.shape[0]
    full = w // f
    sums = np.zeros(3 * sw, dtype=np.int64)
    for k in range(f):
        for b in range(full):
            base = 3 * (b * f + k)
            sums[3 * b] += rows[base]
            sums[3 * b + 1] += rows[base + 1]
            sums[3 * b + 2] += rows[base + 2]
    for x in range(full * f, w):
        sums[3 * full] += rows[3 * x]
        sums[3 * full + 1] += rows[3 * x + 1]
        sums[3 * full + 2] += rows[3 * x + 2]
    cnt = ny * f
    inv = 1.0 / cnt
    flat = out.reshape(-1) if out.flags.c_contiguous else out.copy().reshape(-1)
    for b in range(3 * full):
        flat[b] = _round_div(sums[b], cnt, inv)
    if full < sw:
        cnt = ny * (w - full * f)
        inv = 1.0 / cnt
        for c in range(3):
            flat[3 * full + c] = _round_div(sums[3 * full + c], cnt, inv)
    if not out.flags.c_contiguous:
        for b in range(sw):
            for c in range(3):
                out[b, c] = flat[3 * b + c]


@_jit
def _round_div(t, cnt, inv):  # pragma: no cover - jitted
    """(t + cnt // 2) // cnt for t, cnt >= 0, by a float reciprocal corrected to the exact quotient."""
    n = t + cnt // 2
    q = np.int64(n * inv)
    if q * cnt > n:
        q -= 1
    elif (q + 1) * cnt <= n:
        q += 1
    return q


@_jit
def _rank(hist, k):  # pragma: no cover - jitted
    """The value of rank k (0-based) of the samples counted in `hist`."""
    seen = 0
    for v in range(256):
        seen += hist[v]
        if seen > k:
            return v
    return 255


@_jit
def _median(row, c, buf, hist):  # pragma: no cover - jitted
    """np.median of channel c of `row` (mean of the two middle values when the count is even), by counting:
    the samples are 0..255 (np.median itself for anything else)."""
    n = row.shape[0]
    hist[:] = 0
    for j in range(n):
        v = row[j, c]
        if v < 0 or v > 255:
            for t in range(n):
                buf[t] = row[t, c]
            return np.median(buf)
        hist[v] += 1
    return (_rank(hist, (n - 1) // 2) + _rank(hist, n // 2)) / 2.0


@_jit
def _pairs_over(row, step, lim, limit):  # pragma: no cover - jitted
    """Whether more than `limit` pairs (j, j + step) of `row` (n x 3) differ by more than `lim` in some channel:
    counted in chunks of 64 pairs (SIMD), the answer given as soon as the count is past `limit` (a textured
    line is ruled out after a few chunks)."""
    n = 0
    m = row.shape[0] - step
    for j0 in range(0, m, 64):
        for j in range(j0, min(m, j0 + 64)):
            d = max(abs(np.int32(row[j + step, 0]) - np.int32(row[j, 0])),
                    abs(np.int32(row[j + step, 1]) - np.int32(row[j, 1])),
                    abs(np.int32(row[j + step, 2]) - np.int32(row[j, 2])))
            n += d > lim
        if n > limit:
            return True
    return False


@_jit
def _one_colour(line, tol, fill, buf, hist, med):  # pragma: no cover - jitted
    """Whether `line` (n x 3) is one colour: at least `fill` of its pixels within `tol` of its per-channel
    median in every channel; the median is left in `med`. Shared by `flat_lines`, `flat_cols` and `flat_box`."""
    n = line.shape[0]
    for c in range(3):
        med[c] = _median(line, c, buf, hist)
    close = 0
    for j in range(n):
        d = 0.0
        for c in range(3):
            v = abs(line[j, c] - med[c])
            if v > d:
                d = v
        if d <= tol:
            close += 1
    return close / n >= fill


@_jit
def flat_lines(a, tol, fill):  # pragma: no cover - jitted
    """Per row of `a` (H x W x 3, int16): is it one colour (at least `fill` of its pixels within `tol` of the
    row's per-channel median, every channel), and that median (0 where not flat).

    Rows with more rough neighbour pairs than a flat row can have are ruled out before their median (each
    stray pixel spoils at most two pairs; the others differ by at most 2 x tol)."""
    n_rows, n = a.shape[0], a.shape[1]
    flat = np.zeros(n_rows, dtype=np.bool_)
    colours = np.zeros((n_rows, 3))
    if n == 0:
        return flat, colours
    limit = 2 * (1 - fill) * n + 1e-9
    buf = np.empty(n)
    hist = np.empty(256, dtype=np.int64)
    med = np.empty(3)
    for r in range(n_rows):
        row = a[r]
        # pairs LONG_STEP apart first: a smooth gradient (most lines of a photo) has no rough neighbours
        # but many of these, and is ruled out within a chunk or two; then the neighbours (texture)
        if _pairs_over(row, LONG_STEP, 2 * tol, limit):
            continue
        if _pairs_over(row, 1, 2 * tol, limit):
            continue
        flat[r] = _one_colour(row, tol, fill, buf, hist, med)
        for c in range(3):
            colours[r, c] = med[c]
    return flat, colours


@_jit
def jumps(a, diff):  # pragma: no cover - jitted
    """Per row i + 1 of `a` (H x W x 3): share of its length where some channel jumps by more than `diff`
    between rows i and i + 2."""
    h, w = a.shape[0], a.shape[1]
    out = np.zeros(max(0, h - 2))
    for i in range(h - 2):
        r0 = a[i]
        r2 = a[i + 2]
        n = 0
        for j in range(w):
            d = max(abs(np.int32(r2[j, 0]) - np.int32(r0[j, 0])), abs(np.int32(r2[j, 1]) - np.int32(r0[j, 1])),
                    abs(np.int32(r2[j, 2]) - np.int32(r0[j, 2])))
            n += d > diff
        out[i] = n / w if w else 0.0
    return out


@_jit
def seam(jump, glob, h, fill, contrast, balance, global_bonus, margin):  # pragma: no cover - jitted
    """`layout._seam`'s scoring of the lines 1..n of a box (jump[i]: line i + 1), compiled: (score, line) of the
    strongest seam, (0.0, 0) when none. The same arithmetic in the same order as the numpy code (the mean
    of the six lines 4-6 away on each side, edges repeated; a bonus near the middle and for crossing the
    whole picture), so the same answer."""
    n = jump.shape[0]
    best = -np.inf
    best_i = 0
    best_score = 0.0
    for i in range(n):
        p1 = jump[min(max(i - 6, 0), n - 1)]
        p2 = jump[min(max(i - 5, 0), n - 1)]
        p3 = jump[min(max(i - 4, 0), n - 1)]
        p11 = jump[min(max(i + 4, 0), n - 1)]
        p12 = jump[min(max(i + 5, 0), n - 1)]
        p13 = jump[min(max(i + 6, 0), n - 1)]
        around = (p1 + p2 + p3 + p11 + p12 + p13) / 6
        score = jump[i] - around if jump[i] >= fill else 0.0
        row = i + 1
        if row < margin or row > h - margin:
            score = 0.0
        bonus = balance * min(row, h - row) / (h / 2) + global_bonus * glob[i] if score >= contrast else 0.0
        total = score + bonus
        if total > best:
            best = total
            best_i = i
            best_score = score
    if best_score >= contrast:
        return best_score, best_i + 1
    return 0.0, 0


@_jit
def any_jump_line(a, diff, fill):  # pragma: no cover - jitted
    """Whether some value of `jumps(a, diff)` is at least `fill`: the same answer, with each row given up as
    soon as what is left of it cannot bring its share to `fill` (a smooth row after a quarter of its width,
    for fill 0.75), and the scan ended at the first row that reaches it."""
    h, w = a.shape[0], a.shape[1]
    if w == 0:
        return False
    for i in range(h - 2):
        r0 = a[i]
        r2 = a[i + 2]
        n = 0
        for j0 in range(0, w, 64):
            j1 = min(w, j0 + 64)
            for j in range(j0, j1):
                d = max(abs(np.int32(r2[j, 0]) - np.int32(r0[j, 0])), abs(np.int32(r2[j, 1]) - np.int32(r0[j, 1])),
                        abs(np.int32(r2[j, 2]) - np.int32(r0[j, 2])))
                n += d > diff
            if (n + w - j1) / w < fill:
                break
        if n / w >= fill:
            return True
    return False


@_jit
def any_jump_col(a, diff, fill):  # pragma: no cover - jitted
    """`any_jump_line` of the columns of `a` (as `any_jump_line(a.transpose(1, 0, 2), ...)`), read row by
    row: stops once no column can reach `fill` any more (checked every 16 rows)."""
    h, w = a.shape[0], a.shape[1]
    if h == 0 or w < 3:
        return False
    n = np.zeros(w - 2, dtype=np.int64)
    y = 0
    while y < h:
        y1 = min(h, y + 16)
        for yy in range(y, y1):
            r = a[yy]
            for x in range(w - 2):
                d = max(abs(np.int32(r[x + 2, 0]) - np.int32(r[x, 0])), abs(np.int32(r[x + 2, 1]) - np.int32(r[x, 1])),
                        abs(np.int32(r[x + 2, 2]) - np.int32(r[x, 2])))
                n[x] += d > diff
        y = y1
        hopeful = False
        for x in range(w - 2):
            if (n[x] + h - y) / h >= fill:
                hopeful = True
                break
        if not hopeful:
            return False
    for x in range(w - 2):  # noqa: SIM110 - numba compiles loops, not generators
        if n[x] / h >= fill:
            return True
    return False


@_jit
def jumps_cols(a, diff):  # pragma: no cover - jitted
    """`jumps` of the columns of `a` (as `jumps(a.transpose(1, 0, 2))`), read row by row."""
    h, w = a.shape[0], a.shape[1]
    n = np.zeros(max(0, w - 2), dtype=np.int64)
    for y in range(h):
        r = a[y]
        for x in range(w - 2):
            d = max(abs(np.int32(r[x + 2, 0]) - np.int32(r[x, 0])), abs(np.int32(r[x + 2, 1]) - np.int32(r[x, 1])),
                    abs(np.int32(r[x + 2, 2]) - np.int32(r[x, 2])))
            n[x] += d > diff
    out = np.zeros(max(0, w - 2))
    for x in range(w - 2):
        out[x] = n[x] / h if h else 0.0
    return out


@_jit
def _any_within_both(a, b, limit):  # pragma: no cover - jitted
    for x in range(a.shape[0]):  # noqa: SIM110 - numba compiles loops, not generators
        if a[x] <= limit and b[x] <= limit:
            return True
    return False


@_jit
def flat_cols(a, tol, fill):  # pragma: no cover - jitted
    """`flat_lines` of the columns of `a` (as `flat_lines(a.transpose(1, 0, 2), ...)`): the rough pairs are
    counted row by row, until no column can be flat any more; only the columns that may be flat are then
    read down."""
    h, w = a.shape[0], a.shape[1]
    flat = np.zeros(w, dtype=np.bool_)
    colours = np.zeros((w, 3))
    if h == 0:
        return flat, colours
    rough = np.zeros(w, dtype=np.int64)
    far = np.zeros(w, dtype=np.int64)
    limit = 2 * (1 - fill) * h + 1e-9
    # far (pairs LONG_STEP apart) first, as in flat_lines: a smooth gradient is ruled out within a few rows
    for step, counts in ((LONG_STEP, far), (1, rough)):
        # every 16 rows: stop once no column can still be flat (a count past the limit only grows)
        open_ = _any_within_both(rough, far, limit)
        y = 0
        while open_ and y < h - step:
            for yy in range(y, min(h - step, y + 16)):
                r0 = a[yy]
                r1 = a[yy + step]
                for x in range(w):
                    d = max(abs(np.int32(r1[x, 0]) - np.int32(r0[x, 0])), abs(np.int32(r1[x, 1]) - np.int32(r0[x, 1])),
                            abs(np.int32(r1[x, 2]) - np.int32(r0[x, 2])))
                    counts[x] += d > 2 * tol
            y += 16
            open_ = _any_within_both(rough, far, limit)
    col = np.empty((h, 3), dtype=a.dtype)
    buf = np.empty(h)
    hist = np.empty(256, dtype=np.int64)
    med = np.empty(3)
    for x in range(w):
        if rough[x] > limit or far[x] > limit:
            continue
        for y in range(h):
            for c in range(3):
                col[y, c] = a[y, x, c]
        flat[x] = _one_colour(col, tol, fill, buf, hist, med)
        for c in range(3):
            colours[x, c] = med[c]
    return flat, colours


@_jit
def photo_like(a, max_dominant, min_busy):  # pragma: no cover - jitted
    """For `layout._photo_like`: is the share of the most common colour (quantised to 16 levels a channel,
    near-black left out while at least 20 % of the box is something else) at most `max_dominant`, and the
    share of pixels with a visible gradient at least `min_busy`? The gradient count stops as soon as the
    answer is settled either way (checked once a row): the same answer as counting them all."""
    h, w = a.shape[0], a.shape[1]
    counts = np.zeros(4096, dtype=np.int64)
    for y in range(h):
        r = a[y]
        for x in range(w):
            counts[(r[x, 0] // 16) * 256 + (r[x, 1] // 16) * 16 + r[x, 2] // 16] += 1
    size = h * w
    lit = size - counts[0]
    if lit >= 0.2 * size:
        counts[0] = 0
        dominant = counts.max() / lit
    else:
        dominant = counts.max() / size
    if not dominant <= max_dominant:
        return False
    if h < 2 or w < 2:
        return min_busy <= 0.0
    total = (h - 1) * (w - 1)
    busy = 0
    for y in range(h - 1):
        r0 = a[y]
        r1 = a[y + 1]
        for x in range(w - 1):
            gy = max(abs(np.int32(r1[x, 0]) - np.int32(r0[x, 0])), abs(np.int32(r1[x, 1]) - np.int32(r0[x, 1])),
                     abs(np.int32(r1[x, 2]) - np.int32(r0[x, 2])))
            gx = max(abs(np.int32(r0[x + 1, 0]) - np.int32(r0[x, 0])), abs(np.int32(r0[x + 1, 1]) - np.int32(r0[x, 1])),
                     abs(np.int32(r0[x + 1, 2]) - np.int32(r0[x, 2])))
            busy += max(gy, gx) > 2
        if busy / total >= min_busy:
            return True
        if (busy + (h - 2 - y) * (w - 1)) / total < min_busy:
            return False
    return busy / total >= min_busy


def line_maps(a: np.ndarray, rough: int, diff: int) -> tuple[np.ndarray, ...]:
    """Running counts over a whole picture that answer every box of the XY-cut in O(lines):

    * rr[y, k]: pairs (x, x + 1), x < k, of row y whose colours differ by more than `rough` (some channel);
    * rc[k, x]: the same down column x, pairs (y, y + 1), y < k;
    * lr[y, k], lc[k, x]: the same for pairs LONG_STEP apart;
    * jr[y, k]: columns x < k where rows y and y + 2 differ by more than `diff`;
    * jc[k, x]: rows y < k where columns x and x + 2 differ by more than `diff`."""
    planes = np.ascontiguousarray(np.moveaxis(np.asarray(a, dtype=np.int16), 2, 0))
    return _line_maps(planes, rough, diff, LONG_STEP)


@_jit
def _far(p, y0, x0, y1, x1, n, lim, out):  # pragma: no cover - jitted
    """out[k] = 1 when pixel (y0, x0 + k) and (y1, x1 + k) differ by more than lim in some channel, k < n."""
    for k in range(n):
        d = max(abs(np.int32(p[0, y1, x1 + k]) - np.int32(p[0, y0, x0 + k])),
                abs(np.int32(p[1, y1, x1 + k]) - np.int32(p[1, y0, x0 + k])),
                abs(np.int32(p[2, y1, x1 + k]) - np.int32(p[2, y0, x0 + k])))
        out[k] = d > lim


@_jit
def _line_maps(p, rough, diff, step):  # pragma: no cover - jitted
    h, w = p.shape[1], p.shape[2]
    rr = np.zeros((h, w), dtype=np.int32)
    lr = np.zeros((h, w + 1), dtype=np.int32)
    jr = np.zeros((h, w + 1), dtype=np.int32)
    rc = np.zeros((h, w), dtype=np.int32)
    lc = np.zeros((h + 1, w), dtype=np.int32)
    jc = np.zeros((h + 1, w), dtype=np.int32)
    t = np.zeros(w + 1, dtype=np.int32)
    for y in range(h):
        _far(p, y, 0, y, 1, w - 1, rough, t)
        for x in range(w - 1):
            rr[y, x + 1] = rr[y, x] + t[x]
        if w > step:
            _far(p, y, 0, y, step, w - step, rough, t)
            for x in range(w - step):
                lr[y, x + 1] = lr[y, x] + t[x]
        if w > 2:
            _far(p, y, 0, y, 2, w - 2, diff, t)
            for x in range(w - 2):
                jc[y + 1, x] = jc[y, x] + t[x]
        if y + 1 < h:
            _far(p, y, 0, y + 1, 0, w, rough, t)
            for x in range(w):
                rc[y + 1, x] = rc[y, x] + t[x]
        if y + step < h:
            _far(p, y, 0, y + step, 0, w, rough, t)
            for x in range(w):
                lc[y + 1, x] = lc[y, x] + t[x]
        if y + 2 < h:
            _far(p, y, 0, y + 2, 0, w, diff, t)
            for x in range(w):
                jr[y, x + 1] = jr[y, x] + t[x]
    return rr, rc, lr, lc, jr, jc


@_jit
def flat_box(a, rr, rc, lr, lc, step, y0, y1, x0, x1, axis, tol, fill):  # pragma: no cover - jitted
    """`flat_lines` of the rows (axis 0) or columns (axis 1) of a[y0:y1, x0:x1], with the rough pairs
    counted from `line_maps`: only lines that may be flat are read."""
    if axis == 0:
        n_lines, n = y1 - y0, x1 - x0
    else:
        n_lines, n = x1 - x0, y1 - y0
    flat = np.zeros(n_lines, dtype=np.bool_)
    colours = np.zeros((n_lines, 3))
    if n == 0:
        return flat, colours
    limit = 2 * (1 - fill) * n + 1e-9
    line = np.empty((n, 3), dtype=a.dtype)
    buf = np.empty(n)
    hist = np.empty(256, dtype=np.int64)
    med = np.empty(3)
    for li in range(n_lines):
        far = 0
        if axis == 0:
            y = y0 + li
            cnt = rr[y, x1 - 1] - rr[y, x0]
            if n > step:
                far = lr[y, x1 - step] - lr[y, x0]
        else:
            x = x0 + li
            cnt = rc[y1 - 1, x] - rc[y0, x]
            if n > step:
                far = lc[y1 - step, x] - lc[y0, x]
        if cnt > limit or far > limit:
            continue
        for j in range(n):
            for c in range(3):
                line[j, c] = a[y0 + li, x0 + j, c] if axis == 0 else a[y0 + j, x0 + li, c]
        flat[li] = _one_colour(line, tol, fill, buf, hist, med)
        for c in range(3):
            colours[li, c] = med[c]
    return flat, colours


@_jit
def _side_px(a, side, r, x, c):  # pragma: no cover - jitted
    """Pixel x, channel c, of line r counted from one side of `a` (0 top, 1 bottom, 2 left, 3 right)."""
    if side == 0:
        return a[r, x, c]
    if side == 1:
        return a[a.shape[0] - 1 - r, x, c]
    if side == 2:
        return a[x, r, c]
    return a[x, a.shape[1] - 1 - r, c]


@_jit
def border_depth(a, side, s0, s1, limit, tol, fill):  # pragma: no cover - jitted
    """How many lines from one side of `a` (0 top, 1 bottom, 2 left, 3 right), restricted to positions
    [s0, s1) along the line, are the colour of the outermost line (its per-channel median): at least `fill`
    of their pixels within `tol` of it in every channel. `layout._border_depth` in one pass."""
    n = s1 - s0
    if limit <= 0 or n <= 0:
        return 0
    line = np.empty((n, 3), dtype=a.dtype)
    for j in range(n):
        for c in range(3):
            line[j, c] = _side_px(a, side, 0, s0 + j, c)
    buf = np.empty(n)
    hist = np.empty(256, dtype=np.int64)
    m0 = _median(line, 0, buf, hist)
    m1 = _median(line, 1, buf, hist)
    m2 = _median(line, 2, buf, hist)
    for r in range(limit):
        close = 0
        for j in range(n):
            d0 = abs(_side_px(a, side, r, s0 + j, 0) - m0)
            d1 = abs(_side_px(a, side, r, s0 + j, 1) - m1)
            d2 = abs(_side_px(a, side, r, s0 + j, 2) - m2)
            close += (d0 <= tol) & (d1 <= tol) & (d2 <= tol)
        if not close / n >= fill:
            return r
    return limit
