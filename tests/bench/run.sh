#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup and the signal handlers are reached only through trap
# run.sh - the benchmarks of `make bench`: `make bench` calls `tests/bench/run.sh build/release`.
#
# Each figure is reported next to a baseline measured in the same run on the same machine, and against a
# target (PASS/MISS); docs/benchmarks.md explains them and records figures measured so far.
#   A  GET /api/v1/individuals/<ben_no> over HTTP (80,000 people), wrk -c64, vs a bare libmicrohttpd
#      server (tests/bench/bare_mhd.c) with the same thread count: throughput ratio, p50/p99 latency
#   B  `hifadhi-core import` of ~400,000 individuals vs plain multi-row INSERTs of the same rows into an
#      unindexed TEXT table (tests/bench/plain_insert.c): individuals/s and the ratio
#   C  GET /api/v1/individuals?national_id=<id> with ~1,000,000 individuals, wrk -c16: p50/p99, req/s
#      (A and C read as the gateway, with its service key: the high-volume channel, no per-read audit write)
#   D  audit cost: POST /api/v1/households by a registrar, wrk -c16, with the audit trail on vs off
#   E  kiosk signatures: GET /api/v1/individuals/<ben_no> signed by an enrolled kiosk (each request once,
#      with its own nonce) vs the same reads with the gateway's key, wrk -c32
#   F  `hifadhi-core audit verify` over 1,000,000 entries, vs streaming the same rows with the mariadb client
#   G  login under attack: 200 connections send wrong passwords for one account from 200 addresses while
#      other staff log in 4 times a second; their p99 vs the same logins on a quiet server
#   H  the SLA sweeper over 1,000,000 open cases (10% overdue), and API read p99 during the sweep vs without
#   I  lodging grievances through the API (POST /api/v1/cases as the gateway), each new
#
# Everything runs on loopback, out of var/bench/ (removed on exit, whatever happens): a private MariaDB
# (deploy/mariadb.sh, 127.0.0.1:3327), hifadhi-core and bare_mhd on 127.0.0.1 (ports 18327/18328).
# Results: the summary table on stdout and in build/bench/results.txt; raw wrk output, import summaries and
# server logs in build/bench/logs/ (replaced by each run).
# Exit status: 0 when every benchmark measured what it should, even if targets are missed (MISS);
# 1 when a benchmark is invalid (a lookup answered something else than 200 with the expected record, a
# socket error, an import that did not insert every row) or when setting up failed.
#
# Knobs (environment), for trying things out; the defaults are what docs/benchmarks.md reports:
#   HF_BENCH_THREADS   http.threads values tried for hifadhi-core in A; the highest req/s is kept (default "4", the shipped default)
#   HF_BENCH_C_THREADS the same for C, where the lowest p99 is kept (default "4")
#   HF_BENCH_DURATION  seconds of each measured wrk run (15);  HF_BENCH_WARMUP  seconds of warm-up (3)
#   HF_BENCH_HH_A / HF_BENCH_HH_B / HF_BENCH_HH_C  households generated (20000 / 100000 / 250000)
#   HF_BENCH_ONLY      a subset of benchmarks to run, e.g. "A" or "BC" (ABCDEFG)
#   HF_BENCH_AUDIT_N   audit entries for F (1000000);  HF_BENCH_CASES  open cases for H (1000000)
#   HF_BENCH_PORT      HTTP port of hifadhi-core; bare_mhd uses the next one (18327)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

if [ "$#" -ne 1 ]; then
	echo "usage: $0 BUILD_DIR   (e.g. build/release)" >&2
	exit 2
fi
[ -d "$1" ] || { echo "bench: no build directory $1 (run make first)" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
CORE="$BUILD/bin/hifadhi-core"
BARE="$BUILD/bench/bare_mhd"
PLAIN="$BUILD/bench/plain_insert"
LUA="$ROOT/tests/bench/paths.lua"
RLUA="$ROOT/tests/bench/requests.lua"
SIGNER="$BUILD/bench/kiosk_sign"
AUDIT_BENCH="$BUILD/bench/audit_verify"
AUDIT_N=${HF_BENCH_AUDIT_N:-1000000}

read -r -a threads_arr <<<"${HF_BENCH_THREADS:-4}"
THREADS_LIST="${threads_arr[*]}" # normalised: single spaces
read -r -a threads_arr <<<"${HF_BENCH_C_THREADS:-4}"
C_THREADS_LIST="${threads_arr[*]}"
DURATION=${HF_BENCH_DURATION:-15}
WARMUP=${HF_BENCH_WARMUP:-3}
HH_A=${HF_BENCH_HH_A:-20000}
HH_B=${HF_BENCH_HH_B:-100000}
HH_C=${HF_BENCH_HH_C:-250000}
ONLY=${HF_BENCH_ONLY:-ABCDEFGHIJKL}
PAY_N=${HF_BENCH_PAY_N:-20000}      # payments disbursed in K (each of B2C and G2P)
RECON_N=${HF_BENCH_RECON_N:-1000000} # statement lines in L
CASES_N=${HF_BENCH_CASES:-1000000}
PORT=${HF_BENCH_PORT:-18327}
BARE_PORT=$((PORT + 1))
LOOKUPS=5000          # distinct records each lookup benchmark cycles through
IMPORT_TIMEOUT_S=600  # an import that takes longer is stuck, not slow
HEALTH_DEADLINE_S=30
STOP_DEADLINE_S=15

for v in DURATION WARMUP HH_A HH_B HH_C PORT; do
	case "${!v}" in '' | *[!0-9]*) echo "bench: $v must be a number, got '${!v}'" >&2; exit 2 ;; esac
done
for t in $THREADS_LIST $C_THREADS_LIST; do
	case "$t" in '' | *[!0-9]*) echo "bench: HF_BENCH_THREADS and HF_BENCH_C_THREADS must be numbers" >&2; exit 2 ;; esac
done

export HF_DB_DIR=var/bench/mariadb
export HF_DB_PORT=3327
export HF_KEY_DIR=var/bench/keys
unset HF_DB_NAME
VAR="$ROOT/var/bench"
SOCK="$VAR/mariadb/mysqld.sock"
CORE_KEYS="$VAR/core-keys"
OUT="$ROOT/build/bench"
LOGS="$OUT/logs"
RESULTS="$OUT/results.txt"
MARIADB="$ROOT/deploy/mariadb.sh"

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

for f in "$CORE" "$BARE" "$PLAIN"; do
	[ -x "$f" ] || die "$f not found; run make first (make bench builds everything)"
done
for c in wrk mariadb curl python3 flock timeout; do
	command -v "$c" >/dev/null 2>&1 || die "$c not found (deploy/deps.sh installs it)"
done

# ---- processes we start, stopped on exit whatever happens

core_pid=""
bare_pid=""
sim_pid=""
fg_pid=""
db_started=false
cleaned=false

