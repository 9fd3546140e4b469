"""smppsim.py - the SMPP SMSC simulator (tests/sim/smppsim.c, docs/smppsim.md) for integration suites.

hifadhi-smppsim stands in for a mobile operator's SMSC at the far end of Kannel's SMPP link: Kannel binds to
it as a transceiver, every MT Kannel submits is recorded as one JSON line, delivery receipts come back with the
status the switches choose, and MO (an SMS, or USSD with ussd_service_op and its_session_info) are injected
through its control listener. One per suite, started BEFORE Kannel (Kannel needs its port):

    from harness import Suite
    from kannel import Kannel
    from smppsim import SmppSim
    with Suite() as s:
        sim = SmppSim(s)                                   # SMPP and control ports picked by the kernel
        k = Kannel(s, gateway_port=..., smpp=True, smpp_port=sim.port)
        sim.wait_bound()                                   # Kannel's link is up
        sim.ussd_begin("254712345678", "*384#", session=0x1234)
        mt = sim.wait_mt(1, match=lambda m: m["to"] == "254712345678")   # [{"text": ..., "ussd_service_op": 2, ...}]
        sim.set(dlr_stat="UNDELIV", dlr_delay_ms=0)         # switches, at any time
    # every simulator still running is stopped at exit

Ports: port=None lets the simulator bind port 0 and report the port it got (no race with another process taking
a port between a probe and the bind); restart() keeps the same ports, so Kannel reconnects to it.

Records (mt(), wait_mt()) are the MT log's lines as dicts: n (the line number, 1-based), ts_ms, conn, seq, status (0 = accepted, else the
SMPP error it was answered with), result (accepted | throttled | rejected), message_id, from, to (as Kannel sent
them: no '+', from_ton/to_ton say international), esm_class, registered_delivery, data_coding, udh (hex or None),
data (hex user data without the UDH), text (decoded for a phone: GSM 03.38, UCS-2, Latin-1; None for binary),
tlvs {"0x0501": "02", ...}, ussd_service_op (int or None), its_session_info (hex or None), receipt (the
receipt status planned, or None). messages() joins concatenated parts into whole messages.

The MT log is mt.jsonl (not *.log: like an operator's records it holds numbers and texts; the simulator's own
log masks numbers). Both stay in the suite's var folder.
"""

import atexit
import http.client
import json
import re
import signal
import subprocess
import time
from pathlib import Path

from harness import POLL_S, SANITIZER_MARKS, START_DEADLINE_S, STOP_DEADLINE_S, env

_READY = re.compile(rb"smppsim listening on smpp [0-9.]+:(\d+) control [0-9.]+:(\d+)")
_live = []


def _stop_live():
    for sim in list(_live):
        sim.stop(check=False)


atexit.register(_stop_live)


class SmppSimError(Exception):
    """The simulator failed to start, or refused a control request; the message says why."""


def _concat(udh_hex):
    """(reference, total, sequence) of a concatenation UDH given in hex, else None."""
    if not udh_hex:
        return None
    udh = bytes.fromhex(udh_hex)
    i, end = 1, min(len(udh), udh[0] + 1)
    while i + 2 <= end:
        iei, length = udh[i], udh[i + 1]
        value = udh[i + 2:i + 2 + length]
        if iei == 0x00 and length == 3:
            return value[0], value[1], value[2]
        if iei == 0x08 and length == 4:
            return (value[0] << 8) | value[1], value[2], value[3]
        i += 2 + length
    return None


