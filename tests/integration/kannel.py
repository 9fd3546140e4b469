"""kannel.py - a private Kannel (bearerbox, fakesmsc, smsbox) for integration suites, through deploy/kannel.sh.

Suites that need real Kannel boxes (the gateway's SMS and USSD suites, test_kannel.py) start one per suite:

    from harness import Suite
    from kannel import Kannel
    with Suite() as s:
        k = Kannel(s, gateway_port=gw.port)          # bearerbox + fakesmsc + smsbox on free loopback ports
        status = k.sendsms("254700000001", "Habari", dlr_url="http://127.0.0.1:%d/kannel/dlr?ref=r1&status=%%d" % gw.port)
        mts = k.wait_received(1, timeout=10)        # [Mt(frm='384', to='254700000001', text='Habari', coding=0, parts=1)]
        k.mo("254700000002", "384", "STATUS")      # an MO SMS; the gateway gets GET /kannel/mo?from=...&text=...
    # every Kannel still running is stopped at exit (also after an exception or SIGTERM)

The run folder is the suite's var folder + "/kannel" (or name=...): kannel.conf, the boxes' logs, the store,
fakesmsc.log (every MT the simulated operator received), the generated passwords. Nothing is deleted.

MT sent through sendsms come out of fakesmsc one line per SMS part; received() reassembles concatenated
parts (UDH) into one message. A part with a UDH does not say its coding on fakesmsc's line: text without a NUL
byte that is valid UTF-8 is taken as GSM text (coding 0), anything else as UCS-2 (coding 2).
"""

import atexit
import http.client
import os
import re
import signal
import subprocess
import time
import urllib.parse
from collections import namedtuple
from pathlib import Path

from harness import POLL_S, free_port

ROOT = Path(__file__).resolve().parents[2]
KANNEL_SH = ROOT / "deploy" / "kannel.sh"
BOXES = ("bearerbox", "fakesmsc", "smsbox")

# One MT as the subscriber's phone would show it. coding: 0 GSM text, 1 8-bit data, 2 UCS-2; parts: how many
# SMS it took.
Mt = namedtuple("Mt", "frm to text coding parts")

_GOT = re.compile(rb"Got message \d+: <(.*)>\s*$")


class KannelError(Exception):
    """deploy/kannel.sh failed; the message has its output."""


_live = []


def _stop_live():
    for k in list(_live):
        k.stop(check=False)


atexit.register(_stop_live)