stop_pid() { # stop_pid PID NAME: SIGTERM, wait up to STOP_DEADLINE_S, then SIGKILL
	local pid=$1 name=$2 tries=$((STOP_DEADLINE_S * 20))
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null && ((tries-- > 0)); do sleep 0.05; done
	if kill -0 "$pid" 2>/dev/null; then
		say "$name (pid $pid) did not stop within ${STOP_DEADLINE_S}s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# run_waited CMD...: CMD in the background, waited for, so that a signal is acted on at once (bash runs a trap
# only once the foreground command has finished) and cleanup can stop it. Returns CMD's exit status.
run_waited() {
	local rc=0
	"$@" &
	fg_pid=$!
	wait "$fg_pid" || rc=$?
	fg_pid=""
	return "$rc"
}

stop_core() { stop_pid "$core_pid" hifadhi-core; core_pid=""; }
stop_bare() { stop_pid "$bare_pid" bare_mhd; bare_pid=""; }
stop_sim() { stop_pid "$sim_pid" hifadhi-paysim; sim_pid=""; }

cleanup() {
	$cleaned && return 0
	cleaned=true
	trap '' INT TERM HUP # a second Ctrl-C or TERM must not leave the servers running half-way through
	stop_pid "$fg_pid" "the running command"
	stop_core
	stop_bare
	stop_sim
	if $db_started; then
		[ -f "$VAR/mariadb/error.log" ] && cp "$VAR/mariadb/error.log" "$LOGS/mariadb-error.log" 2>/dev/null
		"$MARIADB" stop >>"$LOGS/mariadb-stop.log" 2>&1 || say "could not stop the bench MariaDB in $VAR/mariadb"
	fi
	rm -rf "$VAR"
}
trap 'cleanup' EXIT
trap 'echo; say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM HUP

# One bench at a time per checkout: a second one would share var/bench and the ports.
mkdir -p "$OUT"
exec {lock_fd}>"$OUT/.lock"
flock -n "$lock_fd" || { cleaned=true; die "another bench is running in this checkout ($OUT/.lock)"; }

rm -rf "$LOGS"
mkdir -p "$LOGS"
# Leftovers of a bench that was killed: its server (stopped through its own pid file) and its folder.
if [ -d "$VAR/mariadb" ]; then
	"$MARIADB" stop >/dev/null 2>&1 || true
fi
rm -rf "$VAR"
mkdir -p "$VAR" "$CORE_KEYS"
chmod 0700 "$CORE_KEYS"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" "$BARE_PORT"; do
	port_busy "$p" && die "port $p on 127.0.0.1 is in use; set HF_BENCH_PORT"
done

# ---- helpers

root_sql() { mariadb --no-defaults --socket="$SOCK" -uroot --batch --skip-column-names "$@"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
calc() { awk "BEGIN { printf \"$1\", ($2) }"; } # calc FORMAT EXPR (in parentheses: > is not a redirection)
fmt_int() { calc %.0f "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; } # 1234567.8 -> 1,234,568
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

# A fresh database with both accounts, a config file for it, keys and the schema.
# new_db NAME CONF: the config is written for port PORT; serve overrides http.threads per run.
new_db() {
	local db=$1 conf=$2
	root_sql -e "DROP DATABASE IF EXISTS \`$db\`"
	HF_DB_NAME=$db "$MARIADB" init-db
	cat >"$conf" <<CONF
# written by tests/bench/run.sh
[http]
bind = 127.0.0.1
port = $PORT
threads = 8
access_log = false

[db]
socket = $SOCK
name = $db
user = hifadhi
password_file = $ROOT/$HF_KEY_DIR/db-app.password
migrate_user = hifadhi_admin
migrate_password_file = $ROOT/$HF_KEY_DIR/db-admin.password

[crypto]
key_dir = $CORE_KEYS
active_key_id = 1

[auth]
gateway_secret_file = $CORE_KEYS/gateway.secret
trusted_proxy = 127.0.0.1

[log]
level = warn

[paths]
sql_dir = $ROOT/sql

[workflow]
dir = $ROOT/deploy/workflows

[eligibility]
dir = $ROOT/deploy/eligibility
CONF
	"$CORE" -c "$conf" keygen >>"$LOGS/setup.log" 2>&1 || die "keygen failed; see $LOGS/setup.log"
	"$CORE" -c "$conf" migrate >>"$LOGS/setup.log" 2>&1 || die "migrate failed; see $LOGS/setup.log"
}

# start_core CONF THREADS LOG: serve in the background, wait until /healthz answers 200.
start_core() { # start_core CONF THREADS LOG [section.key=value]...: more -o overrides after LOG
	local conf=$1 threads=$2 log=$3 tries=$((HEALTH_DEADLINE_S * 20)) o extra=()
	shift 3
	for o in "$@"; do extra+=(-o "$o"); done
	"$CORE" -c "$conf" -o "http.threads=$threads" "${extra[@]}" serve </dev/null >"$log" 2>&1 &
	core_pid=$!
	until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/healthz")" = 200 ]; do
		kill -0 "$core_pid" 2>/dev/null || { tail -n 20 "$log" >&2; core_pid=""; die "hifadhi-core serve exited; log: $log"; }
		((tries-- > 0)) || { tail -n 20 "$log" >&2; die "hifadhi-core did not answer /healthz within ${HEALTH_DEADLINE_S}s"; }
		sleep 0.05
	done
}

start_bare() {
	local threads=$1 tries=$((HEALTH_DEADLINE_S * 20))
	"$BARE" "$BARE_PORT" "$threads" </dev/null >"$LOGS/bare_mhd.log" 2>&1 &
	bare_pid=$!
	until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$BARE_PORT/")" = 200 ]; do
		kill -0 "$bare_pid" 2>/dev/null || { bare_pid=""; die "bare_mhd exited; log: $LOGS/bare_mhd.log"; }
		((tries-- > 0)) || die "bare_mhd did not answer within ${HEALTH_DEADLINE_S}s"
		sleep 0.05
	done
}

# bench_token CONF ROLE: a session token of bench.ROLE in CONF's database (the account is made on first use;
# its password and TOTP secret stay in var/bench/). Needs serve running.
bench_token() { # bench_token CONF ROLE [NAME]: NAME makes a second account of the same role
	local conf=$1 role=$2 name=${3:-$2} db file pw
	db=$(sed -n 's/^name = //p' "$conf" | head -n 1)
	file="$VAR/staff-$db.json"
	[ -s "$file" ] || echo '{}' >"$file"
	if ! python3 -c 'import json,sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1])) else 1)' "$file" "$name"; then
		pw="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		printf '%s\n' "$pw" | "$CORE" -c "$conf" user add "bench.${name//_/-}" --role "$role" --json >"$VAR/user.json" \
			2>>"$LOGS/setup.log" || die "user add bench.$name failed; see $LOGS/setup.log"
		python3 - "$file" "$name" "$pw" "$VAR/user.json" <<'PY'
import json, sys
f, role, pw, out = sys.argv[1:5]
d = json.load(open(f))
o = json.load(open(out))
d[role] = {"username": o["username"], "password": pw, "secret": o["secret"]}
json.dump(d, open(f, "w"))
PY
	fi
	"$ROOT/deploy/demo_staff.py" "$file" login "$name" "http://127.0.0.1:$PORT" || die "login of bench.$name failed"
}

# The programmes the generated data enrols people in (`gen` uses these codes).
create_programmes() {
	local p code target status token
	token=$(bench_token "$1" admin)
	for p in OPCT:individual PWSD-CT:individual CT-OVC:household; do
		code=${p%%:*}
		target=${p#*:}
		status=$(curl -s -o "$LOGS/programme.json" -w '%{http_code}' --max-time 10 -X POST \
			-H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
			-d "{\"code\":\"$code\",\"name\":\"Benchmark programme $code\",\"target\":\"$target\",\"currency\":\"KES\"}" \
			"http://127.0.0.1:$PORT/api/v1/programmes")
		[ "$status" = 201 ] || die "POST /api/v1/programmes $code answered $status: $(cat "$LOGS/programme.json")"
	done
}

gen_csv() { # gen_csv HOUSEHOLDS SEED OUT: prints the number of data rows (individuals)
	timeout 300 "$CORE" gen --households "$1" --seed "$2" >"$3" || die "hifadhi-core gen failed"
	echo $(($(wc -l <"$3") - 1))
}

# import_csv CONF FILE NAME: runs the import, sets IMPORT_SECONDS and IMPORT_INDIVIDUALS (from its summary).
import_csv() {
	local conf=$1 file=$2 name=$3 t0 t1 rc=0 err="$LOGS/import-$3.txt" m0 m1 cpu
	cpu_mark m0
	t0=$(now)
	run_waited timeout "$IMPORT_TIMEOUT_S" "$CORE" -c "$conf" import "$file" --actor bench --report "$VAR/$name.rejected.csv" \
		</dev/null 2>"$err.raw" >/dev/null || rc=$?
	t1=$(now)
	cpu_mark m1
	cpu=$(cpu_report "$m0" "$m1")
	NOISE+=("import-$name: $cpu")
	tr '\r' '\n' <"$err.raw" | grep -v '^import: [0-9]*/[0-9]* rows' >"$err" || true
	rm -f "$err.raw"
	[ "$rc" = 0 ] || { cat "$err" >&2; die "import of $file failed (exit $rc); see $err"; }
	echo "# $cpu" >>"$err"
	IMPORT_SECONDS=$(elapsed "$t0" "$t1")
	IMPORT_INDIVIDUALS=$(sed -n 's/^ *individuals inserted: *\([0-9][0-9]*\).*/\1/p' "$err")
	IMPORT_REJECTED=$(sed -n 's/^ *rows rejected: *\([0-9][0-9]*\).*/\1/p' "$err")
	[ -n "$IMPORT_INDIVIDUALS" ] || die "no 'individuals inserted' line in the import summary; see $err"
}

# wrk_run NAME SERVER_PID URL PATHS_FILE CONNS [one]: one measured run; sets W_RPS W_P50 W_P99 W_BAD W_OK
# (true/false). Latencies are in milliseconds. W_OK is false when any response was not 200 (or not exactly
# one record with "one"), a socket error happened, or nothing was answered.
wrk_val() { grep -o "$1=[^ ]*" "$2" | head -n 1 | cut -d= -f2; } # wrk_val KEY FILE: from the BENCH lines
wrk_run() {
	local name=$1 spid=$2 url=$3 paths=$4 conns=$5 one=${6:-} out="$LOGS/wrk-$1.txt" m0 m1 cpu
	run_waited wrk -t2 -c"$conns" -d"${WARMUP}s" --timeout 5s ${WRK_HEADER:+-H "$WRK_HEADER"} -s "$LUA" "$url" -- "$paths" ${one:+"$one"} \
		>"$LOGS/wrk-$name-warmup.txt" 2>&1 || die "wrk (warm-up of $name) failed; see $LOGS/wrk-$name-warmup.txt"
	cpu_mark m0 "$spid"
	run_waited wrk -t2 -c"$conns" -d"${DURATION}s" --timeout 5s --latency ${WRK_HEADER:+-H "$WRK_HEADER"} -s "$LUA" "$url" -- "$paths" ${one:+"$one"} \
		>"$out" 2>&1 || die "wrk ($name) failed; see $out"
	cpu_mark m1 "$spid"
	local sname=hifadhi-core
	[[ "$name" == *bare* ]] && sname=bare_mhd
	cpu=$(cpu_report "$m0" "$m1" "$sname")
	echo "# $cpu" >>"$out"
	NOISE+=("$name: $cpu")
	local responses non200 wrong sockerr first
	responses=$(wrk_val responses "$out")
	non200=$(wrk_val non200 "$out")
	wrong=$(wrk_val wrong_body "$out")
	sockerr=$(wrk_val socket_errors "$out")
	first=$(wrk_val first_bad_status "$out")
	W_RPS=$(wrk_val rps "$out")
	W_P50=$(calc %.2f "$(wrk_val p50_us "$out") / 1000")
	W_P99=$(calc %.2f "$(wrk_val p99_us "$out") / 1000")
	if [ -z "$responses" ] || [ -z "$W_RPS" ]; then die "no BENCH lines in the wrk output; see $out"; fi
	W_OK=true
	W_BAD=""
	if [ "$responses" -eq 0 ] || [ "$non200" -ne 0 ] || [ "$wrong" -ne 0 ] || [ "$sockerr" -ne 0 ]; then
		W_OK=false
		W_BAD="$responses responses: $non200 not 200 (first: $first), $wrong without exactly one record, $sockerr socket errors"
		say "INVALID $name: $W_BAD"
	fi
	say "$name: $(fmt_int "$W_RPS") req/s, p50 $W_P50 ms, p99 $W_P99 ms ($responses responses checked)"
	say "  $cpu"
}

# ---- where the CPU went during a measurement: the server under test, mariadbd, our children (wrk,
# plain_insert, import), and everything else on the machine (other users' work is noise in these figures).
TICK=$(getconf CLK_TCK)
NCPU=$(nproc)
proc_ticks() { # utime+stime of a process (all threads), 0 if gone
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	# shellcheck disable=SC2086  # split into fields on purpose
	set -- $s
	echo $((${12} + ${13}))
}
machine_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
db_pid() { cat "$VAR/mariadb/mysqld.pid" 2>/dev/null || echo 0; }
# cpu_mark VAR [SERVER_PID]: stores a snapshot for cpu_report in VAR. Not in a $(...): `times` (the CPU of
# our waited-for children, e.g. wrk) must run in this shell, a subshell starts from zero.
cpu_mark() {
	times >"$VAR/times.txt"
	local kids
	kids=$(awk -v tick="$TICK" 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
		printf "%.0f", t * tick }' "$VAR/times.txt")
	printf -v "$1" '%s %s %s %s %s' "$(now)" "$(machine_busy_ticks)" "$(proc_ticks "$(db_pid)")" "$(proc_ticks "${2:-0}")" "$kids"
}
# cpu_report MARK_BEFORE MARK_AFTER [SERVER_NAME]: "CPU (100% = one core, NCPU cores): server N%, ..."
cpu_report() {
	awk -v a="$1" -v b="$2" -v tick="$TICK" -v ncpu="$NCPU" -v name="${3:-}" 'BEGIN {
		split(a, x, " "); split(b, y, " "); wall = y[1] - x[1]; if (wall <= 0) wall = 1
		busy = y[2] - x[2]; db = y[3] - x[3]; srv = y[4] - x[4]; kids = y[5] - x[5]
		other = busy - db - srv - kids; if (other < 0) other = 0
		pc = 100 / (wall * tick)
		printf "CPU (100%% = one core, %d cores):", ncpu
		if (name != "") printf " %s %.0f%%,", name, srv * pc
		printf " mariadbd %.0f%%, client/tool %.0f%%, other processes %.0f%%", db * pc, kids * pc, other * pc }'
}
NOISE=()
NOTES=()

mark() { # mark CONDITION_EXPR: PASS or MISS (awk expression)
	if [ "$(calc %d "($1) ? 1 : 0")" = 1 ]; then echo PASS; else echo MISS; fi
}

# ---- results

INVALID=0
ROWS=()
row() { ROWS+=("$(printf '%-46s %-30s %-30s %s' "$1" "$2" "$3" "$4")"); }

STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(load_avg)
say "started $STARTED on $(nproc) CPUs, load average $LOAD_START"

say "starting MariaDB (var/bench/mariadb, 127.0.0.1:$HF_DB_PORT)"
db_started=true
"$MARIADB" start {lock_fd}>&- # the server outlives no bench, but must not hold the lock if it did

# ---- A: lookup by beneficiary number over HTTP, against a bare libmicrohttpd server

BEST_THREADS=${THREADS_LIST%% *}
if [[ "$ONLY" == *A* ]]; then
	say "A: generating $HH_A households and importing them"
	CONF_A="$VAR/core-a.conf"
	new_db hf_bench_a "$CONF_A"
	rows_a=$(gen_csv "$HH_A" 1 "$VAR/a.csv")
	start_core "$CONF_A" "$BEST_THREADS" "$LOGS/core-a-setup.log"
	create_programmes "$CONF_A"
	stop_core
	import_csv "$CONF_A" "$VAR/a.csv" a
	say "A: $IMPORT_INDIVIDUALS individuals imported in ${IMPORT_SECONDS}s"
	[ "$IMPORT_INDIVIDUALS" = "$rows_a" ] || die "A: the import inserted $IMPORT_INDIVIDUALS individuals of $rows_a rows"
	root_sql -e "SELECT CONCAT('/api/v1/individuals/', ben_no) FROM hf_bench_a.individuals ORDER BY RAND(1) LIMIT $LOOKUPS" \
		>"$VAR/a-paths.txt"
	[ "$(wc -l <"$VAR/a-paths.txt")" -eq "$LOOKUPS" ] || die "A: fewer than $LOOKUPS individuals to look up"
	echo / >"$VAR/bare-paths.txt"
	WRK_HEADER="X-Hifadhi-Service-Key: $(cat "$CORE_KEYS/gateway.secret")"

	best_rps=0
	A_TRIES=""
	for t in $THREADS_LIST; do
		say "A: hifadhi-core with http.threads=$t, wrk -t2 -c64 -d${DURATION}s (after ${WARMUP}s of warm-up)"
		start_core "$CONF_A" "$t" "$LOGS/core-a-threads$t.log"
		wrk_run "a-core-threads$t" "$core_pid" "http://127.0.0.1:$PORT" "$VAR/a-paths.txt" 64
		stop_core
		$W_OK || INVALID=1
		A_TRIES+="${A_TRIES:+, }$t threads: $(fmt_int "$W_RPS") req/s p99 $W_P99 ms"
		if $W_OK && [ "$(calc %d "$W_RPS > $best_rps")" = 1 ]; then
			best_rps=$W_RPS
			BEST_THREADS=$t
			A_P50=$W_P50
			A_P99=$W_P99
		fi
	done
	say "A: best for hifadhi-core: http.threads=$BEST_THREADS; bare_mhd gets the same"
	start_bare "$BEST_THREADS"
	WRK_HEADER="X-Hifadhi-Service-Key: $(cat "$CORE_KEYS/gateway.secret")" # sent to bare_mhd too: same bytes
	wrk_run "a-bare-threads$BEST_THREADS" "$bare_pid" "http://127.0.0.1:$BARE_PORT" "$VAR/bare-paths.txt" 64
	stop_bare
	$W_OK || INVALID=1
	bare_rps=$W_RPS
	if [ "$best_rps" != 0 ]; then
		ratio=$(calc %.3f "$best_rps / $bare_rps")
		row "A lookup by ben_no, core ($BEST_THREADS threads, -c64)" "$(fmt_int "$best_rps") req/s" \
			"bare_mhd $(fmt_int "$bare_rps") req/s" ""
		row "A   ratio core/bare" "$ratio" "target >= 0.40" "$(mark "$ratio >= 0.4")"
		row "A   core latency p50 / p99" "$A_P50 / $A_P99 ms" "target p99 <= 10 ms" "$(mark "$A_P99 <= 10")"
		NOTES+=("A: http.threads tried (-c64; the highest req/s is kept): $A_TRIES")
	else
		row "A lookup by ben_no" "no valid run" "" "INVALID"
	fi
	root_sql -e "DROP DATABASE hf_bench_a"
	rm -f "$VAR/a.csv"
fi

# ---- B: import, against plain multi-row INSERTs of the same rows

if [[ "$ONLY" == *B* ]]; then
	say "B: generating $HH_B households"
	rows_b=$(gen_csv "$HH_B" 2 "$VAR/b.csv")
	say "B: $rows_b individuals; baseline: plain INSERTs of 1000 rows into a TEXT table"
	root_sql -e "DROP DATABASE IF EXISTS hf_bench_plain"
	HF_DB_NAME=hf_bench_plain "$MARIADB" init-db
	cpu_mark m0
	t0=$(now)
	run_waited timeout "$IMPORT_TIMEOUT_S" "$PLAIN" "$SOCK" hifadhi_admin "$ROOT/$HF_KEY_DIR/db-admin.password" hf_bench_plain \
		plain_individuals "$VAR/b.csv" >"$LOGS/plain_insert-b.txt" 2>&1 ||
		{ cat "$LOGS/plain_insert-b.txt" >&2; die "plain_insert failed"; }
	t1=$(now)
	cpu_mark m1
	cpu=$(cpu_report "$m0" "$m1")
	NOISE+=("plain_insert: $cpu")
	echo "# $cpu" >>"$LOGS/plain_insert-b.txt"
	plain_s=$(elapsed "$t0" "$t1")
	plain_rows=$(sed -n 's/.*rows=\([0-9]*\) .*/\1/p' "$LOGS/plain_insert-b.txt")
	[ "$plain_rows" = "$rows_b" ] || die "B: plain_insert inserted $plain_rows rows of $rows_b"
	plain_rate=$(calc %.1f "$plain_rows / $plain_s")
	say "B: plain INSERTs: $plain_rows rows in ${plain_s}s = $(fmt_int "$plain_rate") rows/s"
	# Dropped before the import, so its dirty pages are discarded instead of written during the import.
	root_sql -e "DROP DATABASE hf_bench_plain"

	CONF_B="$VAR/core-b.conf"
	new_db hf_bench_b "$CONF_B"
	start_core "$CONF_B" "$BEST_THREADS" "$LOGS/core-b-setup.log"
	create_programmes "$CONF_B"
	stop_core
	say "B: hifadhi-core import"
	import_csv "$CONF_B" "$VAR/b.csv" b
	import_rate=$(calc %.1f "$IMPORT_INDIVIDUALS / $IMPORT_SECONDS")
	say "B: import: $IMPORT_INDIVIDUALS individuals in ${IMPORT_SECONDS}s = $(fmt_int "$import_rate") individuals/s"
	if [ "$IMPORT_INDIVIDUALS" != "$rows_b" ]; then
		INVALID=1
		say "INVALID B: the import inserted $IMPORT_INDIVIDUALS individuals of $rows_b rows ($IMPORT_REJECTED rejected)"
		row "B import" "$IMPORT_INDIVIDUALS of $rows_b rows inserted" "" "INVALID"
	else
		row "B import of $(fmt_int "$rows_b") individuals" "$(fmt_int "$import_rate") individuals/s (${IMPORT_SECONDS}s)" \
			"target >= 20,000/s" "$(mark "$import_rate >= 20000")"
		row "B   ratio import/plain INSERT" "$(calc %.3f "$import_rate / $plain_rate")" \
			"plain $(fmt_int "$plain_rate") rows/s (${plain_s}s)" "(no target)"
	fi
	root_sql -e "DROP DATABASE hf_bench_b"
	rm -f "$VAR/b.csv"
fi

# ---- C: lookup by national ID among ~1,000,000 individuals

if [[ "$ONLY" == *C* ]]; then
	say "C: generating $HH_C households"
	rows_c=$(gen_csv "$HH_C" 3 "$VAR/c.csv")
	CONF_C="$VAR/core-c.conf"
	new_db hf_bench_c "$CONF_C"
	start_core "$CONF_C" "$BEST_THREADS" "$LOGS/core-c-setup.log"
	create_programmes "$CONF_C"
	stop_core
	say "C: importing $rows_c individuals"
	import_csv "$CONF_C" "$VAR/c.csv" c
	c_rate=$(calc %.1f "$IMPORT_INDIVIDUALS / $IMPORT_SECONDS")
	count_c=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_c.individuals")
	say "C: $count_c individuals in the registry (import: ${IMPORT_SECONDS}s, $(fmt_int "$c_rate") individuals/s)"
	[ "$count_c" = "$rows_c" ] || die "C: the registry holds $count_c individuals, the file has $rows_c rows"
	# 5000 national IDs from the file (column 12, non-empty), a fixed random sample over the whole file.
	python3 - "$VAR/c.csv" "$LOOKUPS" >"$VAR/c-paths.txt" <<'PY'
import csv, random, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    r = csv.reader(f)
    header = next(r)
    col = header.index("national_id")
    ids = [row[col] for row in r if row[col]]
for nid in random.Random(3).sample(ids, int(sys.argv[2])):
    print("/api/v1/individuals?national_id=" + nid)
PY
	[ "$(wc -l <"$VAR/c-paths.txt")" -eq "$LOOKUPS" ] || die "C: fewer than $LOOKUPS national IDs in the file"
	rm -f "$VAR/c.csv"
	WRK_HEADER="X-Hifadhi-Service-Key: $(cat "$CORE_KEYS/gateway.secret")"
	reads0=$(root_sql -e "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'" | cut -f2)
	c_best="" C_TRIES=""
	for t in $C_THREADS_LIST; do
		say "C: hifadhi-core with http.threads=$t, wrk -t2 -c16 -d${DURATION}s (after ${WARMUP}s of warm-up)"
		start_core "$CONF_C" "$t" "$LOGS/core-c-threads$t.log"
		wrk_run "c-core-threads$t" "$core_pid" "http://127.0.0.1:$PORT" "$VAR/c-paths.txt" 16 one
		stop_core
		C_TRIES+="${C_TRIES:+, }$t: p99 $W_P99 ms $(fmt_int "$W_RPS") req/s"
		if ! $W_OK; then
			INVALID=1
			C_BAD=$W_BAD
		elif [ -z "$c_best" ] || [ "$(calc %d "$W_P99 < $C_P99")" = 1 ]; then
			c_best=$t C_P50=$W_P50 C_P99=$W_P99 C_RPS=$W_RPS
		fi
	done
	reads1=$(root_sql -e "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'" | cut -f2)
	if [ -n "$c_best" ]; then
		row "C lookup by national_id, $(fmt_int "$count_c") indiv." "p50 $C_P50 / p99 $C_P99 ms" "target p99 <= 5 ms" \
			"$(mark "$C_P99 <= 5")"
		row "C   throughput (-c16, $c_best threads)" "$(fmt_int "$C_RPS") req/s" \
			"$((reads1 - reads0)) InnoDB page reads (all runs)" "(no target)"
		NOTES+=("C: http.threads tried (-c16; the lowest p99 is kept): $C_TRIES")
	fi
	if [ -n "${C_BAD:-}" ]; then
		row "C lookup by national_id" "$C_BAD" "" "INVALID"
	fi
	row "C   import of $(fmt_int "$IMPORT_INDIVIDUALS") individuals" "$(fmt_int "$c_rate") individuals/s (${IMPORT_SECONDS}s)" \
		"" "(info)"
	root_sql -e "DROP DATABASE hf_bench_c"
fi

# ---- wrk_req: one measured run of requests.lua (headers, bodies). wrk_req NAME SERVER_PID FILE CONNS EXPECT [once]
# Sets the same W_* as wrk_run; with "once", a run whose file ran out (a thread had nothing new to send) is
# invalid: the file must hold more requests than the run sends.
wrk_req() {
	local name=$1 spid=$2 file=$3 conns=$4 expect=$5 once=${6:-} out="$LOGS/wrk-$1.txt" m0 m1 cpu
	cpu_mark m0 "$spid"
	WRK_THREADS=2 run_waited wrk -t2 -c"$conns" -d"${DURATION}s" --timeout 5s --latency -s "$RLUA" \
		"http://127.0.0.1:$PORT" -- "$file" "$expect" ${once:+"$once"} >"$out" 2>&1 || die "wrk ($name) failed; see $out"
	cpu_mark m1 "$spid"
	cpu=$(cpu_report "$m0" "$m1" hifadhi-core)
	echo "# $cpu" >>"$out"
	NOISE+=("$name: $cpu")
	local responses bad sockerr first exhausted
	responses=$(wrk_val responses "$out")
	bad=$(wrk_val non200 "$out")
	sockerr=$(wrk_val socket_errors "$out")
	first=$(wrk_val first_bad_status "$out")
	exhausted=$(wrk_val exhausted "$out")
	W_RPS=$(wrk_val rps "$out")
	W_P50=$(calc %.2f "$(wrk_val p50_us "$out") / 1000")
	W_P99=$(calc %.2f "$(wrk_val p99_us "$out") / 1000")
	[ -n "$responses" ] && [ -n "$W_RPS" ] || die "no BENCH lines in the wrk output; see $out"
	W_OK=true
	if [ "$responses" -eq 0 ] || [ "$bad" -ne 0 ] || [ "$sockerr" -ne 0 ] || [ "${exhausted:-0}" -ne 0 ]; then
		W_OK=false
		W_BAD="$responses responses: $bad not $expect (first: $first), $sockerr socket errors, $exhausted sent after the file ran out"
		say "INVALID $name: $W_BAD"
	fi
	say "$name: $(fmt_int "$W_RPS") req/s, p50 $W_P50 ms, p99 $W_P99 ms ($responses responses checked)"
	say "  $cpu"
}
SEP=$(printf '\037')

# ---- D: registry writes with the audit trail on and off

if [[ "$ONLY" == *D* ]]; then
	CONF_D="$VAR/core-d.conf"
	new_db hf_bench_d "$CONF_D"
	start_core "$CONF_D" "$BEST_THREADS" "$LOGS/core-d-setup.log"
	create_programmes "$CONF_D"
	token=$(bench_token "$CONF_D" registrar)
	stop_core
	body='{"location":{"region":"Nairobi","district":"Kibra","village":"Soweto East"},"address":"Plot 7","members":[{"given_name":"Amina","family_name":"Odhiambo","sex":"female","date_of_birth":"1948-03-12","relationship":"head","language":"sw","phone":"+254712000111"}]}'
	printf 'POST\t/api/v1/households\tAuthorization: Bearer %s%sContent-Type: application/json\t%s\n' "$token" "$SEP" "$body" \
		>"$VAR/d-requests.txt"
	declare -A D_RPS=()
	for mode in off on off on; do
		enabled=$([ "$mode" = on ] && echo true || echo false)
		say "D: POST /api/v1/households with audit.enabled=$enabled, wrk -t2 -c16 -d${DURATION}s"
		start_core "$CONF_D" "$BEST_THREADS" "$LOGS/core-d-$mode.log" "audit.enabled=$enabled"
		wrk_req "d-audit-$mode" "$core_pid" "$VAR/d-requests.txt" 16 201
		stop_core
		$W_OK || INVALID=1
		D_RPS[$mode]=$(calc %.1f "${D_RPS[$mode]:-0} + $W_RPS / 2")
	done
	d_ratio=$(calc %.3f "${D_RPS[on]} / ${D_RPS[off]}")
	row "D registry writes, audit on (-c16)" "$(fmt_int "${D_RPS[on]}") households/s" \
		"audit off $(fmt_int "${D_RPS[off]}")/s" ""
	row "D   ratio audit on/off" "$d_ratio" "target >= 0.70" "$(mark "$d_ratio >= 0.7")"
	NOTES+=("D: runs alternate off, on, off, on on the same growing table; each figure is the mean of its two runs")
	root_sql -e "DROP DATABASE hf_bench_d"
fi

# ---- E: signed kiosk requests vs the same reads with the gateway's key

if [[ "$ONLY" == *E* ]]; then
	CONF_E="$VAR/core-e.conf"
	new_db hf_bench_e "$CONF_E"
	rows_e=$(gen_csv 5000 5 "$VAR/e.csv")
	start_core "$CONF_E" "$BEST_THREADS" "$LOGS/core-e-setup.log"
	create_programmes "$CONF_E"
	stop_core
	import_csv "$CONF_E" "$VAR/e.csv" e
	rm -f "$VAR/e.csv"
	root_sql -e "SELECT CONCAT('/api/v1/individuals/', ben_no) FROM hf_bench_e.individuals ORDER BY RAND(5) LIMIT $LOOKUPS" \
		>"$VAR/e-paths.txt"
	start_core "$CONF_E" "$BEST_THREADS" "$LOGS/core-e.log"
	token=$(bench_token "$CONF_E" payment_officer)
	seed=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	pub=$("$SIGNER" pubkey "$seed")
	reg=$(curl -s --max-time 10 -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
		-d '{"pay_point":"Bench-1"}' "http://127.0.0.1:$PORT/api/v1/kiosks")
	kno=$(printf '%s' "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kiosk_no"])') || die "E: kiosk registration failed: $reg"
	code=$(printf '%s' "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["enrolment_code"])')
	st=$(curl -s -o "$LOGS/e-enrol.json" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
		-d "{\"kiosk_no\":\"$kno\",\"enrolment_code\":\"$code\",\"public_key\":\"$pub\"}" "http://127.0.0.1:$PORT/api/v1/kiosks/enrol")
	[ "$st" = 200 ] || die "E: kiosk enrolment answered $st: $(cat "$LOGS/e-enrol.json")"
	gw="X-Hifadhi-Service-Key: $(cat "$CORE_KEYS/gateway.secret")"
	sed "s|^|GET\t|; s|\$|\t$gw\t|" "$VAR/e-paths.txt" >"$VAR/e-unsigned.txt"
	e_runs=""
	declare -A E_RPS=()
	for round in 1 2; do
		say "E: unsigned (gateway key), wrk -t2 -c32 -d${DURATION}s"
		wrk_req "e-unsigned-$round" "$core_pid" "$VAR/e-unsigned.txt" 32 200
		$W_OK || INVALID=1
		E_RPS[unsigned]=$(calc %.1f "${E_RPS[unsigned]:-0} + $W_RPS / 2")
		# Every signed request is sent once: 1.5x what the unsigned run answered, signed just before use.
		n=$(calc %.0f "$W_RPS * $DURATION * 1.5 + 10000")
		"$SIGNER" requests "$seed" "$kno" "$VAR/e-paths.txt" "$n" >"$VAR/e-signed.txt" || die "E: kiosk_sign failed"
		say "E: signed by kiosk $kno ($(fmt_int "$n") requests, each sent once), wrk -t2 -c32 -d${DURATION}s"
		wrk_req "e-signed-$round" "$core_pid" "$VAR/e-signed.txt" 32 200 once
		$W_OK || INVALID=1
		E_RPS[signed]=$(calc %.1f "${E_RPS[signed]:-0} + $W_RPS / 2")
		e_runs+="${e_runs:+; }round $round: signed p99 $W_P99 ms"
	done
	stop_core
	rm -f "$VAR/e-signed.txt"
	e_ratio=$(calc %.3f "${E_RPS[signed]} / ${E_RPS[unsigned]}")
	# What the Ed25519 check alone costs, against the CPU an unsigned request takes with every core busy:
	# the best ratio any replay guard could reach on this machine.
	verify_us=$("$SIGNER" verify-cost 20000 | sed -n 's/^verify_us=//p')
	per_req_us=$(calc %.1f "$NCPU * 1000000 / ${E_RPS[unsigned]}")
	e_ceiling=$(calc %.2f "$per_req_us / ($per_req_us + $verify_us)")
	row "E kiosk-signed reads (-c32)" "$(fmt_int "${E_RPS[signed]}") req/s" "unsigned $(fmt_int "${E_RPS[unsigned]}") req/s" ""
	row "E   ratio signed/unsigned" "$e_ratio" "target >= 0.85" "$(mark "$e_ratio >= 0.85")"
	row "E   Ed25519 verify alone" "$verify_us us each" "ceiling $e_ceiling (of ${per_req_us} us CPU/req)" "(info)"
	NOTES+=("E: unsigned = the gateway's key (a constant-time compare); signed = key lookup, Ed25519 verify and the nonce INSERT that stops replays across instances; $e_runs")
	root_sql -e "DROP DATABASE hf_bench_e"
fi

# ---- F: audit verify over 1,000,000 entries

if [[ "$ONLY" == *F* ]]; then
	CONF_F="$VAR/core-f.conf"
	new_db hf_bench_f "$CONF_F"
	say "F: appending $(fmt_int "$AUDIT_N") audit entries"
	run_waited timeout 1200 "$AUDIT_BENCH" -c "$CONF_F" fill "$AUDIT_N" >"$LOGS/f-fill.txt" 2>&1 ||
		{ cat "$LOGS/f-fill.txt" >&2; die "F: filling the audit log failed"; }
	count_f=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_f.audit_log")
	[ "$count_f" -ge "$AUDIT_N" ] || die "F: the audit log holds $count_f entries, wanted $AUDIT_N"
	t0=$(now)
	root_sql --quick -e "SELECT * FROM hf_bench_f.audit_log ORDER BY stripe, seq" >/dev/null || die "F: baseline scan failed"
	t1=$(now)
	scan_s=$(elapsed "$t0" "$t1")
	cpu_mark m0
	t0=$(now)
	run_waited "$CORE" -c "$CONF_F" audit verify --json >"$LOGS/f-verify.json" 2>"$LOGS/f-verify.err" ||
		{ cat "$LOGS/f-verify.json" "$LOGS/f-verify.err" >&2; die "F: audit verify did not pass"; }
	t1=$(now)
	cpu_mark m1
	NOISE+=("f-verify: $(cpu_report "$m0" "$m1")")
	verify_s=$(elapsed "$t0" "$t1")
	entries=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["entries"] if d["ok"] else 0)' "$LOGS/f-verify.json")
	say "F: verify: $entries entries in ${verify_s}s; plain scan of the same rows ${scan_s}s"
	row "F audit verify of $(fmt_int "$count_f") entries" "${verify_s} s" "target <= 10 s" "$(mark "$verify_s <= 10")"
	row "F   ratio verify/plain scan" "$(calc %.2f "$verify_s / $scan_s")" "mariadb client scan ${scan_s} s" "(no target)"
	root_sql -e "DROP DATABASE hf_bench_f"
fi

# ---- G: staff logins while one account is under a password-guessing flood

if [[ "$ONLY" == *G* ]]; then
	CONF_G="$VAR/core-g.conf"
	new_db hf_bench_g "$CONF_G"
	say "G: 61 staff accounts (1 attacked, 60 logging in)"
	python3 - "$CORE" "$CONF_G" "$VAR/g-accounts.json" >>"$LOGS/setup.log" 2>&1 <<'PY' || die "G: creating accounts failed"
import json, subprocess, sys
core, conf, out = sys.argv[1:4]
accts = []
for i in range(61):
    name = "victim" if i == 0 else f"clerk{i:02d}"
    pw = f"Bench-Pass-{i:03d}-Ndovu"
    r = subprocess.run([core, "-c", conf, "user", "add", name, "--role", "support", "--json"], input=pw + "\n",
                       capture_output=True, text=True, check=True)
    accts.append({"username": name, "password": pw, "secret": json.loads(r.stdout)["secret"]})
json.dump(accts[1:], open(out, "w"))
PY
	for i in $(seq 1 200); do
		printf 'POST\t/api/v1/auth/login\tContent-Type: application/json%sX-Forwarded-For: 10.66.%d.%d\t{"username":"victim","password":"Wrong-guess-%d","totp_code":"123456"}\n' \
			"$SEP" $((i / 250)) $((i % 250 + 1)) "$i"
	done >"$VAR/g-attack.txt"
	start_core "$CONF_G" "$BEST_THREADS" "$LOGS/core-g.log"
	say "G: quiet: 4 logins/s for ${DURATION}s"
	python3 "$ROOT/tests/bench/login_probe.py" "http://127.0.0.1:$PORT" "$VAR/g-accounts.json" 4 "$DURATION" 10.1.0 \
		>"$LOGS/g-quiet.txt" || die "G: login probe failed"
	q_p99=$(wrk_val p99_ms "$LOGS/g-quiet.txt")
	q_fail=$(wrk_val failed "$LOGS/g-quiet.txt")
	say "G: under attack: 200 connections of wrong passwords for one account, 4 logins/s of others"
	WRK_THREADS=2 wrk -t2 -c200 -d"$((DURATION + 4))s" --timeout 5s --latency -s "$RLUA" "http://127.0.0.1:$PORT" \
		-- "$VAR/g-attack.txt" 401,429 >"$LOGS/wrk-g-attack.txt" 2>&1 &
	attack_pid=$!
	# The probe starts once the attack has bitten: the attacked account is locked (10 s at most).
	tries=200
	until [ "$(root_sql -e "SELECT COUNT(*) FROM hf_bench_g.staff_users WHERE username = 'victim' AND locked_until > UTC_TIMESTAMP(3)")" = 1 ]; do
		((tries-- > 0)) && kill -0 "$attack_pid" 2>/dev/null || die "G: the attack did not lock the account; see $LOGS/wrk-g-attack.txt"
		sleep 0.05
	done
	cpu_mark m0 "$core_pid"
	python3 "$ROOT/tests/bench/login_probe.py" "http://127.0.0.1:$PORT" "$VAR/g-accounts.json" 4 "$DURATION" 10.2.0 \
		>"$LOGS/g-attack-probe.txt" || die "G: login probe failed"
	cpu_mark m1 "$core_pid"
	wait "$attack_pid" || die "G: the attack run failed; see $LOGS/wrk-g-attack.txt"
	NOISE+=("g-under-attack: $(cpu_report "$m0" "$m1" hifadhi-core)")
	a_p99=$(wrk_val p99_ms "$LOGS/g-attack-probe.txt")
	a_fail=$(wrk_val failed "$LOGS/g-attack-probe.txt")
	a_n=$(wrk_val logins "$LOGS/g-attack-probe.txt")
	atk_rps=$(wrk_val rps "$LOGS/wrk-g-attack.txt")
	atk_bad=$(wrk_val non200 "$LOGS/wrk-g-attack.txt")
	hashed=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_g.audit_log WHERE action = 'auth.login' AND actor = 'victim' AND detail LIKE '%bad_password%'")
	stop_core
	if [ "$a_fail" != 0 ] || [ "$q_fail" != 0 ] || [ "$atk_bad" != 0 ]; then
		INVALID=1
		row "G logins under attack" "$a_fail of $a_n failed (quiet: $q_fail); $atk_bad attack answers not 401/429" "" "INVALID"
	else
		row "G other staff logins under attack, p99" "$a_p99 ms ($a_n logins)" "quiet p99 $q_p99 ms; target <= 500" \
			"$(mark "$a_p99 <= 500")"
		row "G   attack refused" "$(fmt_int "$atk_rps") attempts/s" "passwords hashed: $hashed" "(info)"
	fi
	NOTES+=("G: the attacker comes through the trusted proxy from 200 addresses; the account locks after 10 failures and later attempts are refused before any hashing")
	root_sql -e "DROP DATABASE hf_bench_g"
fi

# ---- H: the SLA sweeper over 1,000,000 open cases, 10% overdue, and API latency while it runs

if [[ "$ONLY" == *H* ]]; then
	CONF_H="$VAR/core-h.conf"
	new_db hf_bench_h "$CONF_H"
	rows_h=$(gen_csv 5000 8 "$VAR/h.csv")
	start_core "$CONF_H" "$BEST_THREADS" "$LOGS/core-h-setup.log"
	create_programmes "$CONF_H"
	stop_core
	import_csv "$CONF_H" "$VAR/h.csv" h
	rm -f "$VAR/h.csv"
	say "H: $(fmt_int "$CASES_N") open grievances, every tenth overdue (written straight into the table)"
	# Cases as the API would leave them after lodging (lodged, SLA 72 h), minus sealed text: the sweeper
	# reads only the state columns. The MariaDB SEQUENCE engine makes the numbers.
	root_sql hf_bench_h -e "INSERT INTO cases (id, ref, case_type, category, state, state_since, sla_due_at,
		sla_at_risk_at, channel, is_open, created_at, created_by, updated_at, updated_by)
		SELECT seq, LPAD(seq, 9, '0'), 'grievance', 'other', 'lodged', UTC_TIMESTAMP(3) - INTERVAL 80 HOUR,
		IF(seq % 10 = 0, UTC_TIMESTAMP(3) - INTERVAL 8 HOUR, UTC_TIMESTAMP(3) + INTERVAL 64 HOUR),
		UTC_TIMESTAMP(3) - INTERVAL 26 HOUR, 'api', 1, UTC_TIMESTAMP(3), 'bench', UTC_TIMESTAMP(3), 'bench'
		FROM seq_1_to_$CASES_N" || die "H: filling the cases table failed"
	overdue=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_h.cases WHERE sla_due_at <= UTC_TIMESTAMP(3)")
	root_sql -e "SELECT CONCAT('/api/v1/individuals/', ben_no) FROM hf_bench_h.individuals ORDER BY RAND(8) LIMIT $LOOKUPS" \
		>"$VAR/h-paths.txt"
	gw="X-Hifadhi-Service-Key: $(cat "$CORE_KEYS/gateway.secret")"
	sed "s|^|GET\t|; s|\$|\t$gw\t|" "$VAR/h-paths.txt" >"$VAR/h-reads.txt"
	# The sweep inside serve runs every 30 s: it must not run during the quiet measurement, so this serve
	# gets a config whose cases are not yet overdue... instead, the quiet run comes first, within 30 s of start.
	start_core "$CONF_H" "$BEST_THREADS" "$LOGS/core-h.log"
	say "H: API reads without a sweep, wrk -t2 -c16 -d10s"
	DURATION_SAVE=$DURATION
	DURATION=10
	wrk_req "h-reads-quiet" "$core_pid" "$VAR/h-reads.txt" 16 200
	q_ok=$W_OK q_p99=$W_P99 q_rps=$W_RPS
	stop_core
	start_core "$CONF_H" "$BEST_THREADS" "$LOGS/core-h-2.log"
	say "H: the same reads while hifadhi-core cases sweep escalates $(fmt_int "$overdue") cases"
	"$CORE" -c "$CONF_H" cases sweep >"$LOGS/h-sweep.json" 2>"$LOGS/h-sweep.err" &
	sweep_pid=$!
	wrk_req "h-reads-during-sweep" "$core_pid" "$VAR/h-reads.txt" 16 200
	s_ok=$W_OK s_p99=$W_P99 s_rps=$W_RPS
	wait "$sweep_pid" || { cat "$LOGS/h-sweep.err" >&2; die "H: the sweep failed"; }
	DURATION=$DURATION_SAVE
	stop_core
	sweep_s=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$LOGS/h-sweep.json")
	escalated=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["escalated"])' "$LOGS/h-sweep.json")
	left=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_h.cases WHERE sla_due_at <= UTC_TIMESTAMP(3) AND sla_breached = 0")
	if ! $q_ok || ! $s_ok || [ "$left" != 0 ]; then
		INVALID=1
		row "H SLA sweep" "reads ok: $q_ok/$s_ok; $left overdue cases left unescalated" "" "INVALID"
	else
		row "H SLA sweep, $(fmt_int "$CASES_N") open cases" "$(fmt_int "$escalated") escalated in ${sweep_s} s" \
			"target <= 10 s" "$(mark "$sweep_s <= 10")"
		row "H   API p99 during / without sweep" "$s_p99 / $q_p99 ms" "$(fmt_int "$s_rps") / $(fmt_int "$q_rps") req/s" \
			"(info)"
	fi
	root_sql -e "DROP DATABASE hf_bench_h"
