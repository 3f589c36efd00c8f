"""Miniatures of unknown media in a scan report: only when asked, blurred and grey, sealed like review media.

A scan report folder travels (a case file, a USB stick, a colleague's laptop): it must not carry
pictures nobody has judged yet in clear. So `vigie scan` writes no picture by default: the report
has hashes, locations and clusters. With `--thumbnails` it keeps, for each unknown content, one
miniature (a video: its keyframes) that is greyscale, at most `SIDE` px, blurred with a Gaussian of
`BLUR` px, then encrypted with the media key (AES-256-GCM, a fresh nonce, the associated data
``<sha256>:scan-thumb:<n>``) as ``thumbs/<sha256>[-n].bin``. Without a media key the scan is
refused at once (`no_media_key`): never a clear miniature instead.

The report folder is 0700 and every file in it 0600. `read` opens one miniature again for a person
who holds the key; report.html embeds none.
"""

from __future__ import annotations

import io
import os

#: Largest side of a miniature (px): the worker's thumbnail is 160 px.
SIDE = 160
#: Gaussian blur radius (px at `SIDE`): shapes stay, detail does not.
BLUR = 6
FOLDER = "thumbs"


def prepare_folder(out_dir: str) -> None:
    """The report folder, made 0700 (and an existing one tightened, its files 0600)."""
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    os.chmod(out_dir, 0o700)
    for root, dirs, files in os.walk(out_dir):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                os.chmod(p, 0o600)


def miniature(jpeg: bytes) -> bytes:
    """A small, greyscale, blurred JPEG of a picture: what a miniature holds."""
    from PIL import Image, ImageFilter

    with Image.open(io.BytesIO(jpeg)) as img:
        img = img.convert("L")
        img.thumbnail((SIDE, SIDE))
        img = img.filter(ImageFilter.GaussianBlur(BLUR))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60)
    return buf.getvalue()


def _aad(sha256: str, n: int) -> bytes:
    return f"{sha256}:scan-thumb:{n}".encode()


def _name(sha256: str, n: int | None) -> str:
    return f"{sha256}.bin" if n is None else f"{sha256}-{n}.bin"


class ThumbWriter:
    """Writes the sealed miniatures of one scan's unknown media; refuses to exist without a media key."""

    def __init__(self, out_dir: str, settings):
        from vigie.review.media import media_key

        self.key, self.key_id = media_key(settings)  # MediaKeyError (no_media_key) before anything is scanned
        self.folder = os.path.join(out_dir, FOLDER)

    def add(self, r) -> None:
        """The miniatures of one unknown result (`vigie.ingest.process.ItemResult`): its picture, or the
        keyframes of a video. Written once per content."""
        pics = [(None, r.thumb)] if r.thumb else []
        pics += list(enumerate(r.keyframes))
        if not pics:
            return
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        for n, jpeg in pics:
            path = os.path.join(self.folder, _name(r.sha256, n))
            if os.path.exists(path):
                continue
            try:
                data = miniature(jpeg)
            except Exception:  # noqa: BLE001 - a miniature is optional: never fail the scan for one
                continue
            self._write(path, data, r.sha256, -1 if n is None else n)

    def _write(self, path: str, data: bytes, sha256: str, n: int) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        blob = b"VGT1" + self.key_id.encode() + nonce + AESGCM(self.key).encrypt(nonce, data, _aad(sha256, n))
        tmp = path + ".part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)


def read(out_dir: str, settings, sha256: str, n: int | None = None) -> bytes:
    """The miniature (a blurred grey JPEG) of `sha256` in a report folder, decrypted with the media key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from vigie.review.media import MediaKeyError, media_key

    key, kid = media_key(settings)
    with open(os.path.join(out_dir, FOLDER, _name(sha256, n)), "rb") as f:
        blob = f.read()
    if blob[:4] != b"VGT1" or blob[4:20].decode("ascii", "replace") != kid:
        raise MediaKeyError("this miniature was sealed with another media key", code="media_key_mismatch")
    try:
        return AESGCM(key).decrypt(blob[20:32], blob[32:], _aad(sha256, -1 if n is None else n))
    except InvalidTag:
        raise MediaKeyError("the miniature does not decrypt: damaged, swapped or another key",
                            code="media_key_mismatch") from None


def sealed_count(out_dir: str) -> int:
    """How many sealed miniatures the report folder holds (report.html says so; it shows none)."""
    folder = os.path.join(out_dir, FOLDER)
    try:
        return sum(1 for n in os.listdir(folder) if n.endswith(".bin"))
    except FileNotFoundError:
        return 0
