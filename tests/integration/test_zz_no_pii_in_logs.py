"""test_zz_no_pii_in_logs.py - after every other suite: no personal data or secret in any log of the run.

Runs last (the runner takes suites in name order). The harness wrote down every personal value and secret
the suites sent (names, national IDs, phone numbers, dates of birth, addresses, passwords, TOTP and
recovery codes, session tokens, kiosk enrolment codes, and the personal columns of every CSV imported) to
$HF_TEST_VAR/pii-sent.txt. This suite searches every line of every service log of the run (serve and CLI
logs of every Core, and the MariaDB server's error log) for each of them, in the forms they may take
(national phone numbers too). Beneficiary PINs arrive with the USSD channel; they will be recorded the same
way.
"""
import os
import re
from pathlib import Path

from harness import Suite, env

with Suite() as s:
    var = Path(env("HF_TEST_VAR"))
    sent = var / "pii-sent.txt"
    needles = set()
    if sent.exists():
        for v in sent.read_text(encoding="utf-8").splitlines():
            v = v.strip()
            # Short or generic values (a 5-letter name inside another word) are kept only when they cannot
            # be an ordinary word of a log line: names start with a capital letter and are matched as words.
            if len(v) >= 5:
                needles.add(v)
            if re.fullmatch(r"\+254\d{9}", v):
                needles.add("0" + v[4:])
    s.check(len(needles) >= 500, "the suites sent personal data to look for", f"{len(needles)} values")

    # Our services' logs. Kannel's and the SMPP simulator's are third-party logs that carry numbers by
    # design (docs/kannel.md: treat them as personal data); they are left out.
    logs = [p for p in var.rglob("*.log") if p.is_file()
            and not any(part.startswith(("kannel", "smppsim")) for part in p.relative_to(var).parts[:-1])]
    db_log = Path(env("HF_DB_DIR")) / "error.log"
    if db_log.exists():
        logs.append(db_log)
    s.check(len(logs) >= 10, "the run left service logs to search", f"{len(logs)} files")

    words = re.compile(r"[\w+@.-]+")
    # A value that is one word is looked up among a line's words; a longer one (an address) is tried only on
    # lines that hold its first word: every line is read once, however many values there are.
    single = {v for v in needles if words.fullmatch(v)}
    by_first = {}
    for v in needles - single:
        first = words.findall(v)
        by_first.setdefault(first[0] if first else v, []).append(v)
    found = []
    lines = 0
    for p in logs:
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            lines += 1
            tokens = set(words.findall(line))
            hits = [v for v in tokens & single]
            for t in tokens:
                hits += [v for v in by_first.get(t, ()) if v in line]
            for v in hits:
                found.append(f"{p.relative_to(var) if var in p.parents else p}:{n}: a sent value ({len(v)} chars)")
    s.check(lines > 1000 and not found, f"none of {len(needles)} personal values or secrets in {lines} log lines",
            "\n".join(found[:20]))
