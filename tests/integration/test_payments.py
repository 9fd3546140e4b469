"""test_payments.py - payment cycles end to end against the provider simulator (tests/sim/paysim.c):
payroll preview and generation, maker-checker approval against the fund, disbursement through mobile-money
B2C and G2P Connect in every failure mode the simulator has (rejects, failures, timeouts then success, lost
requests, lost callbacks, duplicate and late callbacks, wrong amounts, forged and unknown callbacks), kiosk
collection exactly once, expiry, closing, the beneficiary channels' view and the ledger after each step.
"""
import hashlib
import hmac as hmaclib
import json
import subprocess
import threading
import time
from pathlib import Path

from harness import Suite, Core, Mariadb, PaySim, env, record_pii, error_message as msg, error_fields as fields, wait_for
from kiosk_client import Kiosk, fake_template

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}
LOC2 = {"region": "Kisumu", "district": "Muhoroni", "village": "Chemelil"}


def day(offset):
    """A date offset days from today (UTC): the suite runs whatever the date."""
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + offset * 86400))


def at(offset):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset * 86400))



with Suite() as s:
    sim = PaySim(s)
    core = Core(s, overrides=sim.core_overrides())
    officer_a = core.staff("payment_officer", "pay.achieng")
    officer_b = core.staff("payment_officer", "pay.baraka")

    def ledger_ok(what):
        st, _, b = core.get("/api/v1/ledger/check", as_="auditor")
        s.check(st == 200 and b["ok"], f"the books balance {what}", f"{st} {b.get('problems') if isinstance(b, dict) else b}")
        return b

    def payments(code, status=None):
        items, after = [], None
        while True:
            q = f"/api/v1/cycles/{code}/payments?limit=100" + (f"&status={status}" if status else "") + \
                (f"&after={after}" if after else "")
            st, _, b = core.get(q, as_=officer_a)
            assert st == 200, (st, b)
            items += b["items"]
            after = b.get("next")
            if not after:
                return items

    def statuses(code):
        return sorted(p["status"] for p in payments(code))

    # ---- a registry to pay: 7 older persons in Ahero (one without a phone, one suspended), 2 in Chemelil
    core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer", "target": "individual",
                                     "currency": "KES"}, as_="admin")
    core.post("/api/v1/programmes", {"code": "CT-OVC", "name": "Orphans and Vulnerable Children",
                                     "target": "household", "currency": "KES"}, as_="admin")
    bens, hhs, kids = [], [], []
    NAMES = ["Akinyi", "Baraka", "Chebet", "Dalmas", "Esther", "Faraji", "Gati", "Halima", "Imani"]
    for i in range(9):
        loc = LOC if i < 7 else LOC2
        head = {"given_name": NAMES[i], "family_name": "Otieno", "sex": "male" if i % 2 else "female",
                "date_of_birth": "1940-03-01" if i == 0 else "1955-06-01", "relationship": "head",
                "language": "sw" if i % 2 else "luo"}
        if i != 5:
            head["phone"] = f"+2547112233{i:02d}"
        members = [head, {"given_name": "Mtoto " + NAMES[i], "family_name": "Otieno", "sex": "female",
                          "date_of_birth": "2015-01-01", "relationship": "grandchild", "language": "sw"}]
        st, _, hh = core.post("/api/v1/households", {"location": loc, "members": members})
        assert st == 201, (st, hh)
        bens.append(hh["members"][0]["ben_no"])
        kids.append(hh["members"][1]["ben_no"])
        hhs.append(hh["hh_no"])
        st, _, en = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": bens[-1], "status": "enrolled"})
        assert st == 201, (st, en)
        if i == 6:
            st, _, b = core.request("PATCH", f"/api/v1/enrolments/{en['id']}",
                                    {"status": "suspended", "reason": "under review", "version": en["version"]})
            assert st == 200, (st, b)
        st, _, en2 = core.post("/api/v1/enrolments", {"programme": "CT-OVC", "hh_no": hh["hh_no"], "status": "enrolled"})
        assert st == 201, (st, en2)

    # ---- cycles: bad input is refused with the field named
    good = {"code": "OPCT-2026-12", "programme": "OPCT", "rule": {"kind": "flat", "amount": 400000,
            "top_ups": [{"category": "age_80_plus", "amount": 100000}]}, "cutoff_date": day(0),
            "pay_from": day(30), "pay_until": day(60), "channel": "mobile_money"}
    bad_cases = [
        ({"code": "opct dec"}, "code"),
        ({"programme": "NOPE"}, "programme"),
        ({"rule": {"kind": "flat", "amount": -5}}, "rule.amount"),
        ({"rule": {"kind": "flat", "amount": 12.5}}, "rule.amount"),
        ({"rule": {"kind": "per_member", "amount": 100, "cap": 50}}, "rule.cap"),
        ({"currency": "USD"}, "currency"),
        ({"pay_until": day(29)}, "pay_until"),
        ({"channel": "kiosk"}, "pay_points"),
        ({"provider": "airtel"}, "provider"),
    ]
    for change, field in bad_cases:
        st, _, b = core.post("/api/v1/cycles", dict(good, **change), as_=officer_a)
        s.check(st == 400 and field in fields(b), f"a cycle with a bad {field} is refused, naming it", f"{st} {b}")
    st, _, b = core.post("/api/v1/cycles", good, as_="case_worker")
    s.check(st == 403, "a case worker cannot create payment cycles", f"{st}")
    st, _, cyc = core.post("/api/v1/cycles", good, as_=officer_a)
    s.check(st == 201 and cyc["status"] == "draft" and cyc["provider"] == "mpesa" and cyc["currency"] == "KES",
            "a payment officer creates a mobile-money cycle (the programme's currency, the configured provider)",
            f"{st} {cyc}")
    st, _, b = core.post("/api/v1/cycles", good, as_=officer_a)
    s.check(st == 409, "the same cycle code twice is refused", f"{st} {b}")

    # ---- preview, then generate
    C1 = "OPCT-2026-12"
    st, _, pv = core.post(f"/api/v1/cycles/{C1}/preview", {}, as_=officer_a)
    s.check(st == 200 and pv["count"] == 7 and pv["total"] == 7 * 400000 + 100000 and
            pv["excluded"] == {"no_phone": 1, "suspended": 1} and pv["fund_covers"] is False and
            pv["by_district"]["Kisumu/Nyando"]["count"] == 5 and pv["by_district"]["Kisumu/Muhoroni"]["count"] == 2,
            "the preview counts who is paid, how much, per district, and who is left out and why", f"{st} {pv}")
    s.check(payments(C1) == [], "a preview writes nothing", "")
    st, _, g = core.post(f"/api/v1/cycles/{C1}/payroll", {}, as_=officer_a)
    s.check(st == 200 and g["status"] == "generated" and g["payroll_count"] == 7 and
            g["payroll_total"] == pv["total"] and g["payments"]["scheduled"]["count"] == 7,
            "generating the payroll writes what the preview said", f"{st} {g}")
    st, _, g2 = core.post(f"/api/v1/cycles/{C1}/payroll", {}, as_=officer_a)
    s.check(st == 200 and g2["payroll_count"] == 7 and len(payments(C1)) == 7,
            "generating again replaces the payroll: still one payment per person", f"{st} {g2}")
    older = [p for p in payments(C1) if p["amount"] == 500000]
    s.check(len(older) == 1 and older[0]["ben_no"] == bens[0], "the top-up goes to the person aged 80 or more",
            str(older))

    # ---- maker-checker against the fund
    st, _, b = core.post(f"/api/v1/cycles/{C1}/approve", {}, as_=officer_b)
    s.check(st == 409 and "submitted" in msg(b), "a payroll not yet submitted cannot be approved", f"{st} {b}")
    st, _, sub = core.post(f"/api/v1/cycles/{C1}/submit", {}, as_=officer_a)
    s.check(st == 200 and sub["status"] == "approval_requested" and "warning" in sub,
            "the maker submits; told that the fund does not cover it", f"{st} {sub}")
    st, _, al = core.get("/api/v1/alerts?rule=fund_low", as_=officer_a)
    s.check(st == 200 and len(al["items"]) == 1 and al["items"][0]["cycle"] == C1 and al["items"][0]["status"] == "open",
            "a fund_low alert is raised for the payment officers", f"{st} {al}")
    st, _, b = core.post(f"/api/v1/cycles/{C1}/approve", {}, as_=officer_a)
    s.check(st == 403 and "different" in msg(b), "the maker cannot approve their own payroll", f"{st} {b}")
    st, _, b = core.post(f"/api/v1/cycles/{C1}/approve", {}, as_=officer_b)
    s.check(st == 409 and "fund" in msg(b), "a checker cannot approve what the fund cannot pay", f"{st} {b}")
    s.check(statuses(C1) == ["scheduled"] * 7, "a refused approval changes nothing", str(statuses(C1)))
    for bad, field in (({"programme": "OPCT", "amount": -1, "currency": "KES", "reference": "x"}, "amount"),
                       ({"programme": "OPCT", "amount": 10, "currency": "UGX", "reference": "x"}, "currency"),
                       ({"programme": "OPCT", "amount": "10", "currency": "KES", "reference": "x"}, "amount")):
        st, _, b = core.post("/api/v1/ledger/funding", bad, as_=officer_a)
        s.check(st == 400 and field in fields(b), f"funding with a bad {field} is refused", f"{st} {b}")
    fund = {"programme": "OPCT", "amount": 10_000_000, "currency": "KES", "reference": "TREASURY-2026-117"}
    st, _, f1 = core.post("/api/v1/ledger/funding", fund, as_=officer_a)
    st2, _, f2 = core.post("/api/v1/ledger/funding", fund, as_=officer_a)
    s.check(st == 201 and f1["new"] and st2 == 200 and not f2["new"] and f2["fund_balance"] == 10_000_000,
            "funding is recorded once per reference, however often it is sent", f"{st} {f1} {st2} {f2}")
    st, _, b = core.post("/api/v1/ledger/funding", dict(fund, amount=1_000_000), as_=officer_a)
    s.check(st == 409 and "10000000" in msg(b), "the same reference with another amount is refused, naming the first",
            f"{st} {b}")

    # The simulator's switches are set per payment before approval (approval starts disbursement).
    pays = {p["ben_no"]: p for p in payments(C1)}
    ref = {i: "HF" + pays[bens[i]]["id"] for i in range(9) if bens[i] in pays}
    sim.config(default={"callback_delay_ms": 5}, by_ref={
        ref[0]: {"duplicate_callbacks": 3},
        ref[1]: {"reject": "The balance is insufficient for the transaction"},
        ref[2]: {"fail": "The initiator information is invalid."},
        ref[3]: {"hang_ms": 3000, "hang_process": True, "hang_times": 1},
        ref[4]: {"drop_callback": True},
        ref[7]: {"amount_delta": -5000},
        ref[8]: {"hang_ms": 3000, "hang_process": False, "hang_times": 1},
    })
    st, _, ap = core.post(f"/api/v1/cycles/{C1}/approve", {}, as_=officer_b)
    s.check(st == 200 and ap["status"] == "approved" and ap["approved"]["by"] == "pay.baraka",
            "a second payment officer approves", f"{st} {ap}")
    ledger_ok("after approval (fund -> clearing)")

    # ---- disbursement: wait until nothing is in flight
    def settled():
        st_ = statuses(C1)
        return st_ if not any(x in ("approved", "sending", "pending") for x in st_) else None
    final = wait_for(settled, timeout=60)
    by = {b: p for b, p in ((p["ben_no"], p) for p in payments(C1))}
    s.check(final is not None, "every payment reaches a final state", str(statuses(C1)))
    s.check(by[bens[0]]["status"] == "paid" and sim.stats(ref[0])["by_ref"]["callbacks_sent"] == 3,
            "a callback delivered 3 times pays once", f"{by[bens[0]]} {sim.stats(ref[0])}")
    s.check(by[bens[1]]["status"] == "failed" and "insufficient" in by[bens[1]]["failure_reason"],
            "a synchronous reject fails the payment with the provider's reason", str(by[bens[1]]))
    s.check(by[bens[2]]["status"] == "failed" and "initiator" in by[bens[2]]["failure_reason"],
            "a failure callback fails the payment", str(by[bens[2]]))
    st3 = sim.stats(ref[3])["by_ref"]
    s.check(by[bens[3]]["status"] == "paid" and st3["requests"] == 1,
            "a provider that times out but did take the request: found by a status query, never sent twice",
            f"{by[bens[3]]} {st3}")
    s.check(by[bens[4]]["status"] == "paid", "a lost callback: the status query finds the result", str(by[bens[4]]))
    st8 = sim.stats(ref[8])["by_ref"]
    s.check(by[bens[8]]["status"] == "paid" and st8["requests"] == 2,
            "a request that never arrived: the query says unknown, and only then is it sent again (same id)",
            f"{by[bens[8]]} {st8}")
    s.check(by[bens[7]]["status"] == "paid" and by[bens[7]]["paid_amount"] == 395000,
            "a short payment is recorded as the provider paid it", str(by[bens[7]]))
    st, _, al = core.get("/api/v1/alerts?rule=amount_mismatch", as_=officer_a)
    s.check(st == 200 and any(a["payment"] == pays[bens[7]]["id"] and a["details"]["paid"] == 395000 for a in al["items"]),
            "and raises an amount_mismatch alert", f"{st} {al}")
    books = ledger_ok("after disbursement with duplicates, timeouts and rejects")
    st, _, acc = core.get("/api/v1/ledger/accounts", as_=officer_a)
    bal = {a["code"]: a["balance"] for a in acc["items"]}
    paid_total = sum(p["paid_amount"] for p in payments(C1) if p["status"] == "paid")
    s.check(bal.get("paid:OPCT") == paid_total and bal.get("returned:OPCT") == 800000 and
            bal.get("settlement:mpesa") == 5000,
            "paid, returned and the provider's short payment are where they belong", json.dumps(bal))

    # ---- callbacks from outside: forged, unknown, repeated with another receipt, malformed
    cb_url = f"{core.base_url}/api/v1/providers/b2c/result"
    st, b = sim.inject(protocol="b2c", url=cb_url, reference_id=ref[4], amount=400000, currency="KES",
                       status="SUCC", receipt="FORGED0001", sign=False)
    s.check(b.get("status") == 401, "an unsigned callback is refused (401)", str(b))
    st, b = sim.inject(protocol="b2c", url=cb_url, reference_id="HF999999", amount=400000, currency="KES",
                       status="SUCC", receipt="GHOST00001", sign=True)
    s.check(b.get("status") == 404, "a signed callback for a payment never sent is refused (404)", str(b))
    st, b = sim.inject(protocol="b2c", url=cb_url, reference_id=ref[0], amount=400000, currency="KES", status="SUCC",
                       receipt="SECOND0001", sign=True)
    s.check(b.get("status") == 200, "a second, different success for a paid payment is acknowledged", str(b))
    st, _, al = core.get("/api/v1/alerts", as_=officer_a)
    rules = {a["rule"] for a in al["items"]}
    s.check({"unknown_callback", "paid_twice", "bad_callback"} <= rules,
            "and each raises its alert: unknown_callback, paid_twice, bad_callback", str(sorted(rules)))
    # The provider's queue-timeout notice settles nothing: it only has the payment asked about at once.

    body_t = json.dumps({"Result": {"ResultType": 1, "ResultCode": 1, "ResultDesc": "The request timed out in the"
                                    " queue", "OriginatorConversationID": ref[4]}}).encode()
    ts = str(int(time.time()))
    mac = hmaclib.new(sim.secret.read_bytes().strip(), ts.encode() + b"." + body_t, hashlib.sha256).hexdigest()
    st, _, b = core.request("POST", "/api/v1/providers/b2c/timeout", raw_body=body_t, as_=None,
                            headers={"Content-Type": "application/json", "X-Hifadhi-Signature": f"t={ts},v1={mac}"})
    s.check(st == 200 and b["outcome"] == "nothing in flight" and
            core.get(f"/api/v1/payments/{pays[bens[4]]['id']}", as_=officer_a)[2]["status"] == "paid",
            "a signed queue-timeout notice for a settled payment changes nothing", f"{st} {b}")
    st, _, b = core.request("POST", "/api/v1/providers/b2c/timeout", raw_body=body_t, as_=None,
                            headers={"Content-Type": "application/json"})
    s.check(st == 401, "an unsigned queue-timeout notice is refused", f"{st} {b}")
    st, _, b = core.request("POST", "/api/v1/providers/b2c/result", raw_body=b"{not json",
                            headers={"Content-Type": "application/json", "X-Hifadhi-Signature": "t=1,v1=00"}, as_=None)
    s.check(st == 401, "a malformed callback with a bad signature is refused before it is read", f"{st} {b}")
    counts = {}
    for a in al["items"]:
        counts[a["rule"]] = counts.get(a["rule"], 0) + 1
    s.check(counts.get("amount_mismatch") == 1 and counts.get("unknown_callback") == 1 and
            counts.get("paid_twice") == 1 and "conflicting_result" not in counts,
            "and no alert fires for the payments that went right (one of each, for the one payment concerned)",
            str(counts))
    ledger_ok("after forged and repeated callbacks (nothing moved)")
    s.check(core.get(f"/api/v1/payments/{pays[bens[0]]['id']}", as_=officer_a)[2]["status"] == "paid",
            "the repeated payment is still paid once", "")

    # ---- a payment's history and the beneficiary's view
    st, _, p0 = core.get(f"/api/v1/payments/{pays[bens[3]]['id']}", as_="support")
    seq = [h["status"] for h in p0.get("history", [])]
    s.check(st == 200 and seq[:3] == ["scheduled", "approved", "sending"] and seq[-1] == "paid" and
            [m["posting"] for m in p0["ledger"]] == ["send", "paid"],
            "a payment's history shows each step and its money", f"{st} {seq} {p0.get('ledger')}")
    gw = {"X-Hifadhi-Service-Key": core.gateway_secret()}
    st, _, v = core.get(f"/api/v1/beneficiaries/{bens[4]}/payments", headers=gw, as_=None)
    s.check(st == 200 and v["next"] is None and v["last"][0]["status"] == "paid" and v["last"][0]["amount"] == 400000
            and "ben_no" not in v["last"][0] and "attempts" not in v["last"][0],
            "the gateway reads a beneficiary's last payment, without staff details", f"{st} {v}")
    st, _, v = core.get(f"/api/v1/beneficiaries/{kids[4]}/payments", headers=gw, as_=None)
    st2, _, v2 = core.get("/api/v1/beneficiaries/123456789/payments", headers=gw, as_=None)
    s.check(st == 200 and v["next"] is None and v["last"] == [] and st2 == 404,
            "a beneficiary without payments has none to show; an unknown number is not found", f"{st} {v} {st2} {v2}")

    # ---- alerts: acknowledge and resolve, audited
    al_id = [a for a in al["items"] if a["rule"] == "paid_twice"][0]["id"]
    st, _, b = core.post(f"/api/v1/alerts/{al_id}/resolve", {}, as_=officer_a)
    s.check(st == 400 and "resolution" in fields(b), "resolving needs a resolution", f"{st} {b}")
    st, _, b = core.post(f"/api/v1/alerts/{al_id}/acknowledge", {"note": "calling the provider"}, as_=officer_a)
    st2, _, b2 = core.post(f"/api/v1/alerts/{al_id}/resolve", {"resolution": "provider confirms one payout"},
                           as_=officer_b)
    s.check(st == 200 and b["status"] == "acknowledged" and st2 == 200 and b2["status"] == "resolved" and
            b2["resolved"]["by"] == "pay.baraka" and b2["acknowledged"]["note"] == "calling the provider",
            "an alert is acknowledged with a note, then resolved, with who did what", f"{st} {b} {st2} {b2}")
    st, _, b = core.post(f"/api/v1/alerts/{al_id}/acknowledge", {}, as_=officer_a)
    s.check(st == 409, "a resolved alert cannot be acknowledged again", f"{st} {b}")
    s.check(len(core.audit(action="payment_alert.resolve")) == 1, "resolving is audited", "")

    # ---- G2P Connect: a household programme paid per member with a cap, one envelope per batch
    C2 = "CTOVC-2026-12"
    st, _, c2 = core.post("/api/v1/cycles", {"code": C2, "programme": "CT-OVC", "rule": {"kind": "per_member",
                          "amount": 150000, "cap": 250000}, "cutoff_date": day(0), "pay_from": day(30),
                          "pay_until": day(60), "channel": "g2p"}, as_=officer_a)
    s.check(st == 201 and c2["provider"] == "g2pbank", "a G2P Connect cycle for a household programme", f"{st} {c2}")
    core.post("/api/v1/ledger/funding", {"programme": "CT-OVC", "amount": 5_000_000, "currency": "KES",
                                         "reference": "TREASURY-2026-118"}, as_=officer_a)
    st, _, g = core.post(f"/api/v1/cycles/{C2}/payroll", {}, as_=officer_a)
    s.check(st == 200 and g["payroll_count"] == 8 and g["payroll_total"] == 8 * 250000,
            "two members at 150,000 each are capped at 250,000 per household (the one without a phone is left out)",
            f"{st} {g}")
    p2 = {p["ben_no"]: p for p in payments(C2)}
    rj = "HF" + p2[bens[1]]["id"]
    sim.config(by_ref={rj: {"reject": "payee account closed"}})
    r = core.run_cli(["payments", "disburse"])  # a whole disbursement pass, now
    s.check(r.returncode == 0 and json.loads(r.stdout)["sent"] == 0 and sim.stats(rj)["by_ref"]["requests"] == 0 and
            statuses(C2) == ["scheduled"] * 8, "nothing of a payroll that is not approved is sent to the provider",
            f"{r.stdout} {r.stderr} {sim.stats(rj)}")
    core.post(f"/api/v1/cycles/{C2}/submit", {}, as_=officer_a)
    st, _, al2 = core.get(f"/api/v1/alerts?rule=fund_low&cycle={C2}", as_=officer_a)
    s.check(st == 200 and al2["items"] == [], "a funded payroll raises no fund_low alert", f"{st} {al2}")
    st, _, b = core.post(f"/api/v1/cycles/{C2}/approve", {}, as_=officer_b)
    s.check(st == 200, "approved by the checker", f"{st} {b}")
    wait_for(lambda: all(p["status"] in ("paid", "failed") for p in payments(C2)), timeout=30)
    final2 = {p["ben_no"]: p["status"] for p in payments(C2)}
    s.check(final2[bens[1]] == "failed" and sum(v == "paid" for v in final2.values()) == 7,
            "the envelope's items are paid through the signed on-disburse callback; a rejected one fails",
            str(final2))
    g2p_cb = f"{core.base_url}/api/v1/providers/g2p/on-disburse"
    st, b = sim.inject(protocol="g2p", url=g2p_cb, reference_id="HF" + p2[bens[0]]["id"], amount=250000,
                       currency="KES", status="SUCC", sign=False)
    s.check(b.get("status") == 401, "an on-disburse callback without a valid Ed25519 signature is refused", str(b))
    st, _, v = core.get(f"/api/v1/beneficiaries/{bens[0]}/payments", headers=gw, as_=None)
    s.check(st == 200 and final2[bens[0]] == "paid" and v["next"] is None and
            [x["cycle"] for x in v["last"]] == [C2, C1], "a beneficiary's settled payments come newest first",
            f"{st} {v}")
    ledger_ok("after the G2P cycle")

    # ---- kiosk cycle: collected once, at its pay point, after verification
    C3 = "OPCT-KIOSK-A"
    pp = {"Kisumu/Nyando": "AHERO-1", "Kisumu/Muhoroni": "CHEMELIL-1"}
    st, _, c3 = core.post("/api/v1/cycles", {"code": C3, "programme": "OPCT", "rule": {"kind": "flat", "amount": 300000},
                          "cutoff_date": day(0), "pay_from": day(40), "pay_until": day(45), "channel": "kiosk",
                          "pay_points": pp}, as_=officer_a)
    s.check(st == 201, "a kiosk cycle with a pay point per district", f"{st} {c3}")
    st, _, g = core.post(f"/api/v1/cycles/{C3}/payroll", {}, as_=officer_a)
    s.check(st == 200 and g["payroll_count"] == 1 and [p["ben_no"] for p in payments(C3)] == [bens[5]],
            "nobody already on the payroll of an overlapping cycle of the programme is put on another (only the"
            " person left out of it for want of a phone)", f"{st} {g}")
    st, _, b = core.post(f"/api/v1/cycles/{C3}/close", {}, as_=officer_a)
    s.check(st == 200 and b["status"] == "cancelled", "a cycle closed before approval is cancelled", f"{st} {b}")
    C3 = "OPCT-KIOSK-B"
    st, _, c3 = core.post("/api/v1/cycles", {"code": C3, "programme": "OPCT", "rule": {"kind": "flat", "amount": 300000},
                          "cutoff_date": day(0), "pay_from": day(0), "pay_until": day(2), "channel": "kiosk",
                          "pay_points": pp}, as_=officer_a)
    st, _, cl = core.post(f"/api/v1/cycles/{C1}/close", {}, as_=officer_a)
    s.check(st == 200 and cl["status"] == "closed", "the mobile-money cycle is closed (failed money back to the fund)",
            f"{st} {cl}")
    st, _, g = core.post(f"/api/v1/cycles/{C3}/payroll", {}, as_=officer_a)
    s.check(st == 200 and g["payroll_count"] == 8, "a kiosk payroll: everyone enrolled, phone or not", f"{st} {g}")
    core.post(f"/api/v1/cycles/{C3}/submit", {}, as_=officer_a)
    st, _, b = core.post(f"/api/v1/cycles/{C3}/approve", {}, as_=officer_b)
    s.check(st == 200 and statuses(C3) == ["available"] * 8, "approved kiosk payments are available for collection",
            f"{st} {statuses(C3)}")

    # Terminals: an enrolment station takes the payees' fingerprints; pay points verify them (a token each).
    station = Kiosk.register(core, "AHERO-1", as_=officer_a, mode="enrolment")
    seal_pk = station.call("GET", "/api/v1/kiosk/me")[2]["seal_pk"]
    for b_ in (bens[2], bens[3], bens[4]):
        st, _, b = station.enrol_template(b_, fake_template(b_.encode()), seal_pk=seal_pk)
        assert st == 201, (st, b)
    k1, k2, k3 = (Kiosk.register(core, pp, as_=officer_a) for pp in ("AHERO-1", "AHERO-1", "CHEMELIL-1"))
    st, _, av = k1.call("GET", f"/api/v1/kiosk/beneficiaries/{bens[2]}/payments")
    s.check(st == 200 and len(av["items"]) == 1 and av["items"][0]["amount"] == 300000,
            "a kiosk lists the payment its beneficiary can collect there", f"{st} {av}")
    pid = av["items"][0]["id"]
    tokens = {k1.kiosk_no: k1.token(bens[2]), k2.kiosk_no: k2.token(bens[2])}
    record_pii(list(tokens.values()))
    results = []
    barrier = threading.Barrier(2)

    def collect(k):
        barrier.wait()
        results.append(k.collect(pid, bens[2], tokens[k.kiosk_no]))
    threads = [threading.Thread(target=collect, args=(k,)) for k in (k1, k2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r[0] for r in results)
    won = [r for r in results if r[0] == 201]
    s.check(codes == [201, 409] and won[0][1]["receipt"].startswith("R"),
            "the same payment collected at two kiosks at the same moment: exactly one wins, with a receipt",
            str([(r[0], r[1]) for r in results]))
    lost = [r for r in results if r[0] == 409][0]
    s.check("collected already" in msg(lost[1]), "the other is told it was collected already, where and when",
            msg(lost[1]))
    st, b, _ = k3.collect([p for p in payments(C3) if p["ben_no"] == bens[3]][0]["id"], bens[3], k3.token(bens[3]))
    s.check(st == 403 and "another pay point" in msg(b), "a kiosk at another pay point cannot pay it out", f"{st} {b}")
    st, b, _ = k1.collect(pid, bens[3], k1.token(bens[3]))
    s.check(st == 404, "a payment is collected only by its own beneficiary", f"{st} {b}")
    st, _, b = k1.call("POST", "/api/v1/kiosk/collections", {"payment": pid, "ben_no": bens[2],
                                                              "verification": "fingerprint",
                                                              "request_id": "0b7e6f4c-3c4a-4a39-9d6e-2f1a5b8c9d01"})
    s.check(st == 400 and "verification" in fields(b), "a collection without a verification token is refused",
            f"{st} {b}")
    st, _, b = core.post("/api/v1/kiosk/collections", {"payment": pid, "ben_no": bens[2], "verification": "x" * 22,
                                                       "request_id": "0b7e6f4c-3c4a-4a39-9d6e-2f1a5b8c9d02"},
                         as_=officer_a)
    s.check(st == 403, "staff cannot record a collection as if they were a kiosk", f"{st}")
    # A payee who died after the approval: the payment is held and the payment officers are alerted.
    tok4 = k1.token(bens[4])
    st, _, en = core.get(f"/api/v1/enrolments?ben_no={bens[4]}")
    opct = [e for e in en["items"] if e["programme"] == "OPCT"][0]
    st, _, b = core.request("PATCH", f"/api/v1/enrolments/{opct['id']}",
                            {"status": "deceased", "reason": "death reported by the chief", "version": opct["version"]})
    s.check(st == 200, "the registry records a death after the approval", f"{st} {b}")
    held = [p for p in payments(C3) if p["ben_no"] == bens[4]][0]
    st, b, _ = k1.collect(held["id"], bens[4], tok4)
    s.check(st == 409 and "on hold" in msg(b), "a deceased payee's payment cannot be collected: it is on hold",
            f"{st} {b}")
    st, _, av = k1.call("GET", f"/api/v1/kiosk/beneficiaries/{bens[4]}/payments")
    st2, _, v = core.get(f"/api/v1/beneficiaries/{bens[4]}/payments", headers=gw, as_=None)
    s.check(st == 200 and av["items"] == [] and st2 == 200 and v["next"]["on_hold"] is True,
            "a held payment is not offered at the kiosk, and the beneficiary channels say it is on hold",
            f"{st} {av} {st2} {v}")
    r = core.run_cli(["alerts", "scan"])
    st, _, al = core.get("/api/v1/alerts?rule=payee_ineligible", as_=officer_a)
    s.check(r.returncode == 0 and any(a.get("payment") == held["id"] for a in al["items"]),
            "and the alert scan raises payee_ineligible for it", f"{r.stdout} {al}")
    ledger_ok("after collection")

    # ---- expiry and closing
    r = core.run_cli(["payments", "expire", "--at", at(3)])
    s.check(r.returncode == 0 and json.loads(r.stdout)["expired"] == 7,
            "uncollected kiosk payments expire after pay_until", r.stdout + r.stderr)
    ledger_ok("after expiry (clearing -> returned)")
    st, _, cl = core.post(f"/api/v1/cycles/{C3}/close", {}, as_=officer_a)
    st2, _, acc = core.get("/api/v1/ledger/accounts", as_="auditor")
    bal = {a["code"]: a["balance"] for a in acc["items"]}
    s.check(st == 200 and bal.get(f"clearing:{C3}") == 0 and bal.get(f"clearing:{C1}") == 0,
            "closed cycles leave nothing in clearing", json.dumps(bal))
    s.check(bal["fund:OPCT"] + bal["paid:OPCT"] + bal.get("settlement:mpesa", 0) == 10_000_000,
            "every shilling of the OPCT funding is in the fund, paid out, or owed back by the provider",
            json.dumps(bal))
    r = core.run_cli(["ledger", "check"])
    s.check(r.returncode == 0 and json.loads(r.stdout)["ok"], "hifadhi-core ledger check proves the books",
            r.stdout[-500:] + r.stderr)
    app_pw = (Path(env("HF_KEY_DIR")) / "db-app.password").read_text().strip()
    for stmt in ("UPDATE ledger_entries SET amount = amount + 1 LIMIT 1", "DELETE FROM ledger_postings LIMIT 1"):
        r = subprocess.run(["mariadb", "--no-defaults", f"--socket={Mariadb.socket()}", "-uhifadhi", f"-p{app_pw}",
                            core.db, "-e", stmt], capture_output=True, text=True, timeout=30)
        s.check(r.returncode != 0 and "denied" in r.stderr.lower(), f"the service account cannot: {stmt}",
                r.stderr.strip())
    appr, coll = core.audit(action="cycle.approve"), core.audit(action="payment.collect")
    ok_coll = [a for a in coll if a["outcome"] == "ok"]
    denied = [a for a in coll if a["outcome"] == "denied" and a["actor_type"] == "kiosk"]
    s.check(len(appr) == 3 and len(ok_coll) == 1 and ok_coll[0]["detail"]["verification"] == "fingerprint",
            "approvals and the collection are in the audit trail", f"{len(appr)} {ok_coll}")
    s.check(len(denied) == 5 and {d["detail"]["reason"] for d in denied} == {"conflict", "forbidden", "not_found",
                                                                               "verification"},
            "so is every refused collection attempt at a kiosk, with why", str(denied))
