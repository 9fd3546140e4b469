"""test_auth.py - staff login: password + TOTP, lockout, rate limits, sessions, recovery, CLI recovery.

Everything a member of staff or an attacker would notice: the right status and message, the audit entry,
and that a refusal changed nothing.
"""
import time

from harness import Suite, Core, Staff, totp, STAFF_PASSWORD


def login(core, username, password, code=None, **extra):
    body = {"username": username, "password": password}
    if code:
        body["totp_code"] = code
    body.update(extra)
    return core.post("/api/v1/auth/login", body, as_=None)


def msg(body):
    return body.get("error", {}).get("message", "") if isinstance(body, dict) else ""


def audit(core, **q):
    return core.audit(**q)


with Suite() as s:
    core = Core(s, overrides={"auth.rate_address_burst": "200", "auth.rate_address_per_min": "600",
                              "auth.rate_account_burst": "50"})
    alice = core.staff("registrar", "alice")

    # ---- password + TOTP
    st, _, b = core.get("/api/v1/auth/me", as_=alice)
    s.check(st == 200 and b["username"] == "alice" and b["role"] == "registrar" and b["mfa"] == "active",
            "a logged-in registrar sees who they are", f"{st} {b}")
    st, _, b = login(core, "alice", STAFF_PASSWORD)
    s.check(st == 400 and any(f["field"] == "totp_code" for f in b["error"].get("fields", [])),
            "the password alone is not enough: the code is asked for", f"{st} {b}")
    st, _, b = login(core, "alice", "Wrong-password-123", alice.next_code())
    s.check(st == 401 and "Wrong username, password or code" in msg(b), "a wrong password gets 401", f"{st} {b}")
    code = alice.next_code()
    st, _, b = login(core, "alice", STAFF_PASSWORD, code)
    s.check(st == 200 and len(b.get("token", "")) >= 43, "password + fresh code logs in (256-bit token)", f"{st} {b}")
    st, _, b = login(core, "alice", STAFF_PASSWORD, code)
    s.check(st == 401 and "already used" in msg(b), "the same TOTP code is refused the second time", f"{st} {b}")
    old = totp(alice.secret, at=time.time() - 90)
    st, _, b = login(core, "alice", STAFF_PASSWORD, old)
    s.check(st == 401, "a code from three steps ago is refused", f"{st} {b}")
    st, _, b = login(core, "nosuchuser", STAFF_PASSWORD, "123456")
    s.check(st == 401 and "Wrong username, password or code" in msg(b),
            "an unknown user gets the same answer as a wrong password", f"{st} {b}")
    entries = audit(core, actor="alice", action="auth.login")
    reasons = sorted(e["detail"].get("reason", "ok") for e in entries)
    s.check(entries and "bad_password" in reasons and "bad_totp" in reasons and
            any(e["outcome"] == "ok" for e in entries),
            "logins and failed logins are audited with the reason", str(reasons))
    s.check(all("Wrong-password" not in str(e) and STAFF_PASSWORD not in str(e) for e in entries),
            "no password in the audit trail", "")

    # ---- lockout: 10 failures lock the account for 30 minutes, before any hashing
    bob = core.staff("case_worker", "bob")
    st, _, _ = core.get("/api/v1/auth/me", as_=bob)
    for i in range(9):
        login(core, "bob", f"Wrong-password-{i:03d}", "000000")
    st, _, b = login(core, "bob", "Wrong-password-x", "000000")
    s.check(st == 401 and "locked" in msg(b), "the 10th failure locks the account and says so", f"{st} {b}")
    st, _, b = login(core, "bob", STAFF_PASSWORD, bob.next_code())
    s.check(st == 401 and "locked until" in msg(b), "while locked even the right password is refused", f"{st} {b}")
    st, _, b = core.get("/api/v1/auth/me", as_=bob)
    s.check(st == 200, "sessions opened before the lockout still work (the lock stops guessing, not work)", f"{st}")
    r = core.run_cli(["user", "reset-password", "bob"], input="Bamba-Nane-Mbili-99\n")
    s.check(r.returncode == 0, "an administrator resets the password from the CLI", r.stderr)
    bob.password = "Bamba-Nane-Mbili-99"
    st, _, b = core.get("/api/v1/auth/me", as_=bob)
    s.check(st == 401 and "ended" in msg(b), "a password reset ends every session of the account", f"{st} {b}")
    st, _, b = login(core, "bob", bob.password, bob.next_code())
    s.check(st == 200, "after the reset the account is unlocked", f"{st} {b}")

    # ---- rate limits, applied before hashing: a separate Core with the default limits
    tight = Core(s, name="auth_tight", overrides={"auth.rate_account_burst": "5", "auth.rate_account_per_min": "5"})
    tight.staff("auditor")  # logged in before the flood empties this address's budget
    carol = tight.staff("support", "carol")  # takes 1 of carol's 5
    statuses = [login(tight, "carol", f"Guess-number-{i:04d}", "111111")[0] for i in range(8)]
    s.check(statuses[:4] == [401] * 4 and statuses[4:] == [429] * 4,
            "per-account limit: after the burst, attempts get 429 without being tried", str(statuses))
    st, hdrs, b = login(tight, "carol", "Guess-number-x", "111111")
    s.check(st == 429 and int(hdrs.get("Retry-After", "0")) >= 1 and "try again" in msg(b),
            "429 says when to try again", f"{st} {hdrs.get('Retry-After')} {b}")
    st, _, b = tight.get("/api/v1/auth/me", as_=carol)
    s.check(st == 200, "the throttled account's open session still works", f"{st}")
    statuses = []
    for i in range(40):
        statuses.append(login(tight, f"user{i:03d}", "Guess-number-x", "111111")[0])
    s.check(statuses.count(429) >= 5 and statuses[0] == 401,
            "per-address limit: one address spraying many accounts is throttled (30 at once)",
            f"{statuses.count(401)} x 401, {statuses.count(429)} x 429")
    throttled = [e for e in audit(tight, action="auth.login") if e["detail"].get("reason", "").startswith("rate_limited")]
    s.check(1 <= len(throttled) <= 5, "a flood of throttled attempts is audited once per burst, not per request",
            f"{len(throttled)} entries")

    # ---- sessions: idle timeout (3 s in a Core of its own), logout, logout of all sessions
    idle = Core(s, name="auth_idle", overrides={"auth.idle_timeout_s": "3"})
    ida = idle.staff("auditor", "ida")
    for _ in range(3):  # used every second: stays alive past the timeout
        time.sleep(1)
        st, _, _ = idle.get("/api/v1/auth/me", as_=ida)
    s.check(st == 200, "a session in use outlives the idle timeout", f"{st}")
    time.sleep(4.5)
    st, _, b = idle.get("/api/v1/auth/me", as_=ida)
    s.check(st == 401 and "inactivity" in msg(b), "a session unused past the idle timeout has expired", f"{st} {b}")
    idle.stop()
    # The absolute limit: a session in constant use still ends (6 s in a Core of its own).
    absolute = Core(s, name="auth_abs", overrides={"auth.absolute_timeout_s": "6"})
    abe = absolute.staff("auditor", "abe")
    t_end = time.time() + 8
    seen = []
    while time.time() < t_end:
        st, _, b = absolute.get("/api/v1/auth/me", as_=abe)
        seen.append(st)
        time.sleep(0.5)
    s.check(seen[0] == 200 and seen[-1] == 401 and "time limit" in msg(b),
            "a session in constant use still ends at the absolute limit", f"{seen} {b}")
    absolute.stop()
    dan = core.staff("auditor", "dan")
    t1 = dan.login()
    t2 = dan.login()
    st, _, b = core.post("/api/v1/auth/logout", {}, headers={"Authorization": f"Bearer {t1}"}, as_=None)
    s.check(st == 200 and b["sessions_ended"] == 1, "logout ends this session", f"{st} {b}")
    st, _, b = core.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {t1}"}, as_=None)
    s.check(st == 401, "a logged-out token is refused", f"{st}")
    st, _, _ = core.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {t2}"}, as_=None)
    s.check(st == 200, "the other session goes on", f"{st}")
    t3 = dan.login()
    st, _, b = core.post("/api/v1/auth/logout-all", {}, headers={"Authorization": f"Bearer {t3}"}, as_=None)
    s.check(st == 200 and b["sessions_ended"] >= 2, "logout-all ends every session", f"{st} {b}")
    st, _, _ = core.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {t2}"}, as_=None)
    s.check(st == 401, "including the ones on other devices", f"{st}")
    for bad in ("Bearer " + "A" * 43, "Bearer short", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 5000):
        st, _, b = core.get("/api/v1/auth/me", headers={"Authorization": bad}, as_=None)
        s.check(st == 401 and msg(b), f"a forged or malformed token gets 401 ({bad[:12]}...)", f"{st} {b}")

    # ---- password change ends all sessions; the new password follows the policy
    erin = core.staff("payment_officer", "erin")
    st, _, b = core.post("/api/v1/auth/password", {"current_password": erin.password, "new_password": "password1234"},
                         as_=erin)
    s.check(st == 400 and b["error"]["fields"][0]["field"] == "new_password", "a common password is refused", f"{st} {b}")
    st, _, b = core.post("/api/v1/auth/password", {"current_password": "not-it-at-all-1", "new_password":
                                                   "Twiga-Ndefu-Sana-7"}, as_=erin)
    s.check(st == 401, "a wrong current password is refused", f"{st} {b}")
    st, _, b = core.post("/api/v1/auth/password", {"current_password": erin.password, "new_password":
                                                   "Twiga-Ndefu-Sana-7"}, as_=erin)
    s.check(st == 200, "the password changes", f"{st} {b}")
    st, _, _ = core.get("/api/v1/auth/me", as_=erin)
    s.check(st == 401, "and every session ended with it", f"{st}")
    erin.password = "Twiga-Ndefu-Sana-7"
    erin.login()

    # ---- an account made by an admin enrols TOTP at first login; recovery codes work once
    st, _, b = core.post("/api/v1/users", {"username": "fatuma", "role": "support", "password": "short"}, as_="admin")
    s.check(st == 400 and b["error"]["fields"][0]["field"] == "password", "a short password is refused", f"{st} {b}")
    st, _, b = core.post("/api/v1/users", {"username": "fatuma", "role": "support", "password": "Nyota-Angani-2026"},
                         as_="admin")
    s.check(st == 201 and b["mfa"] == "pending", "an admin creates an account", f"{st} {b}")
    st, _, b = login(core, "fatuma", "Nyota-Angani-2026")
    s.check(st == 200 and b["stage"] == "enrol", "its first login is an enrolment session", f"{st} {b}")
    enrol = {"Authorization": f"Bearer {b['token']}"}
    st, _, b = core.get("/api/v1/programmes", headers=enrol, as_=None)
    s.check(st == 403 and "Enrol an authenticator" in msg(b), "which may not read the registry yet", f"{st} {b}")
    st, _, m = core.post("/api/v1/auth/mfa/enrol", {}, headers=enrol, as_=None)
    s.check(st == 200 and m["otpauth_uri"].startswith("otpauth://totp/Hifadhi:fatuma?secret=") and
            m["qr_svg"].startswith("<svg") and "<path" in m["qr_svg"],
            "enrolment gives an otpauth URI and a QR code", f"{st} {str(m)[:200]}")
    st, _, b = core.post("/api/v1/auth/mfa/confirm", {"totp_code": "000000" if totp(m["secret"]) != "000000" else "111111"},
                         headers=enrol, as_=None)
    s.check(st == 401, "a wrong confirmation code is refused", f"{st} {b}")
    st, _, c = core.post("/api/v1/auth/mfa/confirm", {"totp_code": totp(m["secret"])}, headers=enrol, as_=None)
    s.check(st == 200 and len(c["recovery_codes"]) == 10, "the right code activates TOTP and gives 10 recovery codes",
            f"{st} {c}")
    st, _, _ = core.get("/api/v1/programmes", headers=enrol, as_=None)
    s.check(st == 200, "the session is now a full session", f"{st}")
    rc = c["recovery_codes"][0]
    st, _, b = login(core, "fatuma", "Nyota-Angani-2026", recovery_code=rc)
    s.check(st == 200 and b["recovery_codes_left"] == 9, "a recovery code replaces the TOTP code once", f"{st} {b}")
    st, _, b = login(core, "fatuma", "Nyota-Angani-2026", recovery_code=rc)
    s.check(st == 401 and "already used" in msg(b), "and only once", f"{st} {b}")

    # ---- CLI recovery: disable, reset-mfa
    r = core.run_cli(["user", "disable", "fatuma"])
    s.check(r.returncode == 0, "user disable works from the CLI", r.stderr)
    st, _, b = core.get("/api/v1/auth/me", headers=enrol, as_=None)
    s.check(st == 401 and "disabled" in msg(b), "a disabled account's sessions stop at once", f"{st} {b}")
    st, _, b = login(core, "fatuma", "Nyota-Angani-2026", recovery_code=c["recovery_codes"][1])
    s.check(st == 401 and "disabled" in msg(b), "and it cannot log in", f"{st} {b}")
    core.run_cli(["user", "enable", "fatuma"], check=True)
    r = core.run_cli(["user", "reset-mfa", "fatuma"])
    s.check(r.returncode == 0, "user reset-mfa works from the CLI", r.stderr)
    st, _, b = login(core, "fatuma", "Nyota-Angani-2026")
    s.check(st == 200 and b["stage"] == "enrol", "after reset-mfa the next login enrols a new authenticator", f"{st} {b}")
    r = core.run_cli(["user", "add", "x", "--role", "boss"], input="Nyota-Angani-2026\n")
    s.check(r.returncode == 2 and "role" in r.stderr, "the CLI refuses a bad role with a clear message", r.stderr)
    r = core.run_cli(["user", "add", "gideon", "--role", "admin"], input="Nyota-Angani-2026\n")
    s.check(r.returncode == 0 and "otpauth://totp/" in r.stdout and "\u2588" in r.stdout and
            r.stdout.count("-") >= 10, "user add prints a terminal QR code, the URI and recovery codes",
            r.stdout[:300])

    # ---- the gateway's service credential
    st, _, b = core.get("/api/v1/programmes", headers={"X-Hifadhi-Service-Key": core.gateway_secret()}, as_=None)
    s.check(st == 200, "the gateway's secret is accepted", f"{st} {b}")
    bad = core.gateway_secret()[:-1] + ("0" if core.gateway_secret()[-1] != "0" else "1")
    st, _, b = core.get("/api/v1/programmes", headers={"X-Hifadhi-Service-Key": bad}, as_=None)
    s.check(st == 401 and "service credential" in msg(b), "a wrong service secret gets 401", f"{st} {b}")
    st, _, b = core.get("/api/v1/programmes", headers={"X-Hifadhi-Service-Key": core.gateway_secret(),
                                                      "Authorization": f"Bearer {erin.token}"}, as_=None)
    s.check(st == 401 and "one credential" in msg(b), "two credentials at once are refused", f"{st} {b}")
    denied = [e for e in audit(core, action="programme.list") if e["outcome"] == "denied"]
    s.check(len(denied) >= 2 and all(core.gateway_secret() not in str(e) for e in denied),
            "refused service calls are audited without the secret", f"{len(denied)}")

    # ---- nothing secret in the logs
    text = core.log_text() + tight.log_text()
    leaked = [w for w in (STAFF_PASSWORD, "Twiga-Ndefu-Sana-7", "Nyota-Angani-2026", rc, core.gateway_secret(),
                          alice.token, m["secret"]) if w in text]
    s.check(not leaked, "no password, code, secret or token in any log", str(leaked))
