"""test_notices.py - SMS payment notices and the outbox as the gateway drains it: preview per language (with the
Swahili fallback), filters, sending in the payee's language with the phone sealed, the 24-hour re-send guard,
scheduled sends, claiming with the phone and the rendered text, delivery reports that only move forwards, the
notice list with delivery counts, case SMS through the same outbox, roles, and template files that do not
validate.

The payroll code is written in parallel, so the cycle and its payments are inserted with SQL, pointing at
households, members and enrolments made through the API.
"""
import re
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone

from harness import Suite, Core, CoreError, Mariadb, ROOT, record_pii, error_message as msg, error_fields as fields

AHERO = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}
CHEMELIL = {"region": "Kisumu", "district": "Muhoroni", "village": "Chemelil"}
CYCLE = "OPCT-2026-12"


def head(given, lang, phone=None, dob="1950-02-01"):
    m = {"given_name": given, "family_name": "Otieno", "sex": "female", "date_of_birth": dob,
         "relationship": "head", "language": lang}
    if phone:
        m["phone"] = phone
    return m


def dump_text(db):
    """mariadb-dump as raw bytes (sealed columns are binary), decoded so that stored text stays searchable."""
    r = subprocess.run(["mariadb-dump", "--no-defaults", f"--socket={Mariadb.socket()}", "-uroot",
                        "--single-transaction", db], capture_output=True, check=True, timeout=300)
    return r.stdout.decode("utf-8", errors="replace")


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


