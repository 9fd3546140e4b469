"""test_registry.py - the registry over HTTP: validation at entry, numbers, search, history, enrolments.

What a registrar at a district office notices: a household with mistakes is refused with every mistake
named and nothing stored; a good one gets typeable numbers; it can be found again by number, national
ID, phone, name and place; a change needs a reason, refuses a stale edit and keeps the old version.
"""

from harness import Core, Suite, DAMM, damm_ok

def luhn(payload):
    total = 0
    for k, ch in enumerate(reversed(payload)):
        d = int(ch)
        if k % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return payload + str((10 - total % 10) % 10)


LOC = {"region": "Nairobi", "district": "Kibra", "village": "Soweto East"}


def member(given, family, sex, dob, rel, nid=None, phone=None, **extra):
    m = {"given_name": given, "family_name": family, "sex": sex, "date_of_birth": dob, "relationship": rel,
         "language": "sw"}
    if nid:
        m["national_id"] = nid
    if phone:
        m["phone"] = phone
    m.update(extra)
    return m


def fields_of(body):
    try:
        return {(f["field"], f["code"]) for f in body["error"]["fields"]}
    except (KeyError, TypeError):
        return set()


with Suite() as s:
    core = Core(s)
    AMINA = core.staff("registrar", "registrar.amina")

    # --- programmes
    st, _, p = core.post("/api/v1/programmes", {"code": "OPCT", "name": "Older Persons Cash Transfer",
                                                "target": "individual", "currency": "KES"}, as_="admin")
    s.eq(st, 201, "programme created")
    s.eq(p.get("code") if isinstance(p, dict) else None, "OPCT", "programme echoes its code")
    st, _, _ = core.post("/api/v1/programmes", {"code": "CT-OVC", "name": "Orphans and Vulnerable Children",
                                               "target": "household", "currency": "KES"}, as_="admin")
    s.eq(st, 201, "household programme created")
    st, _, body = core.post("/api/v1/programmes", {"code": "OPCT", "name": "Again", "target": "individual",
                                                   "currency": "KES"}, as_="admin")
    s.eq(st, 409, "duplicate programme code refused")
    st, _, body = core.post("/api/v1/programmes", {"code": "bad code", "name": "x", "target": "people",
                                                   "currency": "shillings"}, as_="admin")
    s.eq(st, 400, "bad programme refused")
    s.check({("code", "bad_format"), ("target", "not_allowed"), ("currency", "length")} <= fields_of(body),
            "every programme field error is listed", f"got {fields_of(body)}")

    # --- a household with many mistakes: all named, nothing stored
    nid_head = luhn("1234567")
    bad = {"location": {"region": "Nairobi", "district": "Kib/ra"}, "colour": "blue",
           "members": [member("W4njiru", "", "f", "2023-02-30", "head", nid=nid_head[:-1] + "0", phone="07ab",
                              language="xx"),
                       member("Otieno", "Kamau", "male", "2099-01-01", "boss")]}
    st, _, body = core.post("/api/v1/households", bad, as_=AMINA)
    s.eq(st, 400, "household with mistakes refused")
    want = {("colour", "unknown_field"), ("location.district", "bad_characters"), ("location.village", "required"),
            ("members[0].given_name", "bad_characters"), ("members[0].family_name", "required"),
            ("members[0].sex", "not_allowed"), ("members[0].date_of_birth", "bad_date"),
            ("members[0].national_id", "check_digit"), ("members[0].phone", "bad_characters"),
            ("members[0].language", "not_allowed"), ("members[1].date_of_birth", "in_future"),
            ("members[1].relationship", "not_allowed")}
    got = fields_of(body)
    s.check(want <= got, "every mistake is named with its field", f"missing {want - got}")
    st, _, body = core.get("/api/v1/households?location=Nairobi")
    s.eq(len(body.get("items", [])) if isinstance(body, dict) else -1, 0, "nothing was stored from the bad household")

    st, _, body = core.post("/api/v1/households", {"location": LOC, "members": [
        member("Achieng", "Odhiambo", "female", "1950-05-01", "spouse")]}, as_=AMINA)
    s.check(st == 400 and ("members", "no_head") in fields_of(body), "a household without a head is refused",
            f"{st} {fields_of(body)}")

    # --- a good household
    nid_child = luhn("2345678")
    good = {"location": LOC, "address": "Plot 12, near the water point",
            "members": [member("Wanjiru", "Kamau", "female", "1948-03-12", "head", nid=nid_head, phone="0712345678"),
                        member("Baraka", "Kamau", "male", "2012-07-30", "grandchild"),
                        member("Njeri", "Kamau", "female", "1990-11-02", "child", nid=nid_child,
                               phone="+254722000111", disability="visual")]}
    st, _, hh = core.post("/api/v1/households", good, as_=AMINA)
    s.eq(st, 201, "good household created")
    hh_no = hh.get("hh_no", "") if isinstance(hh, dict) else ""
    s.check(len(hh_no) == 9 and hh_no.isdigit() and damm_ok(hh_no), "household number: 9 digits, Damm check",
            repr(hh_no))
    members = hh.get("members", []) if isinstance(hh, dict) else []
    s.eq(len(members), 3, "household has its three members")
    head = next((m for m in members if m.get("relationship") == "head"), {})
    ben = head.get("ben_no", "")
    s.check(len(ben) == 9 and ben.isdigit() and damm_ok(ben), "beneficiary number: 9 digits, Damm check", repr(ben))
    s.eq(head.get("phone"), "+254712345678", "local phone stored as E.164")
    s.eq(head.get("national_id"), nid_head, "national ID read back")
    s.eq(hh.get("address") if isinstance(hh, dict) else None, "Plot 12, near the water point", "address read back")
    s.eq(len({m.get("ben_no") for m in members}), 3, "each member has their own number")

    # a mistyped number (one digit changed) is refused, never someone else's record
    typo = ben[:-2] + str((int(ben[-2]) + 1) % 10) + ben[-1]
    st, _, body = core.get(f"/api/v1/individuals/{typo}")
    s.eq(st, 404, "a beneficiary number with one digit wrong is not found")

    # --- the same national ID cannot be registered twice
    st, _, body = core.post("/api/v1/households", {"location": LOC, "members": [
        member("Someone", "Else", "male", "1960-01-01", "head", nid=nid_head)]}, as_=AMINA)
    s.check(st == 400 and ("members[0].national_id", "already_registered") in fields_of(body),
            "a national ID already registered is refused", f"{st} {fields_of(body)}")
    msg = next((f["message"] for f in body.get("error", {}).get("fields", [])
                if f["field"] == "members[0].national_id"), "") if isinstance(body, dict) else ""
    s.check(ben in msg, "the refusal names the beneficiary who holds the ID", msg)
    st, _, body = core.post("/api/v1/households", {"location": LOC, "members": [
        member("Two", "Ids", "male", "1960-01-01", "head", nid=luhn("3456789")),
        member("Same", "Ids", "male", "1961-01-01", "sibling", nid=luhn("3456789"))]}, as_=AMINA)
    s.check(st == 400 and ("members[1].national_id", "duplicate") in fields_of(body),
            "two members with one national ID are refused", f"{st} {fields_of(body)}")

    # --- read and search
    st, _, ind = core.get(f"/api/v1/individuals/{ben}")
    s.eq(st, 200, "individual read by number")
    s.eq(ind.get("household") if isinstance(ind, dict) else None, hh_no, "individual names their household")
    for what, q in (("national ID (with a dash)", f"national_id={nid_head[:4]}-{nid_head[4:]}"),
                    ("phone (local form)", "phone=0712345678"),
                    ("beneficiary number", f"ben_no={ben}"),
                    ("name fragment, any case", "name=WANJ"),
                    ("name fragment within a location", "name=anjir&location=Nairobi/Kibra")):
        st, _, res = core.get(f"/api/v1/individuals?{q}")
        items = res.get("items", []) if isinstance(res, dict) else []
        s.check(st == 200 and [i.get("ben_no") for i in items] == [ben], f"search by {what} finds exactly her",
                f"{st} {[i.get('ben_no') for i in items]}")
    st, _, res = core.get("/api/v1/individuals?location=Nairobi/Kibra/Soweto%20East&limit=2")
    items = res.get("items", []) if isinstance(res, dict) else []
    s.check(st == 200 and len(items) == 2 and res.get("next"), "location search pages by 2", f"{st} {res}")
    st, _, res2 = core.get(f"/api/v1/individuals?location=Nairobi&limit=2&after={res.get('next')}")
    items2 = res2.get("items", []) if isinstance(res2, dict) else []
    s.eq(len(items2), 1, "second page has the third member")
    s.check(not ({i["ben_no"] for i in items} & {i["ben_no"] for i in items2}), "pages do not overlap")
    st, _, res = core.get("/api/v1/individuals?location=Nairobi/Kib")
    s.eq(len(res.get("items", [])) if isinstance(res, dict) else -1, 0, "a location prefix that is not a whole name matches nothing")
    st, _, res = core.get("/api/v1/individuals?national_id=12345")
    s.check(st == 400 and any(f == "national_id" for f, _ in fields_of(res)), "search with a malformed national ID is a 400")
    st, _, res = core.get("/api/v1/individuals")
    s.eq(st, 400, "search without criteria is a 400")
    st, _, res = core.get("/api/v1/individuals?name=w")
    s.eq(st, 400, "a one-letter name search is refused")

    # --- updates: reason + version, stale refused, history kept
    st, _, body = core.patch(f"/api/v1/individuals/{ben}", {"phone": "+254799000111"}, as_=AMINA)
    s.check(st == 400 and {("reason", "required"), ("version", "required")} <= fields_of(body),
            "an update without reason and version is refused", f"{st} {fields_of(body)}")
    st, _, upd = core.patch(f"/api/v1/individuals/{ben}", {"phone": "+254799000111", "reason": "new SIM card",
                                                            "version": 1}, as_=AMINA)
    s.eq(st, 200, "phone changed")
    s.eq(upd.get("version") if isinstance(upd, dict) else None, 2, "version went up")
    st, _, body = core.patch(f"/api/v1/individuals/{ben}", {"phone": "+254799000222", "reason": "again",
                                                             "version": 1}, as_=AMINA)
    s.eq(st, 409, "an edit made from a stale version is refused")
    st, _, cur = core.get(f"/api/v1/individuals/{ben}")
    s.eq(cur.get("phone") if isinstance(cur, dict) else None, "+254799000111", "the stale edit changed nothing")
    st, _, hist = core.get(f"/api/v1/individuals/{ben}/history")
    prev = hist.get("previous", []) if isinstance(hist, dict) else []
    s.eq(len(prev), 1, "one previous version kept")
    if prev:
        s.eq(prev[0].get("record", {}).get("phone"), "+254712345678", "previous version holds the old phone")
        s.eq(prev[0].get("changed_by"), "registrar.amina", "history says who")
        s.eq(prev[0].get("reason"), "new SIM card", "history says why")
        s.check(str(prev[0].get("changed_at", "")).endswith("Z"), "history says when (UTC)")
    st, _, body = core.patch(f"/api/v1/individuals/{ben}", {"relationship": "spouse", "reason": "x y z",
                                                             "version": 2}, as_=AMINA)
    s.eq(st, 409, "the head cannot be demoted by editing a member")
    st, _, body = core.patch(f"/api/v1/individuals/{ben}", {"national_id": nid_child, "reason": "typo fix",
                                                             "version": 2}, as_=AMINA)
    s.check(st == 400 and ("national_id", "already_registered") in fields_of(body),
            "an edit to another member's national ID is refused", f"{st} {fields_of(body)}")

    st, _, h2 = core.patch(f"/api/v1/households/{hh_no}", {"address": "Plot 14", "reason": "moved plot",
                                                            "version": 1}, as_=AMINA)
    s.check(st == 200 and h2.get("address") == "Plot 14", "household address changed", f"{st}")
    st, _, newm = core.post(f"/api/v1/households/{hh_no}/members",
                            dict(member("Zawadi", "Kamau", "female", "2020-02-29", "grandchild"), reason="birth"), as_=AMINA)
    s.eq(st, 201, "member added to the household")
    st, _, body = core.post(f"/api/v1/households/{hh_no}/members",
                            dict(member("Second", "Head", "male", "1970-01-01", "head"), reason="oops"), as_=AMINA)
    s.eq(st, 400, "a second head is refused")
    st, _, hh2 = core.get(f"/api/v1/households/{hh_no}")
    s.eq(len(hh2.get("members", [])) if isinstance(hh2, dict) else 0, 4, "household now has four members")
    s.eq(hh2.get("version") if isinstance(hh2, dict) else 0, 3, "household version counts both changes")
    st, _, hh_hist = core.get(f"/api/v1/households/{hh_no}/history")
    s.eq(len(hh_hist.get("previous", [])) if isinstance(hh_hist, dict) else 0, 2, "household history has both changes")

    # --- enrolments
    st, _, e = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": ben}, as_=AMINA)
    s.check(st == 201 and e.get("status") == "pending", "individual enrolled as pending", f"{st} {e}")
    eid = e.get("id") if isinstance(e, dict) else ""
    st, _, _ = core.post("/api/v1/enrolments", {"programme": "OPCT", "ben_no": ben}, as_=AMINA)
    s.eq(st, 409, "enrolling twice in one programme is refused")
    st, _, _ = core.post("/api/v1/enrolments", {"programme": "OPCT", "hh_no": hh_no}, as_=AMINA)
    s.eq(st, 409, "a household cannot join an individual programme")
    st, _, eh = core.post("/api/v1/enrolments", {"programme": "CT-OVC", "hh_no": hh_no}, as_=AMINA)
    s.eq(st, 201, "household enrolled in a household programme")
    st, _, e2 = core.patch(f"/api/v1/enrolments/{eid}", {"status": "enrolled", "reason": "verified", "version": 1}, as_=AMINA)
    s.check(st == 200 and e2.get("status") == "enrolled", "pending -> enrolled", f"{st}")
    st, _, _ = core.patch(f"/api/v1/enrolments/{eid}", {"status": "deceased", "reason": "civil registry", "version": 2}, as_=AMINA)
    s.eq(st, 200, "enrolled -> deceased")
    st, _, body = core.patch(f"/api/v1/enrolments/{eid}", {"status": "enrolled", "reason": "mistake", "version": 3}, as_=AMINA)
    s.eq(st, 409, "deceased is final")
    st, _, ind = core.get(f"/api/v1/individuals/{ben}")
    progs = sorted((x["programme"], x["status"]) for x in ind.get("enrolments", [])) if isinstance(ind, dict) else []
    s.eq(progs, [("CT-OVC", "pending"), ("OPCT", "deceased")], "individual shows own and household enrolments")
    st, _, lst = core.get("/api/v1/enrolments?programme=OPCT&status=deceased")
    s.eq([x.get("ben_no") for x in lst.get("items", [])] if isinstance(lst, dict) else [], [ben],
         "enrolments listed by programme and status")

    # --- bad input at the HTTP level
    st, _, body = core.post("/api/v1/households", raw_body=b'{"location": ', headers={"Content-Type": "application/json"})
    s.check(st == 400 and ("", "malformed_json") in fields_of(body), "malformed JSON is a 400")
    st, _, body = core.post("/api/v1/programmes", raw_body=b'{"code":"\xff\xfe"}',
                            headers={"Content-Type": "application/json"})
    s.eq(st, 400, "invalid UTF-8 is a 400")
    st, _, body = core.post("/api/v1/programmes", raw_body=b'{"code":"A","code":"B"}',
                            headers={"Content-Type": "application/json"})
    s.eq(st, 400, "duplicate keys are a 400")
    st, _, body = core.post("/api/v1/programmes", {"code": 5, "name": ["x"], "target": "individual", "currency": "KES",
                                                   "active": "yes"})
    s.check(st == 400 and {("code", "wrong_type"), ("name", "wrong_type"), ("active", "wrong_type")} <= fields_of(body),
            "wrong types are named per field", f"{fields_of(body)}")
    st, _, body = core.post("/api/v1/programmes", raw_body="code=X", headers={"Content-Type": "text/plain"})
    s.eq(st, 400, "a body that is not JSON is a 400")
    st, hdrs, body = core.post("/api/v1/households", raw_body=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                               headers={"Content-Type": "application/json"})
    s.eq(st, 413, "an oversize body is refused with 413")
    deep = "[" * 40 + "]" * 40
    st, _, body = core.post("/api/v1/programmes", raw_body='{"code": %s}' % deep,
                            headers={"Content-Type": "application/json"})
    s.eq(st, 400, "deeply nested JSON is a 400")
    st, _, body = core.get("/api/v1/individuals?limit=100000&ben_no=" + ben)
    s.check(st == 400 and ("limit", "out_of_range") in fields_of(body), "a page size over the cap is refused")
    st, _, body = core.post("/api/v1/programmes", {"code": "ZZ", "name": "Zed", "target": "individual",
                                                   "currency": "KES"}, as_="registrar")
    s.eq(st, 403, "a registrar may not create programmes")
    st, _, body = core.get("/api/v1/programmes/ZZ")
    s.eq(st, 404, "nothing was written by the refused request")
    st, _, _ = core.get("/api/v1/individuals/" + "9" * 200)
    s.eq(st, 404, "an absurd number is a clean 404")
