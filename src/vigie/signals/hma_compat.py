"""HMA's PDQ of a picture file, bit for bit, so that lists hashed by HMA or python-threatexchange match.

Vigie hashes a picture as people see it: every mode is converted to RGB first (a palette
picture through its palette, CMYK to RGB, 16-bit grey scaled to 8 bits). HMA does not: it hashes
with python-threatexchange's `pdq_hasher` (release 1.2.17, read for this module), which

1. opens the file with Pillow (first frame, no EXIF rotation: as Vigie);
2. converts to RGB only the modes ``LA`` and ``I;16`` (Pillow's conversion: ``I;16`` is
   clipped at 255, not scaled);
3. takes ``numpy.asarray`` of the picture as it is, and repeats a 2-D array (``L``, ``P``,
   ``1``) into three equal channels;
4. hands that array to `pdqhash.compute`, which takes luma from the first three channels
   whatever they hold, in the array's own type.

So HMA hashes a palette picture on its palette *indices*, CMYK on C, M and Y (inverted,
without K), YCbCr, LAB and HSV on their raw channels, a 1-bit picture on values 0 and 1 (its
quality is then near 0), and it cannot hash ``PA``, ``La``, ``I``, ``F``, ``I;16B``... at all
(pdqhash refuses the array). Where HMA's array equals Vigie's (``RGB``, ``L``, and with alpha
ignored ``RGBA``, ``RGBX``, ``LA``) there is nothing to add. Elsewhere Vigie computes HMA's
value as one more query variant, `hma_compat` (see `vigie.signals.variants`).

The parity test (tests/test_parity_pdq.py) runs python-threatexchange itself in a test venv
on generated pictures of every mode and compares bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from vigie.errors import MediaError
from vigie.signals.pdq_types import PdqHash

#: The variant's kind in `pdq_variants` and in match results.
KIND = "hma_compat"
#: Modes python-threatexchange converts with Pillow's ``convert("RGB")`` before hashing.
HMA_CONVERTS = frozenset({"LA", "I;16"})
#: Modes whose HMA array is exactly the array Vigie hashes, whatever Vigie's alpha setting.
SAME_ALWAYS = frozenset({"RGB", "L"})
#: Modes whose HMA array is Vigie's array when Vigie ignores alpha (its default, as HMA).
SAME_WHEN_ALPHA_IGNORED = frozenset({"RGBA", "RGBX", "LA"})


def differs_from_vigie(mode: str, alpha: str = "ignore") -> bool:
    """True when HMA may hash a picture of this Pillow mode otherwise than Vigie does."""
    if mode in SAME_ALWAYS:
        return False
    return not (alpha == "ignore" and mode in SAME_WHEN_ALPHA_IGNORED)


def hma_array(img: Image.Image) -> np.ndarray | None:
    """The array python-threatexchange gives pdqhash for `img`, or None where pdqhash refuses it
    (a sample type other than 8 bits or bool, fewer than three channels): HMA has no hash then."""
    if img.mode in HMA_CONVERTS:
        img = img.convert("RGB")
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] < 3 or a.dtype not in (np.uint8, np.int8, np.bool_):
        return None
    return a


def hma_luma(a: np.ndarray) -> np.ndarray:
    """pdqhash's grey plane of an array of any accepted type: numpy's products with the float weights
    (float64; a bool channel counts 0 or 1), summed, then float32."""
    return (a[:, :, 0] * 0.299 + a[:, :, 1] * 0.587 + a[:, :, 2] * 0.114).astype(np.float32)


def hma_pdq(img: Image.Image, engine: str = "numba") -> PdqHash | None:
    """HMA's PDQ of an opened picture (its first frame), or None where HMA cannot hash it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img.load()
        a = hma_array(img)
    if a is None or a.shape[0] == 0 or a.shape[1] == 0:
        return None
    if engine == "reference":
        import pdqhash

        from vigie.signals.pdq import bits_to_hex

        bits, quality = pdqhash.compute(np.ascontiguousarray(a))
        return PdqHash(bits_to_hex(bits), int(quality))
    from vigie.signals import pdq_numba

    return pdq_numba.hash_luma(hma_luma(a))


def hma_pdq_bytes(data: bytes, *, engine: str = "numba", max_pixels: int = 100_000_000,
                  alpha: str = "ignore", only_if_different: bool = True) -> PdqHash | None:
    """HMA's PDQ of a picture file's bytes; None when it cannot differ from Vigie's plain hash
    (`only_if_different`), when HMA cannot hash the picture, or when it does not decode."""
    from vigie.media.decode import open_image

    try:
        img = open_image(data, max_pixels=max_pixels)
    except MediaError:
        return None
    try:
        if only_if_different and not differs_from_vigie(img.mode, alpha):
            return None
        return hma_pdq(img, engine)
    except (OSError, ValueError, SyntaxError, MemoryError, EOFError, Image.DecompressionBombError):
        return None
    finally:
        img.close()