with Suite() as s:
    core = Core(s)
    sql = lambda q: Mariadb.sql(q, db=core.db)
    gw = {"X-Hifadhi-Service-Key": core.gateway_secret()}

    # ---- fixtures: a programme, five payees (four languages, one without a phone), an approved cycle
    st, _, _ = core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer",
                                                "target": "individual", "currency": "KES"}, as_="admin")
    s.check(st == 201, "a programme to pay", f"{st}")
    people = [  # name, language, phone, village, pay point, amount (minor units)
        ("Akinyi", "sw", "+254711000101", AHERO, "PP-AHERO", 400000),
        ("Grace", "en", "+254711000102", AHERO, "PP-AHERO", 400000),
        ("Hodan", "so", "+254711000103", CHEMELIL, "PP-CHEMELIL", 400000),
        ("Adhiambo", "luo", "+254711000104", CHEMELIL, "PP-CHEMELIL", 250050),
        ("Wanjiku", "kik", None, AHERO, "PP-AHERO", 400000),
    ]
    record_pii([p[2] for p in people if p[2]])
    payees = []
    for given, lang, phone, village, pp, amount in people:
        st, _, hh = core.post("/api/v1/households", {"location": village, "members": [head(given, lang, phone)]})
        ben = hh["members"][0]["ben_no"] if st == 201 else None
        st2, _, _ = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": ben, "status": "enrolled"})
        s.check(st == 201 and st2 == 201, f"payee {given} ({lang}) registered and enrolled", f"{st} {st2}")
        payees.append({"ben": ben, "lang": lang, "phone": phone, "pp": pp, "amount": amount})

    sql(f"""
INSERT INTO payment_cycles (id, code, programme_id, programme_code, currency, rule, cutoff_date, pay_from, pay_until,
  channel, pay_points, status, payroll_count, payroll_total, approved_at, approved_by, created_at, created_by,
  updated_at, updated_by)
SELECT 9001, '{CYCLE}', id, code, 'KES', '{{}}', '2026-11-30', '2026-12-01', '2026-12-20', 'kiosk', '{{}}', 'approved',
  5, 1850050, UTC_TIMESTAMP(3), 't_payment_officer', UTC_TIMESTAMP(3), 't_payment_officer', UTC_TIMESTAMP(3),
  't_payment_officer' FROM programmes WHERE code = 'OPCT';
INSERT INTO payment_cycles (id, code, programme_id, programme_code, currency, rule, cutoff_date, pay_from, pay_until,
  channel, status, created_at, created_by, updated_at, updated_by)
SELECT 9002, 'OPCT-2027-01', id, code, 'KES', '{{}}', '2026-12-31', '2027-01-05', '2027-01-25', 'kiosk', 'generated',
  UTC_TIMESTAMP(3), 't_payment_officer', UTC_TIMESTAMP(3), 't_payment_officer' FROM programmes WHERE code = 'OPCT';
""")
    for n, p in enumerate(payees):
        p["payment"] = 91000 + n
        sql(f"""
INSERT INTO payments (id, cycle_id, enrolment_id, individual_id, household_id, location_id, amount, currency, channel,
  pay_point, status, created_at, updated_at)
SELECT {p['payment']}, 9001, e.id, i.id, i.household_id, h.location_id, {p['amount']}, 'KES', 'kiosk', '{p['pp']}',
  'available', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)
FROM individuals i JOIN households h ON h.id = i.household_id JOIN enrolments e ON e.individual_id = i.id
WHERE i.ben_no = '{p['ben']}';
INSERT INTO payments (id, cycle_id, enrolment_id, individual_id, household_id, location_id, amount, currency, channel,
  pay_point, status, created_at, updated_at)
SELECT {p['payment'] + 100}, 9002, e.id, i.id, i.household_id, h.location_id, {p['amount']}, 'KES', 'kiosk',
  '{p['pp']}', 'scheduled', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)
FROM individuals i JOIN households h ON h.id = i.household_id JOIN enrolments e ON e.individual_id = i.id
WHERE i.ben_no = '{p['ben']}';""")
    s.check(sql("SELECT COUNT(*) FROM payments WHERE cycle_id = 9001").strip() == "5", "the cycle has five payments")
    # The outbox is empty apart from what this suite does.
    sql("DELETE FROM outbox")

    def preview(body, as_="payment_officer", code=CYCLE):
        return core.post(f"/api/v1/cycles/{code}/notices/preview", body, as_=as_)

    # ---- preview: who gets which text, per language
    st, _, pv = preview({"template": "payment_ready"})
    s.check(st == 200 and pv["recipients"] == 4 and pv["without_phone"] == 1,
            "preview counts the payees with a phone, and the one without", f"{st} {pv}")
    by = pv.get("by_language", {}) if st == 200 else {}
    s.check(set(by) == {"sw", "en", "so", "luo"} and all(v["count"] == 1 for v in by.values()),
            "preview counts each language once", str(by))
    sw, en, so, luo = (by.get(k, {}) for k in ("sw", "en", "so", "luo"))
    s.check(sw.get("text_language") == "sw" and "malipo yako ya KES 4,000.00" in sw.get("text", "") and
            "PP-AHERO" in sw.get("text", "") and "2026-12-01" in sw.get("text", ""),
            "a Swahili payee gets the Swahili text with this cycle's amount, pay point and date", str(sw))
    s.check(en.get("text", "").startswith("Hifadhi: your payment of KES 4,000.00 is ready at PP-AHERO from 2026-12-01"),
            "an English payee gets the English text", str(en))
    s.check(so.get("text_language") == "so" and "lacagtaada KES 4,000.00" in so.get("text", "") and
            "PP-CHEMELIL" in so.get("text", ""), "a Somali payee gets the Somali text", str(so))
    s.check(luo.get("text_language") == "sw" and "malipo yako ya KES 2,500.50" in luo.get("text", "") and
            "PP-CHEMELIL" in luo.get("text", ""),
            "Dholuo has no template file: the payee gets Swahili, with their own amount (cents kept)", str(luo))
    s.check(all(v.get("coding") == "gsm7" and v.get("length", 999) <= 160 for v in by.values()),
            "every rendered text is one GSM-7 SMS", str(by))

    st, _, pv = preview({"template": "payment_ready", "pay_point": "PP-CHEMELIL"})
    s.check(st == 200 and pv["recipients"] == 2 and set(pv["by_language"]) == {"so", "luo"},
            "filter by pay point", f"{st} {pv}")
    st, _, pv = preview({"template": "payment_ready", "location": "Kisumu/Nyando"})
    s.check(st == 200 and pv["recipients"] == 2 and pv["without_phone"] == 1 and set(pv["by_language"]) == {"sw", "en"},
            "filter by location (a district takes its villages)", f"{st} {pv}")
    st, _, pv = preview({"template": "payment_ready", "location": "Kisumu/Nyan"})
    s.check(st == 200 and pv["recipients"] == 0 and pv["without_phone"] == 0,
            "a location matches whole names, not a prefix of one", f"{st} {pv}")
    st, _, pv = preview({"template": "payment_ready", "location": "Kisumu/Nyand%"})
    s.check(st == 200 and pv["recipients"] == 0, "wildcards in a location are taken literally", f"{st} {pv}")
    st, _, pv = preview({"template": "payment_ready", "status": "collected"})
    s.check(st == 200 and pv["recipients"] == 0, "filter by payment status", f"{st} {pv}")

    st, _, b = preview({"template": "staff_payment_alert"})
    s.check(st == 400 and "template" in fields(b), "only the payment templates can be sent to payees", f"{st} {b}")
    st, _, b = preview({"template": "payment_ready", "colour": "red", "status": "lost"})
    s.check(st == 400 and {"colour", "status"} <= fields(b), "unknown fields and statuses are named", f"{st} {b}")
    st, _, b = preview({"template": "payment_ready"}, code="NO-SUCH-CYCLE")
    s.check(st == 404, "an unknown cycle is 404", f"{st} {b}")
    st, _, b = preview({"template": "payment_ready"}, code="OPCT-2027-01")
    s.check(st == 409 and "generated" in msg(b), "a cycle not yet approved has no notices", f"{st} {b}")

    # ---- roles
    st, _, _ = preview({"template": "payment_ready"}, as_="case_worker")
    s.check(st == 403, "a case worker may not preview notices", f"{st}")
    st, _, _ = core.post(f"/api/v1/cycles/{CYCLE}/notices", {"template": "payment_ready"}, as_="auditor")
    s.check(st == 403, "an auditor may not send notices", f"{st}")
    st, _, _ = core.get(f"/api/v1/cycles/{CYCLE}/notices", as_="registrar")
    s.check(st == 403, "a registrar may not list notices", f"{st}")
    st, _, _ = core.post("/api/v1/outbox/claim?limit=5", {}, as_="payment_officer")
    s.check(st == 403, "staff may not claim the outbox (the gateway's credential only)", f"{st}")
    st, _, _ = core.post(f"/api/v1/cycles/{CYCLE}/notices", {"template": "payment_ready"}, headers=gw, as_=None)
    s.check(st == 403, "the gateway may not send notices", f"{st}")
    s.check(sql("SELECT COUNT(*) FROM outbox").strip() == "0", "refused requests queued nothing")

    # ---- send now
    def send(body, as_="payment_officer", code=CYCLE):
        return core.post(f"/api/v1/cycles/{code}/notices", body, as_=as_)

    t0 = datetime.now(timezone.utc)
    st, _, n1 = send({"template": "payment_ready"})
    s.check(st == 201 and n1["recipients"] == 4 and n1["skipped_recent"] == 0 and n1["id"] and
            abs((datetime.strptime(n1["send_after"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) - t0)
                .total_seconds()) < 5,
            "send: 201 with the notice id, four recipients, due now", f"{st} {n1}")
    rows = sql(f"SELECT o.language, o.template, o.audience, o.status, o.params, p.id FROM outbox o JOIN payments p"
               f" ON p.id = o.payment_id WHERE o.notice_id = {n1['id']} ORDER BY p.id").split("\n")[:-1]
    langs = [r.split("\t")[0] for r in rows]
    s.check(langs == ["sw", "en", "so", "luo"] and all("\tpayment_ready\tbeneficiary\tqueued\t" in r for r in rows),
            "one outbox row per payee with a phone, in the payee's own language", str(rows))
    params = [r.split("\t")[4] for r in rows]
    s.check(params and all(re.fullmatch(r'\{"amount":"[0-9,.]+","currency":"KES","date":"2026-12-01",'
                                        r'"pay_point":"PP-[A-Z]+"\}', p) for p in params),
            "params hold the amount, currency, date and pay point only", str(params))
    dump = dump_text(core.db)
    phones = [p["phone"] for p in payees if p["phone"]]
    s.check(not any(ph in dump or ph[4:] in dump or ph.encode().hex().upper() in sql(
                    "SELECT HEX(phone_enc) FROM outbox") for ph in phones),
            "no clear phone number anywhere in the database dump (the outbox rows hold it sealed)", "")
    sealed = sql("SELECT DISTINCT HEX(phone_enc) FROM outbox").split("\n")[:-1]
    s.check(len(sealed) == 4, "each outbox row has its own sealing", str(len(sealed)))
    aud = [e for e in core.audit(action="notice.send") if e["outcome"] == "ok"]
    s.check(len(aud) == 1 and aud[0]["record"] == CYCLE and aud[0]["detail"].get("template") == "payment_ready" and
            aud[0]["detail"].get("recipients") == 4 and aud[0]["detail"].get("notice") == n1["id"],
            "the send is audited once, on the cycle, naming the notice", str(aud))

    # ---- the 24-hour guard
    st, _, n2 = send({"template": "payment_ready"})
    s.check(st == 201 and n2["recipients"] == 0 and n2["skipped_recent"] == 4,
            "the same text to the same payees within 24 h is skipped and counted", f"{st} {n2}")
    st, _, n3 = send({"template": "payment_reminder", "pay_point": "PP-CHEMELIL"})
    s.check(st == 201 and n3["recipients"] == 2 and n3["skipped_recent"] == 0,
            "another template is not a repeat", f"{st} {n3}")

    # ---- send_at
    now = datetime.now(timezone.utc)
    for bad, why in ((iso(now - timedelta(minutes=1)), "in the past"), (iso(now + timedelta(days=31)), "31 days ahead"),
                     ("tomorrow", "not a time")):
        st, _, b = send({"template": "payment_sent", "send_at": bad})
        s.check(st == 400 and "send_at" in fields(b), f"send_at {why} is refused", f"{st} {b}")
    st, _, b = send({"template": "payment_ready"}, code="OPCT-2027-01")
    s.check(st == 409, "a cycle not approved cannot be sent to", f"{st} {b}")

    # ---- the gateway claims what is due
    def claim(limit=50):
        st, _, b = core.post(f"/api/v1/outbox/claim?limit={limit}", {}, headers=gw, as_=None)
        return st, (b.get("items", []) if st == 200 else b)

    st, items = claim()
    s.check(st == 200 and len(items) == 6, "the gateway claims the six due messages", f"{st} {items}")
    got = {(i["template"], i["phone"]): i for i in items} if st == 200 else {}
    mine = got.get(("payment_ready", payees[0]["phone"]), {})
    s.check(mine.get("language") == "sw" and mine.get("text", "").startswith("Hifadhi: malipo yako ya KES 4,000.00"),
            "a claim gives the opened phone and the text rendered in the payee's language", str(mine))
    luo = got.get(("payment_ready", payees[3]["phone"]), {})
    s.check(luo.get("language") == "luo" and luo.get("text_language") == "sw" and "KES 2,500.50" in luo.get("text", ""),
            "Dholuo falls back to Swahili in the claim too", str(luo))
    rem = got.get(("payment_reminder", payees[2]["phone"]), {})
    s.check("2026-12-20" in rem.get("text", "") and rem.get("params", {}).get("until") == "2026-12-20",
            "the reminder carries the last day of collection", str(rem))
    st, again = claim()
    s.check(st == 200 and again == [], "claimed messages are not handed out twice", f"{st} {again}")
    s.check(sql("SELECT status, attempts, COUNT(*) FROM outbox GROUP BY status, attempts").strip() == "sending\t1\t6",
            "claimed rows are 'sending', first attempt", sql("SELECT status, attempts, COUNT(*) FROM outbox GROUP BY 1, 2"))
    st, b = claim(0)
    s.check(st == 400, "a limit of 0 is refused", f"{st} {b}")

    # ---- a scheduled notice is held until its time
    at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=4)
    st, _, n4 = send({"template": "payment_sent", "pay_point": "PP-AHERO", "send_at": iso(at)})
    s.check(st == 201 and n4["recipients"] == 2 and n4["send_after"] == iso(at) and n4.get("scheduled"),
            "a notice scheduled a few seconds ahead", f"{st} {n4}")
    st, early = claim()
    s.check(st == 200 and early == [] and datetime.now(timezone.utc) < at,
            "nothing of it is claimable before its time", f"{st} {early}")
    late, deadline = [], time.monotonic() + 20
    while not late and time.monotonic() < deadline:
        time.sleep(0.25)
        st, late = claim()
    s.check(len(late) == 2 and all(i["template"] == "payment_sent" for i in late) and
            datetime.now(timezone.utc) >= at, "it is claimable once its time has come", str(late))

    # ---- delivery reports move forwards only
    def report(oid, status, **extra):
        return core.post(f"/api/v1/outbox/{oid}/status", dict(status=status, **extra), headers=gw, as_=None)

    ids = {i["phone"]: i["id"] for i in items if i["template"] == "payment_ready"}
    a, b_, c_ = ids.get(payees[0]["phone"]), ids.get(payees[1]["phone"]), ids.get(payees[2]["phone"])
    st, _, r = report(a, "sent")
    s.check(st == 200 and r["status"] == "sent" and r["changed"], "sending -> sent", f"{st} {r}")
    st, _, r = report(a, "sent", detail="retry of the same report")
    s.check(st == 200 and r["status"] == "sent" and not r["changed"], "the same report again changes nothing",
            f"{st} {r}")
    st, _, r = report(a, "delivered")
    s.check(st == 200 and r["status"] == "delivered", "sent -> delivered", f"{st} {r}")
    s.check(sql(f"SELECT delivered_at IS NOT NULL FROM outbox WHERE id = {a}").strip() == "1",
            "delivered sets the delivery time")
    st, _, r = report(a, "sent")
    s.check(st == 409 and "delivered" in msg(r), "delivered -> sent is refused (backwards)", f"{st} {r}")
    st, _, r = report(a, "failed")
    s.check(st == 409, "delivered -> failed is refused", f"{st} {r}")
    st, _, r = report(b_, "failed", detail="absent subscriber")
    s.check(st == 200 and r["status"] == "failed", "sending -> failed", f"{st} {r}")
    st, _, r = report(b_, "delivered")
    s.check(st == 409, "a failed message does not come back as delivered", f"{st} {r}")
    st, _, r = report(c_, "delivered")
    s.check(st == 200, "sending -> delivered (the delivery report came before the send report)", f"{st} {r}")
    st, _, r = report(c_, "bounced")
    s.check(st == 400 and "status" in fields(r), "an unknown status is refused", f"{st} {r}")
    st, _, r = report("123", "sent")
    s.check(st == 404, "an unknown message is 404", f"{st} {r}")
    st, _, r = core.post(f"/api/v1/outbox/{a}/status", {"status": "sent"}, as_="payment_officer")
    s.check(st == 403, "staff may not report delivery", f"{st}")

    # ---- the notice list shows delivery
    st, _, lst = core.get(f"/api/v1/cycles/{CYCLE}/notices", as_="payment_officer")
    first = [n for n in lst.get("items", []) if n["id"] == n1["id"]] if st == 200 else []
    s.check(st == 200 and len(lst["items"]) == 4 and first and first[0]["recipients"] == 4 and
            first[0]["delivery"] == {"queued": 0, "sending": 1, "sent": 0, "delivered": 2, "failed": 1},
            "the notice list counts each notice's messages by delivery status", f"{st} {lst}")
    st, _, lst2 = core.get(f"/api/v1/cycles/{CYCLE}/notices", as_="auditor")
    s.check(st == 200 and lst2["items"] == lst["items"], "an auditor reads the same list", f"{st}")
    st, _, b = core.get("/api/v1/cycles/NO-SUCH/notices", as_="auditor")
    s.check(st == 404, "the list of an unknown cycle is 404", f"{st}")

    # ---- a gateway that crashed: its messages come back after 10 minutes
    stuck = ids.get(payees[3]["phone"])
    sql(f"UPDATE outbox SET updated_at = UTC_TIMESTAMP(3) - INTERVAL 11 MINUTE WHERE id = {stuck}")
    st, back = claim()
    s.check(st == 200 and [i["id"] for i in back] == [stuck] and back[0]["attempt"] == 2,
            "a message stuck in 'sending' for over 10 minutes is claimable again", f"{st} {back}")
    sql(f"UPDATE outbox SET updated_at = UTC_TIMESTAMP(3) - INTERVAL 11 MINUTE, attempts = 5 WHERE id = {stuck}")
    st, back = claim()
    s.check(st == 200 and back == [] and sql(f"SELECT status FROM outbox WHERE id = {stuck}").strip() == "failed",
            "after five claims without a report it is failed, not handed out forever", f"{st} {back}")

    # ---- case SMS go through the same outbox
    st, _, case = core.post("/api/v1/cases", {"type": "grievance", "category": "payment_not_received",
                                              "ben_no": payees[3]["ben"], "summary": "Not paid at Chemelil."},
                            as_="support")
    st2, items = claim()
    lodged = [i for i in items if i["template"] == "grievance_lodged"] if st2 == 200 else []
    s.check(st == 201 and len(lodged) == 1 and lodged[0]["phone"] == payees[3]["phone"] and
            case["ref"] in lodged[0]["text"] and lodged[0]["text_language"] == "sw",
            "the gateway claims a case SMS too, rendered with its reference", f"{st} {st2} {items}")

    # ---- no phone number in any log
    logs = core.log_text()
    s.check(not any(p[4:] in logs for p in phones), "no phone number in the service's logs", "")

    # ---- template files that do not validate stop config-check and serve, with file:line
    def bad_menus(name, edit):
        d = s.var / f"menus-{name}"
        shutil.copytree(ROOT / "menus", d, dirs_exist_ok=True)
        edit(d / "sms")
        return d

    def line_of(path, needle):
        return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(needle))

    def drop_line(f, prefix):
        f.write_text("".join(l for l in f.read_text().splitlines(True) if not l.startswith(prefix)))

    d = bad_menus("missing", lambda sms: drop_line(sms / "sw.ini", "payment_sent ="))
    r = core.run_cli(["config-check"], overrides={"menus.dir": str(d)})
    s.check(r.returncode == 2 and re.search(r"sw\.ini:\d+: template 'payment_sent' is missing", r.stderr),
            "a language file without one of en.ini's templates is refused with file:line", r.stderr[-300:])

    def too_long(sms):
        f = sms / "en.ini"
        f.write_text(f.read_text().replace("Never share your PIN with anyone.",
                                           "Never share your PIN with anyone, not even with staff of the programme or the pay point.", 1))
    d = bad_menus("long", too_long)
    n = line_of(d / "sms" / "en.ini", "payment_ready =")
    r = core.run_cli(["config-check"], overrides={"menus.dir": str(d)})
    s.check(r.returncode == 2 and f"en.ini:{n}: 'payment_ready' is" in r.stderr and "one SMS holds 160" in r.stderr,
            "a text longer than one SMS with the longest values is refused with file:line", r.stderr[-300:])

    def ucs2(sms):
        f = sms / "so.ini"
        f.write_text(f.read_text().replace("Hifadhi: lacagtaada {currency}", "Hifadhi: lacagtaada \u201c{currency}\u201d", 1))
    d = bad_menus("ucs2", ucs2)
    n = line_of(d / "sms" / "so.ini", "payment_ready =")
    r = core.run_cli(["config-check"], overrides={"menus.dir": str(d)})
    s.check(r.returncode == 2 and f"so.ini:{n}:" in r.stderr and "UCS-2" in r.stderr and "U+201C" in r.stderr,
            "a curly quote forces UCS-2 (70 characters): named with file:line", r.stderr[-300:])

    def unknown_placeholder(sms):
        f = sms / "so.ini"
        f.write_text(f.read_text().replace("feedback_received = Hifadhi:", "feedback_received = Hifadhi {name}:", 1))
    d = bad_menus("placeholder", unknown_placeholder)
    n = line_of(d / "sms" / "so.ini", "feedback_received =")
    r = core.run_cli(["config-check"], overrides={"menus.dir": str(d)})
    s.check(r.returncode == 2 and f"so.ini:{n}: 'feedback_received': unknown placeholder {{name}}" in r.stderr,
            "a placeholder a template is not given is refused with file:line", r.stderr[-300:])

    d = bad_menus("serve", lambda sms: drop_line(sms / "sw.ini", "payment_sent ="))
    bad = Core(s, name="badmenus", db=core.db, fresh_db=False, overrides={"menus.dir": str(d)}, start=False)
    try:
        bad.start()
        started = True
    except CoreError:
        started = False
    s.check(not started and "sw.ini:" in bad.log.read_text() and "payment_sent" in bad.log.read_text(),
            "serve does not start with a broken template file, and its log says file:line", "")
    r = core.run_cli(["config-check"])
    s.check(r.returncode == 0, "the shipped templates pass config-check", r.stderr[-300:])
