"""test_db_down.py - the database goes away and comes back: clear 503s, nothing half-written, self-healing.

A district office's server reboots its database during working hours. Clients must get a clear "try
again shortly" (503 + Retry-After), not a hang or a 500; nothing may be half-stored; and the service must
recover without anyone restarting it.
"""

import time

from harness import Core, Mariadb, Suite

LOC = {"region": "Kisumu", "district": "Nyando", "village": "Ahero"}


def household(given, nid):
    return {"location": LOC, "members": [{"given_name": given, "family_name": "Otieno", "sex": "male",
                                          "date_of_birth": "1955-06-01", "national_id": nid,
                                          "relationship": "head", "language": "luo"}]}


def luhn(payload):
    """Completes a 7-digit payload with its Luhn digit (the demo country's national ID rule)."""
    total = 0
    for k, ch in enumerate(reversed(payload)):
        d = int(ch) * (2 if k % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return payload + str((10 - total % 10) % 10)


def count(core):
    st, _, body = core.get("/api/v1/households?location=Kisumu&limit=100")
    return len(body.get("items", [])) if st == 200 else -1


with Suite() as s:
    core = Core(s, overrides={"db.connect_timeout_s": "2", "db.rw_timeout_s": "5"})
    st, _, hh = core.post("/api/v1/households", household("Ochieng", luhn("3456789")))
    s.eq(st, 201, "a household is registered while the database is up")
    ben = hh["members"][0]["ben_no"] if st == 201 else "000000000"
    s.eq(count(core), 1, "one household in the registry")

    Mariadb.stop()
    try:
        t0 = time.monotonic()
        st, hdrs, body = core.get(f"/api/v1/individuals/{ben}")
        took = time.monotonic() - t0
        s.eq(st, 503, "a read while the database is down is a 503")
        s.check(hdrs.get("Retry-After", "").isdigit(), "the 503 says when to retry", repr(hdrs.get("Retry-After")))
        s.eq(body.get("error", {}).get("code") if isinstance(body, dict) else None, "db_retry", "error code db_retry")
        s.check(took < 10, "the 503 comes quickly, not after a long hang", f"{took:.1f} s")
        st, hdrs, body = core.post("/api/v1/households", household("Odhiambo", luhn("4567890")))
        s.eq(st, 503, "a write while the database is down is a 503")
        msg = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
        s.check("nothing was changed" in msg.lower(), "the 503 says nothing was changed", msg)
        st, _, body = core.get("/healthz")
        s.eq(st, 503, "healthz reports the database down")
        st, _, body = core.get("/metrics")
        s.check(st == 200 and "hifadhi_db_unavailable_total" in body, "metrics still answer and count the 503s")
    finally:
        Mariadb.start()

    deadline = time.monotonic() + 30
    healthy = False
    while time.monotonic() < deadline:
        st, _, _ = core.get("/healthz")
        if st == 200:
            healthy = True
            break
        time.sleep(0.2)
    s.check(healthy, "the service reconnects by itself once the database is back")
    # every pool thread holds its own connection: several requests exercise reconnection on each
    statuses = {core.get(f"/api/v1/individuals/{ben}")[0] for _ in range(40)}
    s.eq(statuses, {200}, "every request succeeds after recovery (all threads reconnected)")
    s.eq(count(core), 1, "the write refused during the outage left nothing behind")
    st, _, _ = core.post("/api/v1/households", household("Odhiambo", luhn("4567890")))
    s.eq(st, 201, "the same write succeeds when retried")
    s.eq(count(core), 2, "exactly one new household after the retry")
