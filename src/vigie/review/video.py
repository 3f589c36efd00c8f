"""A video as the review screen gets it: without its sound unless the analyst's policy allows sound.

The page plays videos muted, but a muted player is a setting the browser could change, and the
bytes would still carry the voices: so the server takes the audio out before the video leaves
it. `strip_audio` remuxes the video in memory (PyAV): the first video stream's packets are
copied as they are (no re-encoding: the pictures are the same bytes), every other stream
(audio, subtitles, data) is left out. Nothing is written to disk. The input is bounded
(`MAX_BYTES`), and so is the output (never larger than the input plus a little container).

A video that cannot be remuxed is refused (`audio_strip_failed`), never served with its sound.
"""

from __future__ import annotations

import io

from vigie.errors import VigieError

#: Largest video remuxed (review media are far smaller: uploads stop at 64 MiB).
MAX_BYTES = 512 * 1024 * 1024
#: Container written for each media type, so that the type the browser is told stays true.
FORMATS = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm", "video/x-matroska": "matroska",
           "video/x-msvideo": "avi", "video/ogg": "ogg", "video/mpeg": "mpeg", "video/x-flv": "flv",
           "video/3gpp": "3gp"}


class AudioStripError(VigieError):
    """The sound could not be taken out of a video: it is not shown rather than shown with its sound."""

    code = "audio_strip_failed"
    http_status = 422


def has_audio(data: bytes) -> bool:
    """Whether the video carries an audio stream."""
    import av

    with av.open(io.BytesIO(data), mode="r") as src:
        return any(s.type == "audio" for s in src.streams)


def strip_audio(data: bytes, media_type: str | None = None, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The video without its audio (and any stream but the first video stream), in the same container.

    Returns `data` itself when it holds nothing but video streams."""
    import av

    if len(data) > max_bytes:
        raise AudioStripError(f"the video is larger than {max_bytes // 2**20} MiB", code="too_large")
    try:
        with av.open(io.BytesIO(data), mode="r") as src:
            video = next((s for s in src.streams if s.type == "video"), None)
            if video is None:
                raise AudioStripError("no video stream to show")
            if all(s.type == "video" for s in src.streams) and len(src.streams) == 1:
                return data
            fmt = FORMATS.get((media_type or "").split(";")[0].strip().lower()) or src.format.name.split(",")[0]
            out = io.BytesIO()
            with av.open(out, mode="w", format=fmt) as dst:
                copy = dst.add_stream_from_template(video)
                for packet in src.demux(video):
                    if packet.dts is None:  # the flush packet demux gives at the end
                        continue
                    packet.stream = copy
                    dst.mux(packet)
                    if out.tell() > len(data) + 2**20:
                        raise AudioStripError("the video grew while its sound was taken out")
        return out.getvalue()
    except av.error.FFmpegError as exc:
        raise AudioStripError(f"the sound could not be taken out of this video ({exc.__class__.__name__}): "
                              "it is not shown") from None


def served(data: bytes, media_type: str | None, policy) -> tuple[bytes, str | None]:
    """The video as it leaves the server for this policy: with its sound only when `video_muted` is off."""
    if getattr(policy, "video_muted", True):
        return strip_audio(data, media_type), media_type
    return data, media_type
