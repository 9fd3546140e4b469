#!/usr/bin/env python3
"""gpio.py - the switches and lamps of a simulated kiosk: a client of its fake GPIO board (kiosk/gpio.h).

    gpio.py SOCKET tamper|door|help 1|0   sets an input (1 = active: tamper switch open, door open, help
                                          pressed) and prints the lamp changes the kiosk makes in the next
                                          second (a tamper or an open door lights lamp_red and locks it)
    gpio.py SOCKET press help             help pressed and released
    gpio.py SOCKET get NAME               the current value of an output (lamp_green, lamp_red, lamp_fault,
                                          buzzer, drawer)
    gpio.py SOCKET watch                  prints every output change as it happens (the drawer opening, the
                                          buzzer, the lamps) until Ctrl-C
    gpio.py SOCKET                        interactive: the same commands typed at a prompt ("tamper 1",
                                          "get lamp_red", ...), output changes printed as they come

SOCKET is the kiosk's gpio.backend fake:PATH (`make run`: var/run/kiosk-gpio.sock). Values are logical
(1 = active) whatever the real board's wiring. A locked kiosk opens again only when staff unlock it in core
(POST /api/v1/kiosks/{no}/unlock) AND its switches are back to 0. Standard library only.
"""
import os
import select
import socket
import sys
import time

INPUTS = ("tamper", "door", "help")
OUTPUTS = ("lamp_green", "lamp_red", "lamp_fault", "buzzer", "drawer")
FOLLOW_S = 1.0  # how long a change is followed by the lamp changes it causes
PRESS_S = 0.1   # a press is held longer than the board's 20 ms debounce


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        sys.exit(f"gpio: cannot connect to {path}: {e.strerror} (is the kiosk running with gpio.backend = fake:{path}?)")
    return s


class Lines:
    """Splits what the kiosk sends into lines."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def read(self, timeout):
        """Lines that arrive within timeout seconds (fewer if the kiosk closes); [] on timeout."""
        out = []
        end = time.monotonic() + timeout
        while not out:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                break
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("the kiosk closed the connection (stopped?)")
            self.buf += data
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                out.append(line.decode(errors="replace"))
        return out


def show(line):
    parts = line.split()
    if len(parts) == 3 and parts[0] == "OUT":
        print(f"{time.strftime('%H:%M:%S')}  {parts[1]:<10} {'on' if parts[2] == '1' else 'off'}", flush=True)
    elif len(parts) == 3 and parts[0] == "VAL":
        print(f"{parts[1]} = {parts[2]}", flush=True)
    else:
        print(line, flush=True)


def command(sock, lines, words):
    """Carries out one command; returns False for a bad one."""
    if len(words) == 2 and words[0] in INPUTS and words[1] in ("0", "1"):
        sock.sendall(f"IN {words[0]} {words[1]}\n".encode())
    elif len(words) == 2 and words[0] == "press" and words[1] in INPUTS:
        sock.sendall(f"IN {words[1]} 1\n".encode())
        time.sleep(PRESS_S)
        sock.sendall(f"IN {words[1]} 0\n".encode())
    elif len(words) == 2 and words[0] == "get" and words[1] in OUTPUTS:
        sock.sendall(f"GET {words[1]}\n".encode())
        end = time.monotonic() + FOLLOW_S
        while time.monotonic() < end:
            for line in lines.read(end - time.monotonic()):
                show(line)
                if line.startswith("VAL "):
                    return True
        print(f"gpio: no answer about {words[1]} (is it mapped in the kiosk's config?)", flush=True)
        return True
    else:
        return False
    end = time.monotonic() + FOLLOW_S
    while time.monotonic() < end:
        for line in lines.read(end - time.monotonic()):
            show(line)
    return True


def interactive(sock, lines):
    print("commands: tamper|door|help 0|1, press help, get NAME, quit. Output changes are printed as they come.")
    while True:
        sys.stdout.write("gpio> ")
        sys.stdout.flush()
        while True:
            ready = select.select([sys.stdin, sock], [], [])[0]
            if sock in ready:
                for line in lines.read(0.05):
                    show(line)
            if sys.stdin in ready:
                break
        text = sys.stdin.readline()
        if not text or text.strip() in ("quit", "exit"):
            return
        if text.strip() and not command(sock, lines, text.split()):
            print("gpio: unknown command; try: tamper 1, door 0, press help, get lamp_red, quit")


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    path, words = sys.argv[1], sys.argv[2:]
    if not os.path.exists(path):
        sys.exit(f"gpio: {path} does not exist (is the kiosk running? make run prints the socket's path)")
    sock = connect(path)
    lines = Lines(sock)
    try:
        if not words:
            interactive(sock, lines)
        elif words == ["watch"]:
            while True:
                for line in lines.read(3600):
                    show(line)
        elif not command(sock, lines, words):
            sys.exit(__doc__)
    except KeyboardInterrupt:
        print()
    except ConnectionError as e:
        sys.exit(f"gpio: {e}")
    finally:
        sock.close()


if __name__ == "__main__":
    main()
