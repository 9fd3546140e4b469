#!/usr/bin/env python3
"""phone.py - a basic phone for trying Hifadhi: USSD against hifadhi-gateway, SMS through the private Kannel.

    deploy/phone.py [--gateway http://127.0.0.1:8081] [--kannel-dir var/kannel] +254712345678
    deploy/phone.py +254712345678 -e "dial *384#" -e 1 -e 4829 -e hangup      (non-interactive)
    deploy/phone.py +254712345678 --script FILE                                 (one command a line)

Commands (type `help`):
    dial [CODE]     start a USSD session (default *384#, or a shortcut: *384*2#). The gateway gets what an
                    aggregator sends: POST /ussd with sessionId, serviceCode, phoneNumber, networkCode and
                    text = every input so far joined by '*' (a shortcut's inputs in the first). A CON
                    screen waits for your answer; END closes the session. While a session is open every
                    line is your answer, except: a blank line or `hangup` ends the session (the
                    gateway gets the aggregator's end notification, POST /ussd/end), `quit` hangs up and
                    quits, and `!COMMAND` runs a command (`!inbox`, `!wait-sms 10`). `{sms_code}` in an
                    answer is replaced by the last 6-digit number this phone received by SMS (for scripted
                    PIN resets).
    sms TEXT        send an SMS to the short code (384) as the fake operator would: deploy/kannel.sh mo, so it
                    goes fakesmsc -> Kannel -> gateway /kannel/mo; the reply SMS is printed when it arrives. When
                    Kannel is not running the SMS goes straight to the gateway's /kannel/mo, as Kannel would call it.
    inbox [all]     the SMS this phone received (from the fake operator's log, var/kannel/fakesmsc.log)
    wait-sms [S]    wait up to S seconds (default 10) for the next SMS to this phone, and show it
    help, quit

Python 3 standard library only. Exit status (non-interactive): 0 everything ran, 1 a command failed (the gateway
did not answer, Kannel refused an SMS, a malformed answer), 2 usage.
"""
import argparse
import os
import re
import secrets
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KANNEL_SH = ROOT / "deploy" / "kannel.sh"
MENU_INI = ROOT / "menus" / "ussd" / "menu.ini"
NETWORK_CODE = "63902"          # what an aggregator sends as networkCode (a Kenyan operator's MCC+MNC)
USSD_DEADLINE_S = 10            # aggregators end a session whose screen takes longer than about this
SCREEN_WIDTH = 40

# fakesmsc prints every MT part it receives: "... Got message N: <FROM TO TYPE DATA>" (tests/integration/kannel.py).
_GOT = re.compile(rb"Got message \d+: <(.*)>\s*$")


class Trouble(Exception):
    """Something the user must be told plainly (the gateway or Kannel down, a bad answer)."""


def default_ussd_code():
    try:
        for line in MENU_INI.read_text(encoding="utf-8").splitlines():
            m = re.match(r"ussd_code\s*=\s*(\S+)", line)
            if m:
                return m.group(1)
    except OSError:
        pass
    return "*384#"


def digits(phone):
    return re.sub(r"\D", "", phone or "")


def same_phone(a, b):
    """+254712345678, 254712345678 and 0712345678 are one phone (the last 9 digits, as a network sees it)."""
    da, db = digits(a), digits(b)
    return bool(da) and bool(db) and (da == db or (len(da) >= 9 and len(db) >= 9 and da[-9:] == db[-9:]))


# ---- the fake operator's log (what the phone received)

def _udh_concat(udh):
    """(reference, total, sequence) of a concatenation UDH, else None."""
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
    """A part whose coding fakesmsc did not print: UTF-8 when it is and has no NUL, else UCS-2."""
    if b"\0" not in data:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return data.decode("utf-16-be", errors="replace")


def _unquote(field):
    return urllib.parse.unquote_to_bytes(field.replace(b"+", b"%20"))


