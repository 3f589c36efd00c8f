"""Where a picture's own photograph lies: near-uniform borders to peel (`find_borders`) and the photographs inside
a screenshot, page or collage (`find_regions`, a recursive XY-cut on flat gaps and straight seams).

Split from `vigie.signals.variants`, which hashes what is found here: detection works on one shared downscaled
copy of the picture (`Shrunk`), so the full-resolution pixels are read once for all of it; the compiled scans
(`vigie.signals.layout_numba`) decide exactly as the numpy code beside them, which stays as the fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

try:  # compiled scans; numpy fallbacks without numba
    from vigie.signals import layout_numba
except ImportError:  # pragma: no cover - numba is a dependency
    layout_numba = None

#: Most photographs reported from one screenshot or collage.
MAX_REGIONS = 6

# Border removal.
_BORDER_SIDE = 1024          # detection works on a copy at most this many pixels a side
_BORDER_TOL = 24             # channel difference from the border colour still counted as border
_BORDER_FILL = 0.998         # share of a line that must be border colour
_BORDER_MIN_FRAC = 0.015     # a side counts when its border is at least this share of the side...
_BORDER_MIN_PX = 2           # ...and at least this many pixels
_KEEP_MIN_FRAC = 0.08        # what is left must be at least this share of each side

# Region detection.
_REGION_SIDE = 512
#: Seams crossed at most on the way down: a 3x3 collage needs 4; deeper splits only cut photos into pieces
#: (and cost time: a photo full of straight edges would otherwise be cut hundreds of times).
_MAX_SEAMS = 4
_FLAT_TOL = 10               # a flat line: its pixels within this of its median colour...
_FLAT_FILL = 0.98            # ...for this share of them
_SEAM_DIFF = 16              # a seam: colour jump across it above this...
_SEAM_FILL = 0.75            # ...on this share of its length...
_SEAM_CONTRAST = 0.35        # ...and this much more often than on the lines around it
_SEAM_BALANCE = 0.2          # bonus for a seam near the middle (collages, two-column layouts)
_SEAM_GLOBAL = 0.3           # bonus for a seam that crosses the whole picture (collage grids)
_MIN_SEG = 12                # segments thinner than this (detection pixels) are dropped
_REGION_MIN_AREA = 0.04      # a photo is at least this share of the frame...
_REGION_MAX_AREA = 0.90      # ...and at most this share ("substantially smaller")
_REGION_MAX_ASPECT = 5.0
_REGION_MAX_DOMINANT = 0.5   # share of its most common (quantised) colour: text and UI sit above
_REGION_MIN_BUSY = 0.2       # share of pixels with a visible gradient


@dataclass(frozen=True)
class Box:
    """A rectangle [y0, y1) x [x0, x1) in pixels."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def area(self) -> int:
        return max(0, self.height) * max(0, self.width)

    def crop(self, rgb: np.ndarray) -> np.ndarray:
        return rgb[self.y0:self.y1, self.x0:self.x1]

    def iou(self, other: Box) -> float:
        ih = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        iw = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        inter = ih * iw
        union = self.area + other.area - inter
        return inter / union if union else 0.0



def _downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float, float]:
    """A box-filtered copy at most `max_side` a side (int16), and the factors back to `rgb`'s resolution."""
    h, w = rgb.shape[:2]
    factor = math.ceil(max(h, w) / max_side)
    if factor <= 1:
        return rgb.astype(np.int16), 1.0, 1.0
    if layout_numba is not None:
        small = layout_numba.shrink(rgb, factor)
    else:
        small = np.asarray(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).reduce(factor)).astype(np.int16)
    return small, h / small.shape[0], w / small.shape[1]