fi

# ---- I: lodging grievances through the API

if [[ "$ONLY" == *I* ]]; then
	CONF_I="$VAR/core-i.conf"
	new_db hf_bench_i "$CONF_I"
	rows_i=$(gen_csv 5000 9 "$VAR/i.csv")
	start_core "$CONF_I" "$BEST_THREADS" "$LOGS/core-i-setup.log"
	create_programmes "$CONF_I"
	stop_core
	import_csv "$CONF_I" "$VAR/i.csv" i
	rm -f "$VAR/i.csv"
	gw="X-Hifadhi-Service-Key: $(cat "$CORE_KEYS/gateway.secret")"
	# One request per beneficiary and payment: every grievance is new (a repeat would be linked, 200).
	root_sql -e "SELECT ben_no FROM hf_bench_i.individuals ORDER BY RAND(9) LIMIT 5000" |
		awk -v gw="$gw" -v sep="$SEP" '{ for (p = 1; p <= 60; p++)
			printf "POST\t/api/v1/cases\t%s%sContent-Type: application/json\t{\"type\":\"grievance\",\"category\":\"amount_short\",\"channel\":\"ussd\",\"ben_no\":\"%s\",\"payment_ref\":\"PAY-%d\"}\n", gw, sep, $1, p }' \
		| shuf --random-source=<(yes) >"$VAR/i-requests.txt"
	start_core "$CONF_I" "$BEST_THREADS" "$LOGS/core-i.log"
	say "I: POST /api/v1/cases (grievances from USSD, each new), wrk -t2 -c16 -d${DURATION}s"
	wrk_req "i-lodge" "$core_pid" "$VAR/i-requests.txt" 16 201 once
	stop_core
	$W_OK || INVALID=1
	lodged=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_i.cases")
	sms=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_i.outbox")
	row "I grievances lodged through the API (-c16)" "$(fmt_int "$W_RPS")/s, p99 $W_P99 ms" "target >= 2,000/s" \
		"$(mark "$W_RPS >= 2000")"
	row "I   rows written" "$(fmt_int "$lodged") cases, $(fmt_int "$sms") SMS queued" "" "(info)"
	root_sql -e "DROP DATABASE hf_bench_i"
