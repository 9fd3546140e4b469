"""test_schema.py - migrations: ordered, recorded, append-only, Galera-compatible, least privilege.

An operator upgrading a national cluster runs `hifadhi-core migrate` and must be able to trust it: a
second run does nothing, an edited old migration is refused rather than half-applied, every table can
live on Galera (InnoDB with a primary key, no LOCK TABLES / GET_LOCK / XA), and the service's own
database account cannot alter or drop the schema.
"""

import re
import shutil
import subprocess
from pathlib import Path

from harness import Core, Mariadb, Suite, env

with Suite() as s:
    core = Core(s, start=False)
    r = core.run_cli(["migrate"])
    s.check(r.returncode == 0 and "applied: 0" in r.stderr, "a second migrate applies nothing", r.stderr[-200:])
    rows = Mariadb.sql("SELECT version, name, LENGTH(sha256) FROM schema_migrations ORDER BY version", db=core.db)
    files = sorted(p.name for p in Path(env("HF_SQL_DIR")).glob("[0-9][0-9][0-9][0-9]_*.sql"))
    recorded = [line.split("\t")[1] for line in rows.strip().splitlines()]
    s.eq(recorded, files, "every migration file is recorded, in order")
    s.check(all(line.split("\t")[2] == "64" for line in rows.strip().splitlines()), "each with its SHA-256")

    tables = Mariadb.sql("SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
                         db=core.db).strip().splitlines()
    s.check(len(tables) >= 8, "the schema has its tables", f"{tables}")
    not_innodb = [t for t in tables if t.split("\t")[1] != "InnoDB"]
    # The one exception, on purpose: the kiosk replay guard holds nothing but nonces seen in the last
    # minutes; in memory it costs no disk write per kiosk request (docs/security.md explains the trade-off).
    s.eq(not_innodb, ["kiosk_nonces\tMEMORY"], "every table is InnoDB (Galera replicates only InnoDB), "
         "except the in-memory kiosk replay guard")
    no_pk = Mariadb.sql(
        "SELECT t.TABLE_NAME FROM information_schema.TABLES t LEFT JOIN information_schema.TABLE_CONSTRAINTS c"
        " ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY'"
        " WHERE t.TABLE_SCHEMA = DATABASE() AND c.CONSTRAINT_NAME IS NULL", db=core.db).split()
    s.eq(no_pk, [], "every table has a primary key")
    forbidden = re.compile(r"\b(LOCK\s+TABLES?|GET_LOCK|RELEASE_LOCK|XA\s+(START|BEGIN|END|PREPARE|COMMIT))\b", re.I)
    sources = list(Path(env("HF_SQL_DIR")).glob("*.sql")) + list((Path(__file__).parents[2] / "core").glob("*.c"))

    def code_only(text):
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # C block comments
        return re.sub(r"(--|//)[^\n]*", " ", text)           # SQL and C line comments

    hits = [p.name for p in sources if forbidden.search(code_only(p.read_text(errors="replace")))]
    s.eq(hits, [], "no LOCK TABLES, GET_LOCK or XA in migrations or core code")

    # an applied migration that was edited afterwards stops the run
    edited = s.var / "sql-edited"
    shutil.rmtree(edited, ignore_errors=True)
    shutil.copytree(env("HF_SQL_DIR"), edited)
    first = sorted(edited.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    r = core.run_cli(["migrate"], overrides={"paths.sql_dir": str(edited)})
    s.check(r.returncode != 0 and "edited" in r.stderr, "an edited applied migration is refused", r.stderr[-300:])

    # the service account cannot change the schema
    app_pw = (Path(env("HF_KEY_DIR")) / "db-app.password").read_text().strip()
    r = subprocess.run(["mariadb", "--no-defaults", f"--socket={Mariadb.socket()}", "-uhifadhi", f"-p{app_pw}",
                        core.db, "-e", "DROP TABLE record_versions"], capture_output=True, text=True)
    s.check(r.returncode != 0 and "denied" in r.stderr.lower(), "the service account cannot drop a table", r.stderr)
    r = subprocess.run(["mariadb", "--no-defaults", f"--socket={Mariadb.socket()}", "-uhifadhi", f"-p{app_pw}",
                        core.db, "-e", "SELECT COUNT(*) FROM individuals"], capture_output=True, text=True)
    s.eq(r.returncode, 0, "the service account can read its tables")

    # config errors stop startup with file:line
    bad = s.var / "bad.conf"
    bad.write_text(core.conf.read_text() + "\n[http]\nprot = 8080\n")
    r = subprocess.run([str(core.bin), "-c", str(bad), "config-check"], capture_output=True, text=True)
    s.check(r.returncode != 0 and re.search(r"bad\.conf:\d+: unknown key 'http\.prot'", r.stderr),
            "an unknown config key names file:line", r.stderr)
    bad.write_text(core.conf.read_text().replace("threads = 8", "threads = 100000"))
    r = subprocess.run([str(core.bin), "-c", str(bad), "config-check"], capture_output=True, text=True)
    s.check(r.returncode != 0 and "http.threads" in r.stderr, "an out-of-range value stops startup", r.stderr)
    r = subprocess.run([str(core.bin), "-c", str(core.conf), "config-check"], capture_output=True, text=True)
    s.eq(r.returncode, 0, "the harness's own config passes config-check")
    r = subprocess.run([str(core.bin), "-c", str(core.conf), "-o", "national_id.check=mod11-2", "config-check"],
                       capture_output=True, text=True)
    s.check(r.returncode != 0 and "alnum" in r.stderr,
            "a national ID rule that could never accept valid IDs (mod11-2 over digits only) stops startup", r.stderr)