@dataclass
class Shrunk:
    """One downscaled copy of a picture shared by border and region detection (the full picture is read
    once): `img` at most `_BORDER_SIDE` a side, `sy`/`sx` the factors back to full resolution, and the
    region detector's copy (at most `_REGION_SIDE`), made on first use."""

    img: np.ndarray
    sy: float
    sx: float
    full: tuple[int, int]
    _region: np.ndarray | None = None

    @classmethod
    def of(cls, rgb: np.ndarray, small: np.ndarray | None = None) -> Shrunk:
        """The shared copy of `rgb`; `small`: that copy when the caller already made it (`border_factor`)."""
        h, w = rgb.shape[:2]
        if small is None:
            small, sy, sx = _downscale(rgb, _BORDER_SIDE)
        else:
            sy, sx = h / small.shape[0], w / small.shape[1]
        return cls(small, sy, sx, (h, w))

    def region_copy(self, rgb: np.ndarray) -> np.ndarray:
        """The copy region detection works on, at most `_REGION_SIDE` a side: the same factor from the full
        picture as ever (the XY-cut's thresholds are in its pixels), made from `img` when that factor is a
        multiple of `img`'s (no second pass over the full picture), else from `rgb`."""
        if self._region is None:
            h, w = self.full
            factor = math.ceil(max(h, w) / _REGION_SIDE)
            f1 = math.ceil(max(h, w) / _BORDER_SIDE)
            if factor <= 1:
                self._region = self.img
            elif factor % f1 == 0 and layout_numba is not None:
                self._region = self.img if factor == f1 else layout_numba.shrink(self.img, factor // f1)
            else:
                self._region = _downscale(rgb, _REGION_SIDE)[0]
        return self._region


def border_factor(shape: tuple[int, ...]) -> int:
    """The box-average factor of the shared copy (1: the picture is small enough to be its own copy)."""
    return max(1, math.ceil(max(shape[0], shape[1]) / _BORDER_SIDE))


def _scale_box(box: Box, sy: float, sx: float, h: int, w: int) -> Box:
    return Box(max(0, round(box.y0 * sy)), min(h, round(box.y1 * sy)),
               max(0, round(box.x0 * sx)), min(w, round(box.x1 * sx)))


# ---------------------------------------------------------------------------------------------
# borders


def _border_depth(a: np.ndarray, span: slice, limit: int) -> int:
    """How many leading rows of `a` (restricted to columns `span`) are the colour of row 0."""
    if limit <= 0 or a[0, span].shape[0] == 0:
        return 0
    colour = np.median(a[0, span], axis=0)
    pos, step = 0, 8
    while pos < limit:  # growing chunks: a photo stops the scan after a few rows
        rows = a[pos:min(limit, pos + step), span]
        close = (_chan_max(np.abs(rows - colour)) <= _BORDER_TOL).mean(axis=1) >= _BORDER_FILL
        misses = np.flatnonzero(~close)
        if misses.size:
            return pos + int(misses[0])
        pos += rows.shape[0]
        step *= 2
    return limit


_SIDES = {"top": 0, "bottom": 1, "left": 2, "right": 3}


def _depth(a: np.ndarray, side: str, view: np.ndarray, span: slice, limit: int) -> int:
    """`_border_depth` of one side, compiled when it can be (values 0..255, as the shared copy holds)."""
    if layout_numba is not None and (a.dtype == np.int16 or a.dtype == np.uint8):
        s0, s1, _ = span.indices(view.shape[1])
        return int(layout_numba.border_depth(a, _SIDES[side], s0, max(s0, s1), limit, _BORDER_TOL, _BORDER_FILL))
    return _border_depth(view, span, limit)


def _side_views(a: np.ndarray) -> dict[str, np.ndarray]:
    """Each side of `a` turned to be the top (row 0 the outermost line)."""
    return {"top": a, "bottom": a[::-1], "left": a.transpose(1, 0, 2), "right": a.transpose(1, 0, 2)[::-1]}


def _trim_once(a: np.ndarray) -> tuple[int, int, int, int]:
    """Border depth on each side (top, bottom, left, right) of one frame of uniform colour."""
    h, w = a.shape[:2]
    views = _side_views(a)
    lim = {"top": h - 1, "bottom": h - 1, "left": w - 1, "right": w - 1}
    # first guess on the middle 60 % of each side (the corners may belong to another bar)
    mid = {k: slice(int(0.2 * (w if k in ("top", "bottom") else h)),
                    max(1, int(0.8 * (w if k in ("top", "bottom") else h)))) for k in views}
    d = {k: _depth(a, k, v, mid[k], lim[k]) for k, v in views.items()}
    # confirm over the whole span between the other sides' borders
    for _ in range(2):
        span = {"top": slice(d["left"], w - d["right"]), "bottom": slice(d["left"], w - d["right"]),
                "left": slice(d["top"], h - d["bottom"]), "right": slice(d["top"], h - d["bottom"])}
        d = {k: _depth(a, k, v, span[k], lim[k]) if d[k] else 0 for k, v in views.items()}
    return d["top"], d["bottom"], d["left"], d["right"]


def find_border(rgb: np.ndarray) -> Box | None:
    """The picture inside near-uniform borders, or None when there is no border worth removing.

    Each side is found on its own (any colour, any width; nested frames of different
    colours are peeled one after the other). Works on a downscaled copy of large pictures;
    the box is in full-resolution pixels, rounded inwards.
    """
    boxes = find_borders(rgb)
    return boxes[-1] if boxes else None


def find_borders(rgb: np.ndarray, *, shrunk: Shrunk | None = None) -> list[Box]:
    """The box after each frame peeled, outermost first (the last is `find_border`'s).

    Why all of them: after a white frame is peeled, the next "frame" may be the photo's own dark
    edge (a night sky, a shadow). The outermost box is then the photo, the innermost a crop of it;
    nested real frames (a mat inside a frame) are the other way round. Both are worth a hash.
    `shrunk`: the picture's shared downscaled copy, when the caller has one."""
    h, w = rgb.shape[:2]
    if h < 8 or w < 8:
        return []
    if shrunk is None:
        if layout_numba is not None and rgb.dtype == np.uint8 and border_factor(rgb.shape) == 1:
            # read in place: the compiled scan reads only the lines near each side, where a copy in int16 (all
            # `Shrunk` would make of a picture this small) reads and writes every pixel (region snaps: 0.2 ms)
            return _peel(rgb, 1.0, 1.0, h, w)
        shrunk = Shrunk.of(rgb)
    return _peel(shrunk.img, shrunk.sy, shrunk.sx, h, w)


def _peel(small: np.ndarray, sy: float, sx: float, h: int, w: int) -> list[Box]:
    """`find_borders` on a downscaled copy; boxes in pixels of the h x w picture it was made from."""
    sh, sw = small.shape[:2]
    y0, y1, x0, x1 = 0, sh, 0, sw
    passes: list[tuple[int, int, int, int]] = []
    for _ in range(3):  # nested frames
        a = small[y0:y1, x0:x1]
        if a.shape[0] < 4 or a.shape[1] < 4:
            return []
        t, b, lft, r = _trim_once(a)
        if t + b >= a.shape[0] - 1 or lft + r >= a.shape[1] - 1:
            return []  # uniform: nothing inside
        if not (t or b or lft or r):
            break
        y0, y1, x0, x1 = y0 + t, y1 - b, x0 + lft, x1 - r
        passes.append((y0, y1, x0, x1))
    out: list[Box] = []
    for y0, y1, x0, x1 in passes:
        box = Box(math.ceil(y0 * sy), math.floor(y1 * sy), math.ceil(x0 * sx), math.floor(x1 * sx))
        if box.height < max(4, _KEEP_MIN_FRAC * h) or box.width < max(4, _KEEP_MIN_FRAC * w):
            continue
        sides = ((box.y0, h), (h - box.y1, h), (box.x0, w), (w - box.x1, w))
        if any(px >= _BORDER_MIN_PX and px >= _BORDER_MIN_FRAC * n for px, n in sides):
            out.append(box)
    return out


# ---------------------------------------------------------------------------------------------
# photographs inside a screenshot, page or collage


def _chan_max(x: np.ndarray) -> np.ndarray:
    """Max over the last (colour) axis; numpy reduces a length-3 last axis slowly, this is several times faster."""
    return np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])


