"""test_gateway_smpp.py - hifadhi-gateway behind a real Kannel whose operator link is SMPP, with
hifadhi-smppsim (tests/sim/smppsim.c) as the operator's SMSC.

The whole chain a subscriber's phone depends on: SMSC -> Kannel's SMPP link -> smsbox -> the gateway ->
hifadhi-core, and back. Checks what the subscriber and the programme would notice:
  (a) USSD over SMPP: a registered beneficiary dials *384#; every screen comes back as USSD (ussd_service_op 2 =
      continue, 17 = release on the last one), in one piece, Swahili and French texts intact in the coding a
      phone can show; a complaint typed in UCS-2 is lodged word for word;
  (b) SMS over SMPP: HELP and a complaint by SMS get their replies;
  (c) alerts from core's outbox (a grievance's "grievance_lodged" SMS) sent through the SMPP link with delivery
      reports: DELIVRD -> delivered, UNDELIV and REJECTD receipts and a submit the SMSC refuses -> failed,
      throttled submits retried until delivered, none lost and none sent twice.
Start order: core, simulator, gateway, Kannel (the gateway is given the sendsms password Kannel will use).
"""
import os
import re
import stat
import string
import random
import time

from harness import Suite, Core, Gateway, Mariadb, POLL_S, free_port, record_pii, wait_for
from kannel import Kannel
from smppsim import SmppSim

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}
USSD_PHONE = "+254712500101"
SESSION = 0x2A01  # its_session_info of the USSD session: two bytes, 0x2A and 0x01
SW_HOME = "Hifadhi. Chagua:\n1. Usajili wangu\n2. Malipo yajayo"
SW_CATEGORIES = "Malalamiko kuhusu:\n1. Sikupokea malipo"
COMPLAINT = "Wakala alidai shilingi 200 — sikupokea pesa"  # the dash is not GSM 03.38: the MO goes as UCS-2
ESME_RTHROTTLED, ESME_RSUBMITFAIL = 0x58, 0x45


def digits(phone):
    """A number as Kannel submits it to the SMSC: no '+', international TON."""
    return phone.lstrip("+")



