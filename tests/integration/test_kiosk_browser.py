"""test_kiosk_browser.py - the kiosk's touch UI in Debian's headless Chromium (playwright-core, tests/browser/
drive.mjs) against a real hifadhi-kiosk and core: the whole collection flow tapped on the page, the PIN + staff
fallback typed on the on-screen keypad and keyboard, and the error screens (mistyped number, unknown number,
locked by the tamper switch). Screenshots of every step are kept in build/artifacts/kiosk-browser/.
"""

import json
import shutil
import subprocess
import time

from harness import Suite, Core, ROOT, record_pii, damm_complete
from kiosk_term import Terminal, paying_registry, enrol_finger

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Awasi"}
PAY_POINT = "AWASI-1"
BROWSER_DIR = ROOT / "tests" / "browser"
SHOTS = ROOT / "build" / "artifacts" / "kiosk-browser"


def npm_ready():
    """playwright-core from the lock file, installed once (npm ci); Chromium is Debian's."""
    if (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return None
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, capture_output=True, text=True,
                       timeout=600)
    return None if r.returncode == 0 else f"npm ci failed: {r.stderr[-800:]}"


class Page:
    """The driver: one JSON command a line in, one answer a line out."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["node", str(BROWSER_DIR / "drive.mjs"), url, str(SHOTS)], cwd=BROWSER_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def do(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the browser driver stopped (exit {self.proc.poll()})")
        return json.loads(line)

    def wait(self, screen, timeout_ms=20000, after=None):
        cmd = {"cmd": "wait", "screen": screen, "timeout_ms": timeout_ms}
        if after is not None:
            cmd["after"] = after
        return self.do(**cmd)

    def tap(self, testid):
        return self.do(cmd="tap", testid=testid)

    def shot(self, name):
        return self.do(cmd="shot", name=name)

    def wait_field(self, field, timeout=20.0):
        """Until the staff sign-in screen asks for field (the page moves on only when the daemon answered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.do(cmd="state").get("state") or {}
            if st.get("screen") == "fallback_staff" and st.get("data", {}).get("field") == field:
                return True
            time.sleep(0.05)
        return False

    def quit(self):
        try:
            self.do(cmd="quit")
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


with Suite() as s:
    problem = npm_ready()
    s.check(problem is None, "playwright-core is installed from tests/browser/package-lock.json", problem or "")
    chk = subprocess.run(["node", str(BROWSER_DIR / "drive.mjs"), "--check"], cwd=BROWSER_DIR, capture_output=True,
                         text=True, timeout=120)
    s.check(chk.returncode == 0, "Debian's chromium runs headless under playwright-core", chk.stdout + chk.stderr)
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)

    core = Core(s)
    officer_a = core.staff("payment_officer", "pay.wanjiru")
    officer_b = core.staff("payment_officer", "pay.otieno")
    bens, phones, payment_of = paying_registry(core, officer_a, officer_b, ["Nyambura", "Onyango", "Pendo"],
                                               LOC, PAY_POINT)
    record_pii(bens + phones)
    station = Terminal(s, core, PAY_POINT, officer_a, name="station", enrolment=True)
    for ben, finger in ((bens[0], "loop-right"), (bens[1], "whorl")):
        done = enrol_finger(station, ben, finger)
        s.check(done["screen"] == "enrol_done", "a finger is enrolled for the browser flows", json.dumps(done["data"]))
    station.stop()

    term = Terminal(s, core, PAY_POINT, officer_a, name="paypoint")
    page = Page(f"http://127.0.0.1:{term.port}/")
    try:
        r = page.do(cmd="open")
        s.check(r.get("ok") and r.get("screen") == "start", "the page opens on the start screen", json.dumps(r))
        page.shot("01-start")

        # ---- the whole collection, tapped
        page.tap("start-collect")
        page.wait("enter_ben")
        r = page.do(cmd="type", testid="ben-display", text=bens[0])
        s.check(r.get("ok"), "the beneficiary number is typed on the on-screen keypad", json.dumps(r))
        shown = page.do(cmd="text", testid="ben-display")
        s.check(bens[0] in shown.get("text", "").replace(" ", ""), "the keypad shows the digits typed", json.dumps(shown))
        page.shot("02-number")
        page.tap("key-ok")
        r = page.wait("scan")
        s.check(r.get("ok"), "the page asks for a finger", json.dumps(r)[:300])
        page.shot("03-scan")
        req = term.finger("loop-right", rotate=5)
        term.wait_finger_taken(req)
        r = page.wait("payments")
        items = r.get("state", {}).get("data", {}).get("items", [])
        s.check(r.get("ok") and len(items) == 1, "after the finger the page lists the payment", json.dumps(r)[:300])
        page.shot("04-payments")
        page.tap("payment-0")
        r = page.wait("confirm")
        amount = page.do(cmd="text", testid="confirm-amount").get("text", "")
        s.check("4,000.00" in amount and "KES" in amount, "the confirmation shows the amount with its currency", amount)
        page.shot("05-confirm")
        page.tap("confirm")
        r = page.wait("done", timeout_ms=30000)
        receipt = page.do(cmd="text", testid="done-receipt").get("text", "")
        s.check(r.get("ok") and payment_of(bens[0])["status"] == "collected" and
                r["state"]["data"]["receipt"] in receipt,
                "tapping confirm collects the payment once and shows the receipt number", receipt)
        s.check(term.gpio.count("drawer") == 1, "the drawer opens once", str(term.gpio.outs[-6:]))
        page.shot("06-done")
        page.tap("finish")
        page.wait("start")

        # ---- error screens
        page.tap("start-collect")
        page.wait("enter_ben")
        wrong = bens[1][:-1] + str((int(bens[1][-1]) + 3) % 10)
        page.do(cmd="type", testid="ben-display", text=wrong)
        page.tap("key-ok")
        r = page.wait("message")
        msg = page.do(cmd="text", testid="message-text").get("text", "")
        s.check(r["state"]["data"]["code"] == "bad_ben" and msg.strip() != "",
                "a mistyped number shows its own message screen", msg)
        page.shot("07-error-bad-number")
        page.tap("finish")
        page.wait("start")
        page.tap("start-collect")
        page.wait("enter_ben")
        unknown = damm_complete("12345678")  # a well-formed number (check digit right) that nobody has
        page.do(cmd="type", testid="ben-display", text=unknown)
        page.tap("key-ok")
        r = page.wait("message")
        s.check(r["state"]["data"]["code"] == "unknown_ben", "an unknown number is refused by core, said plainly",
                json.dumps(r["state"]["data"]))
        page.shot("08-error-unknown-number")
        page.tap("finish")
        page.wait("start")

        # ---- the fallback: another finger three times, then PIN + staff credential typed on the page
        core.request("POST", f"/api/v1/subscribers/{phones[1]}/pin", {"pin": "5931"},
                     headers={"X-Hifadhi-Service-Key": core.gateway_secret()}, as_=None)
        page.tap("start-collect")
        page.wait("enter_ben")
        page.do(cmd="type", testid="ben-display", text=bens[1])
        page.tap("key-ok")
        for attempt in range(3):
            page.wait("scan")
            req = term.finger("arch", rotate=attempt * 3)
            term.wait_finger_taken(req)
            st = term.wait_screen("scan", "fallback_offer", timeout=20)
            if st["screen"] == "fallback_offer":
                break
            if attempt == 0:
                page.shot("09-no-match")
        r = page.wait("fallback_offer")
        s.check(r.get("ok"), "after three refused fingers the page offers the PIN and staff route", json.dumps(r)[:200])
        page.shot("10-fallback-offer")
        page.tap("fallback")
        page.wait("fallback_pin")
        page.do(cmd="type", testid="pin-dots", text="5931")
        dots = page.do(cmd="text", testid="pin-dots")
        s.check("5931" not in json.dumps(dots), "the PIN is never shown, only dots", json.dumps(dots))
        page.shot("11-pin")
        page.tap("key-ok")
        s.check(page.wait_field("user"), "the staff member is asked for their user name", "")
        page.do(cmd="type", testid="staff-input", text=officer_a.username)
        page.shot("12-staff-user")
        page.tap("kb-ok")
        s.check(page.wait_field("password"), "then for their password", "")
        page.do(cmd="type", testid="staff-input", text=officer_a.password)
        shown = page.do(cmd="text", testid="staff-input").get("text", "")
        s.check(officer_a.password not in shown, "the password is shown as dots", shown)
        page.shot("13-staff-password")
        page.tap("kb-ok")
        s.check(page.wait_field("totp"), "then for the one-time code of their authenticator", "")
        page.do(cmd="type", testid="staff-input", text=officer_a.next_code())
        page.tap("key-ok")
        r = page.wait("payments", timeout_ms=30000)
        s.check(r.get("ok"), "PIN + staff credential typed on the page open the payments", json.dumps(r)[:300])
        page.shot("14-fallback-payments")
        page.tap("cancel")
        page.wait("start")

        # ---- locked by the tamper switch
        term.gpio.send("IN tamper 1")
        r = page.wait("locked")
        s.check(r.get("ok"), "the tamper switch shows the locked screen at once", json.dumps(r)[:200])
        page.shot("15-locked")
        errs = page.do(cmd="errors")
        s.check(errs.get("ok") and not errs.get("errors"), "no console errors or CSP refusals on the page",
                json.dumps(errs)[:500])
        term.close_casing()
        core.post(f"/api/v1/kiosks/{term.kiosk_no}/unlock", {"reason": "seal checked"}, as_="admin")
        r = page.wait("start", timeout_ms=20000)
        s.check(r.get("ok"), "unlocked by staff, the page is back at the start screen", json.dumps(r)[:200])

        # ---- the kiosk daemon gone: the page says so instead of freezing
        term.kill()
        r = page.wait("not_responding", timeout_ms=30000)
        s.check(r.get("ok"), "with the daemon gone the page shows 'the kiosk is not responding'", json.dumps(r)[:200])
        page.shot("16-not-responding")
        shots = sorted(p.name for p in SHOTS.glob("*.png"))
        s.check(len(shots) >= 15, f"screenshots kept as artefacts in {SHOTS.relative_to(ROOT)}", str(shots))
    finally:
        page.quit()
    term.start()
    term.stop()
