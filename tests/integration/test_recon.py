"""test_recon.py - reconciliation of a provider statement against a cycle's ledger, through the API: every
kind of item (matched, amount mismatch, duplicated, missing on either side, broken lines with their line
numbers), statements refused whole (header, CSV syntax, empty), unknown and unapproved cycles, the alert, the
audit entry, the list of runs, paging, the role matrix, and a 100,000-line statement.

The payments and the ledger are written directly in SQL (the disbursement code is not what is tested here):
a paid payment has a 'paid' posting of +amount on paid:OPCT and -amount on settlement:mpesa, as the
disbursement code posts it, and some have a 'send' posting too, which must not count as paid.
"""
import hashlib
import time

from harness import Suite, Core, Mariadb, error_message as msg, error_fields as fields

HEADER = "provider_ref,reference_id,amount_minor,currency,status,completed_at"
AT = "2026-11-28T10:00:00Z"
CYCLE, OTHER, CLEAN, DRAFT, KIOSK, BIG = (
    "OPCT-2026-11", "OPCT-2026-10", "OPCT-2026-12", "OPCT-2027-01", "OPCT-KIOSK-11", "OPCT-BIG-11")
CYCLE_IDS = {CYCLE: 10, OTHER: 11, CLEAN: 12, DRAFT: 13, KIOSK: 14, BIG: 15}
ACC_PAID, ACC_SETTLE, ACC_CLEAR = 1, 2, 3
BIG_N = 100_000


def fixtures_sql():
    """Programme, cycles, ledger accounts; payments are added by payment()."""
    now = "UTC_TIMESTAMP(3)"
    out = [f"INSERT INTO programmes (id, code, name, target, currency, created_at, created_by, updated_at, updated_by)"
           f" VALUES (1, 'OPCT', 'Older persons cash transfer', 'individual', 'KES', {now}, 't', {now}, 't');"]
    for code, cid in CYCLE_IDS.items():
        status = "draft" if code == DRAFT else "closed" if code == OTHER else "approved"
        channel, provider = ("kiosk", "NULL") if code == KIOSK else ("mobile_money", "'mpesa'")
        out.append(
            "INSERT INTO payment_cycles (id, code, programme_id, programme_code, currency, rule, cutoff_date, pay_from,"
            " pay_until, channel, provider, status, created_at, created_by, updated_at, updated_by) VALUES"
            f" ({cid}, '{code}', 1, 'OPCT', 'KES', '{{}}', '2026-11-01', '2026-11-20', '2026-12-20', '{channel}',"
            f" {provider}, '{status}', {now}, 't', {now}, 't');")
    out.append("INSERT INTO ledger_accounts (id, code, kind, currency, created_at) VALUES"
               f" ({ACC_PAID}, 'paid:OPCT', 'paid', 'KES', {now}), ({ACC_SETTLE}, 'settlement:mpesa', 'settlement', 'KES', {now}),"
               f" ({ACC_CLEAR}, 'clearing:OPCT-2026-11', 'clearing', 'KES', {now});")
    return "\n".join(out)


def payment(pid, cycle, status, amount=150000, paid=None, sent=False):
    """A payment row; a 'paid' posting of `paid` (default: amount when status is paid); a 'send' posting."""
    cid = CYCLE_IDS[cycle]
    out = [f"INSERT INTO payments (id, cycle_id, enrolment_id, individual_id, amount, currency, channel, provider,"
           f" status, created_at, updated_at) VALUES ({pid}, {cid}, {pid}, {pid + 7}, {amount}, 'KES', 'mobile_money',"
           f" 'mpesa', '{status}', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3));"]
    if paid is None and status == "paid":
        paid = amount

    def posting(pno, kind, legs):
        out.append(f"INSERT INTO ledger_postings (id, idem_key, kind, cycle_id, payment_id, posted_at, posted_by)"
                   f" VALUES ({pno}, '{kind}:{pid}', '{kind}', {cid}, {pid}, UTC_TIMESTAMP(3), 't');")
        for i, (acc, amt) in enumerate(legs):
            out.append(f"INSERT INTO ledger_entries (id, posting_id, account_id, amount, currency) VALUES"
                       f" ({pno * 10 + i}, {pno}, {acc}, {amt}, 'KES');")

    if sent:
        posting(500000 + pid, "send", [(ACC_SETTLE, amount), (ACC_CLEAR, -amount)])
    if paid:
        posting(600000 + pid, "paid", [(ACC_PAID, paid), (ACC_SETTLE, -paid)])
    return "\n".join(out)


