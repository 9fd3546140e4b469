#!/usr/bin/env python3
"""login_probe.py - staff logging in at a steady pace, timed: the "other staff" of the login-under-attack
benchmark of `make bench`.

    login_probe.py BASE ACCOUNTS.json RATE_PER_S SECONDS XFF_PREFIX

ACCOUNTS.json: [{"username", "password", "secret"}, ...]; each account is used for at most one TOTP step at a
time (a code works once; the steps used are kept in ACCOUNTS.json.steps for the next run), and a run makes at most
one login per account (RATE x SECONDS should not exceed the number of accounts). Each login goes
through the trusted proxy header X-Forwarded-For: XFF_PREFIX.<n> (one address per account: distinct
offices). Prints:  BENCH logins=N failed=N p50_ms=.. p99_ms=.. max_ms=..
A login counts as failed unless it answers 200 with a token.
"""
import base64
import hashlib
import hmac
import http.client
import json
import struct
import sys
import time
from urllib.parse import urlparse


def totp(secret, step):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def main():
    base, accounts_file, rate, seconds, xff = sys.argv[1:6]
    accounts = json.load(open(accounts_file))
    state = accounts_file + ".steps"  # TOTP steps used by earlier runs: a code works once
    try:
        last = json.load(open(state))
    except (OSError, ValueError):
        last = {}
    for a in accounts:
        last.setdefault(a["username"], 0)
    u = urlparse(base)
    lat, failed, i = [], 0, 0
    start = time.monotonic()
    period = 1.0 / float(rate)
    while time.monotonic() - start < float(seconds) and i < len(accounts):
        due = start + i * period
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        a = accounts[i % len(accounts)]
        now = int(time.time() // 30)
        step = max(now, last[a["username"]] + 1)
        if step > now + 1:
            failed += 1  # not enough accounts for this pace: counted, never hidden
            i += 1
            continue
        last[a["username"]] = step
        body = json.dumps({"username": a["username"], "password": a["password"], "totp_code": totp(a["secret"], step)})
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("POST", "/api/v1/auth/login", body=body,
                      headers={"Content-Type": "application/json", "X-Forwarded-For": f"{xff}.{i % len(accounts) + 1}"})
            r = c.getresponse()
            data = r.read()
            ok = r.status == 200 and b'"token"' in data
            c.close()
        except OSError:
            ok = False
        lat.append((time.monotonic() - t0) * 1000)
        failed += 0 if ok else 1
        i += 1
    json.dump(last, open(state, "w"))
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
    print(f"BENCH logins={len(lat)} failed={failed} p50_ms={pick(0.5):.1f} p99_ms={pick(0.99):.1f} max_ms={lat[-1] if lat else 0:.1f}")


if __name__ == "__main__":
    main()
