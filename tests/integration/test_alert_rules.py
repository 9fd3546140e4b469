"""test_alert_rules.py - the whole-picture payment alert rules (`hifadhi-core alerts scan [--at T]`): each rule
firing on what it is about and staying quiet on what it is not (other statuses, closed cycles, other cycles,
cancelled payments, times not yet reached), a rerun raising nothing new, the thresholds from the config, the
officers' SMS at most once per rule and cycle an hour, and the alerts read, acknowledged and resolved through
the API.

The payroll code is written in parallel, so cycles and payments are inserted with SQL, pointing at households,
members and enrolments made through the API. serve is stopped while the scans run, so that its own
housekeeping scan (every 30 s, at the real time) cannot raise an alert before the scan under test does.
"""
import json
from datetime import datetime, timedelta, timezone

from harness import Suite, Core, Mariadb, record_pii, error_message as msg

LOC = {"region": "Garissa", "district": "Dadaab", "village": "Hagadera"}
C1, C2, C3 = "OPCT-2026-12", "OPCT-2027-01", "OPCT-2026-11"


def luhn(digits7):
    total = 0
    for i, ch in enumerate(reversed(digits7)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits7 + str((10 - total % 10) % 10)


with Suite() as s:
    core = Core(s)
    sql = lambda q: Mariadb.sql(q, db=core.db)

    # ---- people (through the API)
    st, _, _ = core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer",
                                                "target": "individual", "currency": "KES"}, as_="admin")
    shared = "+254722000201"
    phones = {"A": shared, "B": shared, "C": "+254722000203", "D": "+254722000204", "E": "+254722000205",
              "F": "+254722000206", "G": "+254722000207", "H": None, "I": "+254722000209",
              "J": "+254722000209", "K": "+254722000203", "L": "+254722000212", "M": "+254722000213"}
    nid_g = luhn("3141592")
    record_pii([p for p in phones.values() if p] + [nid_g])
    ben, enr = {}, {}
    for k, phone in phones.items():
        m = {"given_name": "Fadumo" + k, "family_name": "Hassan", "sex": "female", "date_of_birth": "1948-03-01",
             "relationship": "head", "language": "so"}
        if phone:
            m["phone"] = phone
        if k == "G":
            m["national_id"] = nid_g
        st, _, hh = core.post("/api/v1/households", {"location": LOC, "members": [m]})
        ben[k] = hh["members"][0]["ben_no"] if st == 201 else None
        st2, _, e = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": ben[k]})
        enr[k] = e.get("id") if st2 == 201 else None
        if st != 201 or st2 != 201:
            s.check(False, f"payee {k} registered and enrolled", f"{st} {st2} {hh} {e}")
    s.check(all(ben.values()) and all(enr.values()), "thirteen payees registered and enrolled", str(ben))
    # D dies after the payroll was approved: the registry records it through the API.
    st, _, _ = core.patch(f"/api/v1/enrolments/{enr['D']}", {"status": "enrolled", "reason": "verified", "version": 1})
    st2, _, _ = core.patch(f"/api/v1/enrolments/{enr['D']}", {"status": "deceased", "reason": "civil registry",
                                                               "version": 2})
    s.check(st == 200 and st2 == 200, "a payee's enrolment is marked deceased", f"{st} {st2}")
    # H was registered twice under another record: same national ID (the registry would refuse it now).
    sql(f"UPDATE individuals h JOIN individuals g ON g.ben_no = '{ben['G']}' SET h.nid_bidx = g.nid_bidx"
        f" WHERE h.ben_no = '{ben['H']}'")
    sql(f"UPDATE enrolments e JOIN individuals i ON i.id = e.individual_id SET e.status = 'suspended'"
        f" WHERE i.ben_no = '{ben['F']}'")
    # A payment officer with a phone gets the alert SMS, in Swahili.
    officer = core.staff("payment_officer")
    st, _, _ = core.patch(f"/api/v1/users/{officer.username}", {"phone": "+254733000300", "language": "sw"},
                          as_="admin")
    record_pii(["+254733000300"])
    s.check(st == 200, "the payment officer has a phone for alert SMS", f"{st}")

    # ---- cycles and payments (SQL), with serve stopped
    core.stop()
    sql("""
INSERT INTO payment_cycles (id, code, programme_id, programme_code, currency, rule, cutoff_date, pay_from, pay_until,
  channel, status, created_at, created_by, updated_at, updated_by)
SELECT x.id, x.code, p.id, p.code, 'KES', '{}', '2026-11-01', x.pay_from, x.pay_from + INTERVAL 30 DAY, 'kiosk',
  x.status, UTC_TIMESTAMP(3), 'seed', UTC_TIMESTAMP(3), 'seed'
FROM programmes p JOIN (
  SELECT 9101 AS id, 'OPCT-2026-12' AS code, UTC_DATE() - INTERVAL 3 DAY AS pay_from, 'approved' AS status
  UNION ALL SELECT 9102, 'OPCT-2027-01', UTC_DATE() - INTERVAL 1 DAY, 'approved'
  UNION ALL SELECT 9103, 'OPCT-2026-11', UTC_DATE() - INTERVAL 40 DAY, 'closed') x
WHERE p.code = 'OPCT';""")
    rows = [  # payment id, cycle, payee, status, minutes since sent (None = not sent)
        (92001, 9101, "A", "pending", 180), (92002, 9101, "B", "pending", 30), (92003, 9101, "C", "available", None),
        (92004, 9101, "D", "approved", None), (92005, 9101, "E", "approved", None), (92006, 9101, "F", "paid", 300),
        (92007, 9101, "G", "approved", None), (92008, 9101, "H", "approved", None), (92009, 9101, "I", "approved", None),
        (92011, 9101, "K", "cancelled", None), (92012, 9101, "L", "pending", 50),
        (92010, 9102, "J", "approved", None), (92013, 9102, "M", "available", None),
        (92101, 9103, "A", "pending", 300), (92102, 9103, "B", "pending", 300),
    ]
    for pid, cyc, k, status, mins in rows:
        sent = f"UTC_TIMESTAMP(3) - INTERVAL {mins} MINUTE" if mins is not None else "NULL"
        sql(f"""
INSERT INTO payments (id, cycle_id, enrolment_id, individual_id, household_id, location_id, amount, currency, channel,
  provider, pay_point, status, sent_at, created_at, updated_at)
SELECT {pid}, {cyc}, e.id, i.id, i.household_id, h.location_id, 300000, 'KES', 'kiosk', NULL, 'PP-HAGADERA',
  '{status}', {sent}, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)
FROM individuals i JOIN households h ON h.id = i.household_id JOIN enrolments e ON e.individual_id = i.id
WHERE i.ben_no = '{ben[k]}';""")
    s.check(sql("SELECT COUNT(*) FROM payments").strip() == str(len(rows)), "fifteen payments in three cycles")
    sql("DELETE FROM outbox")

    t0 = datetime.now(timezone.utc).replace(microsecond=0)

    def scan(at, overrides=None):
        r = core.run_cli(["alerts", "scan", "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ")], overrides=overrides)
        try:
            return json.loads(r.stdout)["raised"]
        except (ValueError, KeyError):
            return f"exit {r.returncode}: {r.stdout} {r.stderr[-400:]}"

    def alerts(rule):
        out = sql(f"SELECT payment_id, COALESCE(cycle_id, 0), severity, details, dedupe_key FROM payment_alerts"
                  f" WHERE rule = '{rule}' ORDER BY payment_id")
        return [line.split("\t") for line in out.split("\n")[:-1]]

    def paid(rule):
        return [int(a[0]) for a in alerts(rule) if a[0] != "NULL"]

    # ---- the first scan, now
    n = scan(t0)
    s.eq(n, 4, "alerts scan now raises four alerts")
    s.eq(paid("pending_too_long"), [92001],
         "pending_too_long: a payment pending for 3 h fires; 30 and 50 min do not, nor a paid one or a closed cycle's")
    s.check([a[2] for a in alerts("pending_too_long")] == ["warning"], "pending_too_long is a warning")
    s.eq(paid("uncollected"), [], "uncollected: nothing yet (collection opened 3 days ago, the limit is 7)")
    ine = alerts("payee_ineligible")
    s.check(len(ine) == 1 and ine[0][0] == "92004" and ine[0][2] == "critical" and
            json.loads(ine[0][3]) == {"payment": "92004", "payment_status": "approved", "enrolment_status": "deceased"},
            "payee_ineligible: a deceased payee's unpaid payment fires (critical), with the enrolment's status",
            str(ine))
    sp = alerts("shared_phone")
    s.check(len(sp) == 1 and sp[0][1] == "9101" and sp[0][0] == "NULL" and
            json.loads(sp[0][3]) == {"payments": ["92001", "92002"], "count": 2},
            "shared_phone: two payees of one cycle with one phone fire once, listing the payments", str(sp))
    s.check(sp and sp[0][4].startswith("shared_phone:cycle:9101:phone:") and len(sp[0][4].split(":")[-1]) == 32 and
            sp[0][4].split(":")[-1] not in sp[0][3],
            "its subject is the cycle and the phone's blind index, which stays out of the details", str(sp))
    sn = alerts("shared_national_id")
    s.check(len(sn) == 1 and sn[0][2] == "critical" and sn[0][1] == "9101" and
            json.loads(sn[0][3]) == {"payments": ["92007", "92008"], "count": 2} and
            sn[0][4].startswith("shared_national_id:cycle:9101:nid:"),
            "shared_national_id: two payees with one national ID in a cycle fire (critical)", str(sn))
    s.eq(sql("SELECT COUNT(*) FROM payment_alerts WHERE cycle_id IN (9102, 9103)").strip(), "0",
         "nothing fires for the other approved cycle (one payee per phone there) or the closed one")

    # ---- a rerun raises nothing new
    s.eq(scan(t0), 0, "the same scan again raises nothing new")

    # ---- the thresholds come from the config
    n = scan(t0, overrides={"payments.pending_alert_s": "2400", "payments.uncollected_days": "2"})
    s.eq(n, 2, "with pending_alert_s = 2400 and uncollected_days = 2, two more fire now")
    s.eq(paid("pending_too_long"), [92001, 92012], "payments.pending_alert_s: the one pending 50 min fires")
    s.eq(paid("uncollected"), [92003], "payments.uncollected_days: the one available for 3 days fires")

    # ---- later
    s.eq(scan(t0 + timedelta(hours=2)), 1, "two hours later one more fires")
    s.eq(paid("pending_too_long"), [92001, 92002, 92012], "the payment pending 30 min is overdue two hours later")
    s.eq(scan(t0 + timedelta(days=7)), 1, "a week later one more fires")
    unc = alerts("uncollected")
    s.check(paid("uncollected") == [92003, 92013] and unc[-1][2] == "info" and
            json.loads(unc[-1][3]).get("pay_point") == "PP-HAGADERA",
            "uncollected: the other cycle's kiosk payment, 8 days after collection opened (info, with its pay point)",
            str(unc))
    s.eq(scan(t0 + timedelta(days=7)), 0, "and a rerun then raises nothing")
    s.eq(paid("payee_ineligible"), [92004], "payee_ineligible never fires for a paid payment or an eligible payee")

    # ---- SMS to the payment officers: at most one per rule and cycle an hour
    staff = sql("SELECT template, language, params FROM outbox WHERE audience = 'staff' ORDER BY created_at, id")
    staff = [line.split("\t") for line in staff.split("\n")[:-1]]
    per = sorted((json.loads(p)["rule"], json.loads(p).get("cycle")) for _, _, p in staff)
    s.check(all(t == "staff_payment_alert" and lang == "sw" for t, lang, _ in staff) and
            per == sorted([("pending_too_long", C1), ("payee_ineligible", C1), ("shared_phone", C1),
                           ("shared_national_id", C1), ("uncollected", C1), ("uncollected", C2)]),
            "one SMS per rule and cycle (three pending_too_long alerts in C1 within the hour: one SMS)", str(per))

    # ---- the gateway can claim them; the officers read and handle the alerts
    core.start()
    st, _, b = core.post("/api/v1/outbox/claim?limit=50", {}, headers={"X-Hifadhi-Service-Key": core.gateway_secret()},
                         as_=None)
    items = b.get("items", []) if st == 200 else []
    pend = [i for i in items if i["params"].get("rule") == "pending_too_long"]
    s.check(st == 200 and len(items) == 6 and all(i["phone"] == "+254733000300" for i in items) and pend and
            pend[0]["text"] == f"Hifadhi tahadhari: pending_too_long (warning) katika mzunguko {C1}. Tafadhali ikague"
                               " kwenye ukurasa wa tahadhari.",
            "the gateway claims the staff SMS, rendered in the officer's language", f"{st} {items}")

    st, _, lst = core.get("/api/v1/alerts?rule=pending_too_long", as_="payment_officer")
    s.check(st == 200 and sorted(a["payment"] for a in lst["items"]) == ["92001", "92002", "92012"] and
            all(a["cycle"] == C1 and a["status"] == "open" for a in lst["items"]),
            "GET /alerts?rule= lists the rule's alerts with their cycle and payment", f"{st} {lst}")
    st, _, lst2 = core.get("/api/v1/alerts?rule=shared_national_id", as_="auditor")
    s.check(st == 200 and len(lst2["items"]) == 1 and nid_g not in json.dumps(lst2),
            "an auditor reads them too; no national ID in them", f"{st} {lst2}")
    aid = lst["items"][0]["id"] if st == 200 and lst["items"] else "0"
    st, _, b = core.post(f"/api/v1/alerts/{aid}/acknowledge", {"note": "asked the provider"}, as_="auditor")
    s.check(st == 403, "an auditor may not acknowledge", f"{st}")
    st, _, a = core.post(f"/api/v1/alerts/{aid}/acknowledge", {"note": "asked the provider"}, as_="payment_officer")
    s.check(st == 200 and a["status"] == "acknowledged" and a["acknowledged"]["by"] == officer.username,
            "a payment officer acknowledges an alert", f"{st} {a}")
    st, _, b = core.post(f"/api/v1/alerts/{aid}/resolve", {}, as_="payment_officer")
    s.check(st == 400, "resolving needs a resolution", f"{st} {b}")
    st, _, a = core.post(f"/api/v1/alerts/{aid}/resolve", {"resolution": "provider confirmed, paid"},
                         as_="payment_officer")
    s.check(st == 200 and a["status"] == "resolved" and a["resolved"]["resolution"] == "provider confirmed, paid",
            "and resolves it", f"{st} {a}")
    st, _, b = core.post(f"/api/v1/alerts/{aid}/resolve", {"resolution": "again"}, as_="payment_officer")
    s.check(st == 409 and "resolved" in msg(b), "a resolved alert cannot be resolved again", f"{st} {b}")
    core.stop()
    s.eq(scan(t0 + timedelta(days=7)), 0, "a resolved alert is not raised again by the next scan")
    acts = {e["action"] for e in core.audit(entity="payment_alert")} if core.start() else set()
    s.check({"payment_alert.raise", "payment_alert.acknowledge", "payment_alert.resolve"} <= acts,
            "raising, acknowledging and resolving are audited", str(acts))