def _transposed(a: np.ndarray) -> bool:
    """Is `a` a transposed view (its lines are the columns of the array in memory)?"""
    return a.ndim == 3 and a.shape[0] > 1 and a.shape[1] > 1 and abs(a.strides[0]) < abs(a.strides[1])


def _flat_lines_colour(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `a`: is it one colour (within JPEG noise), and that colour (its median; 0 where not flat).

    The median of every row is the costly part, so rows that cannot be flat are ruled out first,
    exactly: in a flat row at most a share (1 - _FLAT_FILL) of pixels stray from the median, each
    spoils at most two neighbour pairs, and the other pairs differ by at most 2 x _FLAT_TOL. A row
    with more rough pairs than that is not flat, and its median is never computed."""
    if layout_numba is not None:  # the same test, compiled: one pass, no sort, in memory order
        if _transposed(a):
            return layout_numba.flat_cols(a.transpose(1, 0, 2), _FLAT_TOL, _FLAT_FILL)
        return layout_numba.flat_lines(a, _FLAT_TOL, _FLAT_FILL)
    return _flat_lines_colour_np(a)


def _flat_lines_colour_np(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_flat_lines_colour` in numpy (without numba, and the reference the compiled one is tested against)."""
    n = a.shape[1]
    out = np.zeros(a.shape[0], dtype=bool)
    colours = np.zeros((a.shape[0], 3), dtype=np.float64)
    if n == 0:
        return out, colours
    rough = (_chan_max(np.abs(np.diff(a, axis=1))) > 2 * _FLAT_TOL).sum(axis=1)
    cand = np.flatnonzero(rough <= 2 * (1 - _FLAT_FILL) * n + 1e-9)
    if cand.size:
        rows = a[cand]
        med = np.median(rows, axis=1)
        out[cand] = (_chan_max(np.abs(rows - med[:, None, :])) <= _FLAT_TOL).mean(axis=1) >= _FLAT_FILL
        colours[cand] = med
    return out, colours


def _jumps(a: np.ndarray) -> np.ndarray:
    """Per row i+1 of `a`: share of its length where the colour jumps between rows i and i+2."""
    if layout_numba is not None:
        if _transposed(a):
            return layout_numba.jumps_cols(a.transpose(1, 0, 2), _SEAM_DIFF)
        return layout_numba.jumps(a, _SEAM_DIFF)
    return _jumps_np(a)


def _jumps_np(a: np.ndarray) -> np.ndarray:
    return (_chan_max(np.abs(a[2:] - a[:-2])) > _SEAM_DIFF).mean(axis=1)


def _seam(a: np.ndarray, glob: np.ndarray, jump: np.ndarray | None = None) -> tuple[float, int]:
    """The strongest straight seam across the rows of `a`: (score, row), score 0 when none.

    A seam is a row where the colour jumps across (almost) the whole width, much more
    often than on the rows around it: the edge of a pasted photo or a collage tile, not
    the texture inside a photo. Among seams, those near the middle and those that go on
    across the whole picture (`glob`, the same jumps over the full width: a collage grid)
    are preferred.
    """
    h = a.shape[0]
    if h < 2 * _MIN_SEG:
        return 0.0, 0
    if jump is None:
        jump = _jumps(a)  # jump[i]: row i+1
    if layout_numba is not None and jump.size and jump.size == glob.size:
        score, row = layout_numba.seam(np.ascontiguousarray(jump, dtype=np.float64),
                                       np.ascontiguousarray(glob, dtype=np.float64), h, _SEAM_FILL, _SEAM_CONTRAST,
                                       _SEAM_BALANCE, _SEAM_GLOBAL, _MIN_SEG // 2)
        return float(score), int(row)
    return _seam_np(h, jump, glob)


def _seam_np(h: int, jump: np.ndarray, glob: np.ndarray) -> tuple[float, int]:
    """`_seam`'s scoring in numpy (without numba, and the reference the compiled one is tested against)."""
    n = jump.size
    pad = np.pad(jump, 7, mode="edge")
    around = (pad[1:n + 1] + pad[2:n + 2] + pad[3:n + 3] + pad[11:n + 11] + pad[12:n + 12] + pad[13:n + 13]) / 6
    score = np.where(jump >= _SEAM_FILL, jump - around, 0.0)
    rows = np.arange(n) + 1
    score[(rows < _MIN_SEG // 2) | (rows > h - _MIN_SEG // 2)] = 0.0
    bonus = np.where(score >= _SEAM_CONTRAST,
                     _SEAM_BALANCE * np.minimum(rows, h - rows) / (h / 2) + _SEAM_GLOBAL * glob, 0.0)
    i = int(np.argmax(score + bonus))
    return (float(score[i]), i + 1) if score[i] >= _SEAM_CONTRAST else (0.0, 0)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of False in `mask`."""
    keep = np.concatenate(([False], ~mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(keep))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


class _Maps:
    """Running counts of rough pairs and jumps over the region copy (`layout_numba.line_maps`): every box of
    the XY-cut then gets its flat lines and its jumps without being read again (only lines that may be flat
    are). The same decisions as `_flat_lines_colour` and `_jumps` on the box (tests/test_variants_fast.py)."""

    def __init__(self, img: np.ndarray) -> None:
        self.img = img
        self.rr, self.rc, self.lr, self.lc, self.jr, self.jc = layout_numba.line_maps(img, 2 * _FLAT_TOL, _SEAM_DIFF)

    def flat(self, box: Box, axis: int) -> tuple[np.ndarray, np.ndarray]:
        return layout_numba.flat_box(self.img, self.rr, self.rc, self.lr, self.lc, layout_numba.LONG_STEP,
                                     box.y0, box.y1, box.x0, box.x1, axis, _FLAT_TOL, _FLAT_FILL)

    def jumps(self, box: Box, axis: int) -> np.ndarray:
        if axis == 0:
            ys = np.arange(box.y0, max(box.y0, box.y1 - 2))
            return (self.jr[ys, box.x1] - self.jr[ys, box.x0]) / box.width
        xs = np.arange(box.x0, max(box.x0, box.x1 - 2))
        return (self.jc[box.y1, xs] - self.jc[box.y0, xs]) / box.height

    def glob(self) -> tuple[np.ndarray, np.ndarray]:
        root = Box(0, self.img.shape[0], 0, self.img.shape[1])
        return np.pad(self.jumps(root, 0), 1), np.pad(self.jumps(root, 1), 1)


def _xy_cut(img: np.ndarray, glob: tuple[np.ndarray, np.ndarray], box: Box, depth: int, seams: int,
            out: list[tuple[int, Box]], gap: np.ndarray | None = None, maps: _Maps | None = None) -> None:
    """Split `box` of `img` along flat gaps, then along seams; collect the candidate photos.

    Candidates are the leaves and the boxes split by a seam (a photo with a straight edge
    inside it, or a collage, is split by seams too: its pieces and the whole are both
    candidates). A box split by flat gaps is a layout container, not a candidate, unless its
    gaps are of another colour than the gaps around it (`gap`): bands of a dark sky inside a
    photo on a light page, not the page showing between two panels. Each candidate comes with
    the number of seams crossed to reach it (0: a box of the layout).
    """
    if box.height < _MIN_SEG or box.width < _MIN_SEG or depth > 24 or len(out) > 400 or seams > _MAX_SEAMS:
        return
    a = box.crop(img)
    # flat gaps: rows or columns that are one colour across the whole box (also trims the edges)
    found = []
    for axis in (0, 1):
        if maps is not None:
            flat, colours = maps.flat(box, axis)
        else:
            flat, colours = _flat_lines_colour(a if axis == 0 else a.transpose(1, 0, 2))
        if flat.any():
            found.append((axis, flat, colours))
    if gap is not None:  # gaps of the page around this box come first: the layout, not the content
        same = [(axis, flat & (_chan_max(np.abs(colours - gap)) <= 2 * _FLAT_TOL), colours)
                for axis, flat, colours in found]
        same = [x for x in same if x[1].any()]
        if not same and found:
            out.append((seams + 1, box))  # bands of another colour inside: a photo with flat areas, maybe
            # (ranked with the pieces of seam-split boxes, after the plain leaves of the layout)
        found = same or found
    if found:
        axis, flat, colours = found[0]
        colour = np.median(colours[flat], axis=0)
        for s, e in _runs(flat):
            sub = Box(box.y0 + s, box.y0 + e, box.x0, box.x1) if axis == 0 else \
                Box(box.y0, box.y1, box.x0 + s, box.x0 + e)
            _xy_cut(img, glob, sub, depth + 1, seams, out, colour, maps)
        return
    out.append((seams, box))
    # seams: straight colour edges across the whole box
    row_score, row = _seam(a, glob[0][box.y0 + 1:box.y1 - 1], maps.jumps(box, 0) if maps else None)
    col_score, col = _seam(a.transpose(1, 0, 2), glob[1][box.x0 + 1:box.x1 - 1], maps.jumps(box, 1) if maps else None)
    if row_score == 0 and col_score == 0:
        return
    if row_score >= col_score:
        parts = (Box(box.y0, box.y0 + row, box.x0, box.x1), Box(box.y0 + row + 1, box.y1, box.x0, box.x1))
    else:
        parts = (Box(box.y0, box.y1, box.x0, box.x0 + col), Box(box.y0, box.y1, box.x0 + col + 1, box.x1))
    for p in parts:
        _xy_cut(img, glob, p, depth + 1, seams + 1, out, None, maps)


def _photo_like(a: np.ndarray) -> bool:
    """Does this leaf look like a photograph rather than text, an icon or a flat panel?"""
    if layout_numba is not None and a.shape[0] > 1 and a.shape[1] > 1 and a.min() >= 0 and a.max() <= 255:
        return bool(layout_numba.photo_like(a, _REGION_MAX_DOMINANT, _REGION_MIN_BUSY))
    return _photo_like_np(a)


def _photo_like_np(a: np.ndarray) -> bool:
    """`_photo_like` in numpy (without numba, and the reference the compiled one is tested against)."""
    q = (a // 16).astype(np.int32)
    codes = (q[..., 0] * 256 + q[..., 1] * 16 + q[..., 2]).ravel()
    counts = np.bincount(codes)
    # Near-black (code 0) is the sky of night and space photos, not a UI panel, when the rest is textured:
    # leave it out of the dominant-colour share, but only while enough of the region is something else.
    lit = codes.size - counts[0]
    if lit >= 0.2 * codes.size:
        counts[0] = 0
        dominant = counts.max() / lit
    else:
        dominant = counts.max() / codes.size
    if dominant > _REGION_MAX_DOMINANT:
        return False
    gy = _chan_max(np.abs(np.diff(a, axis=0)))
    gx = _chan_max(np.abs(np.diff(a, axis=1)))
    busy = ((gy[:, :-1] > 2) | (gx[:-1, :] > 2)).mean()
    return bool(busy >= _REGION_MIN_BUSY)


def find_regions(rgb: np.ndarray, max_regions: int = MAX_REGIONS, *, shrunk: Shrunk | None = None) -> list[Box]:
    """The photographs inside a screenshot, page or collage, largest first (full-resolution boxes).

    The layout is split recursively (XY-cut) along rows/columns of one colour and along
    straight seams; the leaves and seam-split boxes that look like photographs (many
    colours, texture) of at least 4 % and at most 90 % of the frame are returned, at most
    `max_regions`, near-duplicates (IoU > 0.97) dropped; boxes of the layout come
    before the pieces of seam-split boxes (collage tiles), then larger before smaller. Empty when none is found.
    `shrunk`: the picture's shared downscaled copy, when the caller has one.
    """
    h, w = rgb.shape[:2]
    if h < 2 * _MIN_SEG or w < 2 * _MIN_SEG:
        return []
    if shrunk is None:
        shrunk = Shrunk.of(rgb)
    small = shrunk.region_copy(rgb)
    sh, sw = small.shape[:2]
    sy, sx = h / sh, w / sw
    if not may_hold_regions(small):
        return []
    # running counts for the XY-cut's boxes, built only past the gate; the whole picture's jumps from them
    maps = _Maps(small) if layout_numba is not None and small.min() >= 0 and small.max() <= 255 else None
    glob = maps.glob() if maps is not None else \
        (np.pad(_jumps(small), 1), np.pad(_jumps(small.transpose(1, 0, 2)), 1))
    nodes: list[tuple[int, Box]] = []
    _xy_cut(small, glob, Box(0, sh, 0, sw), 0, 0, nodes, None, maps)
    frame = sh * sw
    found: list[Box] = []
    # boxes of the layout first, then the pieces of seam-split ones (collage tiles), largest first
    for _, b in sorted(nodes, key=lambda n: (n[0], -n[1].area)):
        if not _REGION_MIN_AREA * frame <= b.area <= _REGION_MAX_AREA * frame:
            continue
        if max(b.height / b.width, b.width / b.height) > _REGION_MAX_ASPECT:
            continue
        if any(b.iou(f) > 0.97 for f in found):
            continue
        if _photo_like(b.crop(small)):
            found.append(b)
            if len(found) >= max_regions:
                break
    return [_snap(rgb, _scale_box(b, sy, sx, h, w)) for b in found]


def may_hold_regions(small: np.ndarray, glob: tuple[np.ndarray, np.ndarray] | None = None,
                     maps: _Maps | None = None) -> bool:
    """The gate of region detection: can this (downscaled) picture hold a photo smaller than itself?

    Only where some row or column is one colour (a gap, a margin) or some straight seam crosses it: the
    XY-cut starts exactly there, and without either the whole picture is its only leaf, too large to be a
    region. Most plain photos stop here, at the cost of one pass over the small copy."""
    if small.shape[0] < 2 * _MIN_SEG or small.shape[1] < 2 * _MIN_SEG:
        return False
    root = Box(0, small.shape[0], 0, small.shape[1])
    for axis, lines in ((0, small), (1, small.transpose(1, 0, 2))):
        if (maps.flat(root, axis) if maps is not None else _flat_lines_colour(lines))[0].any():
            return True
        if glob is not None:
            jump = glob[axis][1:-1]
        elif not _may_seam(lines):
            continue  # no line jumps on _SEAM_FILL of its length: no seam, whatever the lines around it
        else:
            jump = _jumps(lines)
        if _seam(lines, jump, jump)[0] > 0:  # at the root the jumps are the whole picture's
            return True
    return False


def _may_seam(lines: np.ndarray) -> bool:
    """Whether some line of `lines` jumps on at least `_SEAM_FILL` of its length (`_jumps`), the first
    condition of a seam: compiled, each line given up once it cannot get there (most photos: every line,
    after a quarter of it). True without numba or for values outside 0..255 (the caller then looks)."""
    if layout_numba is None or lines.dtype != np.int16:
        return True
    if _transposed(lines):
        return bool(layout_numba.any_jump_col(lines.transpose(1, 0, 2), _SEAM_DIFF, _SEAM_FILL))
    return bool(layout_numba.any_jump_line(lines, _SEAM_DIFF, _SEAM_FILL))


def _snap(rgb: np.ndarray, full: Box) -> Box:
    """Snap a region to the photo's own edge: trim what is left of its flat surroundings (on the
    full-resolution crop: a few pixels off would move its hash)."""
    inner = find_border(full.crop(rgb))
    if inner is None:
        return full
    return Box(full.y0 + inner.y0, full.y0 + inner.y1, full.x0 + inner.x0, full.x0 + inner.x1)


def central_crop(rgb: np.ndarray, fraction: float) -> np.ndarray:
    """The central part of `rgb`, `fraction` of each side."""
    h, w = rgb.shape[:2]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return rgb[y0:y0 + ch, x0:x0 + cw]
