"""test_subscribers.py - a phone as the USSD and SMS channels see it, through the gateway's credential: who it
belongs to in any common number format, the PIN (set, verify, lockout after 5, reset by a one-time code sent
by SMS, staff unlock), the language, SMS opt-out (STOP/START) and what it does to queued messages, and the
channels lodging anonymous grievances and new phone numbers.
"""
import json
import re

from harness import Suite, Core, Mariadb, record_pii, error_message as msg, error_fields as fields

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}
PHONE = "+254711444555"


with Suite() as s:
    core = Core(s)
    sql = lambda q: Mariadb.sql(q, db=core.db)
    gw = {"X-Hifadhi-Service-Key": core.gateway_secret()}
    record_pii([PHONE, "0711444555", "254711444555"])

    def call(method, path, body=None):
        return core.request(method, f"/api/v1/subscribers/{path}", body if body is not None else
                            ({} if method == "POST" else None), headers=gw, as_=None)

    st, _, hh = core.post("/api/v1/households", {"location": LOC, "members": [
        {"given_name": "Atieno", "family_name": "Odhiambo", "sex": "female", "date_of_birth": "1950-04-02",
         "relationship": "head", "language": "luo", "phone": PHONE},
        {"given_name": "Ouma", "family_name": "Odhiambo", "sex": "male", "date_of_birth": "1990-01-01",
         "relationship": "child", "language": "sw", "phone": PHONE}]})
    s.check(st == 201, "a household whose members share one phone", f"{st} {hh}")
    head = [m for m in hh["members"] if m["relationship"] == "head"][0]["ben_no"]

    # ---- who a phone is
    for form in (PHONE, "254711444555", "0711444555"):
        st, _, b = call("GET", form)
        s.check(st == 200 and b["registered"] and b["ben_no"] == head and b["language"] == "luo" and
                b["pin"] == "none" and not b["opted_out"],
                f"{form[:4]}...: a shared phone belongs to the head of household, in any common format", f"{st} {b}")
    st, _, b = call("GET", "+254799000111")
    s.check(st == 200 and b == {"registered": False, "opted_out": False}, "an unknown phone is simply not registered",
            f"{st} {b}")
    st, _, b = call("GET", "not-a-phone")
    s.check(st == 404, "a path that is not a phone number is 404", f"{st} {b}")
    st, _, b = core.get(f"/api/v1/subscribers/{PHONE}", as_="registrar")
    s.check(st == 403, "staff do not use the gateway's phone routes", f"{st}")

    # ---- PIN
    for bad, why in (("12a4", "format"), ("123", "format"), ("1234", "weak"), ("7777", "weak")):
        st, _, b = call("POST", f"{PHONE}/pin", {"pin": bad})
        s.check(st == 400 and "pin" in fields(b), f"a PIN like {bad!r} is refused ({why})", f"{st} {b}")
    st, _, b = call("POST", f"{PHONE}/pin", {"pin": "4829"})
    s.check(st == 201 and b["ok"], "the first PIN is set", f"{st} {b}")
    st, _, b = call("POST", f"{PHONE}/pin", {"pin": "5930"})
    s.check(st == 409, "a second 'first PIN' is refused: change or reset it", f"{st} {b}")
    dump = sql("SELECT HEX(pin_hash) FROM subscriber_pins")
    s.check("4829" not in dump and len(dump.strip()) == 32, "the PIN is stored as a keyed hash only", dump)
    st, _, b = call("POST", f"{PHONE}/pin/verify", {"pin": "4829"})
    s.check(st == 200 and b["ok"], "the right PIN verifies", f"{st} {b}")
    left = []
    for i in range(4):
        st, _, b = call("POST", f"{PHONE}/pin/verify", {"pin": "1357"})
        left.append((st, msg(b)))
    s.check([x[0] for x in left] == [401] * 4 and "1 try left" in left[-1][1] and "4 tries left" in left[0][1],
            "wrong PINs are refused, saying how many tries are left", str(left))
    st, _, b = call("POST", f"{PHONE}/pin/verify", {"pin": "4829"})
    s.check(st == 200, "a right PIN before the fifth failure resets the count", f"{st} {b}")
    for i in range(5):
        st, _, b = call("POST", f"{PHONE}/pin/verify", {"pin": "1357"})
    s.check(st == 401 and "locked" in msg(b), "the fifth wrong PIN in a row locks it", f"{st} {b}")
    st, _, b = call("POST", f"{PHONE}/pin/verify", {"pin": "4829"})
    s.check(st == 409 and "locked" in msg(b), "a locked PIN refuses even the right PIN", f"{st} {b}")
    s.check(call("GET", PHONE)[2]["pin"] == "locked", "and the phone shows the PIN locked", "")

    # ---- reset by a one-time code sent by SMS
    sql("DELETE FROM outbox")
    st, _, b = call("POST", f"{PHONE}/pin/reset-code")
    rows = sql("SELECT template, language, params FROM outbox").strip().split("\n")
    s.check(st == 200 and b["sent_by_sms"] and len(rows) == 1 and rows[0].startswith("pin_reset_code\tluo\t"),
            "a reset code goes by SMS to the phone, in the person's language", f"{st} {b} {rows}")
    code = json.loads(rows[0].split("\t")[2])["code"]
    st, _, b = call("POST", f"{PHONE}/pin/reset-code")
    s.check(st == 429, "one code a minute (guessing cannot be spread over many codes); the first still holds",
            f"{st} {b}")
    s.check(len(code) == 6 and code.isdigit() and "4829" not in rows[0], "a 6-digit code; the PIN is never sent",
            rows[0])
    wrong = "000000" if code != "000000" else "111111"
    st, _, b = call("POST", f"{PHONE}/pin/reset", {"code": wrong, "new_pin": "6042"})
    s.check(st == 401 and "tries left" in msg(b), "a wrong code is refused", f"{st} {b}")
    st, _, b = call("POST", f"{PHONE}/pin/reset", {"code": code, "new_pin": "6042"})
    s.check(st == 200 and call("GET", PHONE)[2]["pin"] == "set", "the right code sets a new PIN and unlocks it",
            f"{st} {b}")
    st, _, b = call("POST", f"{PHONE}/pin/reset", {"code": code, "new_pin": "7153"})
    s.check(st == 409, "a code works once", f"{st} {b}")

    st, _, b = call("POST", f"{PHONE}/pin/change", {"pin": "6042", "new_pin": "3918"})
    st2, _, b2 = call("POST", f"{PHONE}/pin/verify", {"pin": "3918"})
    s.check(st == 200 and st2 == 200, "the PIN is changed with the old one", f"{st} {b} {st2} {b2}")
    st, _, b = call("POST", f"{PHONE}/pin/change", {"pin": "0001", "new_pin": "5824"})
    s.check(st == 401, "a change with a wrong old PIN is refused (and counts as a failure)", f"{st} {b}")

    # ---- staff unlock
    for i in range(5):
        call("POST", f"{PHONE}/pin/verify", {"pin": "1357"})
    st, _, b = core.post(f"/api/v1/individuals/{head}/pin/unlock", {}, as_="support")
    st2, _, b2 = call("POST", f"{PHONE}/pin/verify", {"pin": "3918"})
    s.check(st == 200 and st2 == 200, "support staff unlock a locked PIN after checking the person", f"{st} {b} {st2}")
    st, _, b = core.post(f"/api/v1/individuals/{head}/pin/unlock", {}, as_="payment_officer")
    s.check(st == 403, "a payment officer cannot unlock PINs", f"{st}")

    # ---- language
    st, _, b = call("POST", f"{PHONE}/language", {"language": "sw"})
    s.check(st == 200 and call("GET", PHONE)[2]["language"] == "sw", "the language is changed from the phone",
            f"{st} {b}")
    st, _, b = call("POST", f"{PHONE}/language", {"language": "xx"})
    s.check(st == 400 and "language" in fields(b), "a language not offered is refused", f"{st} {b}")

    # ---- opt-out: STOP, and what it does to queued messages
    sql("DELETE FROM outbox")
    sql("UPDATE subscriber_pins SET reset_expires_at = NULL")  # as if the last code were long gone
    call("POST", f"{PHONE}/pin/reset-code")  # something queued for this number
    st, _, b = call("POST", f"{PHONE}/opt-out", {"channel": "sms"})
    rows = sql("SELECT template, status FROM outbox ORDER BY created_at").strip().split("\n")
    s.check(st == 200 and call("GET", PHONE)[2]["opted_out"] and rows == ["pin_reset_code\tfailed"],
            "STOP: messages waiting for the number are dropped (the gateway confirms the STOP itself)", f"{st} {rows}")
    sql("UPDATE subscriber_pins SET reset_expires_at = NULL")
    call("POST", f"{PHONE}/pin/reset-code")  # queued after the STOP
    rows = sql("SELECT template, status FROM outbox ORDER BY created_at").strip().split("\n")
    st, _, cl = core.post("/api/v1/outbox/claim?limit=50", {}, headers=gw, as_=None)
    s.check(rows[-1] == "pin_reset_code\tfailed" and st == 200 and cl["items"] == [],
            "after STOP nothing new is queued for the number, and the gateway is given nothing for it",
            f"{rows} {st} {cl}")
    st, _, b = call("POST", f"{PHONE}/opt-in", {"channel": "sms"})
    s.check(st == 200 and not call("GET", PHONE)[2]["opted_out"], "START ends the opt-out", f"{st} {b}")
    # quiet hours: a gateway claims only what someone is waiting for (PIN reset codes)
    sql("DELETE FROM outbox")
    sql("UPDATE subscriber_pins SET reset_expires_at = NULL")
    call("POST", f"{PHONE}/pin/reset-code")
    core.post("/api/v1/cases", {"type": "grievance", "category": "other", "ben_no": head, "summary": "Swali"},
              headers=gw, as_=None)
    st, _, cl = core.post("/api/v1/outbox/claim?limit=50&urgent=1", {}, headers=gw, as_=None)
    left = sql("SELECT template, status FROM outbox WHERE template <> 'pin_reset_code'").strip().split("\n")
    s.check(st == 200 and [i["template"] for i in cl["items"]] == ["pin_reset_code"] and
            left == ["grievance_lodged\tqueued"],
            "in quiet hours only the PIN reset code is handed to the gateway; the rest waits", f"{st} {cl} {left}")
    st, _, b = call("POST", "+254799000222/opt-out", {})
    s.check(st == 200 and call("GET", "+254799000222")[2]["opted_out"], "an unregistered number can opt out too",
            f"{st} {b}")
    ok_only = lambda action: [a for a in core.audit(action=action) if a["outcome"] == "ok"]
    s.check(len(ok_only("subscriber.opt_out")) == 2 and len(ok_only("subscriber.pin_unlock")) == 1,
            "opt-outs and unlocks are audited", "")

    # ---- cases from the channels
    st, _, b = core.post("/api/v1/cases", {"type": "grievance", "category": "payment_not_received", "channel": "ussd",
                                           "summary": "Sijapokea pesa"}, headers=gw, as_=None)
    s.check(st == 201 and b["ref"], "an unknown phone lodges an anonymous grievance", f"{st} {b}")
    st, _, b = core.post("/api/v1/cases", {"type": "change_request", "category": "phone", "channel": "ussd",
                                           "ben_no": head, "data": {"change": {"phone": "+254722000333"}}},
                         headers=gw, as_=None)
    s.check(st == 201 and b["type"] == "change_request", "a beneficiary reports a new phone number from USSD",
            f"{st} {b}")
    st, _, b = core.post("/api/v1/cases", {"type": "change_request", "category": "address", "ben_no": head},
                         headers=gw, as_=None)
    s.check(st == 400 and "type" in fields(b), "other change requests are for staff", f"{st} {b}")
    logs = core.log_text()
    s.check(not re.search(r"(?<![0-9a-f])(4829|3918)(?![0-9a-f])", logs), "no PIN in any log (as a number of its own)",
            "")