with Suite() as s:
    t0 = time.monotonic()
    core = Core(s)
    sql = lambda q: Mariadb.sql(q, db=core.db)
    svc = {"X-Hifadhi-Service-Key": core.gateway_secret()}

    # ---- start: core, the SMSC simulator, the gateway, Kannel
    sim = SmppSim(s, dlr_delay_ms=100)
    gw_port = free_port()
    k = Kannel(s, gateway_port=gw_port, smpp=True, smpp_port=sim.port, log_level=3, start=False)
    # deploy/kannel.sh keeps a sendsms password file it finds (docs/kannel.md), so the gateway can be given it
    # before Kannel runs.
    k.dir.mkdir(parents=True, exist_ok=True)
    pw_file = k.dir / "sendsms.password"
    if not pw_file.exists():
        rnd = random.SystemRandom()
        pw_file.write_text("".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(24)))
        os.chmod(pw_file, stat.S_IRUSR | stat.S_IWUSR)
    k.sendsms_user, k.sendsms_password = "hifadhi-gateway", pw_file.read_text().strip()
    # Our Kannel routes only MT that name smsc=smpp to the SMPP link (docs/kannel.md): kannel.smsc says so.
    gw = Gateway(s, core, kannel=k, overrides={"kannel.smsc": "smpp"}, start=False)
    gw.start(port=gw_port)
    k.start()
    s.check(sim.wait_bound(), "Kannel binds its SMPP link to the simulator (transceiver)", sim.stats())
    st0 = sim.stats()
    s.check(st0["binds_ok"] >= 1 and st0["binds_failed"] == 0, "with the configured system_id and password", st0)

    # ---- beneficiaries
    core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer", "target": "individual",
                                     "currency": "KES"}, as_="admin")

    def beneficiary(i, phone, lang="sw"):
        """A registered, enrolled beneficiary with this phone; returns the ben_no. The name must appear in no log
        (recorded for test_zz_no_pii_in_logs.py); the number does, by design, in Kannel's access logs
        (docs/kannel.md), so it is not recorded: this suite checks the gateway's and core's logs for it itself."""
        given = f"Akinyi{chr(65 + i // 26)}{chr(65 + i % 26)}"
        record_pii([given])
        st, _, hh = core.post("/api/v1/households", {"location": LOC, "members": [
            {"given_name": given, "family_name": "Onyango", "sex": "female", "date_of_birth": "1950-02-02",
             "relationship": "head", "language": lang, "phone": phone}]})
        if st != 201:
            raise RuntimeError(f"household: {st} {hh}")
        ben = hh["members"][0]["ben_no"]
        st, _, en = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": ben, "status": "enrolled"})
        if st != 201:
            raise RuntimeError(f"enrolment: {st} {en}")
        return ben

    beneficiary(0, USSD_PHONE)
    U = digits(USSD_PHONE)

    def last_n():
        recs = sim.mt()
        return recs[-1]["n"] if recs else 0

    def ussd_screen(after, timeout=10.0):
        """The next whole USSD message to the USSD phone after MT record number `after`."""
        got = sim.wait_messages(1, timeout, match=lambda m: m["n"] > after and m["to"] == U
                                and m["ussd_service_op"] is not None)
        return got[0] if got else {}

    def pdus_of(msg):
        """The raw submit_sm records of one (maybe concatenated) message."""
        return [r for r in sim.mt() if r["n"] >= msg.get("n", 0) and r["to"] == msg.get("to")
                and r["ussd_service_op"] is not None][:msg.get("parts", 1)]

    def one_piece(msg):
        return msg.get("parts") == 1 and msg.get("udh") is None and not (msg.get("esm_class", 0) & 0x40)

    # ---- (a) USSD over SMPP
    n = last_n()
    ans = sim.ussd_begin(U, "*384#", SESSION)
    s.eq(ans.get("outcome"), "acked", "the USSD begin (deliver_sm, ussd_service_op 1) is taken by Kannel")
    home = ussd_screen(n)
    s.check(home.get("ussd_service_op") == 2 and (home.get("text") or "").startswith(SW_HOME),
            "dialling *384#: the home menu comes back in Swahili as USSD 'continue' (ussd_service_op 2)", home)
    s.check(home.get("from") == "384" and home.get("data_coding") == 0,
            "from the service code, in GSM 03.38 (data_coding 0)", home)
    s.check(one_piece(home),
            f"the {len(home.get('text') or '')}-character home screen reaches the phone as ONE USSD message "
            "(USSD has no concatenation: a split screen arrives as two broken messages)",
            [(r["esm_class"], r["udh"], r["text"]) for r in pdus_of(home)])
    if home.get("its_session_info") != f"{SESSION:04x}":
        print(f"# note: the USSD reply does not carry the MO's its_session_info ({SESSION:04x}); "
              f"it has {home.get('its_session_info')!r}", flush=True)

    n = last_n()
    sim.ussd_input(U, "8", SESSION)
    lang = ussd_screen(n)
    s.check(lang.get("ussd_service_op") == 2 and "Français" in (lang.get("text") or "")
            and "Kiswahili" in (lang.get("text") or ""),
            "the language menu (8) comes back intact, 'Français' included", lang)
    s.eq(lang.get("data_coding"), 8, "a screen with a character outside GSM 03.38 (ç) goes as UCS-2 (data_coding 8)")
    s.check(one_piece(lang),
            f"the {len(lang.get('text') or '')}-character UCS-2 language screen is ONE USSD message",
            [(r["esm_class"], r["udh"], r["text"]) for r in pdus_of(lang)])

    n = last_n()
    sim.ussd_input(U, "0", SESSION, op=18)  # SMPP 3.4's USSR confirm: the user's answer to our request
    back = ussd_screen(n)
    s.check((back.get("text") or "").startswith(SW_HOME) and back.get("ussd_service_op") == 2,
            "0 goes back to the home menu (an input sent as ussd_service_op 18 is taken as well)", back)

    n = last_n()
    sim.ussd_input(U, "4", SESSION)
    cats = ussd_screen(n)
    s.check((cats.get("text") or "").startswith(SW_CATEGORIES) and cats.get("ussd_service_op") == 2,
            "4 opens the complaint categories", cats)
    s.check(one_piece(cats), f"the {len(cats.get('text') or '')}-character categories screen is ONE USSD message",
            [(r["esm_class"], r["udh"], r["text"]) for r in pdus_of(cats)])
    n = last_n()
    sim.ussd_input(U, "1", SESSION)
    prompt = ussd_screen(n)
    s.check("Tafadhali eleza tatizo" in (prompt.get("text") or "") and prompt.get("ussd_service_op") == 2,
            "1 asks for the complaint in a few words", prompt)
    n = last_n()
    sim.ussd_input(U, COMPLAINT, SESSION)
    confirm = ussd_screen(n)
    s.check("Tuma malalamiko yako" in (confirm.get("text") or "") and confirm.get("ussd_service_op") == 2,
            "a complaint typed with a non-GSM character (sent as UCS-2) is taken; the confirmation comes", confirm)
    n = last_n()
    sim.ussd_input(U, "1", SESSION)
    done = ussd_screen(n)
    text = done.get("text") or ""
    refs = re.findall(r"\b(\d{9})\b", text)
    s.check(done.get("ussd_service_op") == 17 and text.startswith("Asante. Malalamiko yako yamesajiliwa") and refs,
            "the last screen ends the session: USSD 'release' (ussd_service_op 17) with the complaint's number", done)
    ussd_ref = refs[0] if refs else "000000000"
    st, _, case = core.get(f"/api/v1/cases/{ussd_ref}", as_="case_worker")
    s.check(st == 200 and case.get("channel") == "ussd" and case.get("summary") == COMPLAINT,
            "the complaint is in core from USSD, its words intact (dash included)", f"{st} {case}")
    ussd_mts = sim.mt(lambda r: r["to"] == U and r["ussd_service_op"] is not None)
    s.check(ussd_mts and all(r["registered_delivery"] == 0 for r in ussd_mts),
            "USSD screens ask for no delivery receipts", [r["registered_delivery"] for r in ussd_mts])

    n = last_n()
    sim.ussd_input(U, "1", SESSION)
    after = ussd_screen(n, timeout=5)
    s.check(after.get("ussd_service_op") == 17,
            "an input for the session that ended gets a polite release, never a hanging session", after)

    n = last_n()
    sim.ussd_begin(U, "*384*4#", SESSION + 1)
    direct = ussd_screen(n)
    s.check((direct.get("text") or "").startswith(SW_CATEGORIES) and direct.get("ussd_service_op") == 2,
            "dialling the shortcut *384*4# opens the complaint categories directly", direct)
    n = last_n()
    sim.ussd_begin(U, "*384*4*1*5#", SESSION + 1)  # the same session number again: a new dial, a new session
    stop = ussd_screen(n)
    s.check("Tafadhali eleza tatizo" in (stop.get("text") or "") and stop.get("ussd_service_op") == 2,
            "a shortcut only chooses from menus: *384*4*1*5# stops where the complaint is to be typed", stop)

    # ---- (b) SMS over SMPP
    n = last_n()
    sim.mo_sms(U, "384", "HELP")
    helps = sim.wait_messages(1, match=lambda m: m["n"] > n and m["to"] == U and m["ussd_service_op"] is None
                              and "*384#" in (m["text"] or ""))
    h = helps[0] if helps else {}
    s.check(h.get("from") == "384" and (h.get("text") or "").startswith("Hifadhi: piga *384#")
            and h.get("data_coding") == 0,
            "an SMS 'HELP' through the SMPP link gets the help text in the subscriber's language (Swahili)", h)
    s.check(h and h.get("ussd_service_op") is None and h.get("tlvs", {}).get("0x0501") is None,
            "an SMS reply carries no USSD operation", h)

    n = last_n()
    sim.mo_sms(U, "384", "MALALAMIKO Nililipwa nusu tu — tafadhali saidieni")
    gr = sim.wait_messages(1, match=lambda m: m["n"] > n and m["to"] == U and m["ussd_service_op"] is None
                           and "malalamiko yako yamesajiliwa kwa namba" in (m["text"] or ""))
    g = gr[0] if gr else {}
    sms_refs = re.findall(r"\b(\d{9})\b", g.get("text") or "")
    s.check(sms_refs, "a complaint by SMS (sent as UCS-2) is lodged and its number comes back by SMS", g)
    if sms_refs:
        st, _, case = core.get(f"/api/v1/cases/{sms_refs[0]}", as_="case_worker")
        s.check(st == 200 and case.get("channel") == "sms" and "Nililipwa nusu tu — tafadhali saidieni"
                in (case.get("summary") or ""), "its words reach core intact", f"{st} {case}")

    # ---- (c) alerts from core's outbox through the SMPP link, with delivery reports
    def lodge(ben, category="payment_not_received", summary="Sikupokea malipo ya mwezi huu"):
        st, _, b = core.post("/api/v1/cases", {"type": "grievance", "category": category, "ben_no": ben,
                                               "channel": "sms", "summary": summary}, headers=svc, as_=None)
        if st not in (200, 201) or not re.fullmatch(r"\d{9}", b.get("ref", "")):
            raise RuntimeError(f"lodge: {st} {b}")
        return b["ref"]

    def outbox(ref):
        """The status of the grievance_lodged SMS of case ref (refs are 9 digits, checked by lodge)."""
        return sql("SELECT o.status FROM outbox o JOIN cases c ON c.id = o.case_id"
                   f" WHERE c.ref = '{ref}' AND o.template = 'grievance_lodged'").strip()

    def unsettled():
        return int(sql("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending', 'sent')").strip())

    def accepted_for(ref):
        return [r for r in sim.mt() if r["result"] == "accepted" and ref in (r["text"] or "")]

    settled = wait_for(lambda: unsettled() == 0, timeout=20)
    s.check(settled, "the SMS the USSD and SMS complaints queued went out through SMPP and were reported",
            sql("SELECT id, template, status FROM outbox"))
    ussd_sms = outbox(ussd_ref)
    s.eq(ussd_sms, "delivered", "the USSD complaint's confirmation SMS is delivered (receipt DELIVRD)")

    phones = {name: f"+2547125002{i:02d}" for i, name in enumerate(
        ["dlv", "undeliv", "rejectd", "refused"] + [f"thr{i}" for i in range(6)] + [f"rate{i}" for i in range(6)])}
    bens = {name: beneficiary(10 + i, phone) for i, (name, phone) in enumerate(phones.items())}

    # DELIVRD / UNDELIV / REJECTD receipts, chosen per destination
    sim.set(dlr_stat="DELIVRD", dlr_stat_by_to={digits(phones["undeliv"]): "UNDELIV",
                                                digits(phones["rejectd"]): "REJECTD"})
    refs = {name: lodge(bens[name]) for name in ("dlv", "undeliv", "rejectd")}
    want = {"dlv": "delivered", "undeliv": "failed", "rejectd": "failed"}
    got = wait_for(lambda: (lambda d: d if d == want else None)({nm: outbox(r) for nm, r in refs.items()}), 30)
    s.eq(got or {nm: outbox(r) for nm, r in refs.items()}, want,
         "receipts reach core's outbox: DELIVRD -> delivered, UNDELIV -> failed, REJECTD -> failed")
    mts = {nm: accepted_for(r) for nm, r in refs.items()}
    s.check(all(len(v) == 1 and v[0]["registered_delivery"] == 1 and v[0]["to"] == digits(phones[nm])
                and v[0]["data_coding"] == 0 and (v[0]["text"] or "").startswith("Hifadhi: malalamiko yako")
                for nm, v in mts.items()),
            "each alert went once through the SMPP link, to the beneficiary, asking for a receipt, in Swahili",
            {nm: [(r["to"], r["registered_delivery"], r["text"]) for r in v] for nm, v in mts.items()})
    s.eq([mts[nm][0]["receipt"] if mts[nm] else None for nm in ("dlv", "undeliv", "rejectd")],
         ["DELIVRD", "UNDELIV", "REJECTD"], "the simulator sent the receipt each destination was set for")

    # a submit_sm the SMSC refuses (ESME_RSUBMITFAIL): final, not retried
    s.check(wait_for(lambda: unsettled() == 0, 20), "nothing else in flight before the SMSC starts refusing")
    sim.set(reject_every_n=1)
    ref = lodge(bens["refused"])
    st_refused = wait_for(lambda: outbox(ref) == "failed" and outbox(ref), 30)
    sim.set(reject_every_n=0)
    tries = [r for r in sim.mt() if ref in (r["text"] or "")]
    s.eq(st_refused or outbox(ref), "failed", "a submit the SMSC refuses (ESME_RSUBMITFAIL) makes the outbox row failed")
    s.eq([(r["result"], r["status"]) for r in tries], [("rejected", ESME_RSUBMITFAIL)],
         "the refused message was submitted once: a permanent refusal is not retried")

    # throttling: every 2nd submit_sm answered ESME_RTHROTTLED, then above 2 per second
    for label, switches, names_ in (("every 2nd submit throttled", {"throttle_every_n": 2},
                                     [f"thr{i}" for i in range(6)]),
                                    ("submits above 2 per second throttled", {"throttle_above_per_s": 2},
                                     [f"rate{i}" for i in range(6)])):
        s.check(wait_for(lambda: unsettled() == 0, 20), f"nothing in flight before: {label}")
        throttled_before = sim.stats()["throttled"]
        sim.set(**switches)
        t_refs = {nm: lodge(bens[nm]) for nm in names_}
        ok = wait_for(lambda: all(outbox(r) == "delivered" for r in t_refs.values()), 45)
        sim.set(throttle_every_n=0, throttle_above_per_s=0)
        throttled = sim.stats()["throttled"] - throttled_before
        counts = {nm: len(accepted_for(r)) for nm, r in t_refs.items()}
        s.check(throttled > 0, f"{label}: the SMSC did throttle ({throttled} times)", sim.stats())
        s.check(ok, f"{label}: every alert is delivered in the end (Kannel retries throttled submits)",
                {nm: outbox(r) for nm, r in t_refs.items()})
        s.eq(counts, {nm: 1 for nm in names_}, f"{label}: none lost, none sent twice")

    # ---- kill -9 of bearerbox with messages in its store: none lost (the SMSC acknowledges for real here)
    s.check(wait_for(lambda: unsettled() == 0, 20), "nothing in flight before the bearerbox crash")
    before_crash = sim.stats()
    s.check(before_crash["receipts_acked"] == before_crash["receipts_sent"] and before_crash["receipts_refused"] == 0,
            "up to the crash, Kannel acknowledged every receipt", before_crash)
    crash_names = [f"thr{i}" for i in range(6)] + [f"rate{i}" for i in range(6)]
    sim.set(throttle_above_per_s=3)  # Kannel has to keep most of them queued in its store
    crash_refs = {}
    # three different complaints each (the same one again would be linked to the first, not a new SMS)
    for rnd, cat in enumerate(("amount_short", "exclusion_error", "other")):
        for nm in crash_names:
            crash_refs[f"{nm}/{rnd}"] = lodge(bens[nm], category=cat, summary=f"Swali la {rnd} kuhusu malipo")
    wait_for(lambda: any(accepted_for(r) for r in crash_refs.values()), 20)
    k.kill_bearerbox()
    k.restart_bearerbox()
    sim.set(throttle_above_per_s=0)
    s.check(sim.wait_bound(), "Kannel binds again after the crash", sim.stats())
    arrived = wait_for(lambda: all(accepted_for(r) for r in crash_refs.values()), 120)
    s.eq(len(set(crash_refs.values())), len(crash_refs), "each complaint is a case of its own")
    dup = sum(len(accepted_for(r)) - 1 for r in crash_refs.values() if len(accepted_for(r)) > 1)
    s.check(arrived, f"after kill -9 of bearerbox every one of {len(crash_refs)} alerts reached the SMSC"
            f" (duplicates from Kannel's store recovery: {dup})",
            {k_: len(accepted_for(r)) for k_, r in crash_refs.items() if not accepted_for(r)})
    print(f"# bearerbox crash over SMPP: {len(crash_refs)} alerts, {dup} delivered twice by Kannel's recovery",
          flush=True)

    # ---- what the logs say
    s.check(USSD_PHONE not in gw.log_text() and U not in gw.log_text() and U not in core.log_text(),
            "the subscriber's number is in neither the gateway's nor core's log", "")
    s.check(U not in sim.log_text(), "the simulator's own log masks numbers", "")
    final = sim.stats()
    s.eq((final["bad_pdus"], final["receipts_dropped"]), (0, 0), "every PDU Kannel sent decoded; no receipt dropped")
    s.check(final["receipts_refused"] == 0, "Kannel refused no receipt (those sent to the killed bearerbox are"
            " simply unanswered)", final)

    # ---- stop everything
    k.stop()
    s.eq(k.pids(), {"bearerbox": [], "fakesmsc": [], "smsbox": []}, "Kannel is stopped")
    gw.stop()
    sim.stop()
    print(f"# suite time {time.monotonic() - t0:.1f}s", flush=True)
