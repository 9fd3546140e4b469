"""test_kiosk_ops.py - kiosks in operation: heartbeat and health for staff, the tamper lock (alert, audit, 423,
staff unlock), self-service status and grievances, and offline collection against a signed allowance
replayed exactly once (duplicates, conflicts with collections made elsewhere, expiry, supersession, caps).

The kiosk side is written here independently of core's C: requests are signed with kiosk_client.py
(Python's `cryptography`), the allowance's Ed25519 signature is checked and the templates in it are opened
with PyNaCl (libsodium's sealed boxes, as a kiosk does), so a pass proves core speaks the documented format
(docs/kiosk-api.md).
"""
import base64
import json
import os
import threading
import time
import uuid

import nacl.exceptions
import nacl.public
import nacl.signing

from harness import Suite, Core, Mariadb, error_message as msg, error_fields as fields
from kiosk_client import KioskKey, signed_headers

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}
LOC2 = {"region": "Kisumu", "district": "Muhoroni", "village": "Chemelil"}
PP, PP2 = "AHERO-1", "CHEMELIL-1"
AMOUNT = 300000


def day(offset):
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + offset * 86400))


def rfc3339(t=None):
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def code(body):
    return body.get("error", {}).get("code", "") if isinstance(body, dict) else ""


def eid():
    return str(uuid.uuid4())