def _parse_line(line):
    fields = line.split(b" ", 3)
    if len(fields) < 4:
        return None
    frm, to, kind, rest = fields
    p = {"frm": frm.decode(errors="replace"), "to": to.decode(errors="replace"), "type": kind.decode(errors="replace"),
         "udh": None, "data": rest}
    if kind in (b"data", b"ucs-2"):
        p["data"] = _unquote(rest)
    elif kind == b"udh":
        udh, _, data = rest.partition(b" data ")
        p["udh"], p["data"] = _unquote(udh), _unquote(data)
    return p


def received_sms(log_path):
    """Every MT the fake operator received, concatenated parts joined: [(frm, to, text)], in order."""
    try:
        raw = log_path.read_bytes()
    except FileNotFoundError:
        return []
    out, pending = [], {}
    for line in raw.split(b"\n"):
        m = _GOT.search(line)
        p = _parse_line(m.group(1)) if m else None
        if not p:
            continue
        concat = _udh_concat(p["udh"]) if p["udh"] else None
        if concat is None:
            if p["udh"] is not None:
                text = _decode_guess(p["data"])
            elif p["type"] == "ucs-2":
                text = p["data"].decode("utf-16-be", errors="replace")
            elif p["type"] == "text":
                text = p["data"].decode("utf-8", errors="replace")
            else:
                text = p["data"].decode("latin-1")
            out.append((p["frm"], p["to"], text))
            continue
        ref, total, seq = concat
        got = pending.setdefault((p["frm"], p["to"], ref, total), {})
        got[seq] = p["data"]
        if len(got) == total and all(i in got for i in range(1, total + 1)):
            del pending[(p["frm"], p["to"], ref, total)]
            out.append((p["frm"], p["to"], _decode_guess(b"".join(got[i] for i in range(1, total + 1)))))
    return out


# ---- the phone

