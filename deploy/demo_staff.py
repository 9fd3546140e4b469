#!/usr/bin/env python3
"""demo_staff.py - the demo staff accounts of `make run` (var/run/demo-staff.json, mode 0600).

    demo_staff.py FILE code ROLE          the current TOTP code of demo.ROLE (what an authenticator app shows)
    demo_staff.py FILE login ROLE BASE    logs demo.ROLE in at BASE (http://127.0.0.1:8080) and prints the token

The file holds, per role: username, password, TOTP secret, otpauth URI and recovery codes. It exists only so a
newcomer can try the API on loopback; real accounts are made with `hifadhi-core user add` and enrolled in a
phone app. Standard library only (RFC 6238 written out below).
"""
import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.request


def totp(secret, at=None):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int((time.time() if at is None else at) // 30)), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def main():
    if len(sys.argv) < 4 or sys.argv[2] not in ("code", "login"):
        sys.exit(__doc__)
    accounts = json.load(open(sys.argv[1]))
    acct = accounts.get(sys.argv[3])
    if not acct:
        sys.exit(f"no demo account for role {sys.argv[3]}; roles: {', '.join(accounts)}")
    if sys.argv[2] == "code":
        print(totp(acct["secret"]))
        return
    base = sys.argv[4] if len(sys.argv) > 4 else "http://127.0.0.1:8080"
    for attempt in range(2):
        body = json.dumps({"username": acct["username"], "password": acct["password"],
                           "totp_code": totp(acct["secret"])}).encode()
        req = urllib.request.Request(base + "/api/v1/auth/login", data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                print(json.load(r)["token"])
                return
        except urllib.error.HTTPError as e:
            # This step's code was used already (each code works once): wait for the next step.
            if attempt == 0 and e.code == 401:
                time.sleep(30 - time.time() % 30 + 0.5)
                continue
            sys.exit(f"login of {acct['username']} failed: {e.code} {e.read()[:300]!r}")


if __name__ == "__main__":
    main()