with Suite() as s:
    core = Core(s)
    officer_a = core.staff("payment_officer", "pay.achieng")
    officer_b = core.staff("payment_officer", "pay.baraka")

    # ---- a registry: six older persons at the AHERO-1 pay point, one (bens[5]) at CHEMELIL-1; one kiosk payroll
    core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer", "target": "individual",
                                     "currency": "KES"}, as_="admin")
    bens = []
    for i, name in enumerate(["Akinyi", "Baraka", "Chebet", "Dalmas", "Esther", "Faraji", "Gati"]):
        head = {"given_name": name, "family_name": "Odhiambo", "sex": "female" if i % 2 == 0 else "male",
                "date_of_birth": "1950-04-01", "relationship": "head", "language": "sw",
                "phone": f"+2547223344{i:02d}"}
        st, _, hh = core.post("/api/v1/households", {"location": LOC2 if i == 5 else LOC, "members": [head]})
        assert st == 201, (st, hh)
        bens.append(hh["members"][0]["ben_no"])
        st, _, en = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": bens[-1], "status": "enrolled"})
        assert st == 201, (st, en)
    st, _, b = core.post("/api/v1/ledger/funding", {"programme": "OPCT", "amount": 10_000_000, "currency": "KES",
                                                    "reference": "TREASURY-KIOSK-1"}, as_=officer_a)
    assert st == 201, (st, b)
    CY = "OPCT-KIOSK-OPS"
    st, _, b = core.post("/api/v1/cycles", {"code": CY, "programme": "OPCT", "rule": {"kind": "flat", "amount": AMOUNT},
                                            "cutoff_date": day(0), "pay_from": day(0), "pay_until": day(2),
                                            "channel": "kiosk",
                                            "pay_points": {"Kisumu/Nyando": PP, "Kisumu/Muhoroni": PP2}}, as_=officer_a)
    assert st == 201, (st, b)
    for step, who in (("payroll", officer_a), ("submit", officer_a), ("approve", officer_b)):
        st, _, b = core.post(f"/api/v1/cycles/{CY}/{step}", {}, as_=who)
        assert st == 200, (step, st, b)
    st, _, lst = core.get(f"/api/v1/cycles/{CY}/payments?limit=100", as_=officer_a)
    pay = {p["ben_no"]: p for p in lst["items"]}
    s.check(len(pay) == 7 and all(p["status"] == "available" for p in pay.values()),
            "seven kiosk payments are available", str(lst)[:300])

    def kiosk(pay_point):
        st_, _, reg = core.post("/api/v1/kiosks", {"pay_point": pay_point}, as_=officer_a)
        seed = os.urandom(32)
        key = KioskKey(seed)
        st_, _, b_ = core.post("/api/v1/kiosks/enrol", {"kiosk_no": reg["kiosk_no"],
                                                        "enrolment_code": reg["enrolment_code"],
                                                        "public_key": key.public_b64}, as_=None)
        assert st_ == 200, (st_, b_)
        return {"key": key, "no": reg["kiosk_no"], "nacl": nacl.signing.SigningKey(seed)}

    def kcall(k, method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        hdrs = signed_headers(k["key"], k["no"], method, path, data)
        if data:
            hdrs["Content-Type"] = "application/json"
        return core.request(method, path, raw_body=data or None, headers=hdrs, as_=None)

    def listed(kno):
        st_, _, b_ = core.get("/api/v1/kiosks", as_="auditor")
        return next((x for x in b_.get("items", []) if x["kiosk_no"] == kno), None)

    def alerts(rule):
        st_, _, b_ = core.get(f"/api/v1/alerts?rule={rule}&limit=100", as_=officer_a)
        assert st_ == 200, (st_, b_)
        return b_["items"]

    kA, kB, kC = kiosk(PP), kiosk(PP), kiosk(PP2)

    # ---- heartbeat and health, as staff see it
    beat = {"version": "1.4.2", "reader": "ok", "printer": "failed", "tamper": False, "door_open": False,
            "locked": False, "queue_depth": 3, "queue_oldest_s": 120}
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/heartbeat", beat)
    s.check(st == 200 and b.get("server_time", "").endswith("Z") and isinstance(b.get("allowance_refresh"), bool)
            and b.get("locked") is False, "a heartbeat is answered with the server time and whether to refresh",
            f"{st} {b}")
    mine, other = listed(kA["no"]), listed(kB["no"])
    s.check(mine and mine["online"] is True and mine["last_seen_at"] and mine["health"]["printer"] == "failed"
            and mine["health"]["queue_depth"] == 3 and mine["health"]["version"] == "1.4.2" and not mine["locked"],
            "staff see the kiosk online with the health it reported", str(mine))
    s.check(other and other["online"] is False and other["health"] is None and other["last_seen_at"] is None,
            "a kiosk that never sent a heartbeat is not online", str(other))
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/heartbeat", dict(beat, reader="broken", extra=1))
    s.check(st == 400 and {"reader", "extra"} <= fields(b), "a malformed heartbeat is refused, naming the fields",
            f"{st} {b}")

    # ---- events: the time is RFC 3339 by the kiosk's clock, any offset
    nairobi = time.strftime("%Y-%m-%dT%H:%M:%S+03:00", time.gmtime(time.time() + 3 * 3600))
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/events", {"type": "help", "at": nairobi})
    s.check(st == 201 and b.get("locked") is False, "a help event in local time (+03:00) is recorded, no lock",
            f"{st} {b}")
    for bad in ("2026-02-30T10:00:00Z", "2026-11-28 10:00:00", rfc3339(time.time() + 3600),
                rfc3339(time.time() - 40 * 86400)):
        st, _, b = kcall(kA, "POST", "/api/v1/kiosk/events", {"type": "help", "at": bad})
        s.check(st == 400 and "at" in fields(b), f"an event time {bad!r} is refused, naming at", f"{st} {b}")

    # ---- tamper: locks, alerts, audited, 423 until staff unlock
    st, _, b = kcall(kC, "POST", "/api/v1/kiosk/events", {"type": "tamper", "at": rfc3339()})
    s.check(st == 201 and b.get("locked") is True, "a tamper event locks the kiosk", f"{st} {b}")
    tampers = [a for a in alerts("kiosk_tamper") if a["details"].get("kiosk") == kC["no"]]
    s.check(len(tampers) == 1 and tampers[0]["severity"] == "critical" and tampers[0]["status"] == "open",
            "a kiosk_tamper payment alert is raised for it", str(tampers))
    ev = [e for e in core.audit(record=kC["no"], action="kiosk.event")]
    s.check(ev and ev[0]["detail"].get("type") == "tamper" and ev[0]["detail"].get("locked") is True,
            "the tamper event is in the audit trail", str(ev))
    st, _, b = kcall(kC, "GET", "/api/v1/kiosk/allowance")
    s.check(st == 423 and code(b) == "locked" and msg(b), "a locked kiosk gets no offline allowance (423 locked)",
            f"{st} {b}")
    st, _, b = kcall(kC, "POST", "/api/v1/kiosk/offline-events",
                     {"events": [{"id": eid(), "type": "event", "event": "help", "at": rfc3339()}]})
    s.check(st == 423 and code(b) == "locked", "a locked kiosk's offline events wait (423) until it is unlocked",
            f"{st} {b}")
    st, _, b = kcall(kC, "POST", "/api/v1/kiosk/verifications",
                     {"ben_no": bens[5], "result": "match", "attempt": 1, "driver": "virtual_image"})
    s.check(st == 423, "a locked kiosk cannot verify anyone for a collection (423)", f"{st} {b}")
    st, _, b = kcall(kC, "POST", "/api/v1/kiosk/heartbeat", dict(beat, tamper=True, locked=True))
    s.check(st == 200 and b["locked"] is True, "the heartbeat tells the locked kiosk it is locked", f"{st} {b}")
    s.check(listed(kC["no"])["locked"] and listed(kC["no"])["lock_reason"] == "tamper",
            "staff see the kiosk locked, and why", str(listed(kC["no"])))
    st, _, b = core.post(f"/api/v1/kiosks/{kC['no']}/unlock", {"reason": "seal checked on site"}, as_="registrar")
    s.check(st == 403, "a registrar may not unlock a kiosk", f"{st} {b}")
    st, _, b = core.post(f"/api/v1/kiosks/{kC['no']}/unlock", {}, as_=officer_a)
    s.check(st == 400 and "reason" in fields(b), "unlocking needs a reason", f"{st} {b}")
    st, _, b = core.post(f"/api/v1/kiosks/{kC['no']}/unlock", {"reason": "seal checked on site"}, as_=officer_a)
    s.check(st == 200 and b["locked"] is False, "a payment officer unlocks the kiosk", f"{st} {b}")
    s.check(any(e["outcome"] == "ok" for e in core.audit(record=kC["no"], action="kiosk.unlock")),
            "the unlock is audited", "")
    st, _, b = kcall(kC, "GET", "/api/v1/kiosk/allowance")
    s.check(st == 200, "the unlocked kiosk is served again", f"{st} {b}")
    # An alarm from before the unlock, replayed from the kiosk's queue, is history: recorded, not locking.
    st, _, b = kcall(kC, "POST", "/api/v1/kiosk/offline-events",
                     {"events": [{"id": eid(), "type": "event", "event": "door_open", "at": rfc3339(time.time() - 600)}]})
    s.check(st == 200 and b["results"][0]["status"] == "applied" and not listed(kC["no"])["locked"],
            "an alarm older than the unlock is recorded without locking again", f"{st} {b}")
    st, _, b = kcall(kC, "POST", "/api/v1/kiosk/heartbeat", dict(beat, door_open=True))
    s.check(st == 200 and b["locked"] is True and listed(kC["no"])["lock_reason"] == "door_open",
            "a heartbeat reporting the door open locks the kiosk too", f"{st} {b}")
    tampers = [a for a in alerts("kiosk_tamper") if a["details"].get("kiosk") == kC["no"]]
    s.check(len(tampers) == 2, "each lock raises its own alert", str(tampers))
    st, _, b = core.post(f"/api/v1/kiosks/{kC['no']}/unlock", {"reason": "door closed by the agent"}, as_="admin")
    s.check(st == 200 and b["locked"] is False, "an administrator may unlock too", f"{st} {b}")

    # ---- self-service
    st, _, b = kcall(kA, "GET", f"/api/v1/kiosk/beneficiaries/{bens[0]}/status")
    s.check(st == 200 and b["ben_no"] == bens[0] and b["language"] == "sw"
            and [(e["programme"], e["status"]) for e in b["enrolments"]] == [("OPCT", "enrolled")]
            and b["next_payment"] and b["next_payment"]["amount"] == AMOUNT and b["next_payment"]["pay_point"] == PP
            and b["last_payments"] == [], "a beneficiary's status: enrolment and next payment", f"{st} {b}")
    st, _, b = kcall(kA, "GET", "/api/v1/kiosk/beneficiaries/000000000/status")
    s.check(st == 404 and msg(b), "an unknown beneficiary number: 404", f"{st} {b}")
    st, _, g = kcall(kA, "POST", "/api/v1/kiosk/grievances",
                     {"ben_no": bens[0], "category": "agent_demanded_money", "description": "Asked for 200 shillings",
                      "language": "sw"})
    ref = g.get("reference") if isinstance(g, dict) else None
    s.check(st == 201 and ref and g["linked"] is False, "a grievance lodged at a kiosk gets a reference", f"{st} {g}")
    st, _, case = core.get(f"/api/v1/cases/{ref}", as_="case_worker")
    s.check(st == 200 and case.get("channel") == "kiosk" and case.get("type") == "grievance"
            and case.get("category") == "agent_demanded_money", "it is a case on channel kiosk", f"{st} {case}")
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/grievances", {"category": "exclusion_error", "language": "sw"})
    s.check(st == 201 and b.get("reference"), "someone without a beneficiary number can lodge one too", f"{st} {b}")
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/grievances", {"ben_no": bens[0], "category": "weather",
                                                              "language": "sw"})
    s.check(st == 400 and "category" in fields(b), "a category USSD does not offer is refused", f"{st} {b}")

    # ---- templates enrolled at an enrolment station, for the allowance
    kE = kiosk(PP)
    st, _, b = core.patch(f"/api/v1/kiosks/{kE['no']}", {"mode": "enrolment"}, as_="registrar")
    s.check(st == 403, "a registrar may not change a kiosk's mode", f"{st}")
    st, _, b = core.patch(f"/api/v1/kiosks/{kE['no']}", {"mode": "enrolment"}, as_=officer_a)
    s.check(st == 200 and b["mode"] == "enrolment", "a payment officer makes a kiosk an enrolment station", f"{st} {b}")
    st, _, me = kcall(kE, "GET", "/api/v1/kiosk/me")
    sign_pk = nacl.signing.VerifyKey(base64.b64decode(me["sign_pk"]))
    seal_pk = nacl.public.PublicKey(base64.b64decode(me["seal_pk"]))
    template = b"FP3" + os.urandom(600)
    for ben in (bens[0], bens[2]):
        st, _, b = kcall(kE, "POST", "/api/v1/kiosk/templates",
                         {"ben_no": ben, "finger": "right_thumb", "driver": "virtual_image", "device": "virtual-0",
                          "format": "fprint3", "sealed": base64.b64encode(nacl.public.SealedBox(seal_pk).encrypt(template)).decode()})
        s.check(st == 201, "a template is enrolled at the enrolment station", f"{st} {b}")
    st, _, b = kcall(kE, "GET", "/api/v1/kiosk/allowance")
    s.check(st == 403, "an enrolment station gets no allowance", f"{st} {b}")

    # ---- offline allowance
    def allowance(k):
        st_, _, b_ = kcall(k, "GET", "/api/v1/kiosk/allowance")
        assert st_ == 200, (st_, b_)
        text = b_["allowance_text"].encode("utf-8")
        try:
            sign_pk.verify(text, base64.b64decode(b_["signature"]))
            ok = True
        except nacl.exceptions.BadSignatureError:
            ok = False
        return ok, json.loads(text), b_

    ok, a0, _ = allowance(kA)
    s.check(ok and a0["items"] == [] and a0["cap"]["amount"] == 0 and a0["max_collections"] == 0,
            "before staff set a cap, the allowance promises nothing (and is signed)", str(a0))
    st, _, b = core.patch(f"/api/v1/kiosks/{kA['no']}", {"offline": {"cap": {"amount": 2_000_000, "currency": "KES"},
                                                                     "max_collections": 2, "hours": 24}},
                          as_=officer_a)
    s.check(st == 200 and b["offline"] == {"cap": {"amount": 2_000_000, "currency": "KES"}, "max_collections": 2,
                                           "hours": 24}, "a payment officer sets the kiosk's offline cap", f"{st} {b}")
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/heartbeat", beat)
    s.check(st == 200 and b["allowance_refresh"] is True, "the next heartbeat tells the kiosk to refresh", f"{st} {b}")
    ok, a1, raw = allowance(kA)
    s.check(ok, "the allowance's Ed25519 signature verifies with sign_pk over the exact text", "")
    forged = raw["allowance_text"].replace(str(AMOUNT), str(AMOUNT * 10)).encode()
    try:
        sign_pk.verify(forged, base64.b64decode(raw["signature"]))
        forged_ok = True
    except nacl.exceptions.BadSignatureError:
        forged_ok = False
    s.check(not forged_ok, "a changed amount no longer verifies", "")
    want = sorted(p["id"] for b_, p in pay.items() if b_ != bens[5])
    s.check(sorted(i["payment"] for i in a1["items"]) == want and all(i["amount"] == AMOUNT for i in a1["items"]),
            "the allowance lists exactly this pay point's collectable payments", str(a1["items"])[:400])
    s.check(a1["kiosk_no"] == kA["no"] and a1["pay_point"] == PP and a1["cap"] == {"amount": 2_000_000, "currency": "KES"}
            and a1["max_collections"] == 2 and a1["complete"] is True, "with its kiosk, pay point and cap", str(a1)[:300])
    hours = (time.mktime(time.strptime(a1["valid_until"][:19], "%Y-%m-%dT%H:%M:%S")) -
             time.mktime(time.strptime(a1["issued_at"][:19], "%Y-%m-%dT%H:%M:%S"))) / 3600
    s.check(abs(hours - 24) < 0.01, "valid for the hours staff set", f"{hours}")
    by_ben = {i["ben_no"]: i for i in a1["items"]}
    tpl = by_ben.get(bens[0], {}).get("templates", [])
    opened = None
    if tpl:
        try:
            curve = kA["nacl"].to_curve25519_private_key()
            opened = nacl.public.SealedBox(curve).decrypt(base64.b64decode(tpl[0]["sealed"]))
        except nacl.exceptions.CryptoError:
            opened = None
    s.check(len(tpl) == 1 and opened == template and by_ben[bens[1]]["templates"] == [],
            "each item carries its beneficiary's templates, sealed to this kiosk's own key", str(tpl)[:200])
    try:
        nacl.public.SealedBox(kB["nacl"].to_curve25519_private_key()).decrypt(base64.b64decode(tpl[0]["sealed"]))
        other_opens = True
    except (nacl.exceptions.CryptoError, IndexError):
        other_opens = False
    s.check(not other_opens, "another kiosk cannot open them", "")
    s.check(any(e["detail"].get("items") == 6 for e in core.audit(record=kA["no"], action="kiosk.allowance")),
            "issuing the allowance is audited", "")

    def collection(a, ben, **extra):
        e = {"id": eid(), "type": "collection", "at": rfc3339(), "allowance": a["id"], "payment": pay[ben]["id"],
             "ben_no": ben, "method": "fingerprint", "receipt": f"K-{a['kiosk_no']}-{len(ben)}{ben[-3:]}",
             "amount": AMOUNT}
        e.update(extra)
        return e

    # kB collects bens[1] offline (under its own allowance, cap of one payment) before kA replays.
    core.patch(f"/api/v1/kiosks/{kB['no']}", {"offline": {"cap": {"amount": AMOUNT, "currency": "KES"},
                                                          "max_collections": 5}}, as_=officer_a)
    _, b1, _ = allowance(kB)
    st, _, b = kcall(kB, "POST", "/api/v1/kiosk/offline-events",
                     {"events": [collection(b1, bens[1]), collection(b1, bens[4])]})
    r = b.get("results", []) if isinstance(b, dict) else []
    s.check(st == 200 and [x["status"] for x in r] == ["applied", "rejected"] and "cap" in r[1].get("message", ""),
            "a collection over the allowance's money cap is rejected", f"{st} {b}")

    # bens[2] collects online at kB meanwhile (verification token, then the collection).
    st, _, v = kcall(kB, "POST", "/api/v1/kiosk/verifications",
                     {"ben_no": bens[2], "result": "match", "attempt": 1, "driver": "virtual_image"})
    token = v.get("verification") if isinstance(v, dict) else None
    st, _, b = kcall(kB, "POST", "/api/v1/kiosk/collections", {"payment": pay[bens[2]]["id"], "ben_no": bens[2],
                                                                "verification": token, "request_id": eid()})
    s.check(st == 201 and b.get("status") == "collected", "meanwhile a payment is collected online at another kiosk",
            f"{st} {b}")

    ev0 = collection(a1, bens[0])
    batch = [ev0,
             {"id": eid(), "type": "grievance", "at": rfc3339(), "ben_no": bens[3], "category": "amount_short",
              "language": "sw"},
             {"id": eid(), "type": "event", "event": "help", "at": rfc3339()},
             collection(a1, bens[1]),
             collection(a1, bens[2]),
             collection(a1, bens[3], amount=AMOUNT - 1),
             collection(a1, bens[3]),
             collection(a1, bens[4]),
             dict(collection(a1, bens[5]), payment=pay[bens[5]]["id"]),
             collection(a1, bens[4], receipt=None)]
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/offline-events", {"events": batch})
    r = b.get("results", []) if isinstance(b, dict) else []
    got = [x["status"] for x in r]
    s.check(st == 200 and [x["id"] for x in r] == [e["id"] for e in batch], "every event gets a result, in order",
            f"{st} {b}")
    s.eq(got, ["applied", "applied", "applied", "conflict", "conflict", "rejected", "applied", "rejected", "rejected",
               "rejected"], "applied, conflicts, rejections as the rules say")
    if len(r) == 10:
        s.check(r[0].get("receipt") == ev0["receipt"] and r[1].get("reference"), "with the receipt and the case reference",
                str(r[:2]))
        s.check("collected elsewhere" in r[3].get("message", "") and kB["no"] in r[3]["message"],
                "a payment collected elsewhere is a conflict naming where", str(r[3]))
        s.check("amount" in r[5].get("message", ""), "an amount that differs from the allowance is rejected", str(r[5]))
        s.check("number of collections" in r[7].get("message", ""), "a collection over the allowance's count is rejected",
                str(r[7]))
        s.check("not in this allowance" in r[8].get("message", ""), "a payment of another pay point is rejected",
                str(r[8]))
        s.check("receipt" in r[9].get("message", ""), "a collection event without its receipt is rejected", str(r[9]))
    st, _, p0 = core.get(f"/api/v1/payments/{pay[bens[0]]['id']}", as_=officer_a)
    s.check(st == 200 and p0["status"] == "collected" and p0.get("receipt") == ev0["receipt"]
            and p0.get("collected") == {"kiosk": kA["no"], "verification": "fingerprint"},
            "the offline collection is booked: collected at this kiosk by fingerprint, with its receipt", f"{st} {p0}")
    conflicts = [a for a in alerts("offline_conflict") if a["details"].get("kiosk") == kA["no"]
                 and a["details"].get("status") == "conflict"]
    s.check(sorted(a.get("payment") for a in conflicts) == sorted([pay[bens[1]]["id"], pay[bens[2]]["id"]])
            and all(a["severity"] == "critical" for a in conflicts),
            "each conflict raises an offline_conflict payment alert on its payment", str(conflicts))

    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/offline-events", {"events": batch})
    r2 = b.get("results", []) if isinstance(b, dict) else []
    s.check(st == 200 and [x["status"] for x in r2] == ["duplicate"] * 10 and r2[0].get("receipt") == ev0["receipt"]
            and r2[1].get("reference") == r[1].get("reference"),
            "the same batch replayed: every event is a duplicate, nothing applied twice", f"{st} {b}")
    st, _, p0b = core.get(f"/api/v1/payments/{pay[bens[0]]['id']}", as_=officer_a)
    s.check(len([h for h in p0b["history"] if h["status"] == "collected"]) == 1 and
            len([m for m in p0b["ledger"] if m["posting"] == "collect"]) == 1,
            "one collection and one ledger posting for the payment", str(p0b.get("history")))
    conflicts2 = [a for a in alerts("offline_conflict") if a["details"].get("kiosk") == kA["no"]
                  and a["details"].get("status") == "conflict"]
    s.check(len(conflicts2) == 2, "and no second alert", str(len(conflicts2)))

    # ---- superseded and expired allowances
    ok, a2, _ = allowance(kA)
    s.check(ok and sorted(i["payment"] for i in a2["items"]) == sorted([pay[bens[4]]["id"], pay[bens[6]]["id"]]),
            "a new allowance lists only what is still collectable", str([i["ben_no"] for i in a2["items"]]))
    # (dated 50 ms on: core keeps the supersession to the millisecond, and the event must come after it)
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/offline-events",
                     {"events": [collection(a1, bens[4], at=rfc3339(time.time() + 0.05))]})
    s.check(st == 200 and b["results"][0]["status"] == "rejected" and "superseded" in b["results"][0].get("message", ""),
            "a collection under a superseded allowance, after it was superseded, is rejected", f"{st} {b}")
    Mariadb.sql(f"UPDATE kiosk_allowances SET issued_at = issued_at - INTERVAL 2 DAY, valid_until = valid_until -"
                f" INTERVAL 2 DAY WHERE id = {int(a2['id'])}", db=core.db)  # as if issued two days ago
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/offline-events", {"events": [collection(a2, bens[4])]})
    s.check(st == 200 and b["results"][0]["status"] == "rejected" and "expired" in b["results"][0].get("message", ""),
            "a collection after the allowance expired is rejected", f"{st} {b}")
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/offline-events", {"events": [dict(collection(a2, bens[4]),
                                                                                  allowance="12345")]})
    s.check(st == 200 and b["results"][0]["status"] == "rejected" and "unknown" in b["results"][0].get("message", ""),
            "an unknown allowance is rejected", f"{st} {b}")
    st, _, p4 = core.get(f"/api/v1/payments/{pay[bens[4]]['id']}", as_=officer_a)
    s.check(p4["status"] == "available", "none of the refused collections moved money", str(p4["status"]))

    # ---- the same batch sent twice at the same moment, to two core instances: applied once
    core.patch(f"/api/v1/kiosks/{kA['no']}", {"offline": {"cap": {"amount": 2_000_000, "currency": "KES"},
                                                          "max_collections": 10}}, as_=officer_a)
    _, a3, _ = allowance(kA)
    second = Core(s, name="kiosk_ops_b", db=core.db, fresh_db=False)
    race = {"events": [collection(a3, bens[6]), {"id": eid(), "type": "event", "event": "help", "at": rfc3339()}]}
    answers = []
    gate = threading.Barrier(2)

    def replay(c):
        data = json.dumps(race).encode()
        gate.wait()
        hdrs = signed_headers(kA["key"], kA["no"], "POST", "/api/v1/kiosk/offline-events", data)
        hdrs["Content-Type"] = "application/json"
        answers.append(c.request("POST", "/api/v1/kiosk/offline-events", raw_body=data, headers=hdrs, as_=None))
    threads = [threading.Thread(target=replay, args=(c,)) for c in (core, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    firsts = sorted(a[2]["results"][0]["status"] for a in answers if a[0] == 200)
    helps = sorted(a[2]["results"][1]["status"] for a in answers if a[0] == 200)
    s.check(firsts == ["applied", "duplicate"] and helps == ["applied", "duplicate"],
            "two replays of one batch at once, on two instances: each event applied once, the other a duplicate",
            str([(a[0], a[2]) for a in answers]))
    st, _, p6 = core.get(f"/api/v1/payments/{pay[bens[6]]['id']}", as_=officer_a)
    s.check(p6["status"] == "collected" and len([m for m in p6["ledger"] if m["posting"] == "collect"]) == 1,
            "and the payment was collected once", str(p6.get("ledger")))
    second.stop()

    # ---- limits of a request
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/offline-events",
                     {"events": [{"id": eid(), "type": "event", "event": "help", "at": rfc3339()} for _ in range(101)]})
    s.check(st == 400 and "events" in fields(b), "101 events in one request are refused (400), naming events", f"{st} {b}")
    big = json.dumps({"events": [{"id": eid(), "type": "event", "event": "help", "at": rfc3339(),
                                  "pad": "x" * 12000} for _ in range(100)]}).encode()
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/offline-events", raw=big)
    s.check(st == 413 and code(b) == "too_big", "a body over 1 MiB is refused (413)", f"{st} {str(b)[:200]}")
    st, _, b = kcall(kA, "POST", "/api/v1/kiosk/offline-events", {"events": [{"id": "x", "type": "event"}]})
    s.check(st == 400 and "events" in fields(b), "an event without a usable id is refused (400)", f"{st} {b}")

    # ---- the books
    st, _, b = core.get("/api/v1/ledger/check", as_="auditor")
    s.check(st == 200 and b["ok"], "the books balance after offline replay", f"{st} {b}")
    logs = core.log_text()
    s.check(bens[0] not in logs and "Asked for 200" not in logs, "no beneficiary number or grievance text in the logs", "")
