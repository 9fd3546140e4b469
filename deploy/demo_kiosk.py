#!/usr/bin/env python3
"""demo_kiosk.py - the simulated kiosk terminal of `make run`: registered in core once, enrolled, kept.

    demo_kiosk.py ensure BASE KIOSK_BIN VAR_DIR PAY_POINT [--name NAME] [--number NO] [--enrolment]
        Makes sure the terminal VAR_DIR/NAME/ (default name "kiosk") is registered in core at BASE and holds
        the key core enrolled, and prints its number. The first time (or when core no longer knows the
        terminal, or its key was lost) it registers it (POST /api/v1/kiosks, pay point PAY_POINT, number NO,
        default KSK-DEMO-1, or one core draws when that is taken), enrols the key with
        `KIOSK_BIN register CODE` (the code never touches the disk), gives it an offline allowance
        (10 collections, KES 50,000, 24 h) and, with --enrolment, the mode of an enrolment station. The
        number is kept in VAR_DIR/NAME/number, so a second `make run` reuses the terminal.
    demo_kiosk.py beneficiary BASE
        Prints "BEN_NO PROGRAMME STATUS" of a demo beneficiary for the kiosk's status and complaint screens:
        the person deploy/run.sh picks for the phone demo (same rule), so that a PIN made by phone also
        works at the kiosk's PIN + staff fallback.

Staff calls use the session token in HF_STAFF_TOKEN (an admin's for ensure, a registrar's for beneficiary:
deploy/run.sh logged them in already; each login spends a TOTP code). Only for the demo on loopback: a real
terminal is set up with deploy/kiosk/provision.sh (docs/kiosk.md). Standard library only.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_NUMBER = "KSK-DEMO-1"
OFFLINE = {"cap": {"amount": 5000000, "currency": "KES"}, "max_collections": 10, "hours": 24}


def fail(msg):
    sys.exit(f"demo_kiosk: {msg}")


def api(base, method, path, body=None):
    """(status, JSON body) of a staff call; network errors end the script with a message."""
    token = os.environ.get("HF_STAFF_TOKEN")
    if not token:
        fail("HF_STAFF_TOKEN is not set (a staff session token: deploy/demo_staff.py FILE login admin)")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + "/api/v1/" + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw[:300].decode(errors="replace")}
    except OSError as e:
        fail(f"{method} {path}: {e}")


def kiosk_cmd(binary, number, key_dir, base, *args):
    """Runs the kiosk program without a config file: the keys' folder and core are all it needs here."""
    return subprocess.run([binary, "-o", f"kiosk.number={number}", "-o", f"key.dir={key_dir}",
                           "-o", f"core.url={base}", *args], capture_output=True, text=True)


def key_fingerprint(binary, number, key_dir, base):
    """Core's fingerprint of our public key (hex of the first 8 bytes of its SHA-256), None without a key."""
    r = kiosk_cmd(binary, number, key_dir, base, "pubkey")
    if r.returncode != 0:
        return None
    return hashlib.sha256(base64.b64decode(r.stdout.strip())).digest()[:8].hex()


def ensure(args):
    base, binary, var, pay_point = args[0].rstrip("/"), args[1], args[2], args[3]
    name, number, enrolment = "kiosk", DEFAULT_NUMBER, False
    rest = args[4:]
    while rest:
        if rest[0] == "--name" and len(rest) > 1:
            name, rest = rest[1], rest[2:]
        elif rest[0] == "--number" and len(rest) > 1:
            number, rest = rest[1], rest[2:]
        elif rest[0] == "--enrolment":
            enrolment, rest = True, rest[1:]
        else:
            sys.exit(__doc__)
    kdir = os.path.join(var, name)
    key_dir = os.path.join(kdir, "keys")
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    number_file = os.path.join(kdir, "number")

    st, body = api(base, "GET", "kiosks")
    if st != 200:
        fail(f"GET /api/v1/kiosks answered {st}: {body}")
    known = {k["kiosk_no"]: k for k in body.get("items", [])}

    kept = open(number_file).read().strip() if os.path.exists(number_file) else None
    if kept and kept in known:
        row = known[kept]
        fp = key_fingerprint(binary, kept, key_dir, base)
        if row.get("status") == "active" and fp and fp == row.get("public_key_fingerprint"):
            print(kept)
            return
        # Enrolled with a key we no longer have, or never enrolled: that number cannot be used any more
        # (a code works once, an enrolled key is never replaced). Revoked, and a new terminal registered.
        if row.get("status") != "revoked":
            st, b = api(base, "POST", f"kiosks/{urllib.parse.quote(kept)}/revoke",
                        {"reason": "make run: the simulated terminal's key does not match; registered again"})
            if st != 200:
                fail(f"revoking {kept} answered {st}: {b}")
        print(f"demo_kiosk: terminal {kept} could not be reused (key lost or never enrolled): revoked, registering"
              " a new one", file=sys.stderr)

    req = {"pay_point": pay_point}
    if number not in known:
        req["kiosk_no"] = number
    st, reg = api(base, "POST", "kiosks", req)
    if st == 409 and "kiosk_no" in req:
        st, reg = api(base, "POST", "kiosks", {"pay_point": pay_point})
    if st != 201:
        fail(f"POST /api/v1/kiosks answered {st}: {reg}")
    number, code = reg["kiosk_no"], reg["enrolment_code"]
    r = kiosk_cmd(binary, number, key_dir, base, "register", code)
    if r.returncode != 0:
        fail(f"hifadhi-kiosk register failed: {r.stderr.strip() or r.stdout.strip()}")
    patch = {"offline": OFFLINE}
    if enrolment:
        patch = {"mode": "enrolment"}
    st, b = api(base, "PATCH", f"kiosks/{urllib.parse.quote(number)}", patch)
    if st != 200:
        print(f"demo_kiosk: warning: PATCH kiosks/{number} answered {st}: {b}", file=sys.stderr)
    with open(number_file + ".tmp", "w") as f:
        f.write(number + "\n")
    os.replace(number_file + ".tmp", number_file)
    print(number)


def beneficiary(args):
    """The person deploy/run.sh offers for the phone demo when there is one (enrolled if anyone is, else
    pending; English-speaking, with a phone: a PIN made by phone then also works at the kiosk's fallback)."""
    base = args[0].rstrip("/")
    first, reads = None, 0
    for status in ("enrolled", "pending"):
        for programme in ("OPCT", "PWSD-CT"):
            st, body = api(base, "GET", "enrolments?" + urllib.parse.urlencode(
                {"programme": programme, "status": status, "limit": 100}))
            for e in body.get("items", []) if st == 200 else []:
                if not e.get("ben_no") or reads >= 60:
                    continue
                reads += 1
                st, person = api(base, "GET", "individuals/" + urllib.parse.quote(e["ben_no"]))
                if st != 200 or not person.get("phone"):
                    continue
                found = (e["ben_no"], programme, status)
                if person.get("language") == "en":
                    print(*found)
                    return
                first = first or found
        if first:
            break
    if not first:
        fail("no enrolled or pending individual with a phone found")
    print(*first)


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == "ensure":
        ensure(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "beneficiary":
        beneficiary(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
