"""Recording files in the codec they were recorded in (never transcoded), as silence of the right length.

`stream(fmt, seconds)` yields the bytes of a valid file: a RIFF/WAVE header for the wav formats, raw frames
for the others. Asterisk serves the file with `Content-Type: audio/<extension>` (resource_recordings.c).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

# A silent GSM 06.10 frame (33 bytes, 20 ms).
_GSM_SILENCE = bytes.fromhex(
    "d820a2e15a50" "004924924924" "500049249249" "245000492492" "492450004924" "924924"
)


def _pcm_wav_header(rate: int, data_len: int) -> bytes:
    return b"".join((
        b"RIFF", struct.pack("<I", 36 + data_len), b"WAVE",
        b"fmt ", struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16),
        b"data", struct.pack("<I", data_len),
    ))


def _gsm_wav_header(blocks: int) -> bytes:
    # WAV49: GSM 6.10 in WAVE, 65-byte blocks of 320 samples (two Microsoft-packed frames).
    data_len = blocks * 65
    fmt = struct.pack("<HHIIHHHH", 0x31, 1, 8000, 1625, 65, 0, 2, 320)
    fact = struct.pack("<I", blocks * 320)
    return b"".join((
        b"RIFF", struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(fact) + 8 + data_len), b"WAVE",
        b"fmt ", struct.pack("<I", len(fmt)), fmt,
        b"fact", struct.pack("<I", len(fact)), fact,
        b"data", struct.pack("<I", data_len),
    ))


# extension -> (bytes per second of silence, one frame of silence) for the raw formats.
_RAW = {
    "ulaw": (8000, b"\xff"), "ul": (8000, b"\xff"), "pcm": (8000, b"\xff"), "mu": (8000, b"\xff"),
    "alaw": (8000, b"\xd5"), "al": (8000, b"\xd5"), "alw": (8000, b"\xd5"),
    "sln": (16000, b"\x00\x00"), "raw": (16000, b"\x00\x00"), "sln16": (32000, b"\x00\x00"),
    "g722": (8000, b"\x00"), "g729": (1000, b"\x00" * 10), "ilbc": (1900, b"\x00" * 38),
    "gsm": (1650, _GSM_SILENCE),
}

FORMATS = frozenset(["wav", "wav16", "WAV", "wav49", *_RAW])

_CHUNK = 64 * 1024


def _plan(fmt: str, seconds: float) -> tuple[bytes, int, bytes]:
    """(header, length of the body, the body's repeating unit)."""
    seconds = max(seconds, 0.0)
    if fmt in ("wav", "wav16"):
        rate = 16000 if fmt == "wav16" else 8000
        data_len = int(rate * seconds) * 2
        return _pcm_wav_header(rate, data_len), data_len, b"\x00\x00"
    if fmt in ("WAV", "wav49"):
        blocks = int(seconds * 25)
        return _gsm_wav_header(blocks), blocks * 65, b"\x00" * 65
    per_s, unit = _RAW[fmt]
    units = int(per_s * seconds) // len(unit)
    return b"", units * len(unit), unit


def content_type(fmt: str) -> str:
    return f"audio/{fmt}"


def stream(fmt: str, seconds: float) -> Iterator[bytes]:
    header, body_len, unit = _plan(fmt, seconds)
    if header:
        yield header
    block = unit * max(1, _CHUNK // len(unit))
    remaining = body_len
    while remaining > 0:
        take = min(remaining, len(block))
        yield block[:take]
        remaining -= take


def total_size(fmt: str, seconds: float) -> int:
    header, body_len, _ = _plan(fmt, seconds)
    return len(header) + body_len
