#!/usr/bin/env bash
# shellcheck disable=SC2317  # the trap handlers below are reached only through trap
# run.sh - the whole stack on loopback for a developer: `make run` calls `deploy/run.sh build/release`.
#
# Starts the private MariaDB (var/mariadb, 127.0.0.1:3307), makes the database and accounts, writes
# var/run/core.conf, creates keys and applies migrations, starts hifadhi-core, loads demo data if the
# registry is empty, prints where everything is, and waits. Ctrl-C (or SIGTERM) stops core, then MariaDB,
# and exits 0. Every step is idempotent, so running it again keeps the data of the previous run.
#
# Environment: HF_HTTP_PORT (default 8080), HF_DB_PORT (3307), HF_DB_DIR (var/mariadb), HF_KEY_DIR (var/keys).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR   (e.g. build/release, after make)" >&2
	exit 2
fi
BUILD=$(cd "$1" && pwd)
cd "$ROOT"
CORE="$BUILD/bin/hifadhi-core"
[ -x "$CORE" ] || { echo "run: $CORE not found; run make first" >&2; exit 1; }

export HF_DB_PORT=${HF_DB_PORT:-3307}
export HF_DB_DIR=${HF_DB_DIR:-var/mariadb}
export HF_KEY_DIR=${HF_KEY_DIR:-var/keys}
PORT=${HF_HTTP_PORT:-8080}
case "$HF_DB_DIR" in /*) db_dir_abs=$HF_DB_DIR ;; *) db_dir_abs=$ROOT/$HF_DB_DIR ;; esac
RUN_DIR="$ROOT/var/run"
CONF="$RUN_DIR/core.conf"
LOG="$RUN_DIR/core.log"
BASE="http://127.0.0.1:$PORT"
HEALTH_DEADLINE_S=20
STOP_DEADLINE_S=15

say() { printf 'run: %s\n' "$*"; }
die() { printf 'run: %s\n' "$*" >&2; exit 1; }
core() { "$CORE" -c "$CONF" "$@"; }

core_pid=""
sim_pid=""
cleaned=false
stop_sim() {
	[ -n "$sim_pid" ] || return 0
	kill -TERM "$sim_pid" 2>/dev/null || true
	wait "$sim_pid" 2>/dev/null || true
	sim_pid=""
}
stop_core() {
	[ -n "$core_pid" ] || return 0
	if kill -0 "$core_pid" 2>/dev/null; then
		kill -TERM "$core_pid" 2>/dev/null || true
		local tries=$((STOP_DEADLINE_S * 20))
		while kill -0 "$core_pid" 2>/dev/null && ((tries-- > 0)); do sleep 0.05; done
		if kill -0 "$core_pid" 2>/dev/null; then
			say "hifadhi-core did not stop within ${STOP_DEADLINE_S}s; killing it"
			kill -KILL "$core_pid" 2>/dev/null || true
		fi
	fi
	wait "$core_pid" 2>/dev/null || true
	core_pid=""
}
cleanup() {
	$cleaned && return 0
	cleaned=true
	trap - INT TERM HUP
	stop_core
	stop_sim
	"$ROOT/deploy/mariadb.sh" stop || say "could not stop MariaDB cleanly"
}
on_signal() {
	echo
	say "stopping hifadhi-core and MariaDB"
	cleanup
	say "stopped"
	exit 0
}
on_exit() {
	local rc=$?
	cleanup
	exit "$rc"
}
trap on_signal INT TERM HUP
trap on_exit EXIT

# Something else on our port (another `make run`?) would make the health check lie.
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
	die "port $PORT on 127.0.0.1 is already in use (another make run?); set HF_HTTP_PORT"
fi

say "starting MariaDB ($HF_DB_DIR, 127.0.0.1:$HF_DB_PORT)"
deploy/mariadb.sh start
deploy/mariadb.sh init-db
mkdir -p "$RUN_DIR"
# The payment provider simulator stands in for a mobile-money and a G2P Connect provider (docs/providers.md):
# real money never moves from a demo.
SIM_PORT=${HF_PAYSIM_PORT:-8090}
SIM_DIR="$RUN_DIR/paysim"
mkdir -p "$SIM_DIR"
[ -f "$SIM_DIR/g2p.seed" ] || "$BUILD/bin/hifadhi-paysim" keygen --g2p-key-file "$SIM_DIR/g2p.seed" \
	--public-out "$SIM_DIR/g2p.pub" --secret-file "$SIM_DIR/b2c.secret" >/dev/null || die "paysim keygen failed"
if (exec 3<>"/dev/tcp/127.0.0.1/$SIM_PORT") 2>/dev/null; then
	die "port $SIM_PORT on 127.0.0.1 is already in use; set HF_PAYSIM_PORT"
fi
(
	for fd in "/proc/$BASHPID/fd/"*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
	exec setsid "$BUILD/bin/hifadhi-paysim" --port "$SIM_PORT" --secret-file "$SIM_DIR/b2c.secret" \
		--g2p-key-file "$SIM_DIR/g2p.seed" --sender-id paysim </dev/null >>"$RUN_DIR/paysim.log" 2>&1
) &
sim_pid=$!
HF_PAYSIM_URL="http://127.0.0.1:$SIM_PORT" HF_PAYSIM_DIR="$SIM_DIR" deploy/write-config.sh "$CONF" "$ROOT/var" "$PORT"
say "creating keys (if missing) and applying migrations"
core keygen
core migrate

say "starting hifadhi-core on $BASE (log: var/run/core.log)"
# Own session: Ctrl-C reaches only this script, which then stops core before MariaDB. No inherited
# descriptors either (make's jobserver pipe, for one), as in deploy/mariadb.sh.
(
	for fd in "/proc/$BASHPID/fd/"*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
	exec setsid "$CORE" -c "$CONF" serve </dev/null >>"$LOG" 2>&1
) &
core_pid=$!
tries=$((HEALTH_DEADLINE_S * 20))
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$BASE/healthz" || true)" = 200 ]; do
	if ! kill -0 "$core_pid" 2>/dev/null; then
		tail -n 20 "$LOG" >&2 || true
		die "hifadhi-core exited during startup; log: var/run/core.log"
	fi
	((tries-- > 0)) || { tail -n 20 "$LOG" >&2 || true; die "no 200 from $BASE/healthz within ${HEALTH_DEADLINE_S}s"; }
	sleep 0.05
done

# Number of programmes in the registry, from GET /api/v1/programmes (a list, or a list under a key).
# Demo staff: one account per role, TOTP enrolled, credentials in var/run/demo-staff.json (0600).
STAFF="$RUN_DIR/demo-staff.json"
make_demo_staff() {
	local role pw out tmp="$STAFF.tmp"
	umask 077
	echo '{' >"$tmp"
	local first=true
	# payment_checker: a second payment officer, because a payroll is approved by someone other than its maker.
	for name in admin registrar case_worker payment_officer payment_checker auditor support; do
		role=$name
		[ "$name" = payment_checker ] && role=payment_officer
		pw="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		out=$(printf '%s\n' "$pw" | core user add "demo.${name//_/-}" --role "$role" --json) ||
			die "could not create demo.${name//_/-} (if var/run/demo-staff.json was deleted but the database kept, remove var/ to start afresh)"
		$first || echo ',' >>"$tmp"
		first=false
		printf '%s' "$out" | python3 -c '
import json, sys
o = json.load(sys.stdin)
print(json.dumps(sys.argv[1]) + ": " + json.dumps({"username": o["username"], "password": sys.argv[2],
      "secret": o["secret"], "otpauth_uri": o["otpauth_uri"], "recovery_codes": o["recovery_codes"]}))' \
			"$name" "$pw" >>"$tmp"
	done
	echo '}' >>"$tmp"
	mv -f "$tmp" "$STAFF"
}
if [ ! -s "$STAFF" ]; then
	say "creating demo staff accounts (one per role; credentials in var/run/demo-staff.json)"
	make_demo_staff
fi
ADMIN_TOKEN=$(python3 deploy/demo_staff.py "$STAFF" login admin "$BASE") || die "demo admin login failed"

count_programmes() {
	curl -sS --fail --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/programmes" | python3 -c '
import json, sys
body = json.load(sys.stdin)
if isinstance(body, dict):
    body = next((body[k] for k in ("items", "data", "programmes") if isinstance(body.get(k), list)), None)
if not isinstance(body, list):
    sys.exit("unexpected shape of GET /api/v1/programmes")
print(len(body))'
}

post_programme() {
	local json=$1 code
	code=$(curl -sS --max-time 10 -o "$RUN_DIR/last-response.json" -w '%{http_code}' \
		-H 'Content-Type: application/json' -H "Authorization: Bearer $ADMIN_TOKEN" --data-binary "$json" \
		"$BASE/api/v1/programmes")
	case "$code" in
	200 | 201) ;;
	409) say "programme already exists: $json" ;;
	*) die "POST /api/v1/programmes answered $code: $(head -c 500 "$RUN_DIR/last-response.json")" ;;
	esac
}

n=$(count_programmes) || die "could not read GET $BASE/api/v1/programmes"
if [ "$n" -eq 0 ]; then
	say "empty registry: loading demo data"
	post_programme '{"code":"OPCT","name":"Older Persons Cash Transfer","target":"individual","currency":"KES"}'
	post_programme '{"code":"CT-OVC","name":"Cash Transfer for Orphans and Vulnerable Children","target":"household","currency":"KES"}'
	post_programme '{"code":"PWSD-CT","name":"Persons with Severe Disabilities Cash Transfer","target":"individual","currency":"KES"}'
	core gen --households 200 --seed 42 >"$RUN_DIR/demo.csv.tmp"
	mv -f "$RUN_DIR/demo.csv.tmp" "$RUN_DIR/demo.csv"
	core import "$RUN_DIR/demo.csv"
	demo="3 programmes (OPCT, CT-OVC, PWSD-CT) and 200 generated households (seed 42, var/run/demo.csv)"
else
	demo="existing registry kept ($n programmes); demo data is loaded only into an empty registry"
fi

cat <<BANNER

==================================================================================
 Hifadhi is running on loopback
   API base      $BASE/api/v1
   health        $BASE/healthz
   metrics       $BASE/metrics
   API docs      docs/openapi.yaml
   MariaDB       127.0.0.1:$HF_DB_PORT and $db_dir_abs/mysqld.sock
   config, log   var/run/core.conf, var/run/core.log
   demo data     $demo
   staff         demo.admin, demo.registrar, demo.case-worker, demo.payment-officer,
                 demo.auditor, demo.support: passwords and TOTP secrets in var/run/demo-staff.json
                 (add the otpauth_uri to a phone app, or print a code:
                  deploy/demo_staff.py var/run/demo-staff.json code registrar)
   log in        TOKEN=\$(deploy/demo_staff.py var/run/demo-staff.json login registrar $BASE)
                 curl -H "Authorization: Bearer \$TOKEN" $BASE/api/v1/auth/me
   payments      provider simulator (mobile money "mpesa", G2P "g2pbank") on http://127.0.0.1:$SIM_PORT,
                 log var/run/paysim.log; demo.payment-officer makes a payroll, demo.payment-checker
                 approves it: README "Payments" and docs/payments.md
   roles         docs/roles.md   security: docs/security.md
 Stop with Ctrl-C (stops hifadhi-core, then MariaDB).
==================================================================================

BANNER

rc=0
wait "$core_pid" || rc=$?
core_pid=""
tail -n 20 "$LOG" >&2 || true
die "hifadhi-core exited on its own (status $rc); log: var/run/core.log"
