"""test_audit.py - the audit trail: written with every change, queryable by auditors, and tamper-evident.

Tampering is done the way an insider would: as MariaDB's root, directly in the tables (UPDATE, DELETE,
INSERT, truncating the tail), after which `hifadhi-core audit verify` must fail and name the entry. The
service's own database account must not be able to change the trail at all.
"""
import json
import subprocess
import time

from harness import Suite, Core, Mariadb, env
from pathlib import Path

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}


def verify(core):
    r = core.run_cli(["audit", "verify", "--json"])
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        return r.returncode, {"raw": r.stdout + r.stderr}


def sql(core, text):
    return Mariadb.sql(text, db=core.db)


def backup(core):
    sql(core, "DROP TABLE IF EXISTS bk_log, bk_heads, bk_cp; CREATE TABLE bk_log AS SELECT * FROM audit_log;"
              " CREATE TABLE bk_heads AS SELECT * FROM audit_heads; CREATE TABLE bk_cp AS SELECT * FROM audit_checkpoints;")


def restore(core):
    sql(core, "DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM bk_log; DELETE FROM audit_heads;"
              " INSERT INTO audit_heads SELECT * FROM bk_heads; DELETE FROM audit_checkpoints;"
              " INSERT INTO audit_checkpoints SELECT * FROM bk_cp;")


