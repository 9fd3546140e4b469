"""test_kiosk_terminal.py - real hifadhi-kiosk terminals against a real core: enrolment of a finger at an
enrolment station, verification and payment collection at a pay point with libfprint's virtual_image reader fed
NIST prints, another person's finger refused, the PIN + staff fallback, the drawer and lamps on the fake GPIO
board, the ESC/POS receipt with its QR code checked against core, the SMS receipt, the tamper lock, the idle
timeout, a core that stops answering in the middle of a collection (exactly once), offline collection under the
signed allowance replayed once, and kill -9 of the kiosk during a collection (never paid twice).
"""

import json
import os
import re
import signal
import time
import urllib.request

from harness import Suite, Core, Mariadb, record_pii, wait_for
from kiosk_term import Terminal, paying_registry, enrol_finger, fingerlib

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}
PAY_POINT = "AHERO-1"



def present(term, name, rotate, timeout=25.0):
    """Presents a finger when the kiosk's reader asks for one, and returns the state once the scan has been
    dealt with (the screen changed from the one the finger was given on)."""
    s0 = term.wait_screen("scan", timeout=timeout)
    req = term.finger(name, rotate=rotate, timeout=timeout)
    term.wait_finger_taken(req, timeout=timeout)
    deadline = time.monotonic() + timeout
    s = term.state()
    while (s["seq"] == s0["seq"] or s["screen"] == "working") and time.monotonic() < deadline:
        time.sleep(0.05)
        s = term.state()
    return s


