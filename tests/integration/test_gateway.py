"""test_gateway.py - hifadhi-gateway in front of a real hifadhi-core: USSD sessions by the aggregator
convention (registered and unknown phones, PIN once per session, wrong PINs and lockout, next and last
payments, complaints with their reference, complaint status, language, back/home, repeated and out-of-order
requests, core down), and SMS keywords as Kannel's MO callback delivers them (HELP, STATUS, COMPLAINT, LANG,
STOP/START, unknown text, Kannel's retried callbacks); and the dispatcher against a sendsms that cannot be
reached (not sent: retried, given back) or that takes a request and never answers (in doubt: reported sent,
never sent twice).
"""
import json
import re
import socket
import threading

from harness import Suite, Core, Gateway, Mariadb, free_port, record_pii, wait_for

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}
PHONE = "+254712300400"
STRANGER = "+254799123456"


class MuteSendsms:
    """A sendsms endpoint on a real socket that reads each request and never answers it (close=True: closes
    the connection without a word). refs: the outbox id of each request received, from its dlr-url."""

    def __init__(self, close=False):
        self.close, self.refs, self.held = close, [], []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        while True:
            try:
                d = c.recv(65536)
            except OSError:
                return
            if not d:
                return
            buf += d
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"ref%3D(\d+)", head)
                self.refs.append(m.group(1).decode() if m else "?")
                if self.close:
                    c.close()
                    return
                self.held.append(c)

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


def metric(gw, name):
    st, text = gw.get("/metrics")
    m = re.search(rf"^hifadhi_gateway_{name} (\d+)$", text, re.M) if st == 200 else None
    return int(m.group(1)) if m else -1


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
    k, t = gw.ussd("sc1", PHONE, "2")
    s.check(k == "CON" and "PIN" in t, "a dialled shortcut (*384*2#: text '2' on the first request) goes straight to "
            "next payment, which asks for the PIN", f"{k} {t}")
    k, t = gw.ussd("sc2", PHONE, "2*4829")
    s.check(k == "CON" and "PIN" in t and "KES" not in t,
            "a PIN in the dial string (*384*2*4829#) is never taken: the PIN screen is shown", f"{k} {t}")
    k, t = gw.ussd("sc2", PHONE, "2*4829*4829")
    s.check(k == "CON" and "PIN" not in t, "typed on the screen, the PIN is checked and the session goes on",
            f"{k} {t}")
    cases_before = sql("SELECT COUNT(*) FROM cases").strip()
    k, t = gw.ussd("sc3", PHONE, "4*2*Nimeibiwa*1")
    lodged = int(sql("SELECT COUNT(*) FROM cases").strip()) - int(cases_before)
    s.check(k == "CON" and lodged == 0, "a shortcut only chooses from menus: it stops where a complaint is typed, "
            "and lodges nothing (nor would the inputs of an expired session, replayed)", f"{k} {t} {lodged}")

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
    s.check(k == "CON" and ("Malipo" in t or "malipo" in t), "the next session is in Swahili", f"{k} {t}")

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
    st2, _, sub = core.get(f"/api/v1/subscribers/{PHONE}", headers=svc, as_=None)
    s.check(st == 200 and body.strip() != "" and sub["language"] == "en", "LANG EN changes the language (in core)",
            f"{st} {body} {sub}")
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
    s.check(k == "END" and ("busy" in t.lower() or "shughuli" in t.lower()), "core down: END 'service busy'",
            f"{k} {t}")
    core.start()
    gw.stop()
    gw.start()  # the core came back on a new port: the gateway is pointed at it
    k, t = gw.ussd("up1", PHONE, "")
    s.check(k == "CON", "core back: sessions work again", f"{k} {t}")
    st, m = gw.get("/metrics")
    s.check(st == 200 and "hifadhi_gateway_ussd_requests_total" in m, "metrics", m[:200])

    # ---- the dispatcher: a sendsms nobody listens on, then one that takes requests and never answers
    def complaint(sid):
        for text in ("", "4", "4*2", "4*2*Sijapokea", "4*2*Sijapokea*1"):
            k, t = gw.ussd(sid, PHONE, text)
        return k

    s.check(complaint("d1") == "END" and complaint("d2") == "END", "two more complaints, each with its SMS", "")
    queued = sql("SELECT id FROM outbox WHERE status = 'queued' ORDER BY id").split()
    s.check(len(queued) >= 2, "their reference SMS wait in core's outbox", str(queued))
    pw = s.var / "sendsms.password"
    pw.write_text("not-used\n")
    base = {"kannel.user": "hifadhi", "kannel.password_file": str(pw), "dispatch.senders": "1",
            "kannel.timeout_ms": "1000"}
    gw_r = Gateway(s, core, name="gateway-refused",
                   overrides=dict(base, **{"kannel.sendsms_url": f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms"}))
    s.check(wait_for(lambda: metric(gw_r, "sms_retries_total") >= 2, timeout=20) and
            metric(gw_r, "sms_sent_total") == 0 and metric(gw_r, "sms_in_doubt_total") == 0,
            "sendsms unreachable: the dispatcher retries, sends nothing, has nothing in doubt", "")
    gw_r.stop()
    statuses = sql("SELECT status FROM outbox WHERE id IN (%s)" % ",".join(queued)).split()
    s.check(statuses == ["queued"] * len(queued), "and gives the messages back to core: queued again, not sent",
            str(statuses))

    for close in (False, True):
        mute = MuteSendsms(close=close)
        gw_m = Gateway(s, core, name=f"gateway-mute-{int(close)}",
                       overrides=dict(base, **{"kannel.sendsms_url": f"http://127.0.0.1:{mute.port}/cgi-bin/sendsms"}))
        done = wait_for(lambda: sql("SELECT COUNT(*) FROM outbox WHERE id IN (%s) AND status = 'sent'" %
                                    ",".join(queued)).strip() == str(len(queued)), timeout=30)
        what = "closes the connection without an answer" if close else "never answers"
        s.check(done and sorted(mute.refs) == sorted(queued) and metric(gw_m, "sms_in_doubt_total") == len(queued)
                and metric(gw_m, "sms_retries_total") == 0,
                f"sendsms {what}: each message is in doubt, reported sent, and was sent once (never again)",
                f"done={done} refs={mute.refs} queued={queued}")
        gw_m.stop()
        mute.stop()
        if not close:  # the same messages once more for the second kind of silence
            sql("UPDATE outbox SET status = 'queued' WHERE id IN (%s)" % ",".join(queued))
