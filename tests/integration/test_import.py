"""test_import.py - bulk CSV import, its report, re-runs, export round trip and the data quality report.

An operator loads a targeting survey: good rows go in, every bad row is listed with its row, field and
reason (never its value), a second run of the same file adds nothing, a fixed file adds only what was
fixed, and the quality report finds the likely duplicates the survey contained.
"""

import csv
import io

from harness import Core, Suite


def read_report(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def count_people(core):
    n, after = 0, ""
    while True:
        st, _, body = core.get("/api/v1/individuals?location=" + REGION_PARAM + "&limit=100" + after)
        if st != 200:
            return -1
        n += len(body["items"])
        if not body.get("next"):
            return n
        after = "&after=" + body["next"]


REGION_PARAM = ""

with Suite() as s:
    core = Core(s)
    for code, target in (("OPCT", "individual"), ("PWSD-CT", "individual"), ("CT-OVC", "household")):
        st, _, _ = core.post("/api/v1/programmes", {"code": code, "name": code + " programme", "target": target,
                                                    "currency": "KES"})
        s.eq(st, 201, f"programme {code} created")

    # --- a clean file
    clean = core.run_cli(["gen", "--households", "300", "--seed", "5"], check=True).stdout
    rows = list(csv.DictReader(io.StringIO(clean)))
    path = s.var / "clean.csv"
    path.write_text(clean)
    r = core.run_cli(["import", str(path)])
    s.eq(r.returncode, 0, "clean file imported")
    s.check("rows/s" in r.stderr and "ETA" in r.stderr, "progress shows rate and ETA", r.stderr[-300:])
    s.eq(read_report(str(path) + ".rejected.csv"), [], "clean file: no rejected rows")
    regions = sorted({row["region"] for row in rows})
    total = 0
    for reg in regions:
        REGION_PARAM = reg.replace(" ", "%20")
        total += count_people(core)
    s.eq(total, len(rows), "every row of the clean file is a person in the registry")
    st, _, enr = core.get("/api/v1/enrolments?programme=OPCT&limit=100")
    want_opct = sum(1 for row in rows if row["programme"] == "OPCT")
    s.check(st == 200 and (len(enr["items"]) == min(100, want_opct)), "rows with a programme are enrolled",
            f"{len(enr.get('items', []))} vs {want_opct}")

    # --- re-run: nothing new
    r = core.run_cli(["import", str(path)])
    s.eq(r.returncode, 0, "the same file imported again")
    total2 = 0
    for reg in regions:
        REGION_PARAM = reg.replace(" ", "%20")
        total2 += count_people(core)
    s.eq(total2, total, "a re-run adds no duplicates")
    s.check("already imported" in r.stderr and str(len(rows)) in r.stderr, "the re-run reports rows already imported",
            r.stderr[-400:])

    # --- a file with bad rows and duplicates
    bad = core.run_cli(["gen", "--households", "400", "--seed", "6", "--bad-rate", "5", "--dup-rate", "10",
                        "--ref-prefix", "SRV"], check=True).stdout
    bpath = s.var / "survey.csv"
    bpath.write_text(bad)
    brows = list(csv.DictReader(io.StringIO(bad)))
    r = core.run_cli(["import", str(bpath), "--report", str(s.var / "survey-report.csv")])
    s.eq(r.returncode, 0, "a file with bad rows still imports its good rows")
    rep = read_report(s.var / "survey-report.csv")
    s.check(len(rep) > 10, "bad rows are reported", f"{len(rep)} lines")
    s.check(all(x["row"].isdigit() and int(x["row"]) >= 2 for x in rep), "each report line names its row")
    s.check(all(x["reason"] for x in rep), "each report line gives a reason")
    fields = {x["field"] for x in rep}
    s.check({"national_id", "date_of_birth"} <= fields, "report names the fields at fault", f"{sorted(fields)}")
    values = {row[c] for row in brows for c in ("given_name", "family_name", "national_id", "phone") if len(row[c]) >= 4}
    report_text = (s.var / "survey-report.csv").read_text()
    s.check(not [v for v in values if v in report_text], "the report never repeats a rejected value")
    # the row numbers point at the right rows: a reported check-digit row really has a bad national ID
    by_row = {i + 2: row for i, row in enumerate(brows)}
    cd = [x for x in rep if x["field"] == "national_id" and "check digit" in x["reason"]]
    s.check(cd and all(by_row[int(x["row"])]["national_id"] for x in cd), "check-digit rows have a national ID")

    # --- fix and re-run: only the fixed rows come in
    rejected_rows = {int(x["row"]) for x in rep}
    r = core.run_cli(["import", str(bpath), "--report", str(s.var / "survey-report2.csv")])
    rep2 = read_report(s.var / "survey-report2.csv")
    s.eq({int(x["row"]) for x in rep2}, rejected_rows, "a re-run rejects exactly the same rows again")

    # --- broken CSV structure: a clear error, nothing imported
    broken = s.var / "broken.csv"
    broken.write_text("household_ref,region,colour\nX-1,Nairobi,blue\n")
    r = core.run_cli(["import", str(broken)])
    s.check(r.returncode != 0 and "column 3" in r.stderr and "nothing was imported" in r.stderr,
            "an unknown column rejects the whole file, naming its position (never its text: it may be data)",
            r.stderr[-300:])
    quotes = s.var / "quotes.csv"
    quotes.write_text(clean.splitlines()[0] + "\n" + 'Q-1,"Nairobi,Kibra,Soweto,,1,head,Unterminated\n')
    r = core.run_cli(["import", str(quotes), "--report", str(s.var / "quotes-report.csv")])
    s.check(r.returncode in (0, 1), "an unterminated quote does not crash the importer", f"exit {r.returncode}")

    # --- export round trip
    out = s.var / "export.csv"
    r = core.run_cli(["export", str(out)])
    s.eq(r.returncode, 0, "export ran")
    exp = list(csv.DictReader(open(out, newline="")))
    s.eq(list(exp[0].keys()) if exp else [], list(rows[0].keys()), "export has the import header")
    s.check(len(exp) >= total, "export holds every person", f"{len(exp)} < {total}")
    core2 = Core(s, name="roundtrip")
    for code, target in (("OPCT", "individual"), ("PWSD-CT", "individual"), ("CT-OVC", "household")):
        core2.post("/api/v1/programmes", {"code": code, "name": code, "target": target, "currency": "KES"})
    r = core2.run_cli(["import", str(out), "--report", str(s.var / "rt-report.csv")])
    s.eq(r.returncode, 0, "the export imports into an empty registry")
    s.eq(read_report(s.var / "rt-report.csv"), [], "the export re-imports without a rejected row")
    exp2 = s.var / "export2.csv"
    core2.run_cli(["export", str(exp2)], check=True)
    key = lambda row: (row["household_ref"], row["member_no"])
    s.eq(sorted(map(key, csv.DictReader(open(exp2, newline="")))), sorted(map(key, exp)),
         "exporting the re-import gives the same people")

    # --- quality report
    st, _, q = core.get("/api/v1/quality")
    s.eq(st, 200, "quality report over the API")
    if st == 200:
        s.eq(q["individuals"], len(exp), "report counts every individual")
        dups = q["duplicates"]
        s.check(dups["same_name_dob_village_total"] > 0 or dups["phonetic_name_dob_total"] > 0,
                "the survey's copied people are found as likely duplicates", f"{dups}")
        nid = q["completeness"]["national_id"]
        s.check(0 < nid["percent"] < 100 and nid["filled"] + nid["missing"] == q["individuals"],
                "completeness of national_id is a share of everyone", f"{nid}")
        s.check(all(len(b) == 9 for g in dups["phonetic_name_dob"] for b in g["ben_nos"]),
                "duplicate groups name beneficiaries by number")
    st, _, q2 = core.get("/api/v1/quality?stale_days=0")
    s.eq(st, 400, "stale_days out of range is a 400")
    r = core.run_cli(["quality"])
    s.check(r.returncode == 0 and "duplicate" in r.stdout.lower(), "quality report on the command line", r.stdout[:300])
    s.check(not [v for v in values if v in r.stdout], "the printed report holds no names, IDs or phones")
