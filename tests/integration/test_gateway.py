"""test_gateway.py - hifadhi-gateway in front of a real hifadhi-core: USSD sessions by the aggregator
convention (registered and unknown phones, PIN once per session, wrong PINs and lockout, next and last
payments, complaints with their reference, complaint status, language, back/home, repeated and out-of-order
requests, core down), and SMS keywords as Kannel's MO callback delivers them (HELP, STATUS, COMPLAINT, LANG,
STOP/START, unknown text, Kannel's retried callbacks).
"""
import json
import re

from harness import Suite, Core, Gateway, Mariadb, record_pii

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}
PHONE = "+254712300400"
STRANGER = "+254799123456"


with Suite() as s:
    core = Core(s)
    gw = Gateway(s, core)
    sql = lambda q: Mariadb.sql(q, db=core.db)
    record_pii([PHONE, STRANGER])
    svc = {"X-Hifadhi-Service-Key": core.gateway_secret()}

    core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer", "target": "individual",
                                     "currency": "KES"}, as_="admin")
    st, _, hh = core.post("/api/v1/households", {"location": LOC, "members": [
        {"given_name": "Nyambura", "family_name": "Wekesa", "sex": "female", "date_of_birth": "1948-05-05",
         "relationship": "head", "language": "en", "phone": PHONE}]})
    ben = hh["members"][0]["ben_no"]
    st, _, en = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": ben, "status": "enrolled"})
    s.check(st == 201, "a registered, enrolled beneficiary with a phone", f"{st} {en}")

    # ---- an unknown phone
    k, t = gw.ussd("g1", STRANGER, "")
    s.check(k == "CON" and "haijasajiliwa" in t, "an unknown phone gets the guest menu, in the default language (Swahili)",
            f"{k} {t}")
    k, t = gw.ussd("g1", STRANGER, "3")
    s.check(k == "CON" and "Malalamiko" in t, "the guest can complain: the category menu", f"{k} {t}")
    k, t = gw.ussd("g1", STRANGER, "3*1")
    k, t = gw.ussd("g1", STRANGER, "3*1*Sijapokea pesa mwezi huu")
    k2, t2 = gw.ussd("g1", STRANGER, "3*1*Sijapokea pesa mwezi huu*1")
    refs = [w.strip(".,") for w in t2.split() if w.strip(".,").isdigit() and len(w.strip(".,")) == 9]
    s.check(k2 == "END" and len(refs) == 1, "an anonymous complaint ends with its reference number", f"{k2} {t2}")
    anon_ref = refs[0] if refs else "0"
    row = sql(f"SELECT case_type, channel, individual_id IS NULL FROM cases WHERE ref = '{anon_ref}'")
    s.check(row.strip() == "grievance\tussd\t1", "the complaint is in core, anonymous, from USSD", row)

    # ---- a registered phone: home menu in their language; PIN first
    k, t = gw.ussd("r1", PHONE, "")
    s.check(k == "CON" and "My enrolment" in t and "Next payment" in t, "a registered phone gets the home menu (English)",
            f"{k} {t}")
    k, t = gw.ussd("r1", PHONE, "2")
    s.check(k == "CON" and "PIN" in t, "next payment asks for the PIN; none is set yet", f"{k} {t}")
    k, t = gw.ussd("r1", PHONE, "2*4829")
    s.check("do not have a PIN" in t, "a PIN never set: offered to create one", f"{k} {t}")
    k, t = gw.ussd("r1", PHONE, "2*4829*1")
    k, t = gw.ussd("r1", PHONE, "2*4829*1*4829")
    k, t = gw.ussd("r1", PHONE, "2*4829*1*4829*4829")
    st, _, sub = core.get(f"/api/v1/subscribers/{PHONE}", headers=svc, as_=None)
    s.check(sub["pin"] == "set", "the PIN is created from USSD (typed twice)", f"{k} {t} {sub}")
    pin_in = lambda text: re.search(r"(?<![0-9a-f])4829(?![0-9a-f])", text)
    s.check(not pin_in(gw.log_text()) and not pin_in(core.log_text()), "the PIN appears in no log", "")

    k, t = gw.ussd("r2", PHONE, "")
    k, t = gw.ussd("r2", PHONE, "2")
    k, t = gw.ussd("r2", PHONE, "2*1111")
    s.check(k == "CON" and "Wrong PIN" in t and "4 tries" in t, "a wrong PIN says how many tries are left", f"{k} {t}")
    k, t = gw.ussd("r2", PHONE, "2*1111*4829")
    s.check(k == "CON" and "No payment is planned" in t, "the right PIN shows the next payment (none yet)", f"{k} {t}")
    k, t = gw.ussd("r2", PHONE, "2*1111*4829*0")
    s.check(k == "CON" and "My enrolment" in t, "0 goes back to the menu", f"{k} {t}")
    k, t = gw.ussd("r2", PHONE, "2*1111*4829*0*1")
    s.check(k == "CON" and "enrolled in OPCT" in t, "the PIN is asked once a session: enrolment shown at once",
            f"{k} {t}")
    k2, t2 = gw.ussd("r2", PHONE, "2*1111*4829*0*1")
    s.check((k2, t2) == (k, t), "the same request again (an aggregator retry) gets the same screen", t2)
    k, t = gw.ussd("r2", PHONE, "2*1111*4829*0*1*00")
    s.check(k == "CON" and "My enrolment" in t, "00 goes home", f"{k} {t}")
    k, t = gw.ussd("r2", PHONE, "9*9*9")
    s.check(k == "END", "a request that does not follow the session ends it politely", f"{k} {t}")
    k, t = gw.ussd("nosuch", PHONE, "1*2")
    s.check(k == "END", "inputs for a session the gateway does not know end politely", f"{k} {t}")

    # ---- complaint and its status, for the registered phone
    k, t = gw.ussd("r3", PHONE, "")
    k, t = gw.ussd("r3", PHONE, "4")
    k, t = gw.ussd("r3", PHONE, "4*2")
    k, t = gw.ussd("r3", PHONE, "4*2*Nilipata nusu tu")
    k, t = gw.ussd("r3", PHONE, "4*2*Nilipata nusu tu*1")
    refs = [w.strip(".,") for w in t.split() if w.strip(".,").isdigit() and len(w.strip(".,")) == 9]
    s.check(k == "END" and refs, "a beneficiary's complaint gets its reference", f"{k} {t}")
    outbox = sql("SELECT template FROM outbox o JOIN cases c ON c.id = o.case_id WHERE c.ref = '%s'" % refs[0])
    s.check("grievance_lodged" in outbox, "and the reference also goes by SMS (the outbox)", outbox)
    k, t = gw.ussd("r4", PHONE, "")
    k, t = gw.ussd("r4", PHONE, "5")
    k, t = gw.ussd("r4", PHONE, "5*4829")
    k, t = gw.ussd("r4", PHONE, f"5*4829*{refs[0]}")
    s.check(k == "CON" and refs[0] in t and "working on it" in t, "the complaint's status by its reference",
            f"{k} {t}")
    k, t = gw.ussd("r4b", PHONE, "")
    k, t = gw.ussd("r4b", PHONE, "5")
    k, t = gw.ussd("r4b", PHONE, "5*4829")
    k, t = gw.ussd("r4b", PHONE, f"5*4829*{anon_ref}")
    s.check("did not find" in t, "someone else's or a wrong reference is not found", f"{k} {t}")

    # ---- language
    k, t = gw.ussd("r5", PHONE, "")
    k, t = gw.ussd("r5", PHONE, "8")
    k, t = gw.ussd("r5", PHONE, "8*1")
    st, _, sub = core.get(f"/api/v1/subscribers/{PHONE}", headers=svc, as_=None)
    s.check(sub["language"] == "sw", "the language is changed from USSD", f"{k} {t} {sub}")
    k, t = gw.ussd("r6", PHONE, "")
    s.check(k == "CON" and "Malipo" in t or "malipo" in t, "the next session is in Swahili", f"{k} {t}")

    # ---- SMS keywords (Kannel's MO callback)
    st, body, h = gw.mo(PHONE, "help")
    s.check(st == 200 and "*384#" in body, "HELP (any case) gets the help text", f"{st} {body}")
    st, body, h = gw.mo(PHONE, "HALI")
    s.check(st == 200 and "OPCT" in body, "STATUS in Swahili (HALI) answers the registered number", f"{st} {body}")
    st, body, h = gw.mo(STRANGER, "status")
    s.check(st == 200 and "not registered" in body, "STATUS from an unknown number says it is not registered",
            f"{st} {body}")
    st, body, h = gw.mo(PHONE, "COMPLAINT Agent alinitoza shilingi 200")
    s.check(st == 200 and any(w.strip(".,").isdigit() and len(w.strip(".,")) == 9 for w in body.split()),
            "COMPLAINT <text> lodges a complaint and replies its number", f"{st} {body}")
    st, body, h = gw.mo(PHONE, "LANG EN")
    s.check(st == 200 and "English" in body or "en" in body, "LANG EN changes the language", f"{st} {body}")
    st, body, h = gw.mo(PHONE, "what is this")
    s.check(st == 200 and body.strip() != "", "unknown text gets a short help reply, never silence", f"{st} {body}")
    st, body, h = gw.mo(PHONE, "STOP", msg_id="mo-stop-1")
    st2, _, sub = core.get(f"/api/v1/subscribers/{PHONE}", headers=svc, as_=None)
    s.check(st == 200 and body and sub["opted_out"], "STOP opts the number out (in core) and confirms", f"{body} {sub}")
    st, body2, h = gw.mo(PHONE, "STOP", msg_id="mo-stop-1")
    s.check(st == 200 and body2 == "", "Kannel's retry of the same message is answered once only", repr(body2))
    st, body, h = gw.mo(PHONE, "start")
    st2, _, sub = core.get(f"/api/v1/subscribers/{PHONE}", headers=svc, as_=None)
    s.check(st == 200 and not sub["opted_out"], "START ends the opt-out", f"{body} {sub}")
    st, body, h = gw.mo("not a number", "HELP")
    s.check(st == 200 and body == "", "a sender that is not a phone number is dropped (200, no reply)", repr(body))

    # ---- bad input does not crash it
    st, body, _ = gw._http("POST", "/ussd", "garbage=%%%", "application/x-www-form-urlencoded")
    s.check(st == 200 and body.startswith("END "), "a malformed aggregator request gets a polite END", body)
    st, body, _ = gw._http("POST", "/ussd", "sessionId=x&phoneNumber=%2B254712300400&text=" + "1*" * 2000,
                           "application/x-www-form-urlencoded")
    s.check(st in (200, 413) and (st == 413 or body.startswith("END ")), "an over-long input path is refused", f"{st}")
    st, body = gw.get("/kannel/dlr?ref=999999&status=1")
    s.check(st == 200 and body == "unknown", "a delivery report for an unknown id is answered (and counted)", body)

    # ---- core down: the subscriber gets a polite END within the deadline
    core.stop()
    k, t = gw.ussd("down1", PHONE, "")
    s.check(k == "END" and ("busy" in t or "shughuli" in t.lower() or t), "core down: END 'service busy'", f"{k} {t}")
    core.start()
    gw.stop()
    gw.start()  # the core came back on a new port: the gateway is pointed at it
    k, t = gw.ussd("up1", PHONE, "")
    s.check(k == "CON", "core back: sessions work again", f"{k} {t}")
    st, m = gw.get("/metrics")
    s.check(st == 200 and "hifadhi_gateway_ussd_requests_total" in m, "metrics", m[:200])
