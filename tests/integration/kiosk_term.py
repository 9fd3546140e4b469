"""kiosk_term.py - a real hifadhi-kiosk terminal for the integration tests.

    term = Terminal(suite, core, pay_point="AHERO-1", registered_by=officer)   # registered and started
    term.wait_screen("start"); st = term.act("collect"); term.type_ben("123456789")
    term.finger("arch", rotate=4)          # one impression through libfprint's virtual_image socket
    term.gpio.send("IN tamper 1")           # the fake GPIO board (kiosk/gpio.h)

The kiosk runs with libfprint's virtual_image reader (reader.simulate = image:SOCKET), the fake GPIO board
(gpio.backend = fake:SOCKET, every line mapped) and a file as its receipt printer. It is registered with core
the way an operator does it: staff POST /api/v1/kiosks, then `hifadhi-kiosk register CODE`.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import ROOT, CoreError, env, free_port, kill_daemon, stop_daemon, START_DEADLINE_S, POLL_S

sys.path.insert(0, str(ROOT / "deploy"))
import finger as fingerlib  # noqa: E402  (deploy/finger.py: the demo finger feeder)

FINGERS = ROOT / "tests" / "data" / "fingerprints"


class FakeBoard:
    """A test client of the kiosk's fake GPIO socket: records every OUT line, sends IN lines."""

    def __init__(self, path):
        self.path = path
        self.outs = []  # (name, value, monotonic time)
        self.lock = threading.Lock()
        self.sock = None
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_S)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                parts = line.decode("ascii", "replace").split()
                if len(parts) == 3 and parts[0] in ("OUT", "VAL"):
                    with self.lock:
                        self.outs.append((parts[1], parts[2], time.monotonic()))

    def send(self, line):
        self.sock.sendall(line.encode("ascii") + b"\n")

    def count(self, name, value="1"):
        with self.lock:
            return sum(1 for n, v, _ in self.outs if n == name and v == value)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Terminal:
    def __init__(self, suite, core, pay_point, registered_by, name=None, overrides=None, enrolment=False,
                 start=True):
        self.suite, self.core = suite, core
        self.bin = Path(env("HF_BUILD")) / "hifadhi-kiosk"
        st, _, reg = core.post("/api/v1/kiosks", {"pay_point": pay_point}, as_=registered_by)
        if st != 201:
            raise CoreError(f"kiosk registration refused: {st} {reg}")
        self.kiosk_no, self.code = reg["kiosk_no"], reg["enrolment_code"]
        if enrolment:
            st, _, b = core.request("PATCH", f"/api/v1/kiosks/{self.kiosk_no}", {"mode": "enrolment"}, as_="admin")
            if st != 200:
                raise CoreError(f"enrolment mode refused: {st} {b}")
        self.enrolment = enrolment
        self.dir = suite.var / (name or self.kiosk_no.lower())
        shutil.rmtree(self.dir, ignore_errors=True)  # a terminal of an earlier run of this suite is gone
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "kiosk.conf"
        self.finger_sock = self.dir / "finger.sock"
        self.gpio_sock = self.dir / "gpio.sock"
        self.printer = self.dir / "receipts.bin"
        self.overrides = dict(overrides or {})
        self.proc, self.port, self.logs, self.gpio = None, None, [], None
        self.ready_s = None
        self._impressions = {}
        suite.cores.append(self)  # stopped (and its clean exit checked) before the summary line
        self.printer.touch()  # the printer is there (a device file in production; never created by the kiosk)
        self.write_config(free_port())
        r = self.cli("register", self.code)
        if r.returncode != 0:
            raise CoreError(f"hifadhi-kiosk register failed: {r.stdout} {r.stderr}")
        if start:
            self.start()

    def write_config(self, port):
        self.port = port
        v = {"kiosk.number": self.kiosk_no, "kiosk.enrolment_station": "true" if self.enrolment else "false",
             "core.url": self.core.base_url, "core.timeout_ms": "1500", "core.heartbeat_s": "1",
             "key.dir": str(self.dir / "keys"), "state.dir": str(self.dir / "state"),
             "ui.port": str(port), "ui.static_dir": str(ROOT / "kiosk" / "ui"),
             "ui.menus_dir": str(ROOT / "menus" / "kiosk"), "ui.languages": "en,sw,fr", "ui.idle_s": "60",
             "reader.simulate": f"image:{self.finger_sock}", "reader.scan_timeout_s": "20",
             "gpio.backend": f"fake:{self.gpio_sock}", "gpio.lamp_green": "1", "gpio.lamp_red": "2",
             "gpio.lamp_fault": "3", "gpio.buzzer": "4", "gpio.drawer": "5", "gpio.tamper": "6", "gpio.door": "7",
             "gpio.help": "8", "printer.path": str(self.printer), "receipt.url": self.core.base_url,
             "log.level": "info"}
        v.update(self.overrides)
        sections = {}
        for key, value in v.items():
            section, k = key.split(".", 1)
            sections.setdefault(section, []).append(f"{k} = {value}")
        self.conf.write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items()))

    def cli(self, *args):
        return subprocess.run([str(self.bin), "-c", str(self.conf), *args], capture_output=True, text=True,
                              timeout=60)

    def start(self):
        log = self.dir / f"kiosk-{len(self.logs) + 1}.log"
        self.logs.append(log)
        t0 = time.monotonic()
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([str(self.bin), "-c", str(self.conf), "serve"], stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CoreError(f"hifadhi-kiosk exited {self.proc.returncode}: {log.read_text()[-1500:]}")
            try:
                if self._http("GET", "/healthz")[0] == 200:
                    self.ready_s = time.monotonic() - t0
                    if self.gpio:
                        self.gpio.close()
                    self.gpio = FakeBoard(self.gpio_sock)
                    return self
            except OSError:
                pass
            time.sleep(POLL_S)
        raise CoreError("hifadhi-kiosk did not get ready")

    def kill(self):
        kill_daemon(self.proc)
        self.proc = None

    def stop(self, check=True):
        if self.gpio:
            self.gpio.close()
            self.gpio = None
        proc, self.proc = self.proc, None
        return stop_daemon(self.suite, proc, self.logs, "hifadhi-kiosk", check)

    def log_text(self):
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    # ---- the UI's two calls
    def _http(self, method, path, body=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        conn.close()
        return r.status, data

    def state(self):
        st, data = self._http("GET", "/api/state")
        assert st == 200, (st, data)
        return json.loads(data)

    def act(self, action, value=None, seq=None):
        if seq is None:
            seq = self.state()["seq"]
        body = {"action": action, "seq": seq}
        if value is not None:
            body["value"] = value
        st, data = self._http("POST", "/api/action", json.dumps(body))
        assert st == 200, (st, data)
        return json.loads(data)

    def wait_screen(self, *names, timeout=30.0):
        """Waits (long-polling as the page does) until the screen is one of names; returns the state."""
        deadline = time.monotonic() + timeout
        s = self.state()
        while s["screen"] not in names and time.monotonic() < deadline:
            left = max(1, int(deadline - time.monotonic()))
            st, data = self._http("GET", f"/api/state?after={s['seq']}", timeout=left + 25)
            s = json.loads(data)
        return s

    def type_ben(self, ben):
        for d in ben:
            self.act("digit", d)
        return self.act("ok")

    def finger(self, name, rotate=0.0, shift=(0, 0), timeout=20.0):
        """Presents one impression of a NIST finger (tests/data/fingerprints) to the virtual reader, once the
        reader asks for a finger (an image sent before is lost by libfprint). Returns the finger request count
        at that moment; raises when the reader never asks."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.state()["status"]
            if st.get("finger_needed"):
                break
            if time.monotonic() > deadline:
                raise CoreError("the kiosk's reader never asked for a finger")
            time.sleep(POLL_S)
        key = (name, rotate, shift)
        if key not in self._impressions:
            w, h, px = fingerlib.load_pgm(str(FINGERS / f"{name}.pgm"))
            self._impressions[key] = ((w, h), fingerlib.transform(w, h, px, rotate, shift[0], shift[1]))
        header, payload = self._impressions[key]
        fingerlib.send(str(self.finger_sock), header, payload)
        return st.get("finger_requests")

    def wait_finger_taken(self, requests, timeout=20.0):
        """Waits until the reader is no longer waiting on the request it was at (the image was taken)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state()["status"]
            if not st.get("finger_needed") or st.get("finger_requests") != requests:
                return True
            time.sleep(POLL_S)
        return False

    def health(self):
        """What core's kiosk list shows of this terminal's last heartbeat ({} before the first)."""
        st, _, ks = self.core.get("/api/v1/kiosks", as_="admin")
        k = [x for x in ks.get("items", [])] if st == 200 else []
        k = [x for x in k if x["kiosk_no"] == self.kiosk_no]
        return (k[0].get("health") or {}) if k else {}

    def close_casing(self, timeout=20.0):
        """The tamper switch closed again, and waited for until core has heard so (a heartbeat still saying
        "tamper" after staff unlocked would lock the terminal again, as it should)."""
        self.gpio.send("IN tamper 0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health().get("tamper") is False:
                return True
            time.sleep(POLL_S)
        return False

    def receipts(self):
        return self.printer.read_bytes() if self.printer.exists() else b""


def paying_registry(core, maker, checker, names, location, pay_point, programme="OPCT", amount=400000):
    """Older persons with phones in one village, enrolled in a programme, and an approved kiosk cycle paying each
    of them `amount` at pay_point from today. Returns (ben_nos, phones, payment_of(ben) -> the payment)."""
    from datetime import date, timedelta
    day = lambda n: (date.today() + timedelta(days=n)).isoformat()
    core.post("/api/v1/programmes", {"code": programme, "name": "Older Persons Cash Transfer", "target": "individual",
                                     "currency": "KES"}, as_="admin")
    bens, phones = [], []
    for i, name in enumerate(names):
        phone = f"+2547120034{i:02d}"
        st, _, hh = core.post("/api/v1/households", {"location": location, "members": [
            {"given_name": name, "family_name": "Ouko", "sex": "female", "date_of_birth": "1948-02-01",
             "relationship": "head", "language": "sw" if i % 2 else "en", "phone": phone}]})
        assert st == 201, (st, hh)
        bens.append(hh["members"][0]["ben_no"])
        phones.append(phone)
        st, _, en = core.post("/api/v1/enrolments", {"programme": programme, "ben_no": bens[-1], "status": "enrolled"})
        assert st == 201, (st, en)
    core.post("/api/v1/ledger/funding", {"programme": programme, "amount": 50_000_000, "currency": "KES",
                                         "reference": f"TREASURY-{programme}-KIOSK"}, as_=maker)
    cyc = f"{programme}-KIOSK-T"
    district = f"{location['region']}/{location['district']}"
    st, _, c = core.post("/api/v1/cycles", {"code": cyc, "programme": programme,
                                            "rule": {"kind": "flat", "amount": amount}, "cutoff_date": day(0),
                                            "pay_from": day(0), "pay_until": day(5), "channel": "kiosk",
                                            "pay_points": {district: pay_point}}, as_=maker)
    assert st == 201, (st, c)
    core.post(f"/api/v1/cycles/{cyc}/payroll", {}, as_=maker)
    core.post(f"/api/v1/cycles/{cyc}/submit", {}, as_=maker)
    st, _, b = core.post(f"/api/v1/cycles/{cyc}/approve", {}, as_=checker)
    assert st == 200, (st, b)

    def payment_of(ben):
        st_, _, b_ = core.get(f"/api/v1/cycles/{cyc}/payments?limit=100", as_=maker)
        return [p for p in b_["items"] if p["ben_no"] == ben][0]

    return bens, phones, payment_of


def enrol_finger(station, ben, finger, rotations=(-8, -4, 0, 4, 8)):
    """At an enrolment station: the registrar starts an enrolment for ben, the person presses 5 times.
    Returns the screen state it ends on (enrol_done when it worked)."""
    station.wait_screen("start")
    station.act("enrol")
    station.type_ben(ben)
    station.wait_screen("enrol_scan")
    for rot in rotations:
        req = station.finger(finger, rotate=rot)
        station.wait_finger_taken(req)
    done = station.wait_screen("enrol_done", "message", timeout=20)
    station.act("finish")
    return done