fi

# ---- payments: helpers

# api TOKEN METHOD PATH [BODY]: one call; prints the body, fails the run on a status other than 2xx.
api() {
	local token=$1 method=$2 path=$3 body=${4:-} code
	code=$(curl -s -o "$LOGS/api.json" -w '%{http_code}' --max-time 900 -X "$method" -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $token" ${body:+-d "$body"} "http://127.0.0.1:$PORT/api/v1/$path")
	case "$code" in 2??) cat "$LOGS/api.json" ;; *) die "$method $path answered $code: $(head -c 500 "$LOGS/api.json")" ;; esac
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[k]
print(d)' "$1"; }

# enrol_all DB PROGRAMME K: every individual enrolled (benchmark setup, straight into the table); K (0-3) keeps
# the enrolment ids of different programmes apart.
enrol_all() {
	root_sql "$1" -e "INSERT INTO enrolments (id, programme_id, programme_code, individual_id, status, created_at,
		created_by, updated_at, updated_by) SELECT i.id * 4 + $3, p.id, p.code, i.id, 'enrolled',
		UTC_TIMESTAMP(3) - INTERVAL 1 DAY, 'bench', UTC_TIMESTAMP(3), 'bench' FROM individuals i JOIN programmes p ON
		p.code = '$2'" || die "enrolling everybody in $2 failed"
}