def statement(lines, header=HEADER, eol="\n"):
    return (eol.join([header] + lines) + eol).encode("utf-8")


def line(ref, pid, amount=150000, status="PAID", currency="KES", at=AT):
    return f"{ref},HF{pid},{amount},{currency},{status},{at}"


with Suite() as s:
    core = Core(s, overrides={"http.max_body": "16777216"})
    sql = lambda q: Mariadb.sql(q, db=core.db)

    sql(fixtures_sql() + "\n" + "\n".join([
        payment(1001, CYCLE, "paid", sent=True),        # matched
        payment(1002, CYCLE, "paid"),                   # the statement says 140000: amount mismatch
        payment(1003, CYCLE, "paid"),                   # two PAID lines: matched + duplicated
        payment(1004, CYCLE, "paid", sent=True),        # not in the statement
        payment(1005, CYCLE, "failed", sent=True),      # FAILED on both sides: matched
        payment(1006, CYCLE, "pending", sent=True),     # the statement says paid, our books pending
        payment(1007, CYCLE, "paid"),                   # the statement says failed
        payment(1008, CYCLE, "paid"),                   # the statement pays in USD
        payment(1009, CYCLE, "paid"),                   # quoted fields: matched
        payment(1010, CYCLE, "paid"),                   # only a broken line: missing in the statement too
        payment(1011, CYCLE, "paid", amount=99000),     # matched (another amount)
        payment(1012, CYCLE, "paid"),                   # a FAILED line, then a PAID one: the PAID one counts
        payment(1013, CYCLE, "failed"),                 # two FAILED lines: the second is duplicated
        payment(2001, OTHER, "paid"),                   # a payment of another cycle
        payment(3001, CLEAN, "paid"), payment(3002, CLEAN, "paid", amount=120000),
        payment(3003, CLEAN, "failed"),
    ]))

    def post(code, body, as_="payment_officer", ctype="text/csv"):
        return core.post(f"/api/v1/cycles/{code}/reconciliations", raw_body=body,
                         headers={"Content-Type": ctype}, as_=as_)

    def items(run_id, kind=None, limit=None):
        out, after = [], None
        while True:
            q = [f"{k}={v}" for k, v in (("kind", kind), ("limit", limit), ("after", after)) if v]
            st, _, b = core.get(f"/api/v1/reconciliations/{run_id}" + ("?" + "&".join(q) if q else ""),
                                as_="payment_officer")
            if st != 200:
                raise AssertionError(f"GET items: {st} {b}")
            out += b["items"]
            after = b.get("next")
            if not after:
                return out

    def alerts_for(run_id):
        rows = sql(f"SELECT severity, cycle_id, status FROM payment_alerts WHERE rule = 'statement_mismatch'"
                   f" AND dedupe_key = 'statement_mismatch:{run_id}'")
        return [r.split("\t") for r in rows.splitlines()]

    def run_count(code):
        return int(sql(f"SELECT COUNT(*) FROM recon_runs WHERE cycle_id = {CYCLE_IDS[code]}").strip())

    # ---- statements refused whole, before anything is recorded
    st, _, b = post(CYCLE, statement([line("R1", 1001)], header="ref,reference,amount,currency,status,date"))
    s.check(st == 400 and HEADER in msg(b), "a wrong header is refused with 400, naming the header expected",
            f"{st} {b}")
    st, _, b = post(CYCLE, statement([line("R1", 1001)], header="reference_id,provider_ref,amount_minor,currency,"
                                     "status,completed_at"))
    s.check(st == 400 and "in this order" in msg(b), "the header's columns must be in the documented order",
            f"{st} {b}")
    st, _, b = post(CLEAN, statement([line("C1", 3001), line("C2", 3002, amount=120000),
                                      line("", 3003, amount=0, status="FAILED")], header=HEADER.upper()))
    s.check(st == 201 and b["counts"]["matched"] == 3, "the header is read without regard to case", f"{st} {b}")
    runs_before = run_count(CYCLE)
    st, _, b = post(CYCLE, b"")
    s.check(st == 400 and "empty" in msg(b), "an empty statement is refused", f"{st} {b}")
    st, _, b = post(CYCLE, statement([line("R1", 1001), 'R2,"HF1002"x,150000,KES,PAID,' + AT, line("R3", 1003)]))
    s.check(st == 400 and "Line 3" in msg(b) and "not valid CSV" in msg(b),
            "a statement that is not valid CSV is refused whole, naming the line", f"{st} {b}")
    st, _, b = post(CYCLE, statement([line("R1", 1001), 'R2,"HF1002,150000,KES,PAID,' + AT]))
    s.check(st == 400 and "never closed" in msg(b), "a quote that is never closed is refused", f"{st} {b}")
    s.eq(run_count(CYCLE), runs_before, "a refused statement records no run")

    # ---- cycles and roles
    st, _, b = post("NO-SUCH-CYCLE", statement([line("R1", 1001)]))
    s.check(st == 404 and "NO-SUCH-CYCLE" in msg(b), "an unknown cycle is 404 with a message", f"{st} {b}")
    st, _, b = post(DRAFT, statement([line("R1", 1001)]))
    s.check(st == 409 and "approved" in msg(b), "a cycle that is not approved cannot be reconciled", f"{st} {b}")
    st, _, b = post(KIOSK, statement([line("R1", 1001)]))
    s.check(st == 409 and "kiosk" in msg(b), "a kiosk cycle has no provider statement to reconcile", f"{st} {b}")
    st, _, b = post(CYCLE, statement([line("R1", 1001)]), as_="case_worker")
    s.check(st == 403, "a case worker may not upload a statement", f"{st} {b}")
    st, _, b = post(CYCLE, statement([line("R1", 1001)]), as_="auditor")
    s.check(st == 403, "an auditor may not upload a statement", f"{st} {b}")
    st, _, b = core.get(f"/api/v1/cycles/{CYCLE}/reconciliations", as_="case_worker")
    s.check(st == 403, "a case worker may not list the runs", f"{st} {b}")
    s.eq(run_count(CYCLE), runs_before, "refused callers record no run")

    # ---- one statement with every kind of item. Expected: (line number, kind, payment, detail)
    lines = [
        (line("R-1001", 1001), "matched", "1001", None),
        (line("R-1002", 1002, amount=140000), "amount_mismatch", "1002", "amount"),
        (line("R-1003", 1003), "matched", "1003", None),
        (line("R-1003b", 1003, at="2026-11-28T11:00:00.250Z"), "duplicated", "1003", "same reference as line 4"),
        (line("", 1005, amount=0, status="FAILED"), "matched", "1005", "both say failed"),
        (line("R-1006", 1006), "missing_in_ledger", "1006", "our books say pending"),
        (line("", 1007, amount=0, status="FAILED"), "missing_in_statement", "1007", "statement says failed"),
        (line("R-1008", 1008, currency="USD"), "amount_mismatch", "1008", "currency"),
        ('"R-1009, Nairobi","HF1009","150000",KES,"PAID","2026-11-28T10:00:00Z"', "matched", "1009", None),
        (line("R-99999", 99999), "missing_in_ledger", None, "not one of our references"),
        ("R-X,XYZ-77,500,KES,PAID," + AT, "missing_in_ledger", None, "not one of our references"),
        (line("R-2001", 2001), "missing_in_ledger", "2001", "a payment of another cycle"),
        (line("R-1010", 1010, amount="12.5"), "broken_line", None, "amount_minor is not a whole number"),
        (line("R-B2", 1010, amount="-150000"), "broken_line", None, "amount_minor is negative"),
        (line("R-B3", 1010, amount="99999999999999999999"), "broken_line", None, "amount_minor is larger than"),
        ("R-B4,HF1010,150000,KES,PAID", "broken_line", None, "the line has 5 fields"),
        (line("R-B5", 1010, status="REFUNDED"), "broken_line", None, "status must be PAID or FAILED"),
        (line("R-B6", 1010, at="2026-13-40T10:00:00Z"), "broken_line", None, "completed_at must be a UTC time"),
        (line("R-B7", 1010, currency="ke"), "broken_line", None, "currency must be 3 capital letters"),
        ("R-B8,,150000,KES,PAID," + AT, "broken_line", None, "reference_id is required"),
        (line("", 1010), "broken_line", None, "provider_ref is required on a PAID line"),
        ('"R-B10\nsecond line",HF1010,150000,KES,PAID,' + AT, "broken_line", None, "provider_ref contains characters"),
        ("", None, None, None),  # a blank line: ignored, but it is a line of the file
        (line("R-1011", 1011, amount=99000), "matched", "1011", None),
        (line("R-B11", 1010, at="28/11/2026"), "broken_line", None, "completed_at must be a UTC time"),
        (line("", 1012, amount=0, status="FAILED"), "duplicated", "1012", "same reference as line 29"),
        (line("R-1012", 1012), "matched", "1012", None),
        (line("", 1013, amount=0, status="FAILED"), "matched", "1013", "both say failed"),
        (line("", 1013, amount=0, status="failed"), "duplicated", "1013", "same reference as line 30"),
    ]
    body = statement([text for text, *_ in lines])
    expected, no = [], 2
    for text, kind, pay, detail in lines:
        if kind:
            expected.append((no, kind, pay, detail))
        no += 1 + text.count("\n")
    st, _, rep = post(CYCLE, body)
    s.check(st == 201 and rep.get("status") == "done", "a statement with problems is reconciled (201, done)",
            f"{st} {rep}")
    run1 = rep["id"]
    want_counts = {"matched": 7, "amount_mismatch": 2, "duplicated": 3, "missing_in_ledger": 4,
                   "missing_in_statement": 3, "broken_line": 11}
    s.eq(rep.get("counts"), want_counts, "the report counts every kind (1004 and 1010 are missing in the statement)")
    s.check(rep.get("lines_total") == 28 and rep.get("lines_broken") == 11 and rep.get("cycle") == CYCLE
            and rep.get("provider") == "mpesa" and rep.get("file_sha256") == hashlib.sha256(body).hexdigest()
            and rep.get("started_at", "").endswith("Z") and rep.get("finished_at", "").endswith("Z"),
            "the report names the cycle, the provider, the line totals, the times and the file's SHA-256", str(rep))

    got = items(run1)
    by_line = {it["line"]: it for it in got if it["line"] is not None}
    for no, kind, pay, detail in expected:
        it = by_line.get(no)
        ok = it is not None and it["kind"] == kind and it["payment"] == pay and (
            detail is None and it["detail"] is None or detail is not None and (it["detail"] or "").startswith(detail))
        s.check(ok, f"line {no} is {kind}" + (f" ({detail})" if detail else ""), f"got {it}")
    missing = [it for it in got if it["line"] is None]
    s.check([(it["kind"], it["payment"], it["detail"]) for it in missing]
            == [("missing_in_statement", "1004", "not in the statement"),
                ("missing_in_statement", "1010", "not in the statement")],
            "paid payments with no readable line are missing in the statement, after the lines", str(missing))
    am = by_line[3]
    s.check(am["ledger_amount"] == 150000 and am["statement_amount"] == 140000,
            "an amount mismatch records what our ledger paid and what the statement says", str(am))
    s.check(by_line[2]["ledger_amount"] == 150000 and by_line[2]["statement_amount"] == 150000,
            "a matched line records both amounts; a 'send' posting does not count as paid", str(by_line[2]))
    s.check(missing[0]["ledger_amount"] == 150000 and missing[0]["statement_amount"] is None,
            "a payment missing in the statement records what our ledger paid", str(missing[0]))
    ids = [int(it["id"]) for it in got]
    s.check(ids == sorted(ids) and len(got) == sum(want_counts.values()),
            "items come in statement order, one per line plus the missing payments", f"{len(got)} items")

    # ---- paging and the kind filter
    page = items(run1, limit=4)
    s.check([it["id"] for it in page] == [it["id"] for it in got], "paging with limit/after walks every item once",
            f"{len(page)} vs {len(got)}")
    st, _, b = core.get(f"/api/v1/reconciliations/{run1}?limit=4", as_="payment_officer")
    s.check(st == 200 and len(b["items"]) == 4 and b.get("next") == b["items"][-1]["id"],
            "a page says where the next one starts", f"{st} {b.get('next')}")
    brk = items(run1, kind="broken_line")
    s.check(len(brk) == 11 and all(it["kind"] == "broken_line" for it in brk), "kind= lists one kind",
            f"{len(brk)}")
    s.eq(len(items(run1, kind="missing_in_statement", limit=1)), 3, "kind= pages too")
    st, _, b = core.get(f"/api/v1/reconciliations/{run1}?kind=wrong", as_="payment_officer")
    s.check(st == 400 and "kind" in fields(b), "an unknown kind is refused, naming the field", f"{st} {b}")
    st, _, b = core.get(f"/api/v1/reconciliations/{run1}?after=x", as_="payment_officer")
    s.check(st == 400 and "after" in fields(b), "a malformed after is refused", f"{st} {b}")
    st, _, b = core.get("/api/v1/reconciliations/123456789", as_="payment_officer")
    s.check(st == 404, "an unknown run is 404", f"{st} {b}")
    st, _, b = core.get(f"/api/v1/reconciliations/{run1}", as_="auditor")
    s.check(st == 200 and b["id"] == run1, "an auditor reads a run", f"{st}")
    st, _, b = core.get(f"/api/v1/reconciliations/{run1}", as_="case_worker")
    s.check(st == 403, "a case worker may not read a run", f"{st} {b}")

    # ---- the alert: one, critical, for the run with money differences
    a = alerts_for(run1)
    s.check(a == [["critical", str(CYCLE_IDS[CYCLE]), "open"]],
            "exactly one critical statement_mismatch alert is raised for the run, on the cycle", str(a))
    st, _, b = core.get(f"/api/v1/alerts?rule=statement_mismatch&cycle={CYCLE}", as_="payment_officer")
    det = [x["details"] for x in b.get("items", []) if x["details"].get("run") == run1] if st == 200 else []
    s.check(len(det) == 1 and det[0].get("counts") == want_counts,
            "payment officers see the alert with the run and its counts", f"{st} {det}")

    # ---- a clean run: no alert; a run with only broken lines: a warning
    clean = statement([line("C1", 3001), line("C2", 3002, amount=120000), line("", 3003, amount=0, status="FAILED")],
                      eol="\r\n")
    st, _, rc = post(CLEAN, b"\xef\xbb\xbf" + clean)
    s.check(st == 201 and rc["counts"] == {"matched": 3, "amount_mismatch": 0, "duplicated": 0,
                                          "missing_in_ledger": 0, "missing_in_statement": 0, "broken_line": 0},
            "a statement that agrees with the books (BOM, CRLF) is all matched", f"{st} {rc}")
    s.eq(alerts_for(rc["id"]), [], "a clean run raises no alert")
    st, _, rw = post(CLEAN, statement([line("C1", 3001), line("C2", 3002, amount=120000),
                                       line("", 3003, amount=0, status="FAILED"), "C9,HF3001,1,KES"]))
    s.check(st == 201 and rw["counts"]["broken_line"] == 1 and rw["counts"]["matched"] == 3,
            "a run whose only problem is a broken line", f"{st} {rw}")
    s.eq([x[0] for x in alerts_for(rw["id"])], ["warning"], "raises a warning, not a critical alert")
    n_alerts = int(sql("SELECT COUNT(*) FROM payment_alerts WHERE rule = 'statement_mismatch'").strip())
    s.eq(n_alerts, 2, "one alert per run with problems, none for the clean ones")

    # ---- the audit trail
    entries = core.audit(action="recon.run")
    mine = [e for e in entries if e["outcome"] == "ok" and e["detail"].get("run") == run1]
    s.check(len(mine) == 1 and mine[0]["entity"] == "cycle" and mine[0]["record"] == CYCLE
            and mine[0]["actor"] == "t_payment_officer" and mine[0]["detail"].get("counts") == want_counts
            and mine[0]["detail"].get("alert") is True,
            "the run is in the audit trail: the cycle, who, the counts, the alert", str(mine))
    s.check("R-1002" not in str(entries) and "140000" not in str(entries),
            "the audit entry holds counts, not the statement's contents", "")
    denied = [e for e in entries if e["outcome"] == "denied"]
    s.check(len(denied) >= 2, "refused uploads (case worker, auditor) are audited as denied", str(len(denied)))

    # ---- the list of runs
    st, _, lst = core.get(f"/api/v1/cycles/{CYCLE}/reconciliations", as_="auditor")
    s.check(st == 200 and lst.get("cycle") == CYCLE and [r["id"] for r in lst["items"]] == [run1]
            and lst["items"][0]["counts"] == want_counts and lst["items"][0]["by"] == "t_payment_officer",
            "GET /cycles/{code}/reconciliations lists the cycle's runs with their counts and who ran them",
            f"{st} {lst}")
    st, _, lst = core.get(f"/api/v1/cycles/{CLEAN}/reconciliations", as_="payment_officer")
    ids = [r["id"] for r in lst.get("items", [])] if st == 200 else []
    s.check(len(ids) == 3 and ids[:2] == [rw["id"], rc["id"]], "newest first", f"{st} {lst}")
    st, _, b = core.get("/api/v1/cycles/NO-SUCH-CYCLE/reconciliations", as_="payment_officer")
    s.check(st == 404, "listing the runs of an unknown cycle is 404", f"{st} {b}")

    # ---- the statement never reaches the logs
    logs = core.log_text()
    s.check("R-1009, Nairobi" not in logs and "R-1002" not in logs, "the statement's contents are never logged", "")

    # ---- a 100,000-line statement through the API
    cid = CYCLE_IDS[BIG]
    sql(f"""
INSERT INTO payments (id, cycle_id, enrolment_id, individual_id, amount, currency, channel, provider, status,
    created_at, updated_at)
  SELECT 10000000 + seq, {cid}, 10000000 + seq, 10000000 + seq, 150000, 'KES', 'mobile_money', 'mpesa', 'paid',
    UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM seq_1_to_{BIG_N};
INSERT INTO ledger_postings (id, idem_key, kind, cycle_id, payment_id, posted_at, posted_by)
  SELECT 20000000 + seq, CONCAT('paid:', 10000000 + seq), 'paid', {cid}, 10000000 + seq, UTC_TIMESTAMP(3), 't'
  FROM seq_1_to_{BIG_N};
INSERT INTO ledger_entries (id, posting_id, account_id, amount, currency)
  SELECT 30000000 + seq * 2, 20000000 + seq, {ACC_PAID}, 150000, 'KES' FROM seq_1_to_{BIG_N};
INSERT INTO ledger_entries (id, posting_id, account_id, amount, currency)
  SELECT 30000001 + seq * 2, 20000000 + seq, {ACC_SETTLE}, -150000, 'KES' FROM seq_1_to_{BIG_N};
""")
    big = statement([f"MP{i:09d},HF{10000000 + i},{150000 if i % 1000 else 149000},KES,PAID,{AT}"
                     for i in range(1, BIG_N + 1)])
    t0 = time.monotonic()
    st, _, rb = core.request("POST", f"/api/v1/cycles/{BIG}/reconciliations", raw_body=big,
                             headers={"Content-Type": "text/csv"}, as_="payment_officer", timeout=300)
    secs = time.monotonic() - t0
    print(f"100000-line statement ({len(big) / 1e6:.1f} MB) reconciled through the API in {secs:.1f} s", flush=True)
    s.check(st == 201 and rb.get("lines_total") == BIG_N and rb["counts"]["matched"] == BIG_N - BIG_N // 1000
            and rb["counts"]["amount_mismatch"] == BIG_N // 1000 and rb["counts"]["missing_in_statement"] == 0,
            "a 100,000-line statement is reconciled: 99,900 matched, 100 amount mismatches", f"{st} {rb}")
    st, _, b = core.get(f"/api/v1/reconciliations/{rb.get('id')}?kind=amount_mismatch&limit=100",
                        as_="payment_officer")
    s.check(st == 200 and len(b["items"]) == 100 and b["items"][0]["line"] == 1001
            and b["items"][0]["payment"] == "10001000", "its mismatches are listed by line", f"{st}")