with Suite() as s:
    core = Core(s)
    officer_a = core.staff("payment_officer", "pay.amina")
    officer_b = core.staff("payment_officer", "pay.bakari")
    sql = lambda q: Mariadb.sql(q, db=core.db)

    # ---- a registry: six older persons in Ahero, enrolled, with phones; a kiosk cycle paying them at AHERO-1
    bens, phones, payment_of = paying_registry(core, officer_a, officer_b,
                                               ["Akoth", "Barasa", "Chelimo", "Dede", "Ekirapa", "Fatuma"],
                                               LOC, PAY_POINT)
    record_pii(bens + phones)

    # ---- enrolment station: a registrar captures each person's finger (5 impressions, rotated in the test)
    FINGER = {bens[0]: "arch", bens[1]: "loop-right", bens[2]: "tented_arch", bens[3]: "whorl", bens[4]: "arch"}
    station = Terminal(s, core, PAY_POINT, officer_a, name="station", enrolment=True)
    s.check(station.wait_screen("start")["data"].get("enrolment") is True,
            "an enrolment station starts on its own start screen", "")
    for ben in bens[:5]:
        done = enrol_finger(station, ben, FINGER[ben])
        s.check(done["screen"] == "enrol_done", f"a finger is enrolled at the station in 5 impressions ({FINGER[ben]})",
                json.dumps(done.get("data")))
    rows = sql("SELECT COUNT(*) FROM biometric_templates")
    s.check(rows.strip().endswith("5"), "core holds the five templates", rows)
    station.stop()

    # ---- the pay point
    t0 = time.monotonic()
    term = Terminal(s, core, PAY_POINT, officer_a, name="paypoint")
    s.check(term.ready_s is not None and term.ready_s <= 3.0,
            f"the kiosk is ready {term.ready_s:.2f} s after it starts (target 3 s)", "")
    st0 = term.wait_screen("start")
    s.check(st0["lang"] == "en" and st0["status"]["online"] in (True, False) and st0["texts"],
            "the start screen comes with its texts", json.dumps(st0)[:300])
    s.check(wait_for(lambda: term.state()["status"]["online"], timeout=10), "the kiosk reaches core", "")

    # a mistyped number is caught on the kiosk, an unknown one by core
    term.act("collect")
    bad = bens[0][:-1] + str((int(bens[0][-1]) + 1) % 10)
    m = term.type_ben(bad)
    s.check(m["screen"] == "message" and m["data"]["code"] == "bad_ben", "a mistyped beneficiary number is refused at once",
            json.dumps(m["data"]))
    term.act("finish")

    # collection with the right finger
    term.act("collect")
    term.type_ben(bens[0])
    after = present(term, "arch", rotate=3)
    pay = term.wait_screen("payments", "message", "fallback_offer", timeout=20)
    s.check(pay["screen"] == "payments" and len(pay["data"]["items"]) == 1,
            "the right finger opens the person's payments at this pay point", json.dumps(pay.get("data")))
    drawer_before = term.gpio.count("drawer")
    term.act("choose", pay["data"]["items"][0]["payment"])
    term.wait_screen("confirm")
    term.act("confirm")
    done = term.wait_screen("done", "message", timeout=30)
    s.check(done["screen"] == "done" and done["data"]["receipt"], "the collection is confirmed with a receipt number",
            json.dumps(done.get("data")))
    p0 = payment_of(bens[0])
    s.check(p0["status"] == "collected", "core records the payment collected", str(p0))
    s.check(wait_for(lambda: term.gpio.count("drawer") == drawer_before + 1, timeout=5),
            "the cash drawer is opened exactly once", str(term.gpio.outs[-10:]))
    s.check(term.gpio.count("lamp_green") >= 1, "the green lamp confirms", "")
    receipt = term.receipts()
    s.check(done["data"].get("receipt", "-").encode() in receipt and b"\x1d(k" in receipt,
            "an ESC/POS receipt is printed with the receipt number and a QR code", repr(receipt[:80]))
    url = re.search(rb"http://127\.0\.0\.1:\d+/r/[A-Za-z0-9-]+\?c=[A-Za-z0-9_-]+", receipt)
    s.check(url is not None, "the QR code holds the receipt's check URL", repr(receipt[-200:]))
    if url:
        req = urllib.request.Request(url.group(0).decode(), headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            chk = json.loads(r.read())
        s.check(chk.get("valid") is True and chk.get("amount") == 400000,
                "the receipt checks out against core (amount and validity)", str(chk))
    sms = sql("SELECT COUNT(*) FROM outbox WHERE template = 'kiosk_receipt'")
    s.check(sms.strip().endswith("1"), "an SMS receipt is queued for the beneficiary", sms)
    term.act("finish")

    # another person's finger three times: refused, then the fallback is offered
    term.act("collect")
    term.type_ben(bens[1])
    for attempt in range(3):
        r = present(term, "whorl", rotate=attempt * 2)
        if r["screen"] != "scan":
            break
    s.check(r["screen"] == "fallback_offer" and term.gpio.count("lamp_red") >= 1,
            "another person's finger is refused 3 times, with the red lamp, then the fallback is offered",
            json.dumps(r))
    fails = sql("SELECT COUNT(*) FROM kiosk_verifications WHERE result = 'no_match'")
    s.check(fails.strip().endswith("3"), "each failed attempt is recorded in core", fails)

    # the fallback: the person's PIN and a staff credential at the pay point
    gw = {"X-Hifadhi-Service-Key": core.gateway_secret()}
    st, _, b = core.request("POST", f"/api/v1/subscribers/{phones[1]}/pin", {"pin": "4827"}, headers=gw, as_=None)
    assert st in (200, 201), (st, b)
    term.act("fallback")
    for d in "4827":
        term.act("digit", d)
    term.act("ok")
    term.wait_screen("fallback_staff")
    term.act("text", officer_a.username)
    term.act("ok")
    term.act("text", "wrong password 1")
    term.act("ok")
    term.act("text", officer_a.next_code())
    term.act("ok")
    r = term.wait_screen("message", "payments", timeout=20)
    s.check(r["screen"] == "message" and r["data"]["code"] == "override_refused",
            "a wrong staff credential is refused without saying which part was wrong", json.dumps(r["data"]))
    term.act("finish")
    term.act("collect")
    term.type_ben(bens[1])
    for attempt in range(3):
        r = present(term, "whorl", rotate=attempt * 2)
        if r["screen"] != "scan":
            break
    term.act("fallback")
    for d in "4827":
        term.act("digit", d)
    term.act("ok")
    term.act("text", officer_a.username)
    term.act("ok")
    term.act("text", officer_a.password)
    term.act("ok")
    term.act("text", officer_a.next_code())
    term.act("ok")
    pay = term.wait_screen("payments", "message", timeout=20)
    s.check(pay["screen"] == "payments", "PIN + staff credential open the payments (fallback)", json.dumps(pay["data"]))
    term.act("choose", pay["data"]["items"][0]["payment"])
    term.act("confirm")
    done = term.wait_screen("done", "message", timeout=30)
    p1 = payment_of(bens[1])
    s.check(done["screen"] == "done" and p1["status"] == "collected", "the fallback collection is recorded", str(p1))
    ov = sql("SELECT COUNT(*) FROM payment_alerts WHERE rule = 'kiosk_override'")
    s.check(not ov.strip().endswith(" 0") and ov.strip() != "0", "the override is flagged for review", ov)
    term.act("finish")

    # the reader unplugged in the middle of a scan: said on screen, fault lamp, told to core, back by itself
    term.act("collect")
    term.type_ben(bens[2])
    term.wait_screen("scan")
    wait_for(lambda: term.state()["status"].get("finger_needed"), timeout=10)
    faults_before = term.gpio.count("lamp_fault")
    fingerlib.send(str(term.finger_sock), (-5, 0))  # virtual_image: unplug
    r = term.wait_screen("fallback_offer", "message", timeout=20)
    s.check(r["screen"] == "fallback_offer" and r["data"].get("why") == "reader_fault",
            "a reader unplugged mid-scan: the screen says the reader failed and offers the fallback", json.dumps(r["data"]))
    s.check(wait_for(lambda: term.gpio.count("lamp_fault") > faults_before, timeout=10), "the fault lamp lights", "")
    def core_reader():
        return term.health().get("reader")
    s.check(wait_for(lambda: term.state()["status"]["reader"] == "ok", timeout=15) and
            wait_for(lambda: term.gpio.count("lamp_fault", "0") >= 1, timeout=5),
            "the reader comes back by itself and the fault lamp goes out", str(term.state()["status"]))
    s.check(wait_for(lambda: core_reader() == "ok", timeout=15),
            "core's kiosk list shows the reader's health (reported by the heartbeat)", str(core_reader()))
    term.act("cancel")

    # the idle timeout forgets the person
    term.stop()
    term.overrides["ui.idle_s"] = "5"
    term.write_config(term.port)
    term.start()
    term.wait_screen("start")
    term.act("collect")
    term.act("digit", "7")
    r = term.wait_screen("start", timeout=15)
    s.check(r["screen"] == "start", "after the idle timeout the kiosk is back at the start screen", r["screen"])
    term.act("collect")
    r = term.state()
    s.check(r["data"].get("typed") == "", "and what was typed is forgotten", json.dumps(r["data"]))
    term.act("finish")

    # a core that stops answering in the middle of a collection: the kiosk asks before saying anything
    term.act("collect")
    term.type_ben(bens[2])
    present(term, "tented_arch", rotate=-3)
    pay = term.wait_screen("payments", "message", "fallback_offer", timeout=20)
    s.check(pay["screen"] == "payments", "the third person is verified", json.dumps(pay.get("data")))
    term.act("choose", pay["data"]["items"][0]["payment"])
    drawer_before = term.gpio.count("drawer")
    core.proc.send_signal(signal.SIGSTOP)
    try:
        term.act("confirm")
        r = wait_for(lambda: term.state()["data"].get("what") == "checking" or term.state()["screen"] == "done",
                     timeout=15)
    finally:
        core.proc.send_signal(signal.SIGCONT)
    done = term.wait_screen("done", "message", timeout=45)
    p2 = payment_of(bens[2])
    s.check(done["screen"] == "done" and p2["status"] == "collected" and term.gpio.count("drawer") == drawer_before + 1,
            "core frozen during a collection: the kiosk waits, asks core, then pays exactly once",
            f"{done['screen']} {p2['status']} drawer+{term.gpio.count('drawer') - drawer_before}")
    n = sql(f"SELECT COUNT(*) FROM ledger_postings WHERE kind = 'collect' AND payment_id = {p2['id']}").split()[-1]
    s.check(n == "1", "and the books hold one collection posting for it", n)
    term.act("finish")

    # tamper: the kiosk locks, core is told, staff unlock it
    term.gpio.send("IN tamper 1")
    r = term.wait_screen("locked", timeout=10)
    s.check(r["screen"] == "locked" and r["data"]["why"] == "tamper", "a tamper switch locks the kiosk at once", r["screen"])
    al = wait_for(lambda: sql("SELECT COUNT(*) FROM payment_alerts WHERE rule = 'kiosk_tamper'").strip().split()[-1] != "0",
                  timeout=10)
    s.check(al, "core raises a tamper alert", "")
    st_act = term.act("collect")
    s.check(st_act["screen"] == "locked", "a locked kiosk serves nobody", st_act["screen"])
    term.close_casing()
    st, _, b = core.post(f"/api/v1/kiosks/{term.kiosk_no}/unlock", {"reason": "case closed and sealed"}, as_="admin")
    s.check(st == 200, "staff unlock the kiosk in core", f"{st} {b}")
    r = term.wait_screen("start", timeout=15)
    s.check(r["screen"] == "start", "the kiosk serves again once unlocked and the switch is closed", r["screen"])

    # offline: core down, a collection against the signed allowance, replayed once when core is back
    st, _, b = core.request("PATCH", f"/api/v1/kiosks/{term.kiosk_no}",
                            {"offline": {"cap": {"amount": 1_000_000, "currency": "KES"}, "max_collections": 5}},
                            as_=officer_a)
    s.check(st == 200, "a payment officer lets the kiosk pay out offline up to a cap", f"{st} {b}")
    def allowance_items():
        p = term.dir / "state" / "allowance.json"
        if not p.exists():
            return 0
        return len(json.loads(json.loads(p.read_text())["allowance_text"])["items"])
    s.check(wait_for(lambda: allowance_items() >= 1, timeout=20),
            "the kiosk fetches a signed allowance listing the payments it may pay offline", str(allowance_items()))
    wait_for(lambda: (term.dir / "state" / "allowance.json").exists(), timeout=10)
    s.check((term.dir / "state" / "allowance.json").exists(), "the kiosk holds a signed offline allowance", "")
    receipts_before = int(sql("SELECT COUNT(*) FROM outbox WHERE template = 'kiosk_receipt'").strip().split()[-1])
    core.proc.send_signal(signal.SIGSTOP)  # the link is down: core answers nothing (timeouts, not refusals)
    s.check(wait_for(lambda: not term.state()["status"]["online"], timeout=15), "the kiosk notices core is gone", "")
    term.act("collect")
    term.type_ben(bens[3])
    present(term, "whorl", rotate=2)
    pay = term.wait_screen("payments", "message", timeout=20)
    s.check(pay["screen"] == "payments" and pay["data"].get("offline") is True,
            "offline, the allowance lists the person's payment and their finger is verified against it",
            json.dumps(pay.get("data")))
    if pay["screen"] == "payments":
        term.act("choose", pay["data"]["items"][0]["payment"])
        term.act("confirm")
        done = term.wait_screen("done", "message", timeout=20)
        s.check(done["screen"] == "done" and term.state()["status"]["queue"] == 1,
                "offline the collection is queued (fsync'd) and paid out", json.dumps(done.get("data")))
        term.act("finish")
    core.proc.send_signal(signal.SIGCONT)
    s.check(wait_for(lambda: term.state()["status"]["queue"] == 0, timeout=30), "the queue is replayed when core is back", "")
    p3 = payment_of(bens[3])
    s.check(p3["status"] == "collected", "and core records the offline collection once", str(p3))
    receipts_after = int(sql("SELECT COUNT(*) FROM outbox WHERE template = 'kiosk_receipt'").strip().split()[-1])
    s.check(receipts_after == receipts_before + 1, "the replayed collection sends the person an SMS receipt too",
            f"{receipts_before} -> {receipts_after}")

    # kill -9 of the kiosk while its collection request is in flight (core frozen): after the restart the kiosk
    # asks core, finds the collection recorded, and reports that the cash may not have left; it never opens the
    # drawer for it, and core holds one collection
    term.act("collect")
    term.type_ben(bens[4])
    present(term, "arch", rotate=-2)
    pay = term.wait_screen("payments", "message", "fallback_offer", timeout=20)
    s.check(pay["screen"] == "payments", "the fifth person is verified", json.dumps(pay.get("data")))
    term.act("choose", pay["data"]["items"][0]["payment"])
    drawer_before = term.gpio.count("drawer")
    core.proc.send_signal(signal.SIGSTOP)
    try:
        term.act("confirm")
        journal = term.dir / "state" / "collection.json"
        s.check(wait_for(journal.exists, timeout=10), "the collection is journalled before its request leaves", "")
        term.kill()
    finally:
        core.proc.send_signal(signal.SIGCONT)
    s.check(wait_for(lambda: payment_of(bens[4])["status"] == "collected", timeout=15),
            "core, unfrozen, records the collection the kiosk had sent", "")
    gpio_before = term.gpio.outs[:]
    term.start()
    s.check(wait_for(lambda: not journal.exists(), timeout=20), "the restarted kiosk settles the journal with core", "")
    alert = wait_for(lambda: sql("SELECT COUNT(*) FROM payment_alerts WHERE rule = 'kiosk_dispense_unknown'")
                     .strip().split()[-1] != "0", timeout=10)
    s.check(alert, "and reports that the cash may not have left (a critical alert for staff)", "")
    s.check(term.gpio.count("drawer") == 0 and sum(1 for n, v, _ in gpio_before if n == "drawer" and v == "1") ==
            drawer_before, "the drawer is not opened for it, before or after the crash",
            f"{drawer_before} before, {[o for o in gpio_before if o[0] == 'drawer']} on the old board, "
            f"{term.gpio.outs[-5:]} since")
    n = sql(f"SELECT COUNT(*) FROM ledger_postings WHERE kind = 'collect' AND payment_id = {payment_of(bens[4])['id']}")
    s.check(n.split()[-1] == "1", "core holds one collection posting for it: paid at most once", n)
    r = term.wait_screen("start", timeout=10)
    s.check(r["screen"] == "start", "the restarted kiosk is back at the start screen, the person forgotten", "")

    # a person without an enrolled finger is offered the PIN + staff route
    term.act("collect")
    term.type_ben(bens[5])
    r = term.wait_screen("fallback_offer", "message", timeout=20)
    s.check(r["screen"] == "fallback_offer" and r["data"].get("why") == "no_template",
            "a person without an enrolled finger is offered the fallback", json.dumps(r["data"]))
    term.act("cancel")
    s.check(payment_of(bens[5])["status"] == "available", "and nothing is paid without verification", "")

    # the casing opened while core records a collection: the drawer stays shut, and staff are told
    gw = {"X-Hifadhi-Service-Key": core.gateway_secret()}
    core.request("POST", f"/api/v1/subscribers/{phones[5]}/pin", {"pin": "6184"}, headers=gw, as_=None)
    code = officer_a.next_code()  # (may wait for the next 30 s step: before the kiosk's 5 s idle timer runs)
    term.act("collect")
    term.type_ben(bens[5])
    term.wait_screen("fallback_offer")
    term.act("fallback")
    for d in "6184":
        term.act("digit", d)
    term.act("ok")
    for value in (officer_a.username, officer_a.password, code):
        term.act("text", value)
        term.act("ok")
    pay = term.wait_screen("payments", "message", timeout=20)
    s.check(pay["screen"] == "payments", "the sixth person is verified by PIN and staff", json.dumps(pay["data"]))
    term.act("choose", pay["data"]["items"][0]["payment"])
    drawer_before = term.gpio.count("drawer")
    alerts_before = int(sql("SELECT COUNT(*) FROM payment_alerts WHERE rule = 'kiosk_dispense_unknown'").split()[-1])
    core.proc.send_signal(signal.SIGSTOP)
    try:
        term.act("confirm")
        wait_for(lambda: term.state()["data"].get("what") in ("collecting", "checking"), timeout=5)
        term.gpio.send("IN tamper 1")
        s.check(term.wait_screen("locked", timeout=10)["screen"] == "locked", "the tamper switch locks the kiosk", "")
    finally:
        core.proc.send_signal(signal.SIGCONT)
    # Two right outcomes, by which of the kiosk's two requests core takes first once it runs again: the
    # collection (recorded, then reported as not paid out: the kiosk is locked) or the tamper alarm (the
    # collection then refused as from a locked kiosk: nothing recorded, nothing to report).
    def settled():
        status = payment_of(bens[5])["status"]
        alerts = int(sql("SELECT COUNT(*) FROM payment_alerts WHERE rule = 'kiosk_dispense_unknown'").split()[-1])
        if status == "collected" and alerts > alerts_before:
            return "recorded, reported"
        if status == "available" and not (term.dir / "state" / "collection.json").exists():
            return "refused, nothing recorded"
        return None
    outcome = wait_for(settled, timeout=30)
    s.check(outcome is not None,
            "core either records it and the kiosk reports the cash was not given, or refuses it (locked)",
            f"{outcome} {payment_of(bens[5])['status']}")
    s.check(term.gpio.count("drawer") == drawer_before, "the drawer stays shut while the kiosk is locked",
            str(term.gpio.outs[-6:]))
    term.close_casing()
    core.post(f"/api/v1/kiosks/{term.kiosk_no}/unlock", {"reason": "casing checked, seal renewed"}, as_="admin")
    s.check(term.wait_screen("start", timeout=20)["screen"] == "start", "unlocked, it serves again", "")

    term.stop()
