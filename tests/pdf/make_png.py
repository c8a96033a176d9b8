#!/usr/bin/python3
"""make_png.py signature|seal OUT.png: a transparent RGBA PNG for the tests:
a blue handwritten-like stroke (300x120), or a red seal ring with a star
(400x400).  Standard library only (zlib)."""
import math
import struct
import sys
import zlib


def png(width, height, pixel):
    rows = b''
    for y in range(height):
        rows += b'\x00' + b''.join(bytes(pixel(x, y)) for x in range(width))

    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 6, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b''))


def signature(x, y):
    # a thick sine stroke across the image, ink blue
    curve = 60 + 35 * math.sin(x / 300 * 4 * math.pi)
    return (20, 40, 200, 255) if abs(y - curve) < 7 and 10 <= x < 290 else (0, 0, 0, 0)


def seal(x, y):
    r = math.hypot(x - 200, y - 200)
    ink = (220, 20, 20, 255)
    if 170 <= r < 198 or (r < 60 and abs(x - 200) + abs(y - 200) < 60):
        return ink
    return (0, 0, 0, 0)


kind, out = sys.argv[1], sys.argv[2]
data = png(300, 120, signature) if kind == 'signature' else png(400, 400, seal)
with open(out, 'wb') as f:
    f.write(data)
