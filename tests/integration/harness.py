"""harness.py - what every integration suite needs to run the real hifadhi-core against a real MariaDB.

tests/run_all.sh starts one throwaway MariaDB server for the whole run and runs each
tests/integration/test_*.py with /usr/bin/python3 and these environment variables:

    HF_BUILD      folder of the programs (build/<variant>/bin)
    HF_TEST_VAR   scratch folder of this run; each suite gets HF_TEST_VAR/<suite>/ (logs are kept)
    HF_DB_DIR     the server's folder (for deploy/mariadb.sh);  HF_DB_SOCKET  its unix socket
    HF_DB_PORT    its TCP port on 127.0.0.1
    HF_KEY_DIR    db-admin.password and db-app.password (made by `deploy/mariadb.sh init-db`)
    HF_SQL_DIR    the migrations (sql/)

A suite looks like this (standard library only):

    from harness import Suite, Core
    with Suite() as s:                       # name from the file: test_smoke.py -> "smoke"
        core = Core(s)                       # fresh database hf_smoke, keygen, migrate, serve
        status, headers, body = core.get("/healthz")
        s.check(status == 200, "healthz answers 200", f"got {status}")
    # leaving the block stops every Core, prints "N passed, N failed" and exits 1 if anything failed;
    # an exception counts as one failure (with its traceback) instead of losing the summary.

Each Core gets its own database (hf_<suite>, or db= for another), a config file written here, crypto keys
under the suite folder (shared by all Cores of the suite, so several instances can read the same data), and
logs that are never deleted: a later test greps them for personal data. Starting serve picks a free port on
127.0.0.1 and polls /healthz; stopping sends SIGTERM and checks the exit status and sanitizer reports.
"""

import atexit
import base64
import hashlib
import hmac
import http.client
import struct
import json as jsonlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARIADB_SH = ROOT / "deploy" / "mariadb.sh"
START_DEADLINE_S = float(os.environ.get("HF_TEST_START_DEADLINE", "20"))
STOP_DEADLINE_S = 15.0
POLL_S = 0.05
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "WARNING: ThreadSanitizer")


def env(name):
    """A variable tests/run_all.sh sets; a clear message when a suite is run by hand without it."""
    value = os.environ.get(name)
    if not value:
        sys.exit(f"harness: {name} is not set; run the suites through tests/run_all.sh (make test)")
    return value


def _ident(text):
    """A database/file-safe name: lowercase [a-z0-9_]."""
    return re.sub(r"[^a-z0-9_]", "_", text.lower())



def error_message(body):
    """The message of an error answer ("" when none)."""
    try:
        return body["error"]["message"]
    except (KeyError, TypeError):
        return ""


def error_fields(body):
    """The names of the fields an error answer complains about."""
    try:
        return {f["field"] for f in body["error"]["fields"]}
    except (KeyError, TypeError):
        return set()

class CoreError(Exception):
    """hifadhi-core failed to do something the harness needs (setup, start); the message has the log tail."""


# Cores still running, stopped at exit even when a suite dies with an exception or SIGTERM (a timeout).
_live_cores = []


def _kill_live_cores():
    for core in list(_live_cores):
        core.stop(check=False)


atexit.register(_kill_live_cores)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class Suite:
    """Counts checks and prints the summary line run_all.sh reads. Use as a context manager."""

    def __init__(self, name=None):
        self.name = name or re.sub(r"^test_", "", Path(sys.argv[0]).stem)
        self.passed = 0
        self.failed = 0
        self.cores = []
        self.var = Path(env("HF_TEST_VAR")) / _ident(self.name)
        self.var.mkdir(parents=True, exist_ok=True)

    def check(self, cond, name, detail=""):
        """Records one check; returns cond so a suite can skip what depends on it."""
        if cond:
            self.passed += 1
            print(f"ok - {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL - {name}: {detail}" if detail else f"FAIL - {name}", flush=True)
        return bool(cond)

    def eq(self, got, want, name):
        """check(got == want) with both values in the failure detail."""
        return self.check(got == want, name, f"got {got!r}, want {want!r}")

    def summary(self):
        """Stops every Core of the suite (their clean exit is checked), prints the summary, exits."""
        for core in list(self.cores):
            core.stop()
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, SystemExit):
            if exc.code not in (0, None):
                self.failed += 1
                print(f"FAIL - suite {self.name} stopped: {exc.code}", flush=True)
        elif exc_type is not None:
            self.failed += 1
            print(f"FAIL - suite {self.name} raised {exc_type.__name__} (traceback below)", flush=True)
            for line in traceback.format_exception(exc_type, exc, tb):
                sys.stdout.write("    " + line.replace("\n", "\n    ").rstrip() + "\n")
            sys.stdout.flush()
        self.summary()


