#!/usr/bin/env python3
"""finger.py - press a finger on a kiosk whose reader is libfprint's virtual_image driver.

    deploy/finger.py SOCKET [IMAGE.pgm | arch | loop-right | tented_arch | whorl] [--rotate DEG] [--shift DX DY]
    deploy/finger.py SOCKET --retry [CODE]      a scan that is not usable (1 = too short, the default)
    deploy/finger.py SOCKET --unplug            the sensor goes away (the kiosk shows the reader as absent)

Start the kiosk with FP_VIRTUAL_IMAGE=SOCKET (a path for a unix socket; the driver creates it when the
reader opens) and run this while the kiosk asks for a finger: an impression sent while the sensor is not
waiting for one is lost. The four names are the NIST public-domain prints of tests/data/fingerprints (the
default is loop-right); any 8-bit binary PGM (P5) works. An enrolment takes five presses: give each a
different --rotate (e.g. -10, -5, 0, 5, 10) and verify with another angle, as a finger never lands twice the
same way. A different print is another person.

Protocol (libfprint 1.94 virtual_image): the driver listens on SOCKET and takes ONE client at a time (a second
connection is closed at once); each message is a header of two native-endian int32, {width, height} followed
by width*height bytes of 8-bit grey, or {-1, code} retry, {-5, 0} unplug. Standard library only; the
functions are importable by integration tests (load_pgm, transform, send).
"""

import argparse
import math
import os
import socket
import struct
import sys

PRINTS = ("arch", "loop-right", "tented_arch", "whorl")
PRINTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "fingerprints")
DIM_MAX = 5000  # the driver drops a client announcing a bigger image


def load_pgm(path):
    """(width, height, bytes) of a binary 8-bit PGM; ValueError when it is not one."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            while pos < len(data) and data[pos:pos + 1] != b"\n":
                pos += 1
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ValueError(f"{path}: truncated PGM header")
        fields.append(data[start:pos])
    pos += 1  # the one whitespace byte after maxval
    if fields[0] != b"P5" or not all(x.isdigit() for x in fields[1:]):
        raise ValueError(f"{path}: not a binary PGM (P5)")
    w, h, maxval = (int(x) for x in fields[1:])
    if maxval != 255 or not (0 < w <= DIM_MAX and 0 < h <= DIM_MAX):
        raise ValueError(f"{path}: want 8-bit grey, at most {DIM_MAX}x{DIM_MAX} (got {w}x{h}, maxval {maxval})")
    pixels = data[pos:pos + w * h]
    if len(pixels) != w * h:
        raise ValueError(f"{path}: {len(pixels)} bytes of pixels, want {w * h}")
    return w, h, pixels


def transform(w, h, pixels, deg=0.0, dx=0, dy=0):
    """The image rotated by deg degrees about its centre (bilinear) and shifted by (dx, dy); uncovered pixels
    take the background (the corners' mean). Same size."""
    if deg == 0 and dx == 0 and dy == 0:
        return bytes(pixels)
    bg = (pixels[0] + pixels[w - 1] + pixels[(h - 1) * w] + pixels[h * w - 1]) // 4
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    out = bytearray(w * h)
    for y in range(h):
        for x in range(w):
            X, Y = x - dx - cx, y - dy - cy
            sx, sy = c * X + s * Y + cx, -s * X + c * Y + cy
            x0, y0 = math.floor(sx), math.floor(sy)
            fx, fy = sx - x0, sy - y0
            v = 0.0
            for xx, yy, wgt in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                                (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):
                p = pixels[yy * w + xx] if 0 <= xx < w and 0 <= yy < h else bg
                v += wgt * p
            out[y * w + x] = min(255, int(v + 0.5))
    return bytes(out)


def send(sock_path, header, payload=b"", timeout=5.0):
    """Sends one message (header: two ints) to the virtual_image socket at sock_path."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(struct.pack("=ii", *header) + payload)
        # Closing at once is fine: the driver reads what is buffered before it sees the end.


def main(argv):
    ap = argparse.ArgumentParser(description="Send one fingerprint impression to libfprint's virtual_image.")
    ap.add_argument("socket", help="the path in the kiosk's FP_VIRTUAL_IMAGE")
    ap.add_argument("image", nargs="?", default="loop-right", help="a PGM file or one of: " + ", ".join(PRINTS))
    ap.add_argument("--rotate", type=float, default=0.0, metavar="DEG", help="rotate by DEG degrees (-30..30)")
    ap.add_argument("--shift", type=int, nargs=2, default=(0, 0), metavar=("DX", "DY"), help="shift in pixels")
    ap.add_argument("--retry", type=int, nargs="?", const=1, metavar="CODE",
                    help="send a retry instead of an image (1 too short, 2 centre finger, 3 remove finger)")
    ap.add_argument("--unplug", action="store_true", help="unplug the virtual sensor")
    args = ap.parse_args(argv)
    if not -30 <= args.rotate <= 30 or any(abs(v) > 100 for v in args.shift):
        ap.error("--rotate must be within -30..30 and --shift within -100..100")
    try:
        if args.unplug:
            header, payload, what = (-5, 0), b"", "unplug"
        elif args.retry is not None:
            header, payload, what = (-1, args.retry), b"", f"retry {args.retry}"
        else:
            path = os.path.join(PRINTS_DIR, args.image + ".pgm") if args.image in PRINTS else args.image
            w, h, px = load_pgm(path)
            header, payload = (w, h), transform(w, h, px, args.rotate, args.shift[0], args.shift[1])
            what = f"{os.path.basename(path)} {w}x{h}, rotated {args.rotate:g}, shifted {args.shift[0]},{args.shift[1]}"
    except (OSError, ValueError) as e:
        print(f"finger.py: {e}", file=sys.stderr)
        return 1
    try:
        send(args.socket, header, payload)
    except OSError as e:
        print(f"finger.py: {args.socket}: {e}", file=sys.stderr)
        print("finger.py: is the kiosk running with FP_VIRTUAL_IMAGE set to this socket, and its reader open?",
              file=sys.stderr)
        return 1
    print(f"sent {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