SIM="$BUILD/bin/hifadhi-paysim"
SIM_PORT=$((PORT + 2))
start_sim() {
	local tries=$((HEALTH_DEADLINE_S * 20))
	[ -f "$VAR/sim/g2p.seed" ] || { mkdir -p "$VAR/sim" && "$SIM" keygen --g2p-key-file "$VAR/sim/g2p.seed" \
		--public-out "$VAR/sim/g2p.pub" --secret-file "$VAR/sim/b2c.secret" >/dev/null; } || die "paysim keygen failed"
	"$SIM" --port "$SIM_PORT" --secret-file "$VAR/sim/b2c.secret" --g2p-key-file "$VAR/sim/g2p.seed" --sender-id paysim \
		--log-level warn </dev/null >"$LOGS/paysim.log" 2>&1 &
	sim_pid=$!
	until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$SIM_PORT/_sim/health")" = 200 ]; do
		kill -0 "$sim_pid" 2>/dev/null || { sim_pid=""; die "hifadhi-paysim exited; log: $LOGS/paysim.log"; }
		((tries-- > 0)) || die "hifadhi-paysim did not answer within ${HEALTH_DEADLINE_S}s"
		sleep 0.05
	done
}
PROVIDERS=(providers.b2c_name=mpesa "providers.b2c_url=http://127.0.0.1:$SIM_PORT"
	"providers.b2c_secret_file=$VAR/sim/b2c.secret" providers.g2p_name=g2pbank
	"providers.g2p_url=http://127.0.0.1:$SIM_PORT" "providers.g2p_public_key_file=$VAR/sim/g2p.pub"
	providers.g2p_sender_id=paysim "payments.callback_base=http://127.0.0.1:$PORT")

