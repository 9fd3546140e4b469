"""test_kiosk.py - kiosk terminals: enrolment with a one-time code, signed requests, replay, revocation.

The terminal side is tests/integration/kiosk_client.py (Python's `cryptography`), an implementation of the
signing format independent of the C one, so the test also proves the format is what docs/security.md says.
"""
import time

from harness import Suite, Core
from kiosk_client import KioskKey, signed_headers


def msg(body):
    return body.get("error", {}).get("message", "") if isinstance(body, dict) else ""


with Suite() as s:
    core = Core(s)

    def call(key, kiosk_no, method, path, body=b"", tamper=None, **kw):
        """A signed request; tamper(headers, path, body) may change what is sent after signing."""
        hdrs = signed_headers(key, kiosk_no, method, path, body, **kw)
        send_path, send_body = path, body
        if tamper:
            hdrs, send_path, send_body = tamper(dict(hdrs), path, body)
        if send_body:
            hdrs["Content-Type"] = "application/json"
        return core.request(method, send_path, raw_body=send_body or None, headers=hdrs, as_=None)

    # ---- registration and enrolment
    st, _, reg = core.post("/api/v1/kiosks", {"pay_point": "Kibera-3"}, as_="payment_officer")
    s.check(st == 201 and len(reg["enrolment_code"].replace("-", "")) == 12 and reg["status"] == "pending",
            "a payment officer registers a terminal and gets a one-time code", f"{st} {reg}")
    kno = reg["kiosk_no"]
    key = KioskKey()
    st, _, b = call(key, kno, "GET", "/api/v1/kiosk/me")
    s.check(st == 403 and "not enrolled" in msg(b), "a registered but not enrolled terminal is refused (403)", f"{st} {b}")
    wrong = "AAAA-AAAA-AAAA" if reg["enrolment_code"] != "AAAA-AAAA-AAAA" else "BBBB-BBBB-BBBB"
    st, _, b = core.post("/api/v1/kiosks/enrol", {"kiosk_no": kno, "enrolment_code": wrong,
                                                  "public_key": key.public_b64}, as_=None)
    s.check(st == 401, "a wrong enrolment code is refused", f"{st} {b}")
    st, _, b = core.post("/api/v1/kiosks/enrol", {"kiosk_no": kno, "enrolment_code": reg["enrolment_code"].lower(),
                                                  "public_key": key.public_b64}, as_=None)
    s.check(st == 200 and b["status"] == "active", "the right code (any case) enrols the terminal's key", f"{st} {b}")
    other = KioskKey()
    st, _, b = core.post("/api/v1/kiosks/enrol", {"kiosk_no": kno, "enrolment_code": reg["enrolment_code"],
                                                  "public_key": other.public_b64}, as_=None)
    s.check(st == 401, "the code works only once: nobody can swap in another key", f"{st} {b}")

    # ---- signed requests
    st, _, b = call(key, kno, "GET", "/api/v1/kiosk/me")
    s.check(st == 200 and b.get("kiosk_no") == kno and b.get("pay_point") == "Kibera-3" and b.get("mode") == "pay_point",
            "a signed request is accepted", f"{st} {b}")
    hh = {"location": {"region": "Nairobi", "district": "Kibra", "village": "Soweto East"},
          "members": [{"given_name": "Wanjiru", "family_name": "Kamau", "sex": "female", "date_of_birth": "1950-02-01",
                       "relationship": "head", "language": "sw"}]}
    st, _, h = core.post("/api/v1/households", hh)
    ben = h["members"][0]["ben_no"]
    st, _, b = call(key, kno, "GET", f"/api/v1/individuals/{ben}")
    s.check(st == 200 and b["ben_no"] == ben, "a kiosk reads the beneficiary it serves", f"{st} {b}")
    body = b'{"location":{"region":"Nairobi"}}'
    st, _, b = call(key, kno, "POST", "/api/v1/households", body)
    s.check(st == 403, "an intact signature on a route kiosks may not use: 403 (authenticated, not allowed)", f"{st} {b}")

    def flip_body(h, p, b):
        return h, p, b.replace(b"Nairobi", b"Nairobj")

    def other_path(h, p, b):
        return h, "/api/v1/programmes", b

    def later_ts(h, p, b):
        h["X-Hifadhi-Timestamp"] = str(int(h["X-Hifadhi-Timestamp"]) + 1)
        return h, p, b

    def flip_sig(h, p, b):
        sig = h["X-Hifadhi-Signature"]
        h["X-Hifadhi-Signature"] = ("B" if sig[0] != "B" else "C") + sig[1:]
        return h, p, b

    def other_nonce(h, p, b):
        h["X-Hifadhi-Nonce"] = "Z" + h["X-Hifadhi-Nonce"][1:]
        return h, p, b

    def no_sig(h, p, b):
        del h["X-Hifadhi-Signature"]
        return h, p, b

    def with_query(h, p, b):
        return h, p + "?x=1", b

    for name, method, path, body, tamper in [
            ("one byte of the body", "POST", "/api/v1/households", b'{"location":{"region":"Nairobi"}}', flip_body),
            ("the path", "GET", "/api/v1/kiosk/me", b"", other_path),
            ("the timestamp", "GET", "/api/v1/kiosk/me", b"", later_ts),
            ("the nonce", "GET", "/api/v1/kiosk/me", b"", other_nonce),
            ("the signature", "GET", "/api/v1/kiosk/me", b"", flip_sig),
            ("no signature header", "GET", "/api/v1/kiosk/me", b"", no_sig),
            ("a query string added", "GET", "/api/v1/kiosk/me", b"", with_query)]:
        st, _, b = call(key, kno, method, path, body, tamper=tamper)
        s.check(st == 401 and msg(b), f"tampering with {name} gets 401", f"{st} {b}")

    st, _, b = call(other, kno, "GET", "/api/v1/kiosk/me")
    s.check(st == 401 and "signature" in msg(b), "a request signed by another key is refused", f"{st} {b}")
    st, _, b = call(key, "K00000000", "GET", "/api/v1/kiosk/me")
    s.check(st == 401, "an unknown terminal is refused", f"{st} {b}")

    # ---- the 5-minute window and replay
    st, _, b = call(key, kno, "GET", "/api/v1/kiosk/me", ts=int(time.time()) - 301)
    s.check(st == 401 and "window" in msg(b), "a request signed 301 s ago is refused (clock window)", f"{st} {b}")
    st, _, b = call(key, kno, "GET", "/api/v1/kiosk/me", ts=int(time.time()) + 301)
    s.check(st == 401 and "window" in msg(b), "a request dated 301 s ahead is refused", f"{st} {b}")
    st, _, b = call(key, kno, "GET", "/api/v1/kiosk/me", ts=int(time.time()) - 200)
    s.check(st == 200, "a request 200 s old (a slow link) is still inside the window", f"{st} {b}")
    hdrs = signed_headers(key, kno, "GET", "/api/v1/kiosk/me", b"")
    st1, _, _ = core.get("/api/v1/kiosk/me", headers=dict(hdrs), as_=None)
    st2, _, b = core.get("/api/v1/kiosk/me", headers=dict(hdrs), as_=None)
    s.check(st1 == 200 and st2 == 401 and "replay" in msg(b), "the same signed request sent twice: the copy is refused",
            f"{st1} {st2} {b}")
    second = Core(s, name="kiosk_b", db=core.db, fresh_db=False)
    hdrs = signed_headers(key, kno, "GET", "/api/v1/kiosk/me", b"")
    st1, _, _ = core.get("/api/v1/kiosk/me", headers=dict(hdrs), as_=None)
    st2, _, b = second.get("/api/v1/kiosk/me", headers=dict(hdrs), as_=None)
    s.check(st1 == 200 and st2 == 401 and "replay" in msg(b),
            "a replay sent to another core instance is refused too", f"{st1} {st2} {b}")
    second.stop()

    # ---- revocation takes effect at once
    st, _, b = core.post(f"/api/v1/kiosks/{kno}/revoke", {"reason": "terminal stolen from the pay point"},
                         as_="registrar")
    s.check(st == 403, "a registrar may not revoke terminals", f"{st} {b}")
    st, _, b = core.post(f"/api/v1/kiosks/{kno}/revoke", {"reason": "terminal stolen from the pay point"},
                         as_="payment_officer")
    s.check(st == 200 and b["status"] == "revoked", "a payment officer revokes the terminal", f"{st} {b}")
    st, _, b = call(key, kno, "GET", "/api/v1/kiosk/me")
    s.check(st == 403 and "revoked" in msg(b), "the revoked terminal's next request is refused", f"{st} {b}")
    st, _, lst = core.get("/api/v1/kiosks", as_="auditor")
    mine = [x for x in lst.get("items", []) if x["kiosk_no"] == kno]
    s.check(st == 200 and mine and mine[0]["status"] == "revoked" and "enrolment_code" not in mine[0] and
            "public_key" not in mine[0], "the kiosk list shows the state and no secrets", f"{st} {mine}")

    # ---- every refusal is audited; registration, enrolment and revocation too
    acts = {(e["action"], e["outcome"]) for e in core.audit(record=kno)}
    s.check({("kiosk.register", "ok"), ("kiosk.enrol", "ok"), ("kiosk.revoke", "ok"),
                           ("kiosk.enrol", "denied")} <= acts, "the terminal's life is in the audit trail", str(acts))
    denied = [e for e in core.audit(action="kiosk.me") if e["outcome"] == "denied"]
    s.check(len(denied) >= 10, "refused kiosk requests are audited", f"{len(denied)} denied entries")
