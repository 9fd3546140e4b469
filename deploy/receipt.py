#!/usr/bin/env python3
"""receipt.py - reads the receipts a simulated kiosk "printed": the ESC/POS bytes of its printer file.

    receipt.py FILE             every receipt in FILE, oldest first: its text lines and its QR code's payload
    receipt.py FILE --last      the last one only
    receipt.py FILE --follow    the ones in FILE, then each new one as the kiosk prints it, until Ctrl-C

FILE is the kiosk's printer.path (`make run`: var/run/kiosk-receipts.bin); the daemon appends one receipt per
collection. The QR payload is the receipt's public check URL (core's /r/RECEIPT?c=CHECK): open it, or
`curl -H 'Accept: application/json' URL`, to see what core recorded.

It understands exactly what kiosk/receipt.c emits (receipt_escpos, the same subset as receipt_decode): ESC @
(initialise: a receipt starts), ESC a n (alignment), ESC E n (bold: not shown), ESC d n (feed), GS ( k (the QR code,
function 165: model, module size, error correction, store the data, print it) and GS V (cut: the receipt
ends), printable ASCII and LF. Anything else is reported with its offset rather than guessed at: a receipt
that does not read here would not print right either. Standard library only.
"""
import os
import sys
import time

ESC, GS, LF = 0x1B, 0x1D, 0x0A
WIDTH = 42  # characters on a 80 mm thermal line in the printer's default font (for centred lines)


class Bad(Exception):
    pass


def decode(data, start=0):
    """Receipts in data from offset start: a list of (offset, lines, qr payloads), and the offset of the
    first byte not part of a complete receipt (a receipt being written, or nothing)."""
    receipts, i, n = [], start, len(data)
    cur = None
    line, centre = [], False

    def end_line():
        text = "".join(line)
        cur["lines"].append(text.center(WIDTH).rstrip() if centre else text)
        line.clear()

    done = start
    while i < n:
        c = data[i]
        if c == ESC:
            if i + 1 >= n:
                break
            cmd = data[i + 1]
            if cmd == ord("@"):
                if cur is not None and (cur["lines"] or line):
                    raise Bad(f"byte {i}: a new receipt starts before the previous one was cut")
                cur = {"offset": i, "lines": [], "qr": []}
                line, centre = [], False
                i += 2
                continue
            if cmd in (ord("a"), ord("E"), ord("d")):
                if i + 2 >= n:
                    break
                arg = data[i + 2]
                if cur is None:
                    raise Bad(f"byte {i}: ESC {chr(cmd)} before ESC @")
                if cmd == ord("a"):
                    centre = arg in (1, 49)
                elif cmd == ord("d") and line:
                    end_line()
                i += 3
                continue
            raise Bad(f"byte {i}: ESC 0x{cmd:02x} is not something hifadhi-kiosk prints")
        if c == GS:
            if i + 2 >= n:
                break
            if cur is None:
                raise Bad(f"byte {i}: GS before ESC @")
            if data[i + 1] == ord("V"):
                need = 4 if data[i + 2] in (65, 66) else 3
                if i + need > n:
                    break
                if line:
                    end_line()
                while cur["lines"] and cur["lines"][-1] == "":
                    cur["lines"].pop()
                receipts.append(cur)
                cur = None
                i += need
                done = i
                continue
            if data[i + 1] == ord("(") and data[i + 2] == ord("k"):
                if i + 6 >= n:
                    break
                plen = data[i + 3] | data[i + 4] << 8
                if i + 5 + plen > n:
                    break
                if plen < 2 or data[i + 5] != 49:
                    raise Bad(f"byte {i}: GS ( k that is not a QR code")
                fn = data[i + 6]
                if fn == 80:
                    if plen < 3 or data[i + 7] != 48:
                        raise Bad(f"byte {i}: QR store command with m != 48")
                    payload = data[i + 8:i + 5 + plen]
                    cur["qr"].append(payload.decode("ascii", errors="replace"))
                elif fn == 81:
                    if line:
                        end_line()
                    for p in cur["qr"][-1:]:
                        cur["lines"].append(f"[QR code: {p}]")
                i += 5 + plen
                continue
            raise Bad(f"byte {i}: GS 0x{data[i + 1]:02x} is not something hifadhi-kiosk prints")
        if cur is None:
            raise Bad(f"byte {i}: text before ESC @ (not a receipt file?)")
        if c == LF:
            end_line()
        elif 0x20 <= c <= 0x7E:
            line.append(chr(c))
        else:
            raise Bad(f"byte {i}: 0x{c:02x} is not printable ASCII")
        i += 1
    return receipts, done


def show(r, number):
    print(f"---- receipt {number} (byte {r['offset']}) " + "-" * 20)
    for text in r["lines"]:
        print(text)
    if not r["qr"]:
        print("(no QR code)")
    print(flush=True)


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help") or len(args) > 2 or (len(args) == 2 and args[1] not in ("--last", "--follow")):
        sys.exit(__doc__)
    path, mode = args[0], (args[1] if len(args) == 2 else "")
    if not os.path.exists(path):
        sys.exit(f"receipt: {path} does not exist (the kiosk's printer.path; make run prints it)")
    with open(path, "rb") as f:
        data = f.read()
    try:
        receipts, done = decode(data)
    except Bad as e:
        sys.exit(f"receipt: {path}: {e}")
    if mode == "--last":
        if not receipts:
            sys.exit(f"receipt: no receipt in {path} yet")
        show(receipts[-1], len(receipts))
        return
    for k, r in enumerate(receipts, 1):
        show(r, k)
    if mode != "--follow":
        if not receipts:
            print(f"no receipt in {path} yet")
        return
    count = len(receipts)
    print(f"waiting for receipts in {path} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(0.5)  # a file has nothing to wait on without inotify, which the standard library lacks
            with open(path, "rb") as f:
                data = f.read()
            if len(data) < done:
                done = 0  # the file was emptied: start over
            try:
                new, done = decode(data, done)
            except Bad as e:
                sys.exit(f"receipt: {path}: {e}")
            for r in new:
                count += 1
                show(r, count)
    except KeyboardInterrupt:
        print()


if __name__ == "__main__":
    main()