def _box_arg_paths(pid):
    """The paths a box of ours is tied to: its config file (bearerbox, smsbox) or its standard input (fakesmsc)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm not in BOXES:
            return None, []
        if comm == "fakesmsc":
            return comm, [os.readlink(f"/proc/{pid}/fd/0")]
        return comm, Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None, []


def _reap_stale():
    """Boxes left by a test run that no longer exists (tests/run_all.sh killed, machine rebooted before its
    cleanup): the run folder var/test/run-PID/ is named for the run_all.sh that made it."""
    pattern = re.compile(re.escape(str(ROOT / "var" / "test")) + r"/run-(\d+)/")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        comm, paths = _box_arg_paths(entry.name)
        for p in paths:
            m = pattern.search(p)
            if not m:
                continue
            try:
                alive = b"run_all.sh" in Path(f"/proc/{m.group(1)}/cmdline").read_bytes()
            except OSError:
                alive = False
            if not alive:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except OSError:
                    pass
            break


_reap_stale()


def _udh_concat(udh):
    """(reference, total, sequence) from a concatenation UDH, else None."""
    if not udh or udh[0] + 1 > len(udh):
        return None
    i, end = 1, udh[0] + 1
    while i + 2 <= end:
        iei, length = udh[i], udh[i + 1]
        value = udh[i + 2:i + 2 + length]
        if iei == 0x00 and length == 3:
            return value[0], value[1], value[2]
        if iei == 0x08 and length == 4:
            return (value[0] << 8) | value[1], value[2], value[3]
        i += 2 + length
    return None


def _decode_guess(data):
    """Text of a part whose coding fakesmsc did not print (see the module comment)."""
    if b"\0" not in data:
        try:
            return data.decode("utf-8"), 0
        except UnicodeDecodeError:
            pass
    return data.decode("utf-16-be", errors="replace"), 2


def _unquote(field):
    """Bytes of a field Kannel url-encoded (space as '+')."""
    return urllib.parse.unquote_to_bytes(field.replace(b"+", b"%20"))


def parse_fakesmsc_line(line):
    """One MT line as fakesmsc printed it -> dict(frm, to, type, data bytes, udh bytes or None), or None."""
    fields = line.split(b" ", 3)
    if len(fields) < 4:
        return None
    frm, to, kind, rest = fields
    out = {"frm": frm.decode(errors="replace"), "to": to.decode(errors="replace"), "type": kind.decode(), "udh": None}
    if kind == b"text":
        out["data"] = rest
    elif kind in (b"data", b"ucs-2"):
        out["data"] = _unquote(rest)
    elif kind == b"udh":
        udh, _, data = rest.partition(b" data ")
        out["udh"], out["data"] = _unquote(udh), _unquote(data)
    else:
        out["data"] = rest
    return out


class Kannel:
    """deploy/kannel.sh start|stop|status|mo for one suite, on free loopback ports.

    Arguments: gateway_port (where MO and DLR callbacks go: http://127.0.0.1:PORT/kannel/...), smpp=True adds
    the SMPP link to 127.0.0.1:smpp_port (a free port unless given), name (run folder under suite.var),
    log_level (Kannel's 0-4), http_retry / http_queue_delay (MO/DLR callback retries, short for tests),
    start=False to start later. Attributes after start: sendsms_user, sendsms_password, admin_password, the
    ports (admin_port, smsbox_port, sendsms_port, fake_port, smpp_port), dir."""

    def __init__(self, suite, gateway_port, smpp=False, smpp_port=None, name="kannel", log_level=1,
                 http_retry=2, http_queue_delay=1, start=True):
        self.suite = suite
        self.dir = Path(suite.var) / name
        self.gateway_port = int(gateway_port)
        self.smpp = bool(smpp)
        self.smpp_port = int(smpp_port) if smpp_port else (free_port() if smpp else None)
        self.log_level, self.http_retry, self.http_queue_delay = log_level, http_retry, http_queue_delay
        self.admin_port = self.smsbox_port = self.sendsms_port = self.fake_port = None
        self.sendsms_user = self.sendsms_password = self.admin_password = None
        self.last_reply = None
        self.running = False
        self._pick_ports()
        _live.append(self)
        if start:
            self.start()

    # ---- the script

    def _pick_ports(self):
        ports = set()
        while len(ports) < 4:
            p = free_port()
            if p != self.gateway_port and p != self.smpp_port:
                ports.add(p)
        self.admin_port, self.smsbox_port, self.sendsms_port, self.fake_port = sorted(ports)

    def env(self):
        e = dict(os.environ, HF_KANNEL_DIR=str(self.dir), HF_KANNEL_ADMIN_PORT=str(self.admin_port),
                 HF_KANNEL_SMSBOX_PORT=str(self.smsbox_port), HF_KANNEL_SENDSMS_PORT=str(self.sendsms_port),
                 HF_KANNEL_FAKE_PORT=str(self.fake_port), HF_GATEWAY_PORT=str(self.gateway_port),
                 HF_KANNEL_LOG_LEVEL=str(self.log_level), HF_KANNEL_HTTP_RETRY=str(self.http_retry),
                 HF_KANNEL_HTTP_QUEUE_DELAY=str(self.http_queue_delay), HF_KANNEL_SMPP="1" if self.smpp else "0")
        if self.smpp_port:
            e["HF_SMPP_PORT"] = str(self.smpp_port)
        return e

    def script(self, *args, check=True, timeout=90):
        """Runs deploy/kannel.sh ARGS with this instance's settings; returns CompletedProcess (text)."""
        r = subprocess.run([str(KANNEL_SH), *args], env=self.env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        with open(self.dir / "script.log", "a", encoding="utf-8") as f:
            f.write(f"$ kannel.sh {' '.join(args)}\n{r.stdout}{r.stderr}(exit {r.returncode})\n")
        if check and r.returncode != 0:
            raise KannelError(f"deploy/kannel.sh {' '.join(args)} exited {r.returncode}: "
                              f"{(r.stdout + r.stderr).strip()[-3000:]}")
        return r

    def start(self):
        """Starts whatever is not running (bearerbox, fakesmsc, smsbox, in that order); returns the script's
        output. A free port taken by someone else between our probe and Kannel's bind: new ports, again."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            r = self.script("start", check=False)
            if r.returncode == 0:
                break
            out = r.stdout + r.stderr
            if attempt == 2 or not re.search(r"port|in use|online|did not", out, re.I):
                raise KannelError(f"deploy/kannel.sh start exited {r.returncode}: {out.strip()[-3000:]}")
            self.script("stop", check=False)
            self._pick_ports()
        self.running = True
        self.sendsms_user = (self.dir / "sendsms.user").read_text().strip()
        self.sendsms_password = (self.dir / "sendsms.password").read_text().strip()
        self.admin_password = (self.dir / "admin.password").read_text().strip()
        return r.stdout

    def stop(self, check=True):
        """deploy/kannel.sh stop: smsbox, fakesmsc, bearerbox."""
        if self in _live:
            _live.remove(self)
        self.running = False
        if not self.dir.exists():
            return None
        return self.script("stop", check=check)

    def status(self):
        """(exit code, output) of deploy/kannel.sh status: 0 all running, 3 all stopped, 1 partly."""
        r = self.script("status", check=False)
        return r.returncode, r.stdout

    def pids(self):
        """{box: [pid, ...]} of our running boxes, found by scanning /proc the way the script does."""
        conf, fifo = str(self.dir / "kannel.conf"), str(self.dir / "mo.fifo")
        out = {b: [] for b in BOXES}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                comm, paths = _box_arg_paths(entry.name)
                if comm and (conf in paths or fifo in paths) and not self._zombie(entry.name):
                    out[comm].append(int(entry.name))
        return out

    @staticmethod
    def _zombie(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            return True

    def _bearerbox_pids(self):
        return self.pids()["bearerbox"]

    # ---- crash tests

    def kill_bearerbox(self):
        """kill -9 of bearerbox (smsbox and fakesmsc are left as a crash leaves them); waits until it is gone."""
        pids = self._bearerbox_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._bearerbox_pids() and time.monotonic() < deadline:
            time.sleep(POLL_S)
        return pids

    def restart_bearerbox(self):
        """Brings everything back after kill_bearerbox(): the script stops the orphaned smsbox (before it
        re-execs itself) and starts bearerbox, which reloads its store, then fakesmsc and smsbox."""
        return self.start()

    def stop_fakesmsc(self):
        """Takes the simulated operator away: bearerbox then queues MT (in its store) until it comes back."""
        return self.script("stop", "fakesmsc")

    # ---- admin

    def admin(self, path="/status.txt"):
        """GET path?password=... on bearerbox's admin port; returns the body (text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
        try:
            conn.request("GET", f"{path}?password={urllib.parse.quote(self.admin_password)}")
            return conn.getresponse().read().decode(errors="replace")
        finally:
            conn.close()

    def store_size(self):
        """Messages in bearerbox's store (queued MT and MO not yet acknowledged)."""
        m = re.search(r"store size (-?\d+)", self.admin())
        return int(m.group(1)) if m else None

    # ---- traffic

    @property
    def sendsms_url(self):
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def sendsms(self, to, text, dlr_url=None, dlr_mask=31, coding=None, smsc=None, frm="384", meta_data=None):
        """One MT through smsbox's /cgi-bin/sendsms as the gateway sends it (text in UTF-8, charset=UTF-8).
        Returns the HTTP status (202 accepted); the body is kept in last_reply."""
        q = {"username": self.sendsms_user, "password": self.sendsms_password, "from": frm, "to": to,
             "text": text, "charset": "UTF-8"}
        if coding is not None:
            q["coding"] = str(coding)
        if dlr_url:
            q["dlr-mask"], q["dlr-url"] = str(dlr_mask), dlr_url
        if smsc:
            q["smsc"] = smsc
        if meta_data:
            q["meta-data"] = meta_data
        conn = http.client.HTTPConnection("127.0.0.1", self.sendsms_port, timeout=10)
        try:
            conn.request("GET", "/cgi-bin/sendsms?" + urllib.parse.urlencode(q))
            resp = conn.getresponse()
            self.last_reply = resp.read().decode(errors="replace")
            return resp.status
        finally:
            conn.close()

    def mo(self, frm, to, text, ucs2=False):
        """One MO SMS from frm to to through fakesmsc (deploy/kannel.sh mo); returns once bearerbox has it."""
        args = ["mo"] + (["-u"] if ucs2 else []) + [frm, to, text]
        self.script(*args)

    def received_parts(self):
        """Every SMS part fakesmsc received, in order, as parse_fakesmsc_line() dicts."""
        log = self.dir / "fakesmsc.log"
        if not log.exists():
            return []
        parts = []
        for raw in log.read_bytes().split(b"\n"):
            m = _GOT.search(raw)
            if m:
                p = parse_fakesmsc_line(m.group(1))
                if p:
                    parts.append(p)
        return parts

    def received(self):
        """Every MT fakesmsc received, in order, concatenated parts joined (a message counts once all its
        parts are in, at the place of its last part): a list of Mt(frm, to, text, coding, parts)."""
        out, pending = [], {}
        for p in self.received_parts():
            concat = _udh_concat(p["udh"]) if p["udh"] else None
            if concat is None:
                if p["udh"] is not None:
                    text, coding = _decode_guess(p["data"])
                elif p["type"] == "text":
                    text, coding = p["data"].decode("utf-8", errors="replace"), 0
                elif p["type"] == "ucs-2":
                    text, coding = p["data"].decode("utf-16-be", errors="replace"), 2
                else:
                    text, coding = p["data"].decode("latin-1"), 1
                out.append(Mt(p["frm"], p["to"], text, coding, 1))
                continue
            ref, total, seq = concat
            key = (p["frm"], p["to"], ref, total)
            got = pending.setdefault(key, {})
            got[seq] = p["data"]
            if len(got) == total and all(i in got for i in range(1, total + 1)):
                del pending[key]
                text, coding = _decode_guess(b"".join(got[i] for i in range(1, total + 1)))
                out.append(Mt(p["frm"], p["to"], text, coding, total))
        return out

    def wait_received(self, n, timeout=10.0, match=None):
        """Polls received() until at least n messages (those for which match(mt) is true, if given) are in or
        timeout seconds pass; returns them either way (the caller checks how many)."""
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.received() if match is None or match(m)]
            if len(got) >= n or time.monotonic() >= deadline:
                return got
            time.sleep(POLL_S)

    def log_text(self, name):
        """One of the run folder's logs (bearerbox.log, smsbox.log, smsbox-access.log, fakesmsc.log, ...)."""
        p = self.dir / name
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_log(self, name, pattern, timeout=10.0):
        """Polls a log until the regex matches; returns the match or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log_text(name))
            if m or time.monotonic() >= deadline:
                return m
            time.sleep(POLL_S)
