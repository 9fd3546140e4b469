"""test_cases.py - cases through the API: lodging, the shipped workflows, maker-checker, SLA escalation,
confidential grievances, duplicate complaints, change requests applied to the registry, eligibility, the
beneficiary channels, queues, and workflow files that do not validate.
"""
import json
import shutil
import time

from harness import Suite, Core, Mariadb, ROOT, error_message as msg, error_fields as fields

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}


def head(given, phone, dob="1950-02-01", **extra):
    m = {"given_name": given, "family_name": "Ochieng", "sex": "female", "date_of_birth": dob,
         "relationship": "head", "language": "luo", "phone": phone}
    m.update(extra)
    return m


with Suite() as s:
    core = Core(s)
    sql = lambda q: Mariadb.sql(q, db=core.db)

    def outbox(ref):
        return sql(f"SELECT o.template, o.status, o.language FROM outbox o JOIN cases c ON c.id = o.case_id"
                   f" WHERE c.ref = '{ref}' ORDER BY o.created_at, o.id").split("\n")[:-1]

    st, _, hh = core.post("/api/v1/households", {"location": LOC, "members": [
        head("Akinyi", "+254711222333"), {"given_name": "Otieno", "family_name": "Ochieng", "sex": "male",
                                          "date_of_birth": "2012-05-01", "relationship": "grandchild",
                                          "language": "luo"}]})
    s.check(st == 201, "a household to work with", f"{st} {hh}")
    ben = hh["members"][0]["ben_no"]
    hh_no = hh["hh_no"]
    st, _, other = core.post("/api/v1/households", {"location": LOC, "members": [head("Adhiambo", "+254711999888")]})
    ben2 = other["members"][0]["ben_no"]

    # ---- lodging a grievance: reference, SLA, team, SMS in the outbox
    g = {"type": "grievance", "category": "payment_not_received", "ben_no": ben, "payment_ref": "PAY-2026-03",
         "summary": "Went to the kiosk on 3 March, no money was there."}
    st, _, c1 = core.post("/api/v1/cases", g, as_="support")
    s.check(st == 201 and len(c1["ref"]) == 9 and c1["state"] == "lodged" and c1["sla"]["state"] == "on_track"
            and c1["channel"] == "staff" and c1["team"] == "Kisumu/Nyando:payments",
            "support lodges a grievance: reference, state, SLA on track, the district's payments team (by category)",
            f"{st} {c1}")
    ref1 = c1["ref"]
    s.check(outbox(ref1) == ["grievance_lodged\tqueued\tluo"],
            "the beneficiary's SMS is queued in their language", str(outbox(ref1)))
    dump = sql("SELECT HEX(phone_enc), params FROM outbox")
    s.check("711222333" not in dump and ref1 in dump, "the outbox holds the phone sealed, the reference in clear", "")

    # ---- bad input
    st, _, b = core.post("/api/v1/cases", dict(g, category="weather"), as_="support")
    s.check(st == 400 and "category" in fields(b), "an unknown category is refused", f"{st} {b}")
    st, _, b = core.post("/api/v1/cases", dict(g, type="lawsuit"), as_="support")
    s.check(st == 400 and "type" in fields(b), "an unknown case type is refused", f"{st} {b}")
    st, _, b = core.post("/api/v1/cases", {"type": "change_request", "category": "phone"}, as_="registrar")
    s.check(st == 400 and "ben_no" in fields(b), "only grievances may be anonymous", f"{st} {b}")

    # ---- a repeated complaint is linked, not duplicated
    st, _, dup = core.post("/api/v1/cases", dict(g, summary="still nothing"),
                           headers={"X-Hifadhi-Service-Key": core.gateway_secret()}, as_=None)
    s.check(st == 200 and dup["linked"] and dup["ref"] == ref1,
            "the same person, category and payment within 72 h links to the open case and gives its reference",
            f"{st} {dup}")
    s.check("grievance_duplicate\tqueued\tluo" in outbox(ref1), "and tells the beneficiary the existing reference",
            str(outbox(ref1)))
    st, _, c2 = core.post("/api/v1/cases", dict(g, payment_ref="PAY-2026-04"), as_="support")
    s.check(st == 201 and c2["ref"] != ref1, "another payment is another case", f"{st} {c2}")

    # ---- the grievance workflow: roles, required fields, invalid transitions
    def move(ref, who, **body):
        return core.post(f"/api/v1/cases/{ref}/transitions", body, as_=who)

    st, _, b = move(ref1, "support", transition="acknowledge", note="called back")
    s.check(st == 403 and "may not" in msg(b), "a role the workflow does not name may not take the transition",
            f"{st} {b}")
    st, _, b = move(ref1, "case_worker", transition="acknowledge")
    s.check(st == 400 and "note" in fields(b), "a missing required field is named", f"{st} {b}")
    st, _, b = move(ref1, "case_worker", transition="resolve", decision="upheld", note="x")
    s.check(st == 409 and "not possible from state lodged" in msg(b), "a transition from the wrong state is refused",
            f"{st} {b}")
    st, _, b = move(ref1, "case_worker", transition="fly")
    s.check(st == 400 and "transition" in fields(b), "an unknown transition is refused", f"{st} {b}")
    st, _, c = move(ref1, "case_worker", transition="acknowledge", note="Called the beneficiary back.")
    s.check(st == 200 and c["state"] == "acknowledged", "acknowledge", f"{st} {c}")
    st, _, c = move(ref1, "case_worker", transition="start_investigation", assignee="t_case_worker")
    s.check(st == 200 and c["state"] == "investigating" and c["assigned_to"] == "t_case_worker",
            "start the investigation, assigned to a case worker", f"{st} {c}")
    st, _, mine = core.get("/api/v1/cases?queue=mine", as_="case_worker")
    s.check(st == 200 and ref1 in [x["ref"] for x in mine["items"]] and mine["counts"]["total"] >= 1,
            "the case is in the case worker's own queue, with counts", f"{st} {mine}")
    st, _, c = move(ref1, "case_worker", transition="resolve", decision="upheld", note="Paid at the next cycle.")
    s.check(st == 200 and c["state"] == "resolved" and "grievance_resolved\tqueued\tluo" in outbox(ref1),
            "resolve: the beneficiary is told by SMS", f"{st} {c} {outbox(ref1)}")
    st, _, c = move(ref1, "case_worker", transition="close", note="confirmed with the beneficiary")
    s.check(st == 200 and c["state"] == "closed" and not c["open"] and c["sla"]["state"] == "none",
            "close: the case is over, no SLA", f"{st} {c}")
    kinds = [e["kind"] for e in c["events"]]
    s.check(kinds[:1] == ["created"] and kinds.count("transition") == 4 and "linked" in kinds,
            "the history lists creation, the link and every transition", str(kinds))
    st, _, b = move(ref1, "case_worker", transition="reopen", reason="again")
    s.check(st == 409 and "closed" in msg(b), "a closed case cannot move", f"{st} {b}")

    # ---- maker-checker: a rejection needs a second, different person
    ref2 = c2["ref"]
    st, _, b = move(ref2, "case_worker", transition="reject", reason="Payment was collected on 4 April.")
    s.check(st == 202 and b["state"] == "lodged" and b["pending_approval"]["transition"] == "reject",
            "a maker-checker transition waits for approval", f"{st} {b}")
    st, _, b = core.post(f"/api/v1/cases/{ref2}/approval", {"approve": True}, as_="case_worker")
    s.check(st == 403 and "different person" in msg(b), "the maker cannot approve their own request", f"{st} {b}")
    st, _, b = move(ref2, "registrar", transition="reject", reason="again")
    s.check(st == 409 and "waiting for approval" in msg(b), "one pending request at a time", f"{st} {b}")
    st, _, b = core.post(f"/api/v1/cases/{ref2}/approval", {"approve": True, "note": "checked the ledger"},
                         as_="registrar")
    s.check(st == 200 and b["state"] == "rejected" and not b["open"] and b["pending_approval"] is None
            and "grievance_rejected\tqueued\tluo" in outbox(ref2),
            "a second person approves: the case moves and its actions run", f"{st} {b}")

    # ---- attachments: sealed at rest, given back byte for byte
    import base64
    import hashlib
    receipt = b"M-PESA receipt QX71 KES 4,000 3 March\n" * 20
    st, _, at = core.post(f"/api/v1/cases/{ref2}/attachments", {"filename": "receipt.txt", "content_type": "text/plain",
                                                                 "content_base64": base64.b64encode(receipt).decode()},
                          as_="support")
    s.check(st == 201 and at["size"] == len(receipt) and at["sha256"] == hashlib.sha256(receipt).hexdigest(),
            "a file is attached to a case", f"{st} {at}")
    st, _, got = core.get(f"/api/v1/cases/{ref2}/attachments/{at['id']}", as_="registrar")
    s.check(st == 200 and base64.b64decode(got["content_base64"]) == receipt and got["filename"] == "receipt.txt",
            "and read back as it was", f"{st} {str(got)[:200]}")
    s.check(b"M-PESA receipt".hex().upper() not in sql("SELECT HEX(content_enc), HEX(filename_enc) FROM case_attachments")
            and b"receipt.txt".hex().upper() not in sql("SELECT HEX(filename_enc) FROM case_attachments"),
            "stored sealed, the file name too", "")
    st, _, b = core.post(f"/api/v1/cases/{ref2}/attachments", {"filename": "big.pdf", "content_type": "application/pdf",
                                                                "content_base64": base64.b64encode(b"x" * 600000).decode()},
                         as_="support")
    s.check(st in (400, 413), "an attachment over the cap is refused", f"{st}")
    st, _, b = core.post(f"/api/v1/cases/{ref2}/attachments", {"filename": "a.exe", "content_type": "application/x-msdos",
                                                                "content_base64": "AAAA"}, as_="support")
    s.check(st == 400 and "content_type" in fields(b), "only the listed kinds of file are taken", f"{st} {b}")

    # ---- confidential grievances
    st, _, conf = core.post("/api/v1/cases", {"type": "grievance", "category": "staff_misconduct", "ben_no": ben,
                                              "summary": "The agent asked for KES 500 to register me."},
                            as_="support")
    s.check(st == 201 and conf["confidential"] and conf["summary"] == "***" and conf["category"] == "confidential",
            "a staff-misconduct grievance is confidential: the lodger sees it masked", f"{st} {conf}")
    refc = conf["ref"]
    st, _, b = core.get(f"/api/v1/cases/{refc}", as_="case_worker")
    s.check(st == 200 and b["summary"] == "***" and all(e.get("note", "***") == "***" for e in b["events"]),
            "other roles see it masked", f"{st} {b}")
    st, _, b = core.get(f"/api/v1/cases/{refc}", as_="auditor")
    s.check(st == 200 and b["summary"].startswith("The agent asked") and b["category"] == "staff_misconduct",
            "the confidential role sees it whole", f"{st} {b}")
    st, _, b = move(refc, "case_worker", transition="acknowledge", note="x")
    s.check(st == 404, "other roles cannot act on it", f"{st} {b}")
    st, _, b = move(refc, "auditor", transition="acknowledge", note="Taken over by the integrity unit.")
    s.check(st == 200 and b["state"] == "acknowledged", "the confidential role can", f"{st} {b}")
    st, _, lst = core.get("/api/v1/cases?type=grievance&limit=100", as_="registrar")
    masked = [x for x in lst.get("items", []) if x["ref"] == refc]
    s.check(masked and masked[0]["summary"] == "***" and masked[0]["category"] == "confidential",
            "listings mask it too", str(masked))

    # ---- change request applied to the registry on approval
    st, _, cr = core.post("/api/v1/cases", {"type": "change_request", "category": "phone", "ben_no": ben,
                                            "data": {"change": {"phone": "+254722333444"}}}, as_="registrar")
    refcr = cr["ref"]
    for t, extra in (("start_verification", {}), ("submit_for_approval", {"note": "ID seen at the office"})):
        st, _, b = move(refcr, "registrar", transition=t, **extra)
    st, _, b = move(refcr, "registrar", transition="approve", note="verified")
    s.check(st == 202, "approving a change needs a checker", f"{st} {b}")
    st, _, ind = core.get(f"/api/v1/individuals/{ben}")
    s.check(ind["phone"] == "+254711222333", "nothing changes before the approval", ind.get("phone"))
    st, _, b = core.post(f"/api/v1/cases/{refcr}/approval", {"approve": True}, as_="case_worker")
    s.check(st == 200 and b["state"] == "applied", "the checker approves: the change request is applied", f"{st} {b}")
    st, _, ind = core.get(f"/api/v1/individuals/{ben}")
    st2, _, hist = core.get(f"/api/v1/individuals/{ben}/history")
    s.check(ind["phone"] == "+254722333444" and ind["version"] == 2 and hist["previous"][0]["reason"] ==
            f"change request {refcr}", "the registry has the new phone, with history naming the case",
            f"{ind.get('phone')} {hist}")

    # ---- an application runs the programme's eligibility rules
    core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons", "target": "individual",
                                     "currency": "KES"})
    st, _, ap = core.post("/api/v1/cases", {"type": "application", "programme": "OPCT", "hh_no": hh_no,
                                            "data": {"form": {"owns_livestock": 0, "has_iron_roof": 1}}},
                          as_="registrar")
    s.check(st == 201 and ap["state"] == "submitted", "an application is lodged for a programme", f"{st} {ap}")
    refa = ap["ref"]
    move(refa, "registrar", transition="start_verification")
    st, _, b = move(refa, "registrar", transition="verify", note="documents seen")
    el = b.get("eligibility") or {}
    s.check(st == 200 and b["state"] == "eligibility_check" and el.get("outcome") in ("eligible", "not_eligible",
                                                                                       "needs_review")
            and el.get("conditions") and all("explain" in x for x in el["conditions"]),
            "verification runs the eligibility rules; the outcome and explanation are on the case", f"{st} {b}")
    s.check(el.get("outcome") == "eligible", "a head born in 1950 is eligible for the older persons' programme",
            str(el))

    st, _, b = move(refa, "registrar", transition="refer_for_decision", note="eligible on the rules")
    st, _, b = move(refa, "registrar", transition="approve", note="approved by the committee")
    s.check(st == 202, "approving an application waits for a second registrar", f"{st} {b}")
    other_reg = core.staff("registrar", "second.registrar")
    st, _, b = core.post(f"/api/v1/cases/{refa}/approval", {"approve": True, "note": "seen"}, as_=other_reg)
    s.check(st == 200 and b["state"] == "approved" and not b["open"] and
            "application_approved\tqueued\tluo" in outbox(refa),
            "a second registrar approves: the application is approved and the household told", f"{st} {b}")

    # ---- a death, approved, ends the person's enrolments; an address change lands on the household
    st, _, en = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": ben})
    s.check(st == 201, "the head is enrolled in OPCT", f"{st} {en}")

    def through(ref, checker="case_worker"):
        move(ref, "registrar", transition="start_verification")
        move(ref, "registrar", transition="submit_for_approval", note="certificate seen")
        move(ref, "registrar", transition="approve", note="verified")
        return core.post(f"/api/v1/cases/{ref}/approval", {"approve": True}, as_=checker)

    st, _, cd = core.post("/api/v1/cases", {"type": "change_request", "category": "death", "ben_no": ben,
                                            "summary": "Death certificate 4471 from the chief"}, as_="registrar")
    st, _, b = through(cd["ref"])
    st2, _, e = core.get(f"/api/v1/enrolments?ben_no={ben}")
    s.check(st == 200 and b["state"] == "applied" and e["items"] and
            all(x["status"] == "deceased" for x in e["items"]),
            "an approved death ends the person's enrolments (status deceased)", f"{st} {b.get('state')} {e}")
    st, _, ca = core.post("/api/v1/cases", {"type": "change_request", "category": "address", "hh_no": hh_no,
                                            "data": {"change": {"address": "Plot 12, behind the market"}}},
                          as_="registrar")
    st, _, b = through(ca["ref"])
    st2, _, h2 = core.get(f"/api/v1/households/{hh_no}")
    s.check(st == 200 and b["state"] == "applied" and h2.get("address") == "Plot 12, behind the market",
            "an approved address change updates the household", f"{st} {h2.get('address')}")

    # ---- the household's shape: a member joins, the head changes, a member leaves
    st, _, cm = core.post("/api/v1/cases", {"type": "change_request", "category": "member_added", "hh_no": hh_no,
                                            "data": {"change": {"given_name": "Baraka", "family_name": "Ochieng",
                                                                "sex": "male", "date_of_birth": "2024-01-09",
                                                                "relationship": "grandchild", "language": "luo"}}},
                          as_="registrar")
    st, _, b = through(cm["ref"])
    st2, _, h3 = core.get(f"/api/v1/households/{hh_no}")
    s.check(st == 200 and b["state"] == "applied" and len(h3["members"]) == 3,
            "an approved new member joins the household", f"{st} {b.get('state')} {len(h3.get('members', []))}")
    grandchild = hh["members"][1]["ben_no"]
    st, _, ch = core.post("/api/v1/cases", {"type": "change_request", "category": "head_of_household",
                                            "ben_no": grandchild,
                                            "data": {"change": {"previous_head_relationship": "parent"}}},
                          as_="registrar")
    st, _, b = through(ch["ref"])
    st2, _, h4 = core.get(f"/api/v1/households/{hh_no}")
    rel = {m["ben_no"]: m["relationship"] for m in h4.get("members", [])}
    s.check(st == 200 and rel.get(grandchild) == "head" and rel.get(ben) == "parent",
            "an approved change of head: the new head, the old head now a parent", f"{st} {rel}")
    st, _, cr2 = core.post("/api/v1/cases", {"type": "change_request", "category": "member_removed", "ben_no": ben,
                                             "summary": "moved to her daughter's household"}, as_="registrar")
    st, _, b = through(cr2["ref"])
    st2, _, h5 = core.get(f"/api/v1/households/{hh_no}")
    st3, _, gone = core.get(f"/api/v1/individuals/{ben}")
    s.check(st == 200 and ben not in [m["ben_no"] for m in h5.get("members", [])] and st3 == 200
            and gone.get("hh_no") is None, "an approved removal: the person leaves the household, stays in the registry",
            f"{st} {b.get('state')} {gone.get('hh_no')}")
    st, _, cr3 = core.post("/api/v1/cases", {"type": "change_request", "category": "member_removed",
                                             "ben_no": grandchild}, as_="registrar")
    st, _, b = through(cr3["ref"])
    s.check(st == 409 and "head cannot leave" in msg(b), "the head cannot be removed: the approval is refused, "
            "nothing changes", f"{st} {b}")

    # ---- feedback: received, reviewed, closed
    st, _, fb = core.post("/api/v1/cases", {"type": "feedback", "category": "general", "ben_no": ben2,
                                            "summary": "The kiosk queue was short this month, thank you."},
                          headers={"X-Hifadhi-Service-Key": core.gateway_secret()}, as_=None)
    s.check(st == 201 and fb["state"] == "received" and fb["assigned_role"] == "support",
            "feedback from the gateway goes to support", f"{st} {fb}")
    st, _, b = move(fb["ref"], "support", transition="review", note="passed on to the pay point")
    st, _, b = move(fb["ref"], "support", transition="close")
    s.check(st == 200 and b["state"] == "closed" and not b["open"], "support reviews and closes it", f"{st} {b}")

    # ---- the beneficiary's channels
    gw = {"X-Hifadhi-Service-Key": core.gateway_secret()}
    st, _, u = core.post("/api/v1/cases", {"type": "grievance", "category": "amount_short", "ben_no": ben2,
                                           "channel": "ussd", "payment_ref": "PAY-9"}, headers=gw, as_=None)
    s.check(st == 201 and u["channel"] == "ussd", "the gateway lodges a grievance from USSD", f"{st} {u}")
    st, _, b = core.get(f"/api/v1/beneficiaries/{ben2}/cases/{u['ref']}", headers=gw, as_=None)
    s.check(st == 200 and b["state"] == "lodged" and "summary" not in b and "assigned_to" not in b,
            "the owner gets the status, without staff details", f"{st} {b}")
    st, _, b = core.get(f"/api/v1/beneficiaries/{ben}/cases/{u['ref']}", headers=gw, as_=None)
    s.check(st == 404, "somebody else's case is not found", f"{st} {b}")
    st, _, b = core.post("/api/v1/cases", {"type": "application", "programme": "OPCT", "ben_no": ben2}, headers=gw,
                         as_=None)
    s.check(st == 400 and "type" in fields(b), "the gateway lodges grievances and feedback only", f"{st} {b}")

    # ---- staff contact: an admin gives a case worker a phone for SMS about their work (sealed, never echoed)
    cw = core.staff("case_worker")
    st, _, b = core.request("PATCH", f"/api/v1/users/{cw.username}", {"phone": "+254700111222", "language": "sw"},
                            as_="admin")
    s.check(st == 200 and b["phone_on_file"] is True and b["language"] == "sw" and "700111222" not in str(b),
            "an admin records a staff phone and language; the answer does not echo the number", f"{st} {b}")
    st, _, b = core.request("PATCH", f"/api/v1/users/{cw.username}", {"phone": "12ab"}, as_="admin")
    s.check(st == 400 and "phone" in fields(b), "a malformed staff phone is refused", f"{st} {b}")
    s.check("700111222" not in sql("SELECT HEX(phone_enc) FROM staff_users"), "the staff phone is sealed at rest", "")

    # ---- SLA: on track now; a sweep 4 days ahead escalates what is overdue
    ref_sla = u["ref"]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4 * 86400))
    r = core.run_cli(["cases", "sweep", "--at", at])
    s.check(r.returncode == 0 and '"escalated"' in r.stdout, "cases sweep runs", r.stdout + r.stderr)
    st, _, b = core.get(f"/api/v1/cases/{ref_sla}", as_="case_worker")
    s.check(st == 200 and b["sla"]["breached"] and b["sla"]["state"] == "breached" and
            b["assigned_role"] == "case_worker" and "escalation" in [e["kind"] for e in b["events"]],
            "an overdue lodged grievance is flagged breached and reassigned up the chain", f"{st} {b}")
    st, _, b = core.get(f"/api/v1/cases/{refc}", as_="auditor")
    s.check(st == 200 and b["state"] == "escalated" and b["sla"]["escalations"] == 1 and
            b["sla"]["state"] == "on_track" and b["assigned_role"] == "auditor",
            "an overdue acknowledged grievance takes the workflow's escalate transition (a new SLA clock; "
            "still with the confidential role)", f"{st} {b}")
    staff_sms = sql("SELECT o.template, o.language, o.params FROM outbox o WHERE o.audience = 'staff'"
                    " ORDER BY o.created_at").split("\n")[:-1]
    s.check(r.returncode == 0 and json.loads(r.stdout)["staff_notified"] == 1 and len(staff_sms) == 1 and
            staff_sms[0].startswith("staff_cases_escalated\tsw\t") and
            '"role":"case_worker"' in staff_sms[0] and '"count":' in staff_sms[0],
            "the case worker with a phone gets one SMS digest of the cases escalated to the role, in Swahili",
            f"{r.stdout} {staff_sms}")
    r2 = core.run_cli(["cases", "sweep", "--at", at])
    s.check(r2.returncode == 0 and '"escalated": 0' in r2.stdout and '"staff_notified": 0' in r2.stdout,
            "a second sweep escalates nothing twice and texts nobody", r2.stdout)

    # ---- the dashboard: counts a district office reads, confidential categories masked
    st, _, d = core.get("/api/v1/cases/dashboard", as_="case_worker")
    g_open = sum(d["open_by_sla"].get("grievance", {}).values()) if st == 200 else -1
    n_open = int(sql("SELECT COUNT(*) FROM cases WHERE is_open = 1 AND case_type = 'grievance'").strip())
    s.check(st == 200 and g_open == n_open and d["open_by_sla"]["grievance"].get("breached", 0) >= 1 and
            sum(d["open_age"].values()) == int(sql("SELECT COUNT(*) FROM cases WHERE is_open = 1").strip()),
            "the dashboard counts open grievances by SLA state and all open cases by age", f"{st} {d}")
    s.check("confidential" in d["open_by_category"]["grievance"] and
            "staff_misconduct" not in d["open_by_category"]["grievance"],
            "a case worker sees confidential grievances counted, not their category", str(d["open_by_category"]))
    st, _, d2 = core.get("/api/v1/cases/dashboard?type=grievance", as_="auditor")
    s.check(st == 200 and "staff_misconduct" in d2["open_by_category"]["grievance"] and
            list(d2["open_by_sla"]) == ["grievance"] and d2["flow"]["grievance"]["opened_7d"] >= 3,
            "the confidential role sees the category; the type filter narrows every count", f"{st} {d2}")
    st, _, d3 = core.get("/api/v1/cases/dashboard?type=nonsense", as_="auditor")
    s.check(st == 400 and "type" in fields(d3), "an unknown case type is refused", f"{st} {d3}")
    st, _, q = core.get("/api/v1/cases?sla=breached&limit=100", as_="case_worker")
    s.check(st == 200 and ref_sla in [x["ref"] for x in q["items"]] and q["counts"]["breached"] >= 1,
            "the queue filters by SLA state", f"{st} {q}")

    # ---- exports for reports mask confidential cases
    r = core.run_cli(["cases", "export", "--all", "--with-text"])
    rows = [line for line in r.stdout.splitlines()[1:] if line]
    conf_row = [x for x in rows if x.startswith(refc)]
    s.check(r.returncode == 0 and len(rows) >= 8 and conf_row and ",confidential," in conf_row[0] and
            conf_row[0].endswith("***") and "agent asked" not in r.stdout and "no money was there" in r.stdout,
            "cases export: every case, confidential ones masked even with the text", r.stdout[:500] + r.stderr)
    r = core.run_cli(["cases", "export"])
    s.check(r.returncode == 0 and "no money was there" not in r.stdout and r.stdout.startswith("ref,type,"),
            "without --with-text an export carries no free text", r.stdout[:200])

    # ---- audit: every change in its transaction, reads of cases audited
    refused = [e for e in core.audit(entity="case", record=ref2) if e["outcome"] == "denied"]
    s.check(any("different person" in e["detail"].get("reason", "") for e in refused),
            "a refusal by the workflow (the maker approving) is audited with its reason", str(refused))
    acts = {e["action"] for e in core.audit(entity="case")}
    s.check({"case.create", "case.transition", "case.approval_requested", "case.link", "case.sla_escalation",
             "case.export", "case.attach"} <= acts,
            "case changes are in the audit trail", str(acts))

    # ---- workflow files that do not validate stop startup with file and line
    bad = s.var / "bad-workflows"
    shutil.copytree(ROOT / "deploy" / "workflows", bad, dirs_exist_ok=True)
    text = (bad / "grievance.ini").read_text().replace("to = acknowledged", "to = acknowleged", 1)
    (bad / "grievance.ini").write_text(text)
    r = core.run_cli(["config-check"], overrides={"workflow.dir": str(bad)})
    s.check(r.returncode == 2 and "grievance.ini:" in r.stderr and "acknowleged" in r.stderr,
            "an unknown state in a workflow file is refused with file:line", r.stderr)