with Suite() as s:
    core = Core(s, overrides={"audit.checkpoint_every": "4", "audit.stripes": "4"})

    # ---- every write is audited in its own transaction; refused writes leave no "ok" entry
    people = []
    for i in range(12):
        st, _, hh = core.post("/api/v1/households", {"location": LOC, "members": [
            {"given_name": f"Akinyi{chr(65 + i)}", "family_name": "Otieno", "sex": "female",
             "date_of_birth": f"19{40 + i}-01-15", "relationship": "head", "language": "luo",
             "phone": f"+2547110000{i:02d}"}]})
        s.check(st == 201, f"household {i} registered", f"{st} {hh}")
        people.append((hh["hh_no"], hh["members"][0]["ben_no"]))
    hh_no, ben = people[0]
    st, _, b = core.post("/api/v1/households", {"location": LOC, "members": []})
    s.check(st == 400, "an invalid household is refused", f"{st}")
    created = [e for e in core.audit(action="household.create")]
    s.check(len(created) == 12 and all(e["outcome"] == "ok" and e["actor"] == "t_registrar" and e["after_digest"]
                                       for e in created),
            "each registration has exactly one audit entry with who and an after-digest (the refusal has none)",
            f"{len(created)} entries")
    s.check({e["record"] for e in created} == {h for h, _ in people}, "entries name the household numbers", "")
    st, _, ind = core.get(f"/api/v1/individuals/{ben}")
    st, _, _ = core.patch(f"/api/v1/individuals/{ben}", {"phone": "+254722000999", "reason": "new SIM",
                                                         "version": ind["version"]})
    upd = core.audit(action="individual.update", record=ben)
    s.check(len(upd) == 1 and upd[0]["before_digest"] and upd[0]["after_digest"] and
            upd[0]["before_digest"] != upd[0]["after_digest"] and upd[0]["detail"] == {"fields": ["phone"]},
            "an update records before/after digests and the field names changed, not the values", str(upd))

    # ---- staff reads of personal data
    st, _, _ = core.get(f"/api/v1/individuals/{ben}", as_="support")
    st, _, page = core.get(f"/api/v1/individuals?location=Kisumu/Nyando&limit=5", as_="support")
    reads = core.audit(actor="t_support")
    one = [e for e in reads if e["action"] == "individual.read" and e["record"] == ben]
    search = [e for e in reads if e["action"] == "individual.search"]
    s.check(len(one) == 1, "a staff read of a beneficiary is audited with the number", str(reads)[:300])
    s.check(len(search) == 1 and search[0]["detail"]["count"] == 5 and
            sorted(search[0]["detail"]["records"]) == sorted(i["ben_no"] for i in page["items"]) and
            search[0]["detail"]["filters"] == ["location"],
            "a search is audited with the numbers shown and the filters used (not their values)", str(search)[:300])

    # ---- auditors query by actor, record, action and time
    t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    t1 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    by_time = core.audit(**{"from": t0, "to": t1, "action": "household.create"})
    s.check(len(by_time) == 12, "the log can be queried by time range and action", f"{len(by_time)}")
    by_rec = core.audit(record=hh_no)
    s.check(by_rec and all(e["record"] == hh_no for e in by_rec), "and by record", f"{len(by_rec)}")
    st, _, b = core.get("/api/v1/audit?from=yesterday", as_="auditor")
    s.check(st == 400, "a bad time filter is a 400 with the field named", f"{st} {b}")
    st, _, b = core.get("/api/v1/audit", as_="registrar")
    s.check(st == 403, "only auditors read the audit trail", f"{st}")

    # ---- no personal data in the trail
    dump = sql(core, "SELECT id, occurred_at, actor_type, actor, action, entity, record, outcome, source, request_id,"
                     " HEX(before_digest), HEX(after_digest), detail FROM audit_log")
    leaked = [v for v in ("Akinyi", "Otieno", "+254711000000", "254722000999", "1940-01-15") if v in dump]
    s.check(not leaked, "the audit rows hold no names, phones or dates of birth", str(leaked))

    # ---- the service account can only append
    app_pw = (Path(env("HF_KEY_DIR")) / "db-app.password").read_text().strip()
    for stmt in ("UPDATE audit_log SET actor = 'x' LIMIT 1", "DELETE FROM audit_log LIMIT 1",
                 "DELETE FROM audit_checkpoints LIMIT 1"):
        r = subprocess.run(["mariadb", "--no-defaults", f"--socket={Mariadb.socket()}", "-uhifadhi", f"-p{app_pw}",
                            core.db, "-e", stmt], capture_output=True, text=True, timeout=30)
        s.check(r.returncode != 0 and "denied" in r.stderr.lower(), f"the service account cannot: {stmt}",
                r.stderr.strip())

    # ---- verify: clean, then each kind of tampering is found and named
    r = core.run_cli(["audit", "checkpoint"])
    s.check(r.returncode == 0, "audit checkpoint signs the heads", r.stderr)
    code, res = verify(core)
    s.check(code == 0 and res.get("ok") and res["entries"] >= 20 and res["checkpoints"] >= 4,
            "audit verify passes on the untouched trail", str(res))
    r = core.run_cli(["audit", "verify"])
    s.check(r.returncode == 0 and "audit trail OK" in r.stdout, "and says so in words", r.stdout)
    backup(core)

    ids = sql(core, "SELECT id, stripe, seq FROM audit_log ORDER BY id").split("\n")
    rows = [tuple(int(x) for x in line.split("\t")) for line in ids if line]
    mid_id, mid_stripe, mid_seq = rows[len(rows) // 2]

    sql(core, f"UPDATE audit_log SET actor = 'someone_else' WHERE id = {mid_id}")
    code, res = verify(core)
    s.check(code == 3 and not res["ok"] and res["bad_id"] == mid_id and "edited" in res["problem"],
            "UPDATE of one entry: verify fails and names it", str(res))
    restore(core)

    sql(core, f"UPDATE audit_log SET detail = '{{\"fields\":[]}}' WHERE id = {rows[-1][0]}")
    code, res = verify(core)
    s.check(code == 3 and res["bad_id"] == rows[-1][0], "editing the newest entry is found too", str(res))
    restore(core)

    sql(core, f"DELETE FROM audit_log WHERE id = {mid_id}")
    code, res = verify(core)
    s.check(code == 3 and res["bad_stripe"] == mid_stripe and res["bad_seq"] == mid_seq and
            "missing" in res["problem"], "DELETE of one entry: verify names the missing entry", str(res))
    restore(core)

    # An insider appends an entry that looks right (chain hash recomputed) but cannot forge the MAC.
    last = sql(core, f"SELECT seq, HEX(hash) FROM audit_log WHERE stripe = {mid_stripe} ORDER BY seq DESC LIMIT 1")
    seq, prev = last.split()
    fake_id = rows[-1][0] + 12345
    sql(core, f"INSERT INTO audit_log (id, stripe, seq, occurred_at, actor_type, actor, action, entity, record, outcome,"
              f" source, request_id, before_digest, after_digest, detail, prev_hash, hash, mac)"
              f" SELECT {fake_id}, stripe, {int(seq) + 1}, occurred_at, actor_type, 'ghost', action, entity, record,"
              f" outcome, source, request_id, before_digest, after_digest, detail, UNHEX('{prev}'), UNHEX(SHA2(CONCAT(UNHEX('{prev}'),"
              f" 'x'), 256)), mac FROM audit_log WHERE id = {mid_id};"
              f" UPDATE audit_heads SET seq = {int(seq) + 1} WHERE stripe = {mid_stripe};")
    code, res = verify(core)
    s.check(code == 3 and res["bad_id"] == fake_id, "INSERT behind the application's back: verify names it", str(res))
    restore(core)

    # Truncating the tail: the last entries of a stripe and its head rolled back together.
    last_seq = int(sql(core, f"SELECT MAX(seq) FROM audit_log WHERE stripe = {mid_stripe}").strip())
    sql(core, f"DELETE FROM audit_log WHERE stripe = {mid_stripe} AND seq = {last_seq};"
              f" UPDATE audit_heads h JOIN audit_log l ON l.stripe = h.stripe AND l.seq = {last_seq - 1}"
              f" SET h.seq = l.seq, h.hash = l.hash WHERE h.stripe = {mid_stripe};")
    code, res = verify(core)
    s.check(code == 3 and not res["ok"], "deleting the newest entries and rolling the head back is caught by the "
            "signed checkpoint", str(res))
    restore(core)

    sql(core, "UPDATE audit_checkpoints SET signature = REVERSE(signature) LIMIT 1")
    code, res = verify(core)
    s.check(code == 3 and "checkpoint" in res.get("problem", ""), "a forged checkpoint signature is caught", str(res))
    restore(core)

    code, res = verify(core)
    s.check(code == 0 and res["ok"], "restored, the trail verifies again (the checks are not stuck)", str(res))

    # ---- writes keep working while being audited from several instances at once
    second = Core(s, name="audit_b", db=core.db, fresh_db=False, overrides={"audit.checkpoint_every": "4",
                                                                            "audit.stripes": "4"})
    for i, (h, b) in enumerate(people[1:7]):
        c = core if i % 2 else second
        st, _, ind = c.get(f"/api/v1/individuals/{b}")
        st, _, _ = c.patch(f"/api/v1/individuals/{b}", {"phone": f"+2547330000{i:02d}", "reason": "update",
                                                        "version": ind["version"]})
        s.check(st == 200, f"update {i} through instance {'a' if i % 2 else 'b'}", f"{st}")
    second.stop()
    code, res = verify(core)
    s.check(code == 0 and res["ok"], "two instances writing the same stripes leave a trail that verifies", str(res))
