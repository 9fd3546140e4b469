"""test_payments_crash.py - kill -9 hifadhi-core at random moments while it disburses and while kiosks collect
(20 times each, restarting it every time), then prove that the ledger balances, that no payment was paid or
collected twice and that none was lost.
"""
import json
import random
import threading
import time
import uuid

from harness import Suite, Core, Mariadb, PaySim, _live_cores, error_fields
from kiosk_client import Kiosk, fake_template

KILLS = 20
N_MOBILE = 800
rng = random.Random(20261128)


def day(offset):
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + offset * 86400))


def kill9(core):
    """SIGKILL: no shutdown, no final checkpoint, transactions cut wherever they were."""
    if core.proc:
        core.proc.kill()
        core.proc.wait()
        if core in _live_cores:
            _live_cores.remove(core)
        core.proc = None


with Suite() as s:
    sim = PaySim(s)
    core = Core(s, overrides=sim.core_overrides(**{"payments.batch": "25", "payments.send_threads": "2"}), start=False)
    sql = lambda q: Mariadb.sql(q, db=core.db)

    # A registry of a few hundred older persons with phones, enrolled in OPCT.
    csv_path = s.var / "registry.csv"
    gen = core.run_cli(["gen", "--households", str(N_MOBILE), "--seed", "7", "--bad-rate", "0", "--dup-rate", "0"],
                       check=True).stdout.splitlines()
    out = [gen[0]]
    for line in gen[1:]:
        cols = line.rsplit(",", 1)[0]
        out.append(cols + ("," + "OPCT" if ",1,head," in line else ","))
    csv_path.write_text("\n".join(out) + "\n")
    core.start()
    core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer", "target": "individual",
                                     "currency": "KES"}, as_="admin")
    r = core.run_cli(["import", str(csv_path)])
    s.check(r.returncode == 0, "the registry is imported", r.stderr[-500:])
    sql("UPDATE enrolments SET status = 'enrolled'")
    n_enrolled = int(sql("SELECT COUNT(*) FROM enrolments WHERE status = 'enrolled'").strip())
    n_phone = int(sql("SELECT COUNT(*) FROM enrolments e JOIN individuals i ON i.id = e.individual_id"
                      " WHERE i.phone_enc IS NOT NULL").strip())
    officer_a = core.staff("payment_officer", "pay.achieng")
    officer_b = core.staff("payment_officer", "pay.baraka")
    core.post("/api/v1/ledger/funding", {"programme": "OPCT", "amount": 10 ** 10, "currency": "KES",
                                         "reference": "CRASH-FUND"}, as_=officer_a)

    # ---- disbursement under kill -9
    C = "OPCT-CRASH"
    core.post("/api/v1/cycles", {"code": C, "programme": "OPCT", "rule": {"kind": "flat", "amount": 250000},
                                 "cutoff_date": day(0), "pay_from": day(1), "pay_until": day(30),
                                 "channel": "mobile_money"}, as_=officer_a)
    core.post(f"/api/v1/cycles/{C}/payroll", {}, as_=officer_a)
    core.post(f"/api/v1/cycles/{C}/submit", {}, as_=officer_a)
    # A slow provider that sometimes repeats its callbacks: disbursement lasts long enough to be cut often.
    sim.config(default={"accept_delay_ms": 25, "callback_delay_ms": 40, "duplicate_callbacks": 2})
    st, _, ap = core.post(f"/api/v1/cycles/{C}/approve", {}, as_=officer_b)
    s.check(st == 200 and ap["payroll_count"] == n_phone, "a payroll of everyone with a phone is approved",
            f"{st} {ap.get('payroll_count')} vs {n_phone}")
    total = ap["payroll_count"]

    def settled_count():
        return int(sql(f"SELECT COUNT(*) FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id WHERE"
                       f" c.code = '{C}' AND p.status IN ('paid', 'failed')").strip())

    kills_during = 0
    for k in range(KILLS):
        time.sleep(rng.uniform(0.05, 0.45))
        if settled_count() < total:
            kills_during += 1
        kill9(core)
        core.start()
    s.check(kills_during >= 10, "most kills landed while money was moving", f"{kills_during} of {KILLS}")
    deadline = time.monotonic() + 120
    while settled_count() < total and time.monotonic() < deadline:
        time.sleep(0.2)
    s.eq(settled_count(), total, "after 20 kills and restarts every payment is settled: none lost")
    paid = int(sql(f"SELECT COUNT(*) FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id WHERE c.code = '{C}'"
                   f" AND p.status = 'paid'").strip())
    s.eq(paid, total, "and every one of them is paid")
    stmt = sim.statement().splitlines()[1:]
    refs = [line.split(",")[1] for line in stmt if ",PAID," in line]
    s.check(len(refs) == total and len(set(refs)) == total,
            "the provider's own statement has each payment exactly once: nobody paid twice",
            f"{len(refs)} lines, {len(set(refs))} distinct, {total} payments")
    postings = int(sql("SELECT COUNT(*) FROM ledger_postings WHERE kind = 'paid'").strip())
    s.eq(postings, total, "the ledger has one paid posting per payment")
    r = core.run_cli(["ledger", "check"])
    s.check(r.returncode == 0 and json.loads(r.stdout)["ok"], "the books balance after the crashes",
            r.stdout[-800:] + r.stderr[-300:])

    # ---- kiosk collection under kill -9
    K = "OPCT-KIOSK-CRASH"
    st, _, c2 = core.post("/api/v1/cycles", {"code": K, "programme": "OPCT", "rule": {"kind": "flat", "amount": 100000},
                          "cutoff_date": day(0), "pay_from": day(0), "pay_until": day(0), "channel": "kiosk",
                          "pay_points": {"Bonde": "PP-VALLEY", "Jiji": "PP-CITY", "Kaskazini Mashariki": "PP-NORTH-EAST",
                                         "Kati": "PP-CENTRE", "Kusini": "PP-SOUTH", "Magharibi": "PP-WEST",
                                         "Pwani": "PP-COAST", "Ziwani": "PP-LAKE"}}, as_=officer_a)
    core.post(f"/api/v1/cycles/{K}/payroll", {}, as_=officer_a)
    core.post(f"/api/v1/cycles/{K}/submit", {}, as_=officer_a)
    st, _, ap = core.post(f"/api/v1/cycles/{K}/approve", {}, as_=officer_b)
    s.check(st == 200 and ap["payroll_count"] > 0, "a kiosk cycle is approved", f"{st} {ap}")
    rows = sql(f"SELECT p.id, i.ben_no, p.pay_point FROM payments p JOIN individuals i ON i.id = p.individual_id"
               f" JOIN payment_cycles c ON c.id = p.cycle_id WHERE c.code = '{K}' ORDER BY p.id").split("\n")[:-1]
    todo = [r.split("\t") for r in rows]
    points = sorted({t[2] for t in todo})
    kiosks = {pp: [Kiosk.register(core, pp, as_=officer_a) for _ in range(2)] for pp in points}
    # Every payee's fingerprint, taken at an enrolment station: a pay point pays out only after a
    # verification, so each kiosk gets a token per person before it collects.
    station = Kiosk.register(core, points[0], as_=officer_a, mode="enrolment")
    seal_pk = station.call("GET", "/api/v1/kiosk/me")[2]["seal_pk"]
    enrolled = sum(station.enrol_template(ben, fake_template(ben.encode()), seal_pk=seal_pk)[0] == 201
                   for _, ben, _ in todo)
    s.eq(enrolled, len(todo), "every kiosk payee has a fingerprint template")

    outcomes = {}  # payment id -> list of (status) answers, until 201 or 409
    stop = threading.Event()

    def until_answered(fn):
        """Calls fn until core answers (it is down half the time here); None when the test gives up."""
        while not stop.is_set():
            try:
                st_, b_ = fn()
            except OSError:
                time.sleep(0.05)  # the core is down: the terminal keeps it and tries again
                continue
            if st_ >= 500:
                time.sleep(0.05)
                continue
            return st_, b_
        return None

    def collect_all(which):
        # Two kiosks per pay point walk the same list in opposite orders: they race for every payment. Each
        # keeps its request id for a payment across retries, as a terminal does: a collection whose answer
        # was lost in a crash is answered again, not collected again.
        order = todo if which == 0 else list(reversed(todo))
        for pid, ben, pp in order:
            k = kiosks[pp][which]
            rid = str(uuid.uuid4())
            token = None
            while not stop.is_set():
                if token is None:
                    got = until_answered(lambda: k.verify(ben))
                    if not got or got[0] != 201:
                        break
                    token = got[1]["verification"]
                got = until_answered(lambda: k.collect(pid, ben, token, request_id=rid, timeout=5)[:2])
                if not got:
                    break
                outcomes.setdefault(pid, []).append(got[0])
                if got[0] == 400 and "verification" in error_fields(got[1]):
                    token = None  # expired while core was down: verify again
                    continue
                break

    workers = [threading.Thread(target=collect_all, args=(w,)) for w in (0, 1)]
    for w in workers:
        w.start()

    def collected_count():
        return int(sql(f"SELECT COUNT(*) FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id WHERE"
                       f" c.code = '{K}' AND p.status = 'collected'").strip())
    kills_during = 0
    for k in range(KILLS):
        time.sleep(rng.uniform(0.01, 0.06))
        kills_during += collected_count() < len(todo)
        kill9(core)
        core.start()
    s.check(kills_during >= 10, "most kills landed while kiosks were paying out", f"{kills_during} of {KILLS}")
    for w in workers:
        w.join(120)
    stop.set()
    collected = int(sql(f"SELECT COUNT(*) FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id WHERE"
                        f" c.code = '{K}' AND p.status = 'collected'").strip())
    s.eq(collected, len(todo), "after 20 kills every kiosk payment is collected: none lost")
    wins = sum(1 for v in outcomes.values() if v.count(201) == 1)
    s.check(all(v.count(201) <= 1 for v in outcomes.values()) and
            int(sql("SELECT COUNT(*) FROM ledger_postings WHERE kind = 'collect'").strip()) == len(todo),
            "no payment was handed out twice: one collect posting each, never two successes",
            f"{wins} wins over {len(todo)}")
    s.eq(wins, len(todo), "and for every payment exactly one kiosk was told 201 (a lost answer is asked again)")
    sms = int(sql("SELECT COUNT(*) FROM outbox WHERE template = 'kiosk_receipt'").strip())
    with_phone = int(sql(f"SELECT COUNT(*) FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id JOIN individuals"
                         f" i ON i.id = p.individual_id WHERE c.code = '{K}' AND i.phone_enc IS NOT NULL").strip())
    s.eq(sms, with_phone, "one SMS receipt per collection with a phone, none doubled by the crashes")
    r = core.run_cli(["ledger", "check"])
    s.check(r.returncode == 0 and json.loads(r.stdout)["ok"], "the books balance after the collection crashes",
            r.stdout[-800:] + r.stderr[-300:])