class Phone:
    def __init__(self, number, gateway, kannel_dir, short_code, timeout, reply_wait, out=sys.stdout):
        self.number = number
        self.gateway = gateway.rstrip("/")
        self.kannel_dir = kannel_dir
        self.short_code = short_code
        self.timeout = timeout
        self.reply_wait = reply_wait
        self.out = out
        self.session = None         # dict(id, code, inputs, started) while a USSD session is open
        self.lock = threading.Lock()
        self.seen = len(self.inbox())   # SMS already shown (or there before we started)

    def say(self, text=""):
        with self.lock:
            print(text, file=self.out, flush=True)

    # -- HTTP to the gateway

    def _http(self, method, path, body=None, query=None):
        url = self.gateway + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = urllib.parse.urlencode(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                raise Trouble(f"the gateway did not answer within {self.timeout:g} s ({self.gateway}); "
                              "an aggregator would have ended the session") from None
            raise Trouble(f"the gateway does not answer at {self.gateway} ({reason}). Is `make run` running? "
                          "(or start hifadhi-gateway, or pass --gateway URL)") from None

    def gateway_up(self, base=None):
        try:
            with urllib.request.urlopen((base or self.gateway) + "/healthz", timeout=3) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    # -- Kannel

    def kannel_env(self):
        return dict(os.environ, HF_KANNEL_DIR=str(self.kannel_dir))

    def kannel_running(self):
        """True when deploy/kannel.sh status says all three boxes of that run folder run."""
        if not (self.kannel_dir / "kannel.conf").exists():
            return False
        try:
            r = subprocess.run([str(KANNEL_SH), "status"], env=self.kannel_env(), stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return r.returncode == 0

    def kannel_gateway(self):
        """Where this Kannel sends MO: http://127.0.0.1:GATEWAY_PORT (its run.env), as deploy/kannel.sh wrote it."""
        try:
            for line in (self.kannel_dir / "run.env").read_text().splitlines():
                if line.startswith("GATEWAY_PORT="):
                    return "http://127.0.0.1:" + line.split("=", 1)[1].strip()
        except OSError:
            pass
        return self.gateway

    def inbox(self):
        return [m for m in received_sms(self.kannel_dir / "fakesmsc.log") if same_phone(m[1], self.number)]

    def show_sms(self, msgs, first_no):
        for i, (frm, _to, text) in enumerate(msgs, first_no):
            self.say(f"  SMS {i} from {frm}:")
            for line in text.split("\n"):
                self.say("    " + line)

    def new_sms(self):
        """SMS that came since the last look (shown once)."""
        msgs = self.inbox()
        with self.lock:
            fresh, first = msgs[self.seen:], self.seen + 1
            self.seen = len(msgs)
        return fresh, first

    def wait_sms(self, seconds, until=None):
        """New SMS, once one came for which until(msg) is true (any SMS without until) or seconds passed."""
        deadline = time.monotonic() + seconds
        got, first = [], None
        while True:
            fresh, n = self.new_sms()
            if fresh:
                got += fresh
                first = first or n
            if (got and (until is None or any(until(m) for m in got))) or time.monotonic() >= deadline:
                return got, first or self.seen + 1
            time.sleep(0.2)

    # -- USSD

    def screen(self, kind, text, elapsed):
        lines = []
        for para in text.split("\n"):
            lines += textwrap.wrap(para, SCREEN_WIDTH) or [""]
        code = self.session["code"] if self.session else ""
        top = f"+-- {code} "
        self.say(top + "-" * (SCREEN_WIDTH + 4 - len(top)) + "+")
        for line in lines:
            self.say(f"| {line.ljust(SCREEN_WIDTH)} |")
        tag = " reply, or hangup " if kind == "CON" else " session ended "
        self.say("+" + "-" * (SCREEN_WIDTH + 2 - len(tag)) + tag + "+")
        if elapsed > USSD_DEADLINE_S:
            self.say(f"  (that screen took {elapsed:.1f} s: more than an aggregator allows, about {USSD_DEADLINE_S} s)")

    def ussd(self, text):
        s = self.session
        body = {"sessionId": s["id"], "serviceCode": s["code"], "phoneNumber": self.number,
                "networkCode": NETWORK_CODE, "text": text}
        t0 = time.monotonic()
        try:
            status, answer = self._http("POST", "/ussd", body)
        except Trouble:
            self.session = None
            raise
        elapsed = time.monotonic() - t0
        kind, _, rest = answer.partition(" ")
        if status != 200 or kind not in ("CON", "END"):
            self.session = None
            raise Trouble(f"the gateway answered HTTP {status} {answer[:200]!r}: not 200 with 'CON ...' or "
                          "'END ...' (an aggregator would end the session)")
        self.screen(kind, rest, elapsed)
        if kind == "END":
            self.end_notice("Success")
            self.session = None

    def end_notice(self, status):
        """The aggregator's end-of-session notification (POST /ussd/end); its answer does not matter."""
        s = self.session
        if not s:
            return
        body = {"sessionId": s["id"], "serviceCode": s["code"], "phoneNumber": self.number,
                "networkCode": NETWORK_CODE, "status": status,
                "durationInMillis": str(int((time.monotonic() - s["started"]) * 1000))}
        try:
            self._http("POST", "/ussd/end", body)
        except Trouble:
            pass

    def dial(self, code):
        if self.session:
            self.hangup(quiet=True)
        code = code or default_ussd_code()
        if not re.fullmatch(r"[*#0-9]{2,30}", code):
            raise Trouble(f"'{code}' is not something a phone can dial (e.g. *384#)")
        sid = f"sim-{digits(self.number)[-9:]}-{int(time.time())}-{secrets.token_hex(4)}"
        # A shortcut (*384*2#): aggregators send the service code (*384#) and the dialled inputs as the first
        # request's text ("2").
        parts = code.strip("*#").split("*") if code.startswith("*") and code.endswith("#") else [code]
        base = f"*{parts[0]}#" if len(parts) > 1 else code
        self.session = {"id": sid, "code": base, "inputs": parts[1:], "started": time.monotonic()}
        self.ussd("*".join(self.session["inputs"]))

    def answer(self, text):
        if "{sms_code}" in text:
            codes = [c for _f, _t, m in reversed(self.inbox()) for c in re.findall(r"\b\d{6}\b", m)[-1:]]
            if not codes:
                raise Trouble("{sms_code}: this phone has received no SMS with a 6-digit code")
            text = text.replace("{sms_code}", codes[0])
        self.session["inputs"].append(text)
        self.ussd("*".join(self.session["inputs"]))

    def hangup(self, quiet=False):
        if not self.session:
            return
        self.end_notice("Incomplete")
        self.session = None
        if not quiet:
            self.say("  (hung up: session ended)")

    # -- SMS

    def sms(self, text):
        if not text.strip():
            raise Trouble("usage: sms TEXT   (e.g. sms HELP)")
        if "\n" in text or "\r" in text:
            raise Trouble("an SMS here is one line")
        frm = digits(self.number)   # the fake operator gives numbers as 254712345678
        if not frm:
            raise Trouble(f"'{self.number}' has no digits")
        if self.kannel_running():
            target = self.kannel_gateway()
            if not self.gateway_up(target):
                self.say(f"  ! the gateway does not answer at {target}, where this Kannel sends SMS: Kannel takes the "
                         "SMS, its callback fails, it retries a few times (HF_KANNEL_HTTP_RETRY, 5 by default, 2 s "
                         "apart), then drops it. No reply will come unless the gateway is back by then.")
            before = len(self.inbox())
            with self.lock:
                self.seen = max(self.seen, before)
            ucs2 = any(ord(c) > 127 for c in text)
            args = [str(KANNEL_SH), "mo"] + (["-u"] if ucs2 else []) + [frm, self.short_code, text]
            r = subprocess.run(args, env=self.kannel_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                why = (r.stderr or r.stdout).strip().splitlines()
                raise Trouble("Kannel did not take the SMS: " + (why[-1] if why else f"exit {r.returncode}") +
                              (" (a non-ASCII SMS is sent as UCS-2: at most about 35 characters)" if ucs2 else ""))
            self.say(f"  sent to {self.short_code} through Kannel (fakesmsc -> bearerbox -> smsbox -> gateway)")
            # The reply goes back to the number exactly as the operator gave it (no '+'); what the dispatcher
            # sends from core's outbox goes to +E.164. Shown as they come, until the reply is in.
            fresh, first = self.wait_sms(self.reply_wait, until=lambda m: m[1] == frm)
            if fresh:
                self.show_sms(fresh, first)
            if not any(m[1] == frm for m in fresh):
                self.say(f"  (no reply within {self.reply_wait:g} s; if one comes later, `inbox` shows it. Nothing at "
                         "all? Is the gateway up? Kannel retries, then drops the SMS: "
                         f"{self.kannel_dir}/smsbox-access.log says which)")
            return
        # No Kannel: what smsbox would do, by hand (docs/kannel.md, "MO: what the gateway receives").
        self.say(f"  Kannel is not running in {self.kannel_dir} (deploy/kannel.sh status): sending straight to the "
                 "gateway's /kannel/mo, as Kannel would call it")
        query = {"from": frm, "to": self.short_code, "text": text, "id": f"sim-{secrets.token_hex(16)}",
                 "ts": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "coding": "0", "charset": "UTF-8",
                 "smsc": "fake", "meta": ""}
        status, body = self._http("GET", "/kannel/mo", query=query)
        if status != 200:
            raise Trouble(f"the gateway answered HTTP {status} to the SMS ({body[:200]!r}); Kannel would retry it")
        if body:
            self.say(f"  reply (would be an SMS from {self.short_code}):")
            for line in body.split("\n"):
                self.say("    " + line)
        else:
            self.say("  (the gateway answered with no reply text)")

    def show_inbox(self, everything):
        if not (self.kannel_dir / "fakesmsc.log").exists():
            self.say(f"  no SMS log in {self.kannel_dir} (Kannel has not run there; start it with make run or "
                     "deploy/kannel.sh start)")
            return
        msgs = self.inbox()
        with self.lock:
            self.seen = len(msgs)
        if not msgs:
            self.say(f"  no SMS to {self.number} yet")
            return
        first = 1 if everything or len(msgs) <= 10 else len(msgs) - 9
        if first > 1:
            self.say(f"  {len(msgs)} SMS; the last 10 (`inbox all` for every one):")
        self.show_sms(msgs[first - 1:], first)


HELP = """\
  dial [CODE]    start a USSD session (default {code}); then type your answers:
                   a blank line or `hangup` ends it, `quit` quits, `!inbox` and `!wait-sms` run commands,
                   {{sms_code}} in an answer is the last 6-digit code this phone got by SMS
  sms TEXT       send an SMS to {short} (e.g. sms HELP, sms STATUS, sms COMPLAINT I was not paid, sms LANG EN,
                   sms STOP, sms START; MSAADA, HALI, ... in Swahili, AIDE, ETAT, ... in French)
  inbox [all]    the SMS this phone received
  wait-sms [S]   wait up to S seconds (default 10) for the next SMS
  help, quit"""


def run_command(phone, line):
    """One line typed or scripted. Returns False to quit."""
    line = line.rstrip("\r\n")
    if phone.session:
        if line.strip() in ("", "hangup"):
            phone.hangup()
            return True
        if line.strip() in ("quit", "exit"):
            phone.hangup()
            return False
        if not line.startswith("!"):
            phone.answer(line)
            return True
        line = line[1:]
    words = line.strip().split(None, 1)
    if not words:
        return True
    cmd, arg = words[0].lower().lstrip("!"), (words[1] if len(words) > 1 else "")
    if cmd == "dial":
        phone.dial(arg.strip())
    elif cmd == "sms":
        phone.sms(arg)
    elif cmd == "inbox":
        phone.show_inbox(arg.strip() == "all")
    elif cmd in ("wait-sms", "wait"):
        try:
            seconds = float(arg) if arg.strip() else 10.0
        except ValueError:
            raise Trouble("usage: wait-sms [SECONDS]") from None
        fresh, first = phone.wait_sms(seconds)
        if fresh:
            phone.show_sms(fresh, first)
        else:
            phone.say(f"  (no new SMS within {seconds:g} s)")
    elif cmd == "hangup":
        phone.hangup()
    elif cmd in ("help", "?"):
        phone.say(HELP.format(code=default_ussd_code(), short=phone.short_code))
    elif cmd in ("quit", "exit", "bye"):
        return False
    elif re.fullmatch(r"[0-9*#]+", cmd):
        raise Trouble(f"'{line.strip()}': no USSD session is open (the last screen ended it, or none was dialled); "
                      "`dial` starts one")
    else:
        raise Trouble(f"unknown command '{cmd}' (`help` lists them; `dial` first to answer a USSD screen)")
    return True


def interactive(phone):
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    kannel = phone.kannel_running()
    phone.say(f"Phone {phone.number}. Gateway {phone.gateway} "
              f"({'up' if phone.gateway_up() else 'NOT answering: start make run'}); Kannel in {phone.kannel_dir} "
              f"({'running' if kannel else 'not running: SMS go straight to the gateway, no inbox'}).")
    phone.say(f"Type `dial` to dial {default_ussd_code()}, `sms HELP`, `inbox`, `help` or `quit`.")
    stop = threading.Event()
    idle = threading.Event()    # set while the prompt waits for you (a command may be waiting for SMS itself)

    def watch():
        # SMS that arrive while you sit at the prompt (a PIN reset code, a payment notice) are shown at once.
        while not stop.wait(1.0):
            if not idle.is_set():
                continue
            fresh, first = phone.new_sms()
            if fresh:
                phone.say("\n  [new SMS]")
                phone.show_sms(fresh, first)
                with phone.lock:
                    print(prompt(), end="", file=phone.out, flush=True)

    def prompt():
        return "answer> " if phone.session else f"{phone.number}> "

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        while True:
            idle.set()
            try:
                line = input(prompt())
            except EOFError:
                phone.say()
                break
            finally:
                idle.clear()
            try:
                if not run_command(phone, line):
                    break
            except Trouble as e:
                phone.say(f"  ! {e}")
    except KeyboardInterrupt:
        phone.say()
    finally:
        stop.set()
        phone.hangup(quiet=True)
    return 0


def scripted(phone, lines):
    try:
        for line in lines:
            line = line.rstrip("\r\n")
            if line.lstrip().startswith("#") and not phone.session:
                continue
            phone.say(("answer> " if phone.session else f"{phone.number}> ") + line)
            if not run_command(phone, line):
                break
    except Trouble as e:
        print(f"phone: {e}", file=sys.stderr)
        return 1
    finally:
        phone.hangup(quiet=True)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="deploy/phone.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A phone for trying Hifadhi: USSD sessions against hifadhi-gateway, SMS through the private Kannel.",
        epilog="Commands:\n" + HELP.format(code=default_ussd_code(), short="384") +
               "\n\nExample: deploy/phone.py +254712345678 -e 'dial *384#' -e 1 -e 4829 -e hangup -e 'sms HELP'")
    ap.add_argument("phone", help="this phone's number, e.g. +254712345678 (a demo beneficiary's: make run prints one)")
    ap.add_argument("--gateway", default=os.environ.get("HF_GATEWAY_URL", "http://127.0.0.1:8081"),
                    help="hifadhi-gateway's base URL (default %(default)s)")
    ap.add_argument("--kannel-dir", default=os.environ.get("HF_KANNEL_DIR", "var/kannel"),
                    help="Kannel's run folder, relative to the repository root unless absolute (default %(default)s)")
    ap.add_argument("--short-code", default="384", help="the number SMS go to (default %(default)s)")
    ap.add_argument("--script", metavar="FILE", help="run the commands in FILE (one a line; '-' = standard input)")
    ap.add_argument("-e", dest="commands", action="append", default=[], metavar="COMMAND",
                    help="run COMMAND (repeatable; after --script); no interactive session then")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a USSD screen (default %(default)s)")
    ap.add_argument("--reply-wait", type=float, default=10.0,
                    help="seconds to wait for the reply to an SMS (default %(default)s)")
    a = ap.parse_args(argv)

    if not re.fullmatch(r"\+?[0-9][0-9 -]{6,18}[0-9]", a.phone):
        ap.error(f"'{a.phone}' is not a phone number (e.g. +254712345678 or 0712345678)")
    if not re.fullmatch(r"[0-9A-Za-z]{1,20}", a.short_code):
        ap.error("--short-code: 1-20 letters or digits")
    if not re.match(r"https?://", a.gateway):
        ap.error("--gateway must be an http:// URL")
    kdir = Path(a.kannel_dir)
    phone = Phone(a.phone.replace(" ", "").replace("-", ""), a.gateway, kdir if kdir.is_absolute() else ROOT / kdir,
                  a.short_code, a.timeout, a.reply_wait)

    if a.script or a.commands:
        lines = []
        if a.script:
            try:
                text = sys.stdin.read() if a.script == "-" else Path(a.script).read_text(encoding="utf-8")
            except OSError as e:
                ap.error(f"--script: {e}")
            lines += text.splitlines()
        lines += a.commands
        return scripted(phone, lines)
    if not sys.stdin.isatty():
        return scripted(phone, sys.stdin.read().splitlines())
    return interactive(phone)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
