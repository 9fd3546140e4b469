"""test_kiosk_bio.py - fingerprints and collection at kiosks (docs/kiosk-api.md): core's kiosk keys, templates
enrolled at an enrolment station and handed sealed to pay points, verification tokens (three fingerprint
attempts, then the PIN plus a staff override), collection exactly once (replayed request ids, a core that
stalls halfway, a second core instance, two kiosks racing), the SMS receipt and the public receipt check.

The terminals are tests/integration/kiosk_client.py: signatures with Python's `cryptography`, sealing with
PyNaCl, both independent of the C code.
"""
import base64
import calendar
import subprocess
import threading
import time
import uuid

from nacl.exceptions import CryptoError

from harness import Suite, Core, Mariadb, Staff, record_pii, error_message as msg, error_fields as fields, wait_for
from kiosk_client import Kiosk, fake_template, seal_to

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}


def day(offset):
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + offset * 86400))



with Suite() as s:
    core = Core(s)
    sql = lambda q: Mariadb.sql(q, db=core.db)
    officer_a = core.staff("payment_officer", "pay.achieng")
    officer_b = core.staff("payment_officer", "pay.baraka")
    gw = {"X-Hifadhi-Service-Key": core.gateway_secret()}

    # ---- a registry: six older persons in Ahero, enrolled in OPCT, and a grandchild who is not
    core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer", "target": "individual",
                                     "currency": "KES"}, as_="admin")
    people = {}
    for key, name, lang in (("A", "Achieng", "sw"), ("B", "Barasa", "en"), ("C", "Chepkoech", "so"),
                            ("D", "Dalmas", "luo"), ("F", "Fatuma", "en"), ("G", "Gideon", "sw")):
        phone = f"+2547223344{len(people):02d}"
        members = [{"given_name": name, "family_name": "Odhiambo", "sex": "female", "date_of_birth": "1950-05-01",
                    "relationship": "head", "language": lang, "phone": phone}]
        if key == "A":
            members.append({"given_name": "Mtoto", "family_name": "Odhiambo", "sex": "male",
                            "date_of_birth": "2016-01-01", "relationship": "grandchild", "language": "sw"})
        st, _, hh = core.post("/api/v1/households", {"location": LOC, "members": members})
        assert st == 201, (st, hh)
        people[key] = {"ben": hh["members"][0]["ben_no"], "phone": phone, "lang": lang}
        if key == "A":
            people["E"] = {"ben": hh["members"][1]["ben_no"]}
        st, _, en = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": people[key]["ben"],
                                                     "status": "enrolled"})
        assert st == 201, (st, en)
    ben = {k: v["ben"] for k, v in people.items()}
    for k in ("B", "C", "D"):  # the fallback needs the beneficiary's USSD PIN
        st, _, b = core.post(f"/api/v1/subscribers/{people[k]['phone']}/pin", {"pin": "4826"}, headers=gw, as_=None)
        assert st == 201, (st, b)
    record_pii(["4826", "4827", "0000"])

    core.post("/api/v1/ledger/funding", {"programme": "OPCT", "amount": 10_000_000, "currency": "KES",
                                         "reference": "BIO-FUND"}, as_=officer_a)
    CY = "OPCT-BIO-1"
    st, _, cy = core.post("/api/v1/cycles", {"code": CY, "programme": "OPCT", "rule": {"kind": "flat", "amount": 250000},
                                             "cutoff_date": day(0), "pay_from": day(0), "pay_until": day(3),
                                             "channel": "kiosk", "pay_points": {"Kisumu/Nyando": "AHERO-1"}},
                          as_=officer_a)
    assert st == 201, (st, cy)
    core.post(f"/api/v1/cycles/{CY}/payroll", {}, as_=officer_a)
    core.post(f"/api/v1/cycles/{CY}/submit", {}, as_=officer_a)
    st, _, b = core.post(f"/api/v1/cycles/{CY}/approve", {}, as_=officer_b)
    assert st == 200, (st, b)
    st, _, pl = core.get(f"/api/v1/cycles/{CY}/payments?limit=100", as_=officer_a)
    pay = {p["ben_no"]: p["id"] for p in pl["items"]}
    s.check(len(pay) == 6, "a kiosk payroll of the six enrolled persons is approved", str(pl))

    # ---- terminals and core's keys
    station = Kiosk.register(core, "AHERO-1", as_=officer_a, mode="enrolment")
    p1, p2 = Kiosk.register(core, "AHERO-1", as_=officer_a), Kiosk.register(core, "AHERO-1", as_=officer_a)
    st, _, me = p1.call("GET", "/api/v1/kiosk/me")
    st2, _, me_st = station.call("GET", "/api/v1/kiosk/me")
    now = time.time()
    try:
        t_srv = calendar.timegm(time.strptime(me["server_time"], "%Y-%m-%dT%H:%M:%SZ"))
    except (KeyError, ValueError):
        t_srv = 0
    s.check(st == 200 and me["kiosk_no"] == p1.kiosk_no and me["mode"] == "pay_point" and
            len(base64.b64decode(me["seal_pk"])) == 32 and len(base64.b64decode(me["sign_pk"])) == 32 and
            me["seal_pk"] != me["sign_pk"] and abs(t_srv - now) < 120,
            "GET kiosk/me gives the mode, core's seal and signing keys and the server's time", f"{st} {me}")
    s.check(st2 == 200 and me_st["mode"] == "enrolment" and me_st["seal_pk"] == me["seal_pk"],
            "an enrolment station is told its mode; every kiosk gets the same core keys", f"{st2} {me_st}")
    seal_pk = me["seal_pk"]
    key_file = core.key_dir / "kiosk-core.key"
    s.check(key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600",
            "keygen made kiosk-core.key, readable by its owner only", str(key_file))

    # ---- enrolment station
    tpl_a1, tpl_a2, tpl_b = fake_template(b"A1"), fake_template(b"A2"), fake_template(b"B")
    st, _, b = station.enrol_template(ben["A"], tpl_a1, seal_pk=seal_pk)
    s.check(st == 201 and b == {"ben_no": ben["A"], "finger": "right_thumb", "replaced": False},
            "an enrolment station enrols a template sealed to core's seal_pk", f"{st} {b}")
    st, _, b = station.enrol_template(ben["A"], tpl_a2, seal_pk=seal_pk)
    s.check(st == 201 and b["replaced"] is True, "a new capture of the same finger replaces the old", f"{st} {b}")
    st, _, b = station.enrol_template(ben["A"], fake_template(b"A-index"), finger="right_index", seal_pk=seal_pk)
    s.check(st == 201 and b["replaced"] is False, "another finger is a template of its own", f"{st} {b}")
    for k, t in (("B", tpl_b), ("F", fake_template(b"F")), ("G", fake_template(b"G"))):
        st, _, b = station.enrol_template(ben[k], t, seal_pk=seal_pk)
        assert st == 201, (st, b)
    st, _, b = p1.enrol_template(ben["C"], fake_template(b"C"), seal_pk=seal_pk)
    s.check(st == 403 and "pay point" in msg(b), "a pay-point kiosk cannot enrol fingerprints", f"{st} {b}")
    other_pk = base64.b64encode(bytes(32 * [7])).decode()
    st, _, b = station.enrol_template(ben["C"], fake_template(b"C"), seal_pk=other_pk)
    s.check(st == 400 and "sealed" in fields(b), "a capture sealed to another key is refused", f"{st} {b}")
    st, _, b = station.enrol_template(ben["C"], b"JPEG" + bytes(100), seal_pk=seal_pk)
    s.check(st == 400 and "sealed" in fields(b), "a capture that is not a libfprint print is refused", f"{st} {b}")
    st, _, b = station.enrol_template(ben["C"], b"FP3" + bytes(97 * 1024), seal_pk=seal_pk)
    s.check(st == 400 and "sealed" in fields(b), "a capture over 96 KiB is refused", f"{st} {b}")
    st, _, b = station.enrol_template("999999999", fake_template(b"X"), seal_pk=seal_pk)
    s.check(st == 404, "a template for an unknown beneficiary is refused", f"{st} {b}")
    rows = sql(f"SELECT HEX(t.template_enc), LENGTH(t.template_enc), t.finger FROM biometric_templates t JOIN"
               f" individuals i ON i.id = t.individual_id WHERE i.ben_no = '{ben['A']}' AND t.finger = 'right_thumb'")
    enc_hex, enc_len = (rows.split("\t")[:2] + ["", "0"])[:2]
    s.check(enc_hex and tpl_a2.hex().upper() not in enc_hex and tpl_a2[3:40].hex().upper() not in enc_hex and
            not enc_hex.startswith(b"FP3".hex().upper()) and int(enc_len) == len(tpl_a2) + 42,
            "at rest the template is sealed: none of its bytes in the column", rows[:120])
    acts = [e for e in core.audit(action="biometric.enrol", record=ben["A"]) if e["outcome"] == "ok"]
    s.check(len(acts) == 3 and {e["detail"]["replaced"] for e in acts} == {True, False},
            "each enrolment and replacement is audited", str(acts))

    # ---- a pay point reads them, sealed to itself
    st, _, t1 = p1.call("GET", f"/api/v1/kiosk/beneficiaries/{ben['A']}/templates")
    got = {t["finger"]: t for t in t1.get("templates", [])} if st == 200 else {}
    opened = p1.key.open_sealed(got["right_thumb"]["sealed"]) if "right_thumb" in got else None
    s.check(st == 200 and len(got) == 2 and opened == tpl_a2 and got["right_thumb"]["driver"] == "virtual_image" and
            t1["fallback"] == {"pin_set": False} and t1["language"] == "sw",
            "a pay point gets the templates sealed to its own key and opens them: the same bytes", f"{st} {t1}")
    try:
        p2.key.open_sealed(got["right_thumb"]["sealed"])
        s.check(False, "another kiosk cannot open a template sealed to the first", "it opened")
    except CryptoError:
        s.check(True, "another kiosk cannot open a template sealed to the first")
    st, _, t2 = p2.call("GET", f"/api/v1/kiosk/beneficiaries/{ben['A']}/templates")
    s.check(st == 200 and p2.key.open_sealed(t2["templates"][0]["sealed"]) in (tpl_a2, fake_template(b"A-index")),
            "the second kiosk gets its own sealed copies", f"{st}")
    st, _, b = p1.call("GET", f"/api/v1/kiosk/beneficiaries/{ben['B']}/templates")
    s.check(st == 200 and b["fallback"]["pin_set"] is True, "the answer says whether the PIN fallback is possible",
            f"{st} {b}")
    st, _, b = station.call("GET", f"/api/v1/kiosk/beneficiaries/{ben['A']}/templates")
    s.check(st == 403, "an enrolment station is not handed templates", f"{st} {b}")
    st1, _, b1 = p1.call("GET", "/api/v1/kiosk/beneficiaries/999999999/templates")
    st2, _, b2 = p1.call("GET", f"/api/v1/kiosk/beneficiaries/{ben['E']}/templates")
    s.check(st1 == 404 and st2 == 404 and msg(b1) == msg(b2),
            "unknown and not-enrolled beneficiaries get the same 404", f"{st1} {b1} {st2} {b2}")
    reads = [e for e in core.audit(action="biometric.read", record=ben["A"]) if e["outcome"] == "ok"]
    s.check(len(reads) >= 2 and reads[0]["actor_type"] == "kiosk" and
            sorted(reads[0]["detail"]["fingers"]) == ["right_index", "right_thumb"],
            "every hand-over of templates is audited, naming the fingers", str(reads[:1]))

    # ---- verification at the pay point
    st, b = p1.verify(ben["A"])
    s.check(st == 201 and len(b.get("verification", "")) >= 22 and b["method"] == "fingerprint" and
            b["valid_until"].endswith("Z"), "a fingerprint match gives a verification token", f"{st} {b}")
    tok_a = b.get("verification")
    record_pii([tok_a])
    answers = [p1.verify(ben["B"], "no_match" if i != 1 else "unreadable", attempt=i + 1) for i in range(3)]
    s.check([a[0] for a in answers] == [200] * 3 and [a[1]["attempts_left"] for a in answers] == [2, 1, 0] and
            [a[1]["fallback_allowed"] for a in answers] == [False, False, True] and
            all(a[1]["verification"] is None for a in answers),
            "three failed attempts count down, then the fallback is allowed", str(answers))
    st, b = p1.verify(ben["B"], attempt=3)
    s.check(st == 409 and b["error"].get("reason") == "attempts_exhausted",
            "after three failures a match is no longer accepted here", f"{st} {b}")
    st, b = p1.verify(ben["C"])
    s.check(st == 409 and "no_template" in msg(b), "a match for someone with no template on file is refused",
            f"{st} {b}")
    st, b = station.verify(ben["A"])
    s.check(st == 403, "an enrolment station does not verify", f"{st} {b}")
    st, _, b = p1.call("POST", "/api/v1/kiosk/verifications", {"ben_no": ben["A"], "result": "match", "attempt": 4,
                                                                "driver": "virtual_image"})
    s.check(st == 400 and "attempt" in fields(b), "attempt is 1 to 3", f"{st} {b}")
    ver = core.audit(action="kiosk.verify", record=ben["B"])
    s.check(len(ver) == 4 and sum(e["outcome"] == "denied" for e in ver) == 4 and
            {e["detail"]["result"] for e in ver} == {"no_match", "unreadable", "match"},
            "every attempt is stored and audited", str(ver))

    # ---- the fallback: the beneficiary's PIN and a staff credential
    # Each staff account's TOTP codes work once: every successful check below uses an account of its own.
    po = Staff(core, "payment_officer", "pay.override")
    po2 = Staff(core, "payment_officer", "pay.override2")
    reg = Staff(core, "registrar", "reg.override")
    aud = Staff(core, "auditor", "aud.override")
    thrown = Staff(core, "payment_officer", "pay.throwaway")

    def override(who, k, pin="4826", reason="fingerprint_unreadable", password=None, totp=True, kiosk=p1):
        body = {"ben_no": ben[k], "pin": pin, "staff_user": who.username,
                "staff_password": password or who.password, "reason": reason}
        if totp:
            body["staff_totp"] = who.next_code()
        st_, _, b_ = kiosk.call("POST", "/api/v1/kiosk/overrides", body)
        return st_, b_

    st, b = override(po, "A", reason="fingerprint_unreadable", totp=False)
    s.check(st == 409 and "failed fingerprint attempts" in msg(b),
            "fingerprint_unreadable needs three failed attempts first", f"{st} {b}")
    st1, b1 = override(po2, "B", pin="4827")
    st2, b2 = override(po, "B", password="Wrong-Password-2026", totp=False)
    s.check(st1 == 401 and st2 == 401 and msg(b1) == msg(b2) == "Wrong PIN or staff credential." and
            b1["error"].get("reason") == b2["error"].get("reason") == "wrong_credentials",
            "a wrong PIN and a wrong staff password get the same 401 (which one is not said)", f"{b1} {b2}")
    st, b = override(aud, "B")
    s.check(st == 403 and "may not authorise" in msg(b), "an auditor's credential cannot authorise a fallback",
            f"{st} {b}")
    st, b = override(po, "B")
    s.check(st == 201 and b["method"] == "pin_staff_override" and len(b["verification"]) >= 22,
            "the right PIN and a payment officer's credential give a token, method pin_staff_override", f"{st} {b}")
    tok_b_override = b.get("verification")
    record_pii([tok_b_override])
    st, b = override(reg, "C", reason="no_template")
    s.check(st == 201 and b["method"] == "pin_staff_override",
            "a registrar authorises the fallback for someone without a template", f"{st} {b}")
    tok_c = b.get("verification")
    record_pii([tok_c])
    st, b = override(reg, "A", reason="no_template", totp=False)
    s.check(st == 409, "no_template is refused for someone who has one", f"{st} {b}")
    lock_answers = [override(thrown, "D", pin="1397", reason="reader_fault", password="Wrong-Password-2026",
                             totp=False)[0] for _ in range(6)]
    s.check(lock_answers == [401] * 5 + [429], "five wrong PINs lock the PIN (as on USSD): then 429",
            str(lock_answers))
    st, _, al = core.get("/api/v1/alerts?rule=kiosk_override", as_=officer_a)
    items = al.get("items", []) if st == 200 else []
    s.check(st == 200 and len(items) == 2 and all(a["status"] == "open" for a in items),
            "every override raises a kiosk_override alert for review", f"{st} {al}")
    ovr = core.audit(action="kiosk.override")
    s.check(sum(e["outcome"] == "ok" for e in ovr) == 2 and sum(e["outcome"] == "denied" for e in ovr) >= 10 and
            any(e["detail"].get("pin") == "wrong" for e in ovr) and any(e["detail"].get("staff") == "wrong" for e in ovr),
            "every override attempt is audited, with which part failed", str([e["detail"] for e in ovr][:4]))
    checks = core.audit(action="auth.staff_check")
    s.check(any(e["outcome"] == "denied" and e["record"] == "pay.throwaway" for e in checks) and
            any(e["outcome"] == "ok" and e["record"] == "pay.override" for e in checks),
            "the staff credential checks are in the trail like logins", str(len(checks)))

    # ---- collection with a token: exactly once
    rid_a = str(uuid.uuid4())
    st, _, b = p1.call("GET", f"/api/v1/kiosk/collections/{rid_a}")
    s.check(st == 404, "before the collection its request id is unknown", f"{st} {b}")
    st, b, _ = p1.collect(pay[ben["A"]], ben["A"], tok_a, request_id=rid_a)
    s.check(st == 201 and b["status"] == "collected" and b["receipt"].startswith("R") and len(b["receipt"]) == 13 and
            len(b["receipt_check"]) == 10 and b["amount"] == 250000 and b["currency"] == "KES" and
            b["kiosk"] == p1.kiosk_no and b["programme"] == "OPCT" and b["collected_at"].endswith("Z") and
            b["payment"] == pay[ben["A"]] and b["ben_no"] == ben["A"],
            "a collection with a fingerprint token: 201 with receipt and receipt check", f"{st} {b}")
    first = b
    st, b, _ = p1.collect(pay[ben["A"]], ben["A"], tok_a, request_id=rid_a)
    s.check(st == 201 and b == first, "the same request sent again gets the same answer", f"{st} {b}")
    st, _, b = p1.call("GET", f"/api/v1/kiosk/collections/{rid_a}")
    s.check(st == 200 and b == first, "GET by request id gives the recorded answer", f"{st} {b}")
    st, _, b = p1.call("GET", f"/api/v1/kiosk/collections/{rid_a.upper()}")
    s.check(st == 200 and b == first, "the request id is a UUID in any case", f"{st}")
    st, _, b = p2.call("GET", f"/api/v1/kiosk/collections/{rid_a}")
    s.check(st == 404, "another kiosk does not see this kiosk's requests", f"{st} {b}")
    st, b, _ = p1.collect(pay[ben["A"]], ben["A"], tok_a)
    s.check(st == 409 and "collected already" in msg(b) and b["error"].get("reason") == "already_collected",
            "a new request for the collected payment: 409, reason already_collected", f"{st} {b}")
    st, b, _ = p1.collect(pay[ben["F"]], ben["F"], tok_a, request_id=rid_a)
    s.check(st == 409 and b["error"].get("reason") == "request_id_reused",
            "a request id used for another payment: 409", f"{st} {b}")
    postings = sql(f"SELECT COUNT(*) FROM ledger_postings WHERE kind = 'collect' AND payment_id = {pay[ben['A']]}")
    s.eq(postings.strip(), "1", "one collect posting for the payment, however often it was asked")
    v = sql(f"SELECT verification FROM payments WHERE id = {pay[ben['A']]}").strip()
    s.eq(v, "fingerprint", "the payment records the token's method")

    tok_f = p1.token(ben["F"])
    tok_f2 = p2.token(ben["F"])
    record_pii([tok_f, tok_f2])
    st, b, _ = p1.collect(pay[ben["F"]], ben["F"], tok_c)
    s.check(st == 400 and "verification" in fields(b) and b["error"].get("reason") == "verification_not_valid",
            "a token for another person is refused", f"{st} {b}")
    st, b, _ = p1.collect(pay[ben["F"]], ben["F"], tok_f2)
    s.check(st == 400 and "verification" in fields(b), "a token of another kiosk is refused", f"{st} {b}")
    st, b, _ = p1.collect(pay[ben["F"]], ben["F"], "x" * 22)
    s.check(st == 400 and "verification" in fields(b), "a made-up token is refused", f"{st} {b}")
    st, _, b = p1.call("POST", "/api/v1/kiosk/collections", {"payment": pay[ben["F"]], "ben_no": ben["F"],
                                                              "verification": tok_f})
    s.check(st == 400 and "request_id" in fields(b), "a collection without a request id is refused", f"{st} {b}")
    st, b, _ = p1.collect(pay[ben["F"]], ben["F"], tok_f, request_id="not-a-uuid-at-all-but-36-characters")
    s.check(st == 400 and "request_id" in fields(b), "a request id that is not a UUID is refused", f"{st} {b}")
    st, b, _ = station.collect(pay[ben["F"]], ben["F"], tok_f)
    s.check(st == 403, "an enrolment station does not pay out", f"{st} {b}")
    tok_g = p1.token(ben["G"])
    record_pii([tok_g])
    sql("UPDATE kiosk_verifications SET valid_until = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND WHERE token_hash = "
        f"UNHEX(SHA2('{tok_g}', 256))")
    st, b, _ = p1.collect(pay[ben["G"]], ben["G"], tok_g)
    s.check(st == 400 and "verification" in fields(b), "an expired token is refused", f"{st} {b}")

    # ---- a core that stalls halfway: the kiosk asks before it says anything
    holder = subprocess.Popen(["mariadb", "--no-defaults", f"--socket={Mariadb.socket()}", "-uroot", "--batch",
                               "--unbuffered", "--skip-column-names", core.db], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    holder.stdin.write(f"BEGIN; SELECT 'held' FROM payments WHERE id = {pay[ben['F']]} FOR UPDATE;\n")
    holder.stdin.flush()
    s.check(holder.stdout.readline().strip() == "held", "(another session holds the payment's row)")
    rid_f = str(uuid.uuid4())
    try:
        st, b, _ = p1.collect(pay[ben["F"]], ben["F"], tok_f, request_id=rid_f, timeout=1)
        timed_out = False
    except OSError:
        timed_out = True
    st_mid, _, b_mid = p1.call("GET", f"/api/v1/kiosk/collections/{rid_f}")
    again = []
    t = threading.Thread(target=lambda: again.append(p1.collect(pay[ben["F"]], ben["F"], tok_f, request_id=rid_f)))
    t.start()
    # Both the first request (its client gave up, core did not) and the resend wait on the row lock.
    # (at least 2: one of core's own sweeps may be waiting for the row as well)
    waiting = wait_for(lambda: int(Mariadb.sql("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state ="
                                               " 'LOCK WAIT'").strip() or 0) >= 2)
    s.check(waiting, "(the stalled request and its resend both wait for the row)")
    holder.stdin.write("ROLLBACK;\n")
    holder.stdin.close()
    holder.wait(10)
    t.join(30)
    s.check(timed_out and st_mid == 404, "the kiosk's request times out; asked meanwhile, core has not recorded it",
            f"timed out {timed_out}, GET {st_mid} {b_mid}")
    if again and again[0][0] == 503:
        # The database gave up on the resend (a deadlock with a sweep that wanted the same row): "nothing was
        # changed, try again" is what a kiosk does next.
        again[0] = p1.collect(pay[ben["F"]], ben["F"], tok_f, request_id=rid_f)
    after = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(p1.call("GET", f"/api/v1/kiosk/collections/{rid_f}")))
    s.check(after and after[0] == 200 and again and again[0][0] == 201 and again[0][1] == after[2],
            "once core finishes, asking and resending both give the one collection", f"{after} {again}")
    n = sql(f"SELECT COUNT(*) FROM ledger_postings WHERE kind = 'collect' AND payment_id = {pay[ben['F']]}").strip()
    s.eq(n, "1", "the stalled collection was recorded once: neither lost nor doubled")

    second = Core(s, name="kiosk_bio_b", db=core.db, fresh_db=False)
    st, b, _ = p1.collect(pay[ben["F"]], ben["F"], tok_f, request_id=rid_f, core=second)
    s.check(st == 201 and b == after[2], "the same request sent to another core instance: the same answer", f"{st} {b}")
    second.stop()

    # ---- two kiosks race for one payment
    tok_b_fp = p2.token(ben["B"])
    record_pii([tok_b_fp])
    results, barrier = [], threading.Barrier(2)

    def race(k, tok):
        barrier.wait()
        results.append((k.kiosk_no, tok) + k.collect(pay[ben["B"]], ben["B"], tok)[:2])
    threads = [threading.Thread(target=race, args=(p1, tok_b_override)), threading.Thread(target=race, args=(p2, tok_b_fp))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    codes = sorted(r[2] for r in results)
    won = [r for r in results if r[2] == 201]
    s.check(codes == [201, 409], "two kiosks collecting the same payment at once: one 201, one 409", str(results))
    method = sql(f"SELECT verification FROM payments WHERE id = {pay[ben['B']]}").strip()
    s.check(won and method == ("pin_staff_override" if won[0][1] == tok_b_override else "fingerprint"),
            "the winner's verification method is the one recorded", f"{method} {won}")
    st, b, _ = p1.collect(pay[ben["C"]], ben["C"], tok_c)
    s.check(st == 201, "the override token pays out the person without a template", f"{st} {b}")
    collected = int(sql("SELECT COUNT(*) FROM payments WHERE status = 'collected'").strip())
    s.eq(collected, 4, "four payments collected")

    # ---- the SMS receipt, once per collection, in the person's language
    rows = sql("SELECT language, COUNT(*) FROM outbox WHERE template = 'kiosk_receipt' GROUP BY language"
               " ORDER BY language").strip().splitlines()
    s.eq(rows, ["en\t2", "so\t1", "sw\t1"], "one SMS receipt per collection, in each person's language")
    st, _, cl = core.post("/api/v1/outbox/claim?limit=50", {}, headers=gw, as_=None)
    texts = {i["phone"]: i for i in cl.get("items", []) if i["template"] == "kiosk_receipt"} if st == 200 else {}
    mine = texts.get(people["A"]["phone"], {})
    s.check(mine.get("text_language") == "sw" and first["receipt"] in mine.get("text", "") and
            "KES 2,500.00" in mine.get("text", "") and "AHERO-1" in mine.get("text", "") and
            mine["text"].startswith("Hifadhi: umepokea"),
            "the gateway gets the receipt text with amount, receipt number and pay point, in Swahili", str(mine))

    # ---- the public receipt check
    def receipt_page(receipt, check, accept="application/json"):
        return core.request("GET", f"/r/{receipt}?c={check}", headers={"Accept": accept}, as_=None)
    st, _, b = receipt_page(first["receipt"], first["receipt_check"])
    s.check(st == 200 and b == {"valid": True, "receipt": first["receipt"], "amount": 250000, "currency": "KES",
                                "collected_at": first["collected_at"], "pay_point": "AHERO-1", "kiosk": p1.kiosk_no},
            "the receipt check confirms a real receipt, without personal data", f"{st} {b}")
    st, h, page = receipt_page(first["receipt"], first["receipt_check"], accept="text/html")
    s.check(st == 200 and "text/html" in h.get("Content-Type", "") and "Valid receipt" in page and
            first["receipt"] in page and ben["A"] not in page and "Achieng" not in page,
            "the same as an HTML page for a phone's browser", f"{st} {str(page)[:200]}")
    bad = first["receipt_check"][:-1] + ("A" if first["receipt_check"][-1] != "A" else "B")
    st1, _, b1 = receipt_page(first["receipt"], bad)
    st2, _, b2 = receipt_page("R000000000001", first["receipt_check"])
    st3, _, b3 = core.request("GET", f"/r/{first['receipt']}", headers={"Accept": "application/json"}, as_=None)
    s.check((st1, b1, st2, b2, st3, b3) == (200, {"valid": False}, 200, {"valid": False}, 200, {"valid": False}),
            "a wrong check code, another receipt number or none: not valid", f"{b1} {b2} {b3}")

    # ---- a locked kiosk gets 423 from verification and collection
    st, _, b = p2.call("POST", "/api/v1/kiosk/events", {"type": "tamper", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                              time.gmtime())})
    st1, b1 = p2.verify(ben["G"])
    st2, b2, _ = p2.collect(pay[ben["G"]], ben["G"], tok_g)
    st3, _, b3 = p2.call("GET", f"/api/v1/kiosk/beneficiaries/{ben['G']}/templates")
    s.check(st == 201 and (st1, st2, st3) == (423, 423, 423),
            "a kiosk locked by a tamper event gets 423 from verification, templates and collection",
            f"{st} {b} / {st1} {st2} {st3}")

    # ---- audit and logs
    coll = core.audit(action="payment.collect")
    ok = [e for e in coll if e["outcome"] == "ok"]
    s.check(len(ok) == 4 and {e["detail"]["verification"] for e in ok} <= {"fingerprint", "pin_staff_override"} and
            any(e["outcome"] == "denied" and e["detail"]["reason"] == "verification" for e in coll),
            "collections and refused tokens are in the audit trail", str([e["detail"] for e in ok]))
    logs = core.log_text()
    leaked = [x for x in (tok_a, tok_c, tok_f, tok_b_override, base64.b64encode(tpl_a2).decode()[:40],
                          tpl_a2[3:40].hex()) if x and x in logs]
    s.check(not leaked, "no token or template in the logs", str(leaked))

    # ---- a template copied to another person's row does not open
    sql(f"UPDATE biometric_templates t JOIN individuals i ON i.id = t.individual_id JOIN biometric_templates a"
        f" JOIN individuals ia ON ia.id = a.individual_id SET t.template_enc = a.template_enc WHERE i.ben_no ="
        f" '{ben['G']}' AND ia.ben_no = '{ben['A']}' AND a.finger = 'right_thumb'")
    st, _, b = p1.call("GET", f"/api/v1/kiosk/beneficiaries/{ben['G']}/templates")
    s.check(st == 500 and "does not open" in core.log_text(),
            "a template moved to another person in the database is refused, not handed out", f"{st} {b}")