# ---- J: payroll generation for ~1,000,000 enrolled beneficiaries, against a plain INSERT ... SELECT

if [[ "$ONLY" == *J* || "$ONLY" == *L* ]]; then
	CONF_J="$VAR/core-j.conf"
	new_db hf_bench_j "$CONF_J"
	rows_j=$(gen_csv "$HH_C" 10 "$VAR/j.csv")
	start_sim
	start_core "$CONF_J" "$BEST_THREADS" "$LOGS/core-j-setup.log" "${PROVIDERS[@]}"
	create_programmes "$CONF_J"
	stop_core
	import_csv "$CONF_J" "$VAR/j.csv" j
	rm -f "$VAR/j.csv"
	root_sql hf_bench_j -e "DELETE FROM enrolments"
	enrol_all hf_bench_j OPCT 0
	enrolled=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_j.enrolments")
	say "J: the same payroll rows with a plain INSERT ... SELECT (no rules, no exclusions, one statement)"
	root_sql hf_bench_j -e "CREATE TABLE payroll_plain LIKE payments"
	t0=$(now)
	root_sql hf_bench_j -e "INSERT INTO payroll_plain (id, cycle_id, enrolment_id, individual_id, household_id,
		location_id, amount, currency, channel, pay_point, status, created_at, updated_at) SELECT e.id, 1, e.id,
		i.id, i.household_id, h.location_id, 400000, 'KES', 'kiosk', 'PP', 'scheduled', UTC_TIMESTAMP(3),
		UTC_TIMESTAMP(3) FROM enrolments e JOIN individuals i ON i.id = e.individual_id LEFT JOIN households h ON
		h.id = i.household_id WHERE e.status = 'enrolled'" || die "J: plain insert failed"
	t1=$(now)
	plain_s=$(elapsed "$t0" "$t1")
	plain_rows=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_j.payroll_plain")
	root_sql hf_bench_j -e "DROP TABLE payroll_plain"
	start_core "$CONF_J" "$BEST_THREADS" "$LOGS/core-j.log" "${PROVIDERS[@]}"
	tok=$(bench_token "$CONF_J" payment_officer)
	# Kiosk payments (everyone is paid, phone or not), a pay point per region, as a national cycle would be.
	pp=$(root_sql -e "SELECT CONCAT('{', GROUP_CONCAT(CONCAT('\"', name, '\":\"PP-', id % 1000, '\"')), '}') FROM
		hf_bench_j.locations WHERE level = 'region'")
	api "$tok" POST cycles '{"code":"BENCH-J","programme":"OPCT","rule":{"kind":"flat","amount":400000,"top_ups":[{"category":"age_70_plus","amount":100000}]},"cutoff_date":"2099-01-01","pay_from":"2099-01-02","pay_until":"2099-01-31","channel":"kiosk","pay_points":'"$pp"'}' >/dev/null
	say "J: POST /api/v1/cycles/BENCH-J/payroll over $(fmt_int "$enrolled") enrolments"
	cpu_mark m0
	t0=$(now)
	out=$(api "$tok" POST cycles/BENCH-J/payroll '{}')
	t1=$(now)
	cpu_mark m1
	NOISE+=("payroll: $(cpu_report "$m0" "$m1")")
	gen_s=$(elapsed "$t0" "$t1")
	count_j=$(jget payroll_count <<<"$out")
	stop_core
	if [ "$count_j" != "$plain_rows" ]; then
		INVALID=1
		row "J payroll generation" "$count_j payments vs $plain_rows plain rows" "" "INVALID"
	else
		row "J payroll of $(fmt_int "$count_j") payments" "${gen_s} s" "target <= 60 s" "$(mark "$gen_s <= 60")"
		row "J   vs plain INSERT ... SELECT" "$(calc %.2f "$plain_s / $gen_s") (ratio)" "plain ${plain_s} s" "(info)"
	fi
	NOTES+=("J: $(fmt_int "$enrolled") enrolments (everyone generated, straight into the table); the payroll applies the rule (flat + a top-up for 70+ computed per person), the exclusions, the pay point of each person's region and the overlap guard, in batches of 25,000 (one transaction each)")
fi

# ---- K: disbursement to the provider simulator, callbacks included

if [[ "$ONLY" == *K* ]]; then
	CONF_K="$VAR/core-k.conf"
	new_db hf_bench_k "$CONF_K"
	rows_k=$(gen_csv $((PAY_N / 3)) 11 "$VAR/k.csv")
	[ -n "${sim_pid:-}" ] || start_sim
	start_core "$CONF_K" "$BEST_THREADS" "$LOGS/core-k-setup.log" "${PROVIDERS[@]}"
	create_programmes "$CONF_K"
	stop_core
	import_csv "$CONF_K" "$VAR/k.csv" k
	rm -f "$VAR/k.csv"
	root_sql hf_bench_k -e "DELETE FROM enrolments"
	enrol_all hf_bench_k OPCT 0
	enrol_all hf_bench_k PWSD-CT 1
	curl -s -X POST "http://127.0.0.1:$SIM_PORT/_sim/reset" >/dev/null
	start_core "$CONF_K" "$BEST_THREADS" "$LOGS/core-k.log" "${PROVIDERS[@]}" payments.query_after_s=30
	maker=$(bench_token "$CONF_K" payment_officer)
	checker=$(bench_token "$CONF_K" payment_officer payment_checker)
	for p in OPCT PWSD-CT; do
		api "$maker" POST ledger/funding "{\"programme\":\"$p\",\"amount\":100000000000,\"currency\":\"KES\",\"reference\":\"BENCH-$p\"}" >/dev/null
	done
	for spec in B2C:OPCT:mobile_money G2P:PWSD-CT:g2p; do
		IFS=: read -r label prog channel <<<"$spec"
		api "$maker" POST cycles "{\"code\":\"BENCH-$label\",\"programme\":\"$prog\",\"rule\":{\"kind\":\"flat\",\"amount\":250000},\"cutoff_date\":\"2099-01-01\",\"pay_from\":\"2099-01-02\",\"pay_until\":\"2099-01-31\",\"channel\":\"$channel\"}" >/dev/null
		n=$(api "$maker" POST "cycles/BENCH-$label/payroll" '{}' | jget payroll_count)
		api "$maker" POST "cycles/BENCH-$label/submit" '{}' >/dev/null
		say "K: approve BENCH-$label ($(fmt_int "$n") payments over $channel) and wait until every one is paid"
		cpu_mark m0
		t0=$(now)
		api "$checker" POST "cycles/BENCH-$label/approve" '{}' >/dev/null
		deadline=$(($(date +%s) + 600))
		while :; do
			done_n=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_k.payments p JOIN hf_bench_k.payment_cycles c ON
				c.id = p.cycle_id WHERE c.code = 'BENCH-$label' AND p.status IN ('paid', 'failed')")
			[ "$done_n" = "$n" ] && break
			[ "$(date +%s)" -lt "$deadline" ] || die "K: only $done_n of $n payments settled in 10 minutes"
			sleep 0.2
		done
		t1=$(now)
		cpu_mark m1
		NOISE+=("disburse-$label: $(cpu_report "$m0" "$m1")")
		k_s=$(elapsed "$t0" "$t1")
		paid=$(root_sql -e "SELECT COUNT(*) FROM hf_bench_k.payments p JOIN hf_bench_k.payment_cycles c ON
			c.id = p.cycle_id WHERE c.code = 'BENCH-$label' AND p.status = 'paid'")
		rate=$(calc %.0f "$n / $k_s")
		if [ "$paid" != "$n" ]; then
			INVALID=1
			row "K disbursement $label" "$paid of $n paid" "" "INVALID"
		else
			row "K disbursement $label, $(fmt_int "$n") payments" "$(fmt_int "$rate")/s (${k_s} s)" "target >= 1,000/s" \
				"$(mark "$rate >= 1000")"
		fi
	done
	"$CORE" -c "$CONF_K" ledger check >"$LOGS/k-ledger.json" 2>&1 || { INVALID=1; row "K ledger check" "FAILED" "" "INVALID"; }
	stop_core
	NOTES+=("K: from the approval to the last payment settled: claim in batches, send (B2C one request per payment from 8 threads; G2P one envelope per batch), signed callbacks applied one transaction each, every step audited")
	root_sql -e "DROP DATABASE hf_bench_k"
fi

# ---- L: reconciliation of a 1,000,000-line provider statement

if [[ "$ONLY" == *L* ]]; then
	say "L: statement of $(fmt_int "$RECON_N") lines against a cycle of as many paid payments"
	# The payments of J's payroll, paid (straight into the tables: the ledger as the disburser leaves it).
	root_sql hf_bench_j -e "UPDATE payment_cycles SET status = 'approved', channel = 'mobile_money', provider = 'mpesa'
		WHERE code = 'BENCH-J'; UPDATE payments SET channel = 'mobile_money', provider = 'mpesa', pay_point = NULL;
		UPDATE payments SET status = 'paid', receipt = CONCAT('R', id), paid_amount = amount, settled_at = UTC_TIMESTAMP(3)
		WHERE id IN (SELECT id FROM (SELECT id FROM payments ORDER BY id LIMIT $RECON_N) x);
		INSERT INTO ledger_accounts (id, code, kind, currency, created_at) VALUES (1, 'settlement:mpesa', 'settlement',
		'KES', UTC_TIMESTAMP(3)), (2, 'paid:OPCT', 'paid', 'KES', UTC_TIMESTAMP(3));
		INSERT INTO ledger_postings (id, idem_key, kind, cycle_id, payment_id, posted_at, posted_by) SELECT id,
		CONCAT('paid:', id), 'paid', cycle_id, id, UTC_TIMESTAMP(3), 'bench' FROM payments WHERE status = 'paid';
		INSERT INTO ledger_entries (id, posting_id, account_id, amount, currency) SELECT id * 2, id, 1, -amount, 'KES'
		FROM payments WHERE status = 'paid' UNION ALL SELECT id * 2 + 1, id, 2, amount, 'KES' FROM payments WHERE
		status = 'paid'" || die "L: preparing the paid payments failed"
	{
		echo "provider_ref,reference_id,amount_minor,currency,status,completed_at"
		root_sql hf_bench_j -e "SELECT CONCAT('R', id, ',HF', id, ',', amount, ',KES,PAID,2099-01-05T10:00:00Z') FROM payments
			WHERE status = 'paid' ORDER BY RAND(12)"
	} >"$VAR/statement.csv"
	lines=$(($(wc -l <"$VAR/statement.csv") - 1))
	cpu_mark m0
	t0=$(now)
	run_waited timeout 900 "$CORE" -c "$CONF_J" reconcile BENCH-J "$VAR/statement.csv" >"$LOGS/l-recon.json" \
		2>"$LOGS/l-recon.err" || { cat "$LOGS/l-recon.err" >&2; die "L: reconcile failed"; }
	t1=$(now)
	cpu_mark m1
	NOISE+=("reconcile: $(cpu_report "$m0" "$m1")")
	l_s=$(elapsed "$t0" "$t1")
	matched=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["matched"])' "$LOGS/l-recon.json")
	if [ "$matched" != "$lines" ]; then
		INVALID=1
		row "L reconciliation" "$matched of $lines lines matched" "" "INVALID"
	else
		row "L reconciliation, $(fmt_int "$lines") lines" "${l_s} s" "target <= 60 s" "$(mark "$l_s <= 60")"
	fi
	rm -f "$VAR/statement.csv"
fi
if [[ "$ONLY" == *J* || "$ONLY" == *L* ]]; then
	stop_sim
	root_sql -e "DROP DATABASE hf_bench_j"
fi

# ---- summary

FINISHED=$(date -u '+%Y-%m-%d %H:%M UTC')
{
	echo "Hifadhi benchmarks ($ONLY), ${BUILD#"$ROOT"/}, $(nproc) CPUs, $STARTED - $FINISHED"
	echo "load average at start: $LOAD_START; raw output in build/bench/logs/"
	echo
	printf '%-46s %-30s %-30s %s\n' "benchmark" "measured" "baseline / target" "result"
	printf '%s\n' "${ROWS[@]}"
	if [ "${#NOTES[@]}" -gt 0 ]; then
		echo
		printf '%s\n' "${NOTES[@]}"
	fi
	echo
	echo "Where the CPU went during each measurement (client/tool = wrk, plain_insert or hifadhi-core import):"
	printf '  %s\n' "${NOISE[@]}"
	if [ "$INVALID" != 0 ]; then
		echo
		echo "INVALID: at least one benchmark did not measure what it should (see above and build/bench/logs/)"
	fi
} >"$RESULTS"
echo
cat "$RESULTS"
say "results written to ${RESULTS#"$ROOT"/}"
exit "$INVALID"