class Mariadb:
    """The run's throwaway MariaDB server: root over the unix socket, stop/start through deploy/mariadb.sh."""

    @staticmethod
    def socket():
        return env("HF_DB_SOCKET")

    @staticmethod
    def port():
        return int(env("HF_DB_PORT"))

    @staticmethod
    def _script(*args, db_name=None, capture=False):
        e = dict(os.environ, HF_DB_DIR=env("HF_DB_DIR"), HF_DB_PORT=env("HF_DB_PORT"), HF_KEY_DIR=env("HF_KEY_DIR"))
        if db_name:
            e["HF_DB_NAME"] = db_name
        r = subprocess.run([str(MARIADB_SH), *args], env=e, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise CoreError(f"deploy/mariadb.sh {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout if capture else None

    @classmethod
    def start(cls):
        cls._script("start")

    @classmethod
    def stop(cls):
        cls._script("stop")

    @classmethod
    def is_up(cls):
        r = subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={cls.socket()}", "-uroot",
                            "--connect-timeout=2", "ping"], capture_output=True, stdin=subprocess.DEVNULL)
        return r.returncode == 0

    @classmethod
    def sql(cls, statements, db=None):
        """Runs SQL as root over the socket; returns the rows as tab-separated text (no header)."""
        args = ["mariadb", "--no-defaults", f"--socket={cls.socket()}", "-uroot", "--batch", "--skip-column-names"]
        if db:
            args.append(db)
        r = subprocess.run(args, input=statements, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise CoreError(f"mariadb: {r.stderr.strip()}")
        return r.stdout

    @classmethod
    def create_db(cls, name):
        """A fresh, empty database with both accounts granted on it (the grants come from mariadb.sh)."""
        if not re.fullmatch(r"[a-z0-9_]{1,64}", name):
            raise ValueError(f"bad database name {name!r}")
        cls.sql(f"DROP DATABASE IF EXISTS `{name}`;")
        cls._script("init-db", db_name=name)

    @classmethod
    def dump(cls, db):
        """mariadb-dump of one database (what an attacker with the disk or a backup would see)."""
        return cls._script("dump", db, capture=True)


# Personal data and secrets the suites send, recorded so that tests/integration/test_zz_no_pii_in_logs.py
# can search every log of the run for them.
PII_KEYS = {"given_name", "family_name", "other_names", "national_id", "phone", "date_of_birth", "address",
            "password", "new_password", "current_password", "totp_code", "recovery_code", "pin", "enrolment_code"}


def record_pii(values):
    values = [v for v in values if isinstance(v, str) and len(v.strip()) >= 5]
    if values and os.environ.get("HF_TEST_VAR"):
        with open(Path(os.environ["HF_TEST_VAR"]) / "pii-sent.txt", "a", encoding="utf-8") as f:
            f.write("".join(v.strip() + "\n" for v in values if "\n" not in v))


def pii_in(obj):
    """The values of personal fields anywhere in a JSON document."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in PII_KEYS and isinstance(v, str):
                out.append(v)
            else:
                out += pii_in(v)
    elif isinstance(obj, list):
        for v in obj:
            out += pii_in(v)
    return out


def totp(secret_b32, at=None, step_offset=0):
    """RFC 6238 code (HMAC-SHA-1, 30 s, 6 digits) of a base32 secret, written here independently of the C."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // 30) + step_offset
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


_staff_by_db = {}
ROLES = ("admin", "registrar", "case_worker", "payment_officer", "auditor", "support")
STAFF_PASSWORD = "Kijani-Mvua-2026-harness"  # a test password: long, not common, not the username


class Staff:
    """A staff account made with `hifadhi-core user add` (TOTP enrolled) and logged in once."""

    def __init__(self, core, role, username):
        self.core, self.role, self.username, self.password = core, role, username, STAFF_PASSWORD
        r = core.run_cli(["user", "add", username, "--role", role, "--json"], input=self.password + "\n", check=True)
        info = jsonlib.loads(r.stdout)
        self.secret = info["otpauth_uri"].split("secret=")[1].split("&")[0]
        self.recovery_codes = info["recovery_codes"]
        record_pii([self.secret] + self.recovery_codes)
        self.last_step = 0
        self.token = None
        self.login()

    def next_code(self):
        """A code for a step not used yet (each code works once): now, else the next step (accepted +1)."""
        now = int(time.time() // 30)
        step = now if now > self.last_step else self.last_step + 1
        if step > now + 1:  # both used: wait for the next step
            time.sleep(30 - time.time() % 30 + 0.1)
            return self.next_code()
        self.last_step = step
        return totp(self.secret, at=step * 30)

    def login(self, **extra):
        body = {"username": self.username, "password": self.password, "totp_code": self.next_code()}
        body.update(extra)
        st, _, b = self.core.request("POST", "/api/v1/auth/login", json=body, as_=None)
        if st != 200:
            raise CoreError(f"login of {self.username} failed: {st} {b}")
        self.token = b["token"]
        record_pii([self.token])
        return self.token

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}


DAMM = [[0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
        [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
        [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
        [2, 5, 8, 1, 4, 3, 6, 7, 9, 0]]


def damm_ok(s):
    i = 0
    for ch in s:
        i = DAMM[i][int(ch)]
    return i == 0


def wait_for(pred, timeout=30.0, step=POLL_S):
    """Polls pred() until it returns something truthy or the deadline passes; returns the last value (so a
    check on it fails, rather than the test hanging, when the thing never happens)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def kill_daemon(proc):
    """kill -9 of a daemon we started (None: nothing to do), reaped."""
    if proc and proc.poll() is None:
        proc.kill()
    if proc:
        proc.wait()


def stop_daemon(suite, proc, logs, name, check=True):
    """SIGTERM, then SIGKILL after STOP_DEADLINE_S; with check, a check that it exited 0 and that its last log
    (logs[-1]) holds no sanitizer report. Returns the exit code (None when proc is None)."""
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
        text = logs[-1].read_text(errors="replace") if logs else ""
        marks = [m for m in SANITIZER_MARKS if m in text]
        suite.check(proc.returncode == 0 and not marks, f"{name} stops cleanly on SIGTERM",
                    f"exit {proc.returncode}, sanitizer reports: {marks or 'none'}")
    return proc.returncode


def damm_complete(payload):
    """payload with its Damm check digit appended (beneficiary numbers carry one)."""
    i = 0
    for ch in payload:
        i = DAMM[i][int(ch)]
    return payload + str(i)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Core:
    """One hifadhi-core configuration (database, keys, config file) and, when started, its serve process.

    Core(suite) creates database hf_<suite>, runs keygen and migrate and starts serve. Arguments:
      name       names the Core's folder and default database (default: the suite's name)
      db         database name (default hf_<name>); fresh_db=False keeps an existing one (a second instance)
      overrides  {"section.key": "value"} written into the config file
      start      False: only set up (call start() later, e.g. after run_cli("import", ...))
    """

    def __init__(self, suite, name=None, db=None, fresh_db=True, overrides=None, start=True):
        self.suite = suite
        self.name = _ident(name or suite.name)
        self.db = db or ("hf_" + self.name)[:64]
        self.bin = Path(env("HF_BUILD")) / "hifadhi-core"
        self.dir = suite.var / f"core-{self.name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key_dir = suite.var / "keys"
        self.key_dir.mkdir(mode=0o700, exist_ok=True)
        self.conf = self.dir / "core.conf"
        self.cli_log = self.dir / "cli.log"
        self.logs = []  # every serve log of this Core, oldest first
        self.proc = None
        self.port = None
        self.exit_code = None
        self.overrides = dict(overrides or {})
        suite.cores.append(self)
        if fresh_db:
            Mariadb.create_db(self.db)
        self.write_config()
        self.run_cli(["keygen"], check=True)
        self.run_cli(["migrate"], check=True)
        if start:
            self.start()

    # ---- configuration and command line

    def config_values(self, port=0):
        key_dir = Path(env("HF_KEY_DIR"))
        values = {
            "http.bind": "127.0.0.1",
            "http.port": str(port or self.port or 8080),
            "http.threads": "8",
            "db.socket": Mariadb.socket(),
            "db.name": self.db,
            "db.user": "hifadhi",
            "db.password_file": str(key_dir / "db-app.password"),
            "db.migrate_user": "hifadhi_admin",
            "db.migrate_password_file": str(key_dir / "db-admin.password"),
            "crypto.key_dir": str(self.key_dir),
            "crypto.active_key_id": "1",
            "log.level": "info",
            "paths.sql_dir": env("HF_SQL_DIR"),
            "auth.gateway_secret_file": str(self.key_dir / "gateway.secret"),
            "workflow.dir": str(ROOT / "deploy" / "workflows"),
            "eligibility.dir": str(ROOT / "deploy" / "eligibility"),
            "menus.dir": str(ROOT / "menus"),
            "payments.callback_base": f"http://127.0.0.1:{port or self.port or 8080}",
        }
        values.update(self.overrides)
        return values

    def write_config(self, port=0):
        sections = {}
        for key, value in self.config_values(port).items():
            section, name = key.split(".", 1)
            sections.setdefault(section, []).append(f"{name} = {value}")
        text = "# written by tests/integration/harness.py\n"
        text += "".join(f"\n[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())
        self.conf.write_text(text)

    def run_cli(self, args, input=None, overrides=None, timeout=300, check=False):
        """Runs `hifadhi-core -c CONF [-o k=v]... ARGS`; returns subprocess.CompletedProcess (text unless
        input is bytes). stderr is also appended to cli.log. check=True raises CoreError on a non-zero exit."""
        cmd = [str(self.bin), "-c", str(self.conf)]
        if args and args[0] == "import" and len(args) > 1 and Path(str(args[1])).is_file():
            import csv
            with open(str(args[1]), newline="", encoding="utf-8", errors="replace") as f:
                record_pii([v for row in csv.DictReader(f) for k, v in row.items() if k in PII_KEYS])
        if args and args[0] == "user" and isinstance(input, str):
            record_pii([input.strip()])
        for key, value in (overrides or {}).items():
            cmd += ["-o", f"{key}={value}"]
        cmd += [str(a) for a in args]
        binary = isinstance(input, (bytes, bytearray))
        r = subprocess.run(cmd, input=input, capture_output=True, text=not binary, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        err = r.stderr.decode("utf-8", "replace") if binary else r.stderr
        with open(self.cli_log, "a", encoding="utf-8") as f:
            f.write(f"$ {' '.join(cmd[3:])}\n{err}(exit {r.returncode})\n")
        if check and r.returncode != 0:
            raise CoreError(f"hifadhi-core {' '.join(cmd[3:])} exited {r.returncode}: {err.strip()[-2000:]}")
        return r

    # ---- the serve process

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self):
        """The current (latest) serve log."""
        return self.logs[-1] if self.logs else None

    def log_text(self):
        """Every serve log and the CLI log of this Core, concatenated (for greps)."""
        parts = [p.read_text(errors="replace") for p in self.logs if p.exists()]
        if self.cli_log.exists():
            parts.append(self.cli_log.read_text(errors="replace"))
        return "\n".join(parts)

    def _tail(self, n=30):
        if not self.log or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def start(self):
        """Starts serve on a free loopback port and waits for /healthz to answer 200."""
        if self.proc:
            return self
        for attempt in range(3):
            port = free_port()
            self.write_config(port)
            self.port = port
            log = self.dir / f"serve-{len(self.logs) + 1}.log"
            self.logs.append(log)
            with open(log, "wb") as f:
                self.proc = subprocess.Popen([str(self.bin), "-c", str(self.conf), "serve"], stdin=subprocess.DEVNULL,
                                             stdout=f, stderr=subprocess.STDOUT)
            self.exit_code = None
            _live_cores.append(self)
            deadline = time.monotonic() + START_DEADLINE_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._healthy():
                    return self
                time.sleep(POLL_S)
            code = self.stop(check=False)
            tail = self._tail()
            # The free port can be taken between our probe and serve's bind: try another.
            if code is not None and re.search(r"already in use|EADDRINUSE", tail, re.I) and attempt < 2:
                continue
            raise CoreError(f"hifadhi-core serve did not become healthy (exit {code}); {log}:\n{tail}")
        raise AssertionError("unreachable")

    def _healthy(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def stop(self, check=True):
        """SIGTERM, wait (SIGKILL after a deadline); returns the exit code. With check, records one check
        that serve exited 0 with no sanitizer report in its log."""
        if not self.proc:
            return self.exit_code
        proc, self.proc = self.proc, None
        if self in _live_cores:
            _live_cores.remove(self)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.exit_code = proc.returncode
        if check:
            text = self.log.read_text(errors="replace") if self.log and self.log.exists() else ""
            marks = [m for m in SANITIZER_MARKS if m in text]
            self.suite.check(self.exit_code == 0 and not marks,
                             f"hifadhi-core serve ({self.name}) stops cleanly on SIGTERM",
                             f"exit {self.exit_code}, sanitizer reports: {marks or 'none'}; see {self.log}")
        return self.exit_code

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- HTTP

    # ---- staff accounts

    def staff(self, role, username=None):
        """A logged-in staff account of role (made once per Core and role unless username is given)."""
        key = (self.db, username or role)  # Cores sharing a database share its accounts
        if key not in _staff_by_db:
            _staff_by_db[key] = Staff(self, role, username or ("t_" + role))
        return _staff_by_db[key]

    def audit(self, **filters):
        """Every audit entry matching filters (actor, action, entity, record, from, to), newest first, read
        page by page as an auditor."""
        items, after = [], None
        while True:
            q = dict(filters, limit=100)
            if after:
                q["after"] = after
            qs = "&".join(f"{k}={v}" for k, v in q.items())
            st, _, b = self.get(f"/api/v1/audit?{qs}", as_="auditor")
            if st != 200:
                raise CoreError(f"GET /api/v1/audit?{qs}: {st} {b}")
            items += b["items"]
            after = b.get("next")
            if not after:
                return items

    def gateway_secret(self):
        return (self.key_dir / "gateway.secret").read_text().strip()

    @staticmethod
    def default_role(method, path):
        """Who the suites act as when they name nobody: the role the matrix (docs/roles.md) needs for
        registry work: admin for programme changes, a registrar for everything else."""
        if method in ("POST", "PATCH") and path.startswith("/api/v1/programmes"):
            return "admin"
        return "registrar"

    def request(self, method, path, json=None, headers=None, raw_body=None, timeout=30, as_="default"):
        """One request on a new connection; returns (status, headers, body). headers is case-insensitive
        (headers.get("X-Request-Id")); body is parsed JSON when the response says JSON and parses, else text
        (bytes if it is not UTF-8). Requests under /api/v1 carry a staff session: as_ names the role (or a
        Staff), "default" picks Core.default_role, None sends no credential; a credential in headers wins."""
        hdrs = dict(headers or {})
        creds = ("authorization", "x-hifadhi-service-key", "x-hifadhi-kiosk")
        if as_ is not None and path.startswith("/api/v1/") and not any(k.lower() in creds for k in hdrs):
            who = as_ if isinstance(as_, Staff) else self.staff(self.default_role(method, path) if as_ == "default" else as_)
            hdrs.update(who.headers)
        body = raw_body
        if json is not None:
            body = jsonlib.dumps(json)
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        ctype = resp.headers.get("Content-Type", "")
        parsed = data
        try:
            parsed = data.decode("utf-8")
            if "json" in ctype.lower() and parsed:
                parsed = jsonlib.loads(parsed)
        except (UnicodeDecodeError, ValueError):
            pass
        return resp.status, resp.headers, parsed

    def get(self, path, json=None, headers=None, raw_body=None, as_="default"):
        return self.request("GET", path, json, headers, raw_body, as_=as_)

    def post(self, path, json=None, headers=None, raw_body=None, as_="default"):
        return self.request("POST", path, json, headers, raw_body, as_=as_)

    def put(self, path, json=None, headers=None, raw_body=None, as_="default"):
        return self.request("PUT", path, json, headers, raw_body, as_=as_)

    def patch(self, path, json=None, headers=None, raw_body=None, as_="default"):
        return self.request("PATCH", path, json, headers, raw_body, as_=as_)

    def delete(self, path, json=None, headers=None, raw_body=None, as_="default"):
        return self.request("DELETE", path, json, headers, raw_body, as_=as_)


class PaySim:
    """The payment provider simulator (tests/sim/paysim.c, docs/providers.md) on a free loopback port: a
    mobile-money B2C provider "mpesa" and a G2P Connect provider "g2pbank" in one process. core_overrides()
    gives the config that points a Core at it; config()/reset()/stats()/statement()/inject() drive its
    control API; kill() and start() model a provider that crashes."""

    B2C, G2P = "mpesa", "g2pbank"

    def __init__(self, suite, name="paysim"):
        self.bin = Path(env("HF_BUILD")) / "hifadhi-paysim"
        self.dir = suite.var / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.secret, self.seed, self.pub = self.dir / "b2c.secret", self.dir / "g2p.seed", self.dir / "g2p.pub"
        if not self.seed.exists():
            subprocess.run([str(self.bin), "keygen", "--g2p-key-file", str(self.seed), "--public-out", str(self.pub),
                            "--secret-file", str(self.secret)], check=True, capture_output=True)
        self.proc, self.port, self.logs = None, None, []
        _live_sims.append(self)
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        port = self.port or free_port()
        log = self.dir / f"paysim-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([str(self.bin), "--port", str(port), "--secret-file", str(self.secret),
                                          "--g2p-key-file", str(self.seed), "--sender-id", "paysim"],
                                         stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        self.port = port
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CoreError(f"hifadhi-paysim exited {self.proc.returncode}: {log.read_text()[-1000:]}")
            try:
                if self._call("GET", "/_sim/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(POLL_S)
        raise CoreError("hifadhi-paysim did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def core_overrides(self, **extra):
        o = {"providers.b2c_name": self.B2C, "providers.b2c_url": self.url,
             "providers.b2c_secret_file": str(self.secret),
             "providers.g2p_name": self.G2P, "providers.g2p_url": self.url,
             "providers.g2p_public_key_file": str(self.pub), "providers.g2p_sender_id": "paysim",
             "payments.query_after_s": "1", "payments.provider_timeout_ms": "2000"}
        o.update(extra)
        return o

    def _call(self, method, path, body=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = jsonlib.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        try:
            return r.status, jsonlib.loads(raw)
        except ValueError:
            return r.status, raw.decode("utf-8", "replace")

    def config(self, default=None, by_ref=None):
        st, b = self._call("POST", "/_sim/config", {"default": default or {}, "by_ref": by_ref or {}})
        if st != 200:
            raise CoreError(f"paysim config: {st} {b}")

    def reset(self):
        self._call("POST", "/_sim/reset", {})

    def stats(self, ref=None):
        return self._call("GET", "/_sim/stats" + (f"?ref={ref}" if ref else ""))[1]

    def statement(self):
        return self._call("GET", "/_sim/statement.csv")[1]

    def inject(self, **body):
        return self._call("POST", "/_sim/inject", body)


_live_sims = []
atexit.register(lambda: [sim.stop() for sim in list(_live_sims)])


class Gateway:
    """hifadhi-gateway (gateway/) in front of a Core, on a free loopback port. kannel: a Kannel (kannel.py)
    whose sendsms the dispatcher uses; without it the gateway answers USSD and MO callbacks only.
    ussd(session, phone, text) speaks the aggregator convention; mo(phone, text) is Kannel's MO callback."""

    def __init__(self, suite, core, name="gateway", kannel=None, overrides=None, start=True):
        self.suite, self.core, self.kannel = suite, core, kannel
        self.bin = Path(env("HF_BUILD")) / "hifadhi-gateway"
        self.dir = suite.var / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "gateway.conf"
        self.overrides = dict(overrides or {})
        self.proc, self.port, self.logs = None, None, []
        _live_sims.append(self)
        suite.cores.append(self)  # stopped (and its clean exit checked) before the summary line
        if start:
            self.start()

    def write_config(self, port):
        v = {"http.bind": "127.0.0.1", "http.port": str(port), "core.url": self.core.base_url,
             "core.secret_file": str(self.core.key_dir / "gateway.secret"), "menus.dir": str(ROOT / "menus" / "ussd"),
             "dispatch.journal": str(self.dir / "dispatch.journal"), "log.level": "info",
             "kannel.dlr_base": f"http://127.0.0.1:{port}"}
        if self.kannel:
            v.update({"kannel.sendsms_url": f"http://127.0.0.1:{self.kannel.sendsms_port}/cgi-bin/sendsms",
                      "kannel.user": self.kannel.sendsms_user,
                      "kannel.password_file": str(self.dir / "sendsms.password")})
            (self.dir / "sendsms.password").write_text(self.kannel.sendsms_password)
        v.update(self.overrides)
        sections = {}
        for key, value in v.items():
            section, k = key.split(".", 1)
            sections.setdefault(section, []).append(f"{k} = {value}")
        self.conf.write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items()))

    def start(self, port=None):
        self.port = port or self.port or free_port()
        self.write_config(self.port)
        log = self.dir / f"gateway-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([str(self.bin), "-c", str(self.conf), "serve"], stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CoreError(f"hifadhi-gateway exited {self.proc.returncode}: {log.read_text()[-1500:]}")
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(POLL_S)
        raise CoreError("hifadhi-gateway did not start")

    def kill(self):
        kill_daemon(self.proc)
        self.proc = None

    def stop(self, check=True):
        proc, self.proc = self.proc, None
        return stop_daemon(self.suite, proc, self.logs, "hifadhi-gateway", check)

    def log_text(self):
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def _http(self, method, path, body=None, ctype=None, timeout=20):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = {"Content-Type": ctype} if ctype else {}
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        h = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        return r.status, data, h

    def get(self, path):
        st, data, _ = self._http("GET", path)
        return st, data

    def ussd(self, session, phone, text, service="*384#"):
        """One aggregator request; returns (kind, text): kind "CON" or "END"."""
        import urllib.parse
        body = urllib.parse.urlencode({"sessionId": session, "serviceCode": service, "phoneNumber": phone,
                                       "networkCode": "63902", "text": text})
        st, data, _ = self._http("POST", "/ussd", body, "application/x-www-form-urlencoded")
        if st != 200:
            raise CoreError(f"POST /ussd answered {st}: {data}")
        return data[:3], data[4:]

    def mo(self, phone, text, msg_id=None, meta=None):
        """Kannel's MO callback, as deploy/kannel sets it up; returns (status, reply body, headers)."""
        import urllib.parse
        q = {"from": phone, "to": "384", "text": text, "id": msg_id or os.urandom(8).hex(), "ts": "", "coding": "0",
             "charset": "UTF-8", "smsc": "fake"}
        if meta:
            q["meta"] = meta
        return self._http("GET", "/kannel/mo?" + urllib.parse.urlencode(q))