class SmppSim:
    """hifadhi-smppsim for one suite. Arguments: port (SMPP; None = any free one), system_id and password (what
    Kannel must bind with: the defaults are deploy/kannel.sh's), name (folder under suite.var), switches
    (dlr_stat, dlr_delay_ms, throttle_every_n, throttle_above_per_s, reject_every_n, reject_status,
    dlr_stat_by_to) applied at start, log_level, start=False to start later."""

    def __init__(self, suite, port=None, system_id="hifadhi", password="hf-sim", name="smppsim", log_level="info",
                 start=True, **switches):
        self.suite = suite
        self.bin = Path(env("HF_BUILD")) / "hifadhi-smppsim"
        self.dir = Path(suite.var) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.mt_path = self.dir / "mt.jsonl"
        if self.mt_path.exists():
            self.mt_path.unlink()  # one simulator, one record (restart() keeps it and goes on numbering)
        self.port = int(port) if port else 0
        self.control_port = 0
        self.system_id, self.password, self.log_level = system_id, password, log_level
        self.switches = dict(switches)
        self.proc, self.logs = None, []
        _live.append(self)
        if start:
            self.start()

    # ---- the process

    def start(self):
        """Starts the simulator (same ports as before on a restart) and waits until both listeners are up."""
        if self.proc and self.proc.poll() is None:
            return self
        log = self.dir / f"smppsim-{len(self.logs) + 1}.log"
        self.logs.append(log)
        args = [str(self.bin), "--port", str(self.port), "--control-port", str(self.control_port),
                "--mt-log", str(self.mt_path), "--system-id", self.system_id, "--password", self.password,
                "--log-level", self.log_level]
        cfg = self.dir / "switches.json"
        if self.switches:
            cfg.write_text(json.dumps(self.switches))
            args += ["--config", str(cfg)]
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            m = _READY.search(log.read_bytes())
            if m:
                self.port, self.control_port = int(m.group(1)), int(m.group(2))
                return self
            if self.proc.poll() is not None:
                raise SmppSimError(f"hifadhi-smppsim exited {self.proc.returncode}: {log.read_text()[-1500:]}")
            time.sleep(POLL_S)
        self.kill()
        raise SmppSimError(f"hifadhi-smppsim did not start within {START_DEADLINE_S}s: {log.read_text()[-1500:]}")

    def stop(self, check=True):
        """SIGTERM; with check, the suite records whether it exited cleanly (exit 0, no sanitizer report).
        Returns the exit code."""
        proc, self.proc = self.proc, None
        if not proc:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if check:
            text = self.logs[-1].read_text(errors="replace") if self.logs else ""
            marks = [m for m in SANITIZER_MARKS if m in text]
            self.suite.check(proc.returncode == 0 and not marks, "hifadhi-smppsim stops cleanly on SIGTERM",
                             f"exit {proc.returncode}, sanitizer reports: {marks or 'none'}")
        return proc.returncode

    def kill(self):
        """SIGKILL: the operator's SMSC vanishes (Kannel's link goes to re-connecting)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop(check=False)
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    # ---- the control listener

    def control(self, method, path, body=None, timeout=40):
        """One control request; returns (HTTP status, parsed JSON answer)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode("utf-8", "replace")

    def set(self, **switches):
        """Changes switches now (only those given); returns the whole configuration. A bad one raises."""
        st, body = self.control("POST", "/config", switches)
        if st != 200:
            raise SmppSimError(f"POST /config {switches}: {st} {body}")
        self.switches.update(switches)
        return body

    def config(self):
        return self.control("GET", "/config")[1]

    def stats(self):
        """Counters: connections, binds_ok/failed, submits, accepted, throttled, rejected, receipts_sent/acked/
        refused/pending, mo_sent/acked/refused/failed, bound_tx, bound_rx, ..."""
        return self.control("GET", "/stats")[1]

    def bound(self):
        st = self.stats()
        return st.get("bound_tx", 0) > 0 and st.get("bound_rx", 0) > 0

    def wait_bound(self, timeout=15.0):
        """Polls until an ESME (Kannel) is bound to send and to receive; returns whether it is."""
        deadline = time.monotonic() + timeout
        while True:
            if self.alive() and self.bound():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)

    # ---- MO

    def mo(self, frm, to, text, check=True, **fields):
        """One deliver_sm to Kannel (POST /mo); returns the answer {"outcome", "status", "seq"} once Kannel has
        answered it (outcome "acked": bearerbox has the message). Extra fields: coding (auto | gsm | ucs2),
        ussd_service_op, its_session_info (0-65535), service_type, esm_class, wait_ms, from_ton, ... With check,
        anything but "acked" raises."""
        body = dict(fields, **{"from": frm, "to": to, "text": text})
        st, ans = self.control("POST", "/mo", body)
        if check and (st != 200 or not isinstance(ans, dict) or ans.get("outcome") != "acked"):
            raise SmppSimError(f"MO not taken by Kannel: {st} {ans}")
        return ans

    def mo_sms(self, frm, to, text, **fields):
        """An MO SMS (GSM 03.38 when every character has a code, else UCS-2)."""
        return self.mo(frm, to, text, **fields)

    def ussd_begin(self, frm, code, session, to=None, **fields):
        """The subscriber dials code (e.g. "*384#"): a deliver_sm with the dialled string as text,
        ussd_service_op 1 (PSSR indication) and its_session_info = session (two bytes, big-endian). to is the
        service number the SMSC names as destination (default: the code's first number, "384")."""
        if to is None:
            m = re.match(r"\*?(\d+)", code)
            to = m.group(1) if m else code
        return self.mo(frm, to, code, ussd_service_op=1, its_session_info=session, **fields)

    def ussd_input(self, frm, text, session, to="384", op=2, **fields):
        """The subscriber's next input in a session: ussd_service_op op (2 by the convention in
        docs/kannel.md; SMPP 3.4 names 18, USSR confirm, for an answer to our request: both are accepted)."""
        return self.mo(frm, to, text, ussd_service_op=op, its_session_info=session, **fields)

    # ---- MT

    def mt(self, match=None):
        """Every MT recorded so far (one dict per submit_sm, in order); only those match(rec) accepts, if given."""
        if not self.mt_path.exists():
            return []
        out = []
        for line in self.mt_path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            if match is None or match(rec):
                out.append(rec)
        return out

    def wait_mt(self, n, timeout=10.0, match=None):
        """Polls mt() until at least n (matching) records are in or timeout seconds pass; returns them either
        way (the caller checks how many)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.mt(match)
            if len(got) >= n or time.monotonic() >= deadline:
                return got
            time.sleep(POLL_S)

    def messages(self, match=None, accepted_only=True):
        """MT as the phone shows them: concatenated parts (UDH) joined, a message counting once all its parts
        are in. Each is the first part's record with text joined and parts = how many PDUs it took.
        match is applied to the joined messages."""
        out, pending = [], {}
        for rec in self.mt():
            if accepted_only and rec.get("status") != 0:
                continue
            c = _concat(rec.get("udh"))
            if c is None:
                msg = dict(rec, parts=1)
            else:
                ref, total, seq = c
                key = (rec["from"], rec["to"], ref, total)
                got = pending.setdefault(key, {})
                got[seq] = rec
                if len(got) < total or not all(i in got for i in range(1, total + 1)):
                    continue
                del pending[key]
                first = got[1]
                texts = [got[i].get("text") for i in range(1, total + 1)]
                msg = dict(first, parts=total, text=None if None in texts else "".join(texts))
            if match is None or match(msg):
                out.append(msg)
        return out

    def wait_messages(self, n, timeout=10.0, match=None):
        """Polls messages() until n (matching) whole messages are in or the timeout passes; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages(match)
            if len(got) >= n or time.monotonic() >= deadline:
                return got
            time.sleep(POLL_S)
