"""test_roles.py - every endpoint as every caller, checked against the matrix in docs/roles.md.

The expected answers come from the documentation, not from core/api.c, so the service and its manual
cannot drift apart: a cell that says `yes` must not be refused (any status but 401/403), a `-` must be 403
for an authenticated caller and 401 for nobody, `public` must be reachable without a credential. Requests
use ids that do not exist and bodies that do not validate, so an allowed call changes nothing (404/400)
except the few that are about the session itself (logout), which use throwaway accounts.
"""
import re
from pathlib import Path

from harness import Suite, Core, ROOT, ROLES, Staff
from kiosk_client import KioskKey, signed_headers

CALLERS = list(ROLES) + ["gateway", "kiosk", "enrol_session"]


def read_matrix():
    text = (ROOT / "docs" / "roles.md").read_text()
    rows = []
    header = None
    for line in text.splitlines():
        if line.startswith("| Endpoint |"):
            header = [c.strip() for c in line.strip("|").split("|")]
            continue
        m = re.match(r"\| `(GET|POST|PATCH|PUT|DELETE) (/api/v1/[^`]*)` \|", line)
        if header and m:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.append((m.group(1), m.group(2), dict(zip(header[1:], cells[1:]))))
    return header, rows


def concrete(path):
    return path.replace("{id}", "000000000")


with Suite() as s:
    core = Core(s, overrides={"auth.rate_address_burst": "1000", "auth.rate_address_per_min": "1000",
                              "auth.rate_account_burst": "100"})
    header, rows = read_matrix()
    s.check(header is not None and len(rows) >= 30, "docs/roles.md has the matrix", f"{len(rows)} rows")
    s.check(all(c in header for c in CALLERS), "the matrix has a column per caller", str(header))

    # The routes table and the documentation list the same endpoints.
    api = (ROOT / "core" / "api.c").read_text()
    table = {(m.group(1), "/api/v1/" + m.group(2).replace("*", "{id}"))
             for m in re.finditer(r'\{"(GET|POST|PATCH|PUT|DELETE)", "([^"]+)", r_\w+,', api)}
    documented = {(m, p) for m, p, _ in rows}
    s.check(table == documented, "docs/roles.md lists exactly the routes of core/api.c",
            f"undocumented: {sorted(table - documented)}; not served: {sorted(documented - table)}")

    staff = {r: core.staff(r) for r in ROLES}
    gw = {"X-Hifadhi-Service-Key": core.gateway_secret()}

    # A kiosk terminal, registered by a payment officer and enrolled with its own key.
    st, _, k = core.post("/api/v1/kiosks", {"pay_point": "Kibera-3"}, as_="payment_officer")
    s.check(st == 201 and "enrolment_code" in k, "a payment officer registers a kiosk", f"{st} {k}")
    kkey = KioskKey()
    st, _, b = core.post("/api/v1/kiosks/enrol", {"kiosk_no": k["kiosk_no"], "enrolment_code": k["enrolment_code"],
                                                  "public_key": kkey.public_b64}, as_=None)
    s.check(st == 200 and b.get("status") == "active", "the terminal enrols its public key", f"{st} {b}")

    # A password-only account: its first login gives an enrolment session.
    pending_pw = "Mlima-Kenya-Jua-2026"
    st, _, b = core.post("/api/v1/users", {"username": "new.clerk", "role": "registrar", "password": pending_pw},
                         as_="admin")
    s.check(st == 201 and b.get("mfa") == "pending", "an admin creates an account that must enrol TOTP", f"{st} {b}")

    def enrol_token():
        st, _, b = core.post("/api/v1/auth/login", {"username": "new.clerk", "password": pending_pw}, as_=None)
        assert st == 200 and b["stage"] == "enrol", (st, b)
        return b["token"]

    throwaway = [0]
    enrol_cached = []

    def headers_for(caller, method, path):
        session_route = path in ("/api/v1/auth/logout", "/api/v1/auth/logout-all")
        if caller in ROLES:
            if session_route:  # logging out must not end the sessions the rest of the test uses
                throwaway[0] += 1
                return Staff(core, caller, f"lo{throwaway[0]}.{caller.replace('_', '')}").headers
            return staff[caller].headers
        if caller == "gateway":
            return dict(gw)
        if caller == "enrol_session":
            # One enrolment session for every route but the logouts (which end it): a login per route would
            # trip the login rate limit, which is doing its job.
            if session_route or not enrol_cached:
                token = enrol_token()
                if session_route:  # logout-all ends the cached session too: the next route logs in again
                    enrol_cached.clear()
                    return {"Authorization": f"Bearer {token}"}
                enrol_cached.append(token)
            return {"Authorization": f"Bearer {enrol_cached[0]}"}
        if caller == "kiosk":
            return signed_headers(kkey, k["kiosk_no"], method, path, body_for(method))
        return {}

    def body_for(method):
        return b"{}" if method in ("POST", "PATCH", "PUT") else b""

    wrong = []
    denied_support = 0
    for method, path, cells in rows:
        p = concrete(path)
        for caller in CALLERS + ["nobody"]:
            expect = cells.get(caller, "-") if caller != "nobody" else ("public" if cells[ROLES[0]] == "public" else "-")
            hdrs = headers_for(caller, method, p)
            body = body_for(method)
            if body:
                hdrs["Content-Type"] = "application/json"
            st, _, resp = core.request(method, p, raw_body=body or None, headers=hdrs, as_=None)
            if expect in ("yes", "public"):
                ok = st not in (401, 403) and st < 500
            elif caller == "nobody":
                ok = st == 401
            else:
                ok = st == 403
                if caller == "support":
                    denied_support += 1
            if ok and st in (401, 403):
                ok = isinstance(resp, dict) and resp.get("error", {}).get("message", "") != ""
            if not ok:
                wrong.append(f"{method} {p} as {caller}: expected {expect}, got {st} {str(resp)[:160]}")
    s.check(not wrong, f"all {len(rows)} endpoints x {len(CALLERS) + 1} callers answer as docs/roles.md says",
            "\n".join(wrong[:30]))

    # Each refusal was audited: the support account's 403s are all in the trail, with reason "role".
    denied = [e for e in core.audit(actor="t_support") if e["outcome"] == "denied"]
    s.check(len(denied) == denied_support and all(e["detail"].get("reason") == "role" for e in denied),
            "every refusal of the support role is in the audit trail",
            f"{len(denied)} denied entries for {denied_support} refusals")
    # A refusal changes nothing: support could not create a household.
    st, _, hh = core.get("/api/v1/households?location=Nowhere", as_="registrar")
    s.check(st == 200 and hh["items"] == [], "refused writes left nothing behind", f"{st} {hh}")
