"""The digest's spend chart: a PNG for channels that show images, a text sparkline everywhere else.

A bar chart of a fortnight needs no plotting library: the PNG is written by hand (zlib + crc32 from
the standard library), which keeps matplotlib and its ~40 MB out of every worker."""
from __future__ import annotations

import struct
import zlib
from datetime import date
from typing import Sequence

from agents.costs import money

BARS = "▁▂▃▄▅▆▇█"

Rgb = tuple[int, int, int]
BACKGROUND: Rgb = (255, 255, 255)
BAR: Rgb = (120, 144, 176)
TODAY: Rgb = (37, 99, 235)
OVER: Rgb = (220, 38, 38)
CAP: Rgb = (234, 88, 12)
AXIS: Rgb = (160, 160, 160)


def sparkline(values: Sequence[int]) -> str:
    """One block character per value; zero stays at the floor so quiet days read as quiet."""
    top = max(values, default=0)
    if top <= 0:
        return BARS[0] * len(values)
    return "".join(BARS[0] if v <= 0 else BARS[min(len(BARS) - 1, max(1, round(v / top * (len(BARS) - 1))))] for v in values)


def text_chart(series: Sequence[tuple[date, int]]) -> str:
    """`Spend, 14 days: ▁▁▃▂█▅ (today $0.0123, peak $0.0400 on 03-04)`."""
    if not series:
        return "Spend: nothing recorded yet."
    values = [v for _, v in series]
    peak_day, peak = max(series, key=lambda dv: dv[1])
    tail = f"today {money(values[-1])}" + (f", peak {money(peak)} on {peak_day:%m-%d}" if peak > 0 else "")
    return f"Spend, {len(series)} days: {sparkline(values)} ({tail})"


def png(series: Sequence[tuple[date, int]], cap: int | None = None, width: int = 280, height: int = 80) -> bytes:
    """A bar per day (today in blue, days over the cap in red) and the daily cap as an orange line."""
    pixels = [[BACKGROUND] * width for _ in range(height)]
    values = [v for _, v in series]
    top = max([*values, cap or 0, 1])
    margin = 4
    plot_h = height - 2 * margin
    count = max(len(values), 1)
    slot = (width - 2 * margin) / count
    for index, value in enumerate(values):
        bar_h = round(value / top * plot_h)
        colour = TODAY if index == len(values) - 1 else BAR
        if cap is not None and value > cap:
            colour = OVER
        x0 = margin + round(index * slot + slot * 0.15)
        x1 = margin + round((index + 1) * slot - slot * 0.15)
        for y in range(height - margin - bar_h, height - margin):
            for x in range(x0, max(x1, x0 + 1)):
                pixels[y][x] = colour
    for x in range(margin, width - margin):
        pixels[height - margin][x] = AXIS
    if cap is not None:
        y = height - margin - round(cap / top * plot_h)
        for x in range(margin, width - margin, 2):
            pixels[max(y, 0)][x] = CAP
    return encode_png(pixels)


def encode_png(pixels: Sequence[Sequence[Rgb]]) -> bytes:
    """8-bit RGB PNG, no filtering (each row is prefixed with filter type 0)."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
