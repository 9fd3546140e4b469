#!/usr/bin/env bash
# shellcheck disable=SC2317  # the trap handlers below are reached only through trap
# run.sh - the whole stack on loopback for a developer: `make run` calls `deploy/run.sh build/release`.
#
# Starts the private MariaDB (var/mariadb, 127.0.0.1:3307), makes the database and accounts, writes
# var/run/core.conf, creates keys and applies migrations, starts the payment provider simulator and
# hifadhi-core, loads demo data if the registry is empty, then the private Kannel (deploy/kannel.sh, run folder
# var/kannel: bearerbox, fakesmsc as the operator, smsbox) and hifadhi-gateway (var/run/gateway.conf from
# deploy/write-gateway-config.sh; USSD on 127.0.0.1:8081, SMS through Kannel), then one kiosk terminal in
# simulation mode (hifadhi-kiosk: registered in core once by deploy/demo_kiosk.py, var/run/kiosk.conf from
# deploy/write-kiosk-config.sh, touch page on 127.0.0.1:8082, libfprint's virtual reader, a fake GPIO board and
# a file for a printer), prints where everything is with a demo beneficiary's phone number for deploy/phone.py
# and how to present a demo finger, and waits. Ctrl-C (or SIGTERM) stops the kiosk, the gateway, Kannel,
# core, the simulator, then MariaDB, and exits 0. Every step is idempotent, so running it again keeps the data
# (and the registered kiosk, var/kiosk/) of the previous run. Only what this run started is stopped: a second
# `make run` that finds the ports taken exits without touching the first one.
#
# Environment: HF_HTTP_PORT (default 8080), HF_GATEWAY_PORT (8081), HF_KIOSK_PORT (8082), HF_PAYSIM_PORT
# (8090), HF_DB_PORT (3307), HF_DB_DIR (var/mariadb), HF_KEY_DIR (var/keys), HF_KANNEL_DIR (var/kannel) and the
# HF_KANNEL_*_PORT of deploy/kannel.sh (13000, 13001, 13013, 13015).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR   (e.g. build/release, after make)" >&2
	exit 2
fi
BUILD=$(cd "$1" && pwd)
cd "$ROOT"
CORE="$BUILD/bin/hifadhi-core"
GATEWAY="$BUILD/bin/hifadhi-gateway"
KIOSK="$BUILD/bin/hifadhi-kiosk"
[ -x "$CORE" ] || { echo "run: $CORE not found; run make first" >&2; exit 1; }
[ -x "$GATEWAY" ] || { echo "run: $GATEWAY not found; run make first" >&2; exit 1; }
[ -x "$KIOSK" ] || { echo "run: $KIOSK not found; run make first" >&2; exit 1; }

export HF_DB_PORT=${HF_DB_PORT:-3307}
export HF_DB_DIR=${HF_DB_DIR:-var/mariadb}
export HF_KEY_DIR=${HF_KEY_DIR:-var/keys}
export HF_KANNEL_DIR=${HF_KANNEL_DIR:-var/kannel}
PORT=${HF_HTTP_PORT:-8080}
GW_PORT=${HF_GATEWAY_PORT:-8081}
K_PORT=${HF_KIOSK_PORT:-8082}
SIM_PORT=${HF_PAYSIM_PORT:-8090}
case "$HF_DB_DIR" in /*) db_dir_abs=$HF_DB_DIR ;; *) db_dir_abs=$ROOT/$HF_DB_DIR ;; esac
case "$HF_KANNEL_DIR" in /*) kannel_dir_abs=$HF_KANNEL_DIR ;; *) kannel_dir_abs=$ROOT/$HF_KANNEL_DIR ;; esac
RUN_DIR="$ROOT/var/run"
CONF="$RUN_DIR/core.conf"
LOG="$RUN_DIR/core.log"
GW_CONF="$RUN_DIR/gateway.conf"
GW_LOG="$RUN_DIR/gateway.log"
K_CONF="$RUN_DIR/kiosk.conf"
K_LOG="$RUN_DIR/kiosk.log"
K_BASE="http://127.0.0.1:$K_PORT"
# The simulated terminal's pay point (a kiosk cycle maps households' locations to pay points: docs/kiosk.md).
K_PAY_POINT=DEMO-1
BASE="http://127.0.0.1:$PORT"
GW_BASE="http://127.0.0.1:$GW_PORT"
HEALTH_DEADLINE_S=20
STOP_DEADLINE_S=15

say() { printf 'run: %s\n' "$*"; }
die() { printf 'run: %s\n' "$*" >&2; exit 1; }
core() { "$CORE" -c "$CONF" "$@"; }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

core_pid=""
gw_pid=""
kiosk_pid=""
sim_pid=""
db_started=false
kannel_started=false
cleaned=false
stop_sim() {
	[ -n "$sim_pid" ] || return 0
	kill -TERM "$sim_pid" 2>/dev/null || true
	wait "$sim_pid" 2>/dev/null || true
	sim_pid=""
}
# stop_child NAME PIDVAR: SIGTERM, SIGKILL after STOP_DEADLINE_S, reaped; the variable is cleared.
stop_child() {
	local name=$1 pid=${!2}
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		local tries=$((STOP_DEADLINE_S * 20))
		while kill -0 "$pid" 2>/dev/null && ((tries-- > 0)); do sleep 0.05; done
		if kill -0 "$pid" 2>/dev/null; then
			say "$name did not stop within ${STOP_DEADLINE_S}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
	printf -v "$2" '%s' ""
}
stop_core() { stop_child hifadhi-core core_pid; }
stop_gateway() { stop_child hifadhi-gateway gw_pid; }
stop_kiosk() { stop_child hifadhi-kiosk kiosk_pid; }
# spawn LOG COMMAND...: COMMAND in the background in its own session (Ctrl-C reaches only this script, which
# stops it in order) and without inherited descriptors (make's jobserver pipe, for one, as in
# deploy/mariadb.sh), output appended to LOG; its pid in SPAWNED.
spawn() {
	local log=$1
	shift
	(
		for fd in "/proc/$BASHPID/fd/"*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		exec setsid "$@" </dev/null >>"$log" 2>&1
	) &
	SPAWNED=$!
}
# wait_healthy NAME PID BASE LOG: until BASE/healthz answers 200; dies when PID exits or after
# HEALTH_DEADLINE_S, with the end of LOG.
wait_healthy() {
	local name=$1 pid=$2 base=$3 log=$4 tries=$((HEALTH_DEADLINE_S * 20))
	until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$base/healthz" || true)" = 200 ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$log" >&2 || true
			die "$name exited during startup; log: ${log#"$ROOT"/}"
		fi
		((tries-- > 0)) || { tail -n 20 "$log" >&2 || true; die "no 200 from $base/healthz within ${HEALTH_DEADLINE_S}s"; }
		sleep 0.05
	done
}
# The kiosk and the gateway first (they call core, the gateway also Kannel), then Kannel, then core, the
# simulator, MariaDB: each only if this run started it.
cleanup() {
	$cleaned && return 0
	cleaned=true
	trap - INT TERM HUP
	stop_kiosk
	stop_gateway
	if $kannel_started; then
		"$ROOT/deploy/kannel.sh" stop >/dev/null || say "could not stop Kannel cleanly (deploy/kannel.sh status)"
	fi
	stop_core
	stop_sim
	if $db_started; then
		"$ROOT/deploy/mariadb.sh" stop || say "could not stop MariaDB cleanly"
	fi
}
on_signal() {
	echo
	say "stopping hifadhi-kiosk, hifadhi-gateway, Kannel, hifadhi-core and MariaDB"
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

# Something else on our ports (another `make run`?) would make the health checks lie. Checked before
# anything starts, so that giving up here leaves the other run alone.
port_taken "$PORT" && die "port $PORT on 127.0.0.1 is already in use (another make run?); set HF_HTTP_PORT"
port_taken "$GW_PORT" && die "port $GW_PORT on 127.0.0.1 is already in use (another make run?); set HF_GATEWAY_PORT"
port_taken "$K_PORT" && die "port $K_PORT on 127.0.0.1 is already in use (another make run?); set HF_KIOSK_PORT"
port_taken "$SIM_PORT" && die "port $SIM_PORT on 127.0.0.1 is already in use; set HF_PAYSIM_PORT"
# Kannel: deploy/kannel.sh start is idempotent for boxes of this run folder (left over from a run that was
# killed); anything else on its ports is someone else's.
kannel_rc=0
deploy/kannel.sh status >/dev/null 2>&1 || kannel_rc=$?
if [ "$kannel_rc" -eq 3 ]; then
	for p in "${HF_KANNEL_ADMIN_PORT:-13000}" "${HF_KANNEL_SMSBOX_PORT:-13001}" "${HF_KANNEL_SENDSMS_PORT:-13013}" \
		"${HF_KANNEL_FAKE_PORT:-13015}"; do
		port_taken "$p" && die "port $p on 127.0.0.1 is already in use (another Kannel?); see the HF_KANNEL_*_PORT" \
			"settings in docs/kannel.md"
	done
fi

say "starting MariaDB ($HF_DB_DIR, 127.0.0.1:$HF_DB_PORT)"
db_started=true
deploy/mariadb.sh start
deploy/mariadb.sh init-db
mkdir -p "$RUN_DIR"
# The payment provider simulator stands in for a mobile-money and a G2P Connect provider (docs/providers.md):
# real money never moves from a demo.
SIM_DIR="$RUN_DIR/paysim"
mkdir -p "$SIM_DIR"
[ -f "$SIM_DIR/g2p.seed" ] || "$BUILD/bin/hifadhi-paysim" keygen --g2p-key-file "$SIM_DIR/g2p.seed" \
	--public-out "$SIM_DIR/g2p.pub" --secret-file "$SIM_DIR/b2c.secret" >/dev/null || die "paysim keygen failed"
spawn "$RUN_DIR/paysim.log" "$BUILD/bin/hifadhi-paysim" --port "$SIM_PORT" --secret-file "$SIM_DIR/b2c.secret" \
	--g2p-key-file "$SIM_DIR/g2p.seed" --sender-id paysim
sim_pid=$SPAWNED
HF_PAYSIM_URL="http://127.0.0.1:$SIM_PORT" HF_PAYSIM_DIR="$SIM_DIR" deploy/write-config.sh "$CONF" "$ROOT/var" "$PORT"
say "creating keys (if missing) and applying migrations"
core keygen
core migrate

say "starting hifadhi-core on $BASE (log: var/run/core.log)"
spawn "$LOG" "$CORE" -c "$CONF" serve
core_pid=$SPAWNED
wait_healthy hifadhi-core "$core_pid" "$BASE" "$LOG"

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

# ---- Kannel (the SMS gateway boxes, with a simulated operator) and hifadhi-gateway (USSD and SMS)
say "starting Kannel (${HF_KANNEL_DIR}: bearerbox, fakesmsc, smsbox; MO to $GW_BASE/kannel/mo)"
# A Kannel of this folder left running by an earlier run sends MO to the port it was started with: restart it
# if that is not ours.
if [ "$kannel_rc" -ne 3 ] && [ -r "$kannel_dir_abs/run.env" ] &&
	! grep -qx "GATEWAY_PORT=$GW_PORT" "$kannel_dir_abs/run.env"; then
	HF_GATEWAY_PORT=$GW_PORT deploy/kannel.sh stop >/dev/null
fi
kannel_started=true
if ! HF_GATEWAY_PORT=$GW_PORT deploy/kannel.sh start | sed -u 's/^/run: /'; then
	die "Kannel did not start (see above; logs in ${HF_KANNEL_DIR}/)"
fi

HF_CORE_URL=$BASE deploy/write-gateway-config.sh "$GW_CONF" "$ROOT/var" "$GW_PORT"
say "starting hifadhi-gateway on $GW_BASE (log: var/run/gateway.log)"
spawn "$GW_LOG" "$GATEWAY" -c "$GW_CONF" serve
gw_pid=$SPAWNED
wait_healthy hifadhi-gateway "$gw_pid" "$GW_BASE" "$GW_LOG"

# A demo beneficiary to try the phone with: an individual with a phone and an enrolment (enrolled if anyone
# was enrolled, else pending, as imported), found through the API as the registrar, English-speaking if any.
REG_TOKEN=$(python3 deploy/demo_staff.py "$STAFF" login registrar "$BASE") || die "demo registrar login failed"
DEMO_PHONE=$(python3 - "$BASE" "$REG_TOKEN" <<'PY' || true
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def get(path):
    req = urllib.request.Request(base + "/api/v1/" + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
first, reads = None, 0
for status in ("enrolled", "pending"):
    for programme in ("OPCT", "PWSD-CT"):
        for e in get(f"enrolments?programme={programme}&status={status}&limit=100").get("items", []):
            if not e.get("ben_no") or reads >= 60:
                continue
            reads += 1
            person = get("individuals/" + e["ben_no"])
            if not person.get("phone"):
                continue
            found = (person["phone"], programme, status, person.get("language") or "")
            if person.get("language") == "en":
                print(*found)
                sys.exit(0)
            first = first or found
    if first:
        break
if first:
    print(*first)
PY
)
if [ -n "$DEMO_PHONE" ]; then
	read -r DEMO_PHONE demo_prog demo_status demo_lang <<<"$DEMO_PHONE"
	case "$demo_lang" in en) demo_lang=English ;; fr) demo_lang=French ;; sw) demo_lang=Swahili ;; *) demo_lang="Swahili (the default)" ;; esac
	demo_who="a demo beneficiary, $demo_status in $demo_prog; menus in $demo_lang (8 Language to change)"
else
	DEMO_PHONE="+2547..."
	demo_who="no demo beneficiary with a phone and an enrolment found: take a phone from var/run/demo.csv"
fi
# ---- one kiosk terminal, simulated (docs/kiosk.md, "make run"): registered in core once and kept in var/kiosk/
KIOSK_NO=$(HF_STAFF_TOKEN=$ADMIN_TOKEN python3 deploy/demo_kiosk.py ensure "$BASE" "$KIOSK" "$ROOT/var" "$K_PAY_POINT") ||
	die "could not register the demo kiosk with core (above)"
HF_CORE_URL=$BASE deploy/write-kiosk-config.sh "$K_CONF" "$ROOT/var" "$K_PORT" "$KIOSK_NO"
say "starting hifadhi-kiosk $KIOSK_NO (simulated reader, GPIO and printer) on $K_BASE (log: var/run/kiosk.log)"
spawn "$K_LOG" "$KIOSK" -c "$K_CONF" serve
kiosk_pid=$SPAWNED
wait_healthy hifadhi-kiosk "$kiosk_pid" "$K_BASE" "$K_LOG"
KIOSK_BEN=$(HF_STAFF_TOKEN=$REG_TOKEN python3 deploy/demo_kiosk.py beneficiary "$BASE" || true)
if [ -n "$KIOSK_BEN" ]; then
	read -r KIOSK_BEN kiosk_prog kiosk_status <<<"$KIOSK_BEN"
	kiosk_who="a demo beneficiary, $kiosk_status in $kiosk_prog"
else
	KIOSK_BEN="(a ben_no)"
	kiosk_who="none with an enrolment found: take one from GET /api/v1/enrolments"
fi

USSD_CODE=$(sed -n 's/^ussd_code *= *\([^ ;]*\).*/\1/p' menus/ussd/menu.ini | head -n 1)
KANNEL_ADMIN_PORT=$(sed -n 's/^ADMIN_PORT=//p' "$kannel_dir_abs/run.env" 2>/dev/null || echo 13000)
KANNEL_SENDSMS_PORT=$(sed -n 's/^SENDSMS_PORT=//p' "$kannel_dir_abs/run.env" 2>/dev/null || echo 13013)

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
   gateway       hifadhi-gateway on $GW_BASE: USSD POST /ussd (aggregator convention), Kannel
                 callbacks /kannel/mo and /kannel/dlr, $GW_BASE/metrics;
                 config, log var/run/gateway.conf, var/run/gateway.log; docs/gateway.md
   USSD code     $USSD_CODE   SMS short code 384 (HELP, STATUS, COMPLAINT ..., LANG EN, STOP, START)
   try it        deploy/phone.py $DEMO_PHONE
                   ($demo_who)
                 then: dial; 6 (My PIN), 1 (Create a PIN), a PIN twice; dial again, 2 (Next
                 payment), your PIN; sms HELP; inbox. Any other number gets the menu for
                 unregistered phones. What each screen does: docs/ussd-sms.md
   Kannel        private Kannel in ${HF_KANNEL_DIR}/ (fakesmsc plays the operator; the SMS phones
                 receive are in fakesmsc.log): deploy/kannel.sh status; admin
                 http://127.0.0.1:$KANNEL_ADMIN_PORT/status.txt?password=\$(cat ${HF_KANNEL_DIR}/admin.password);
                 sendsms http://127.0.0.1:$KANNEL_SENDSMS_PORT/cgi-bin/sendsms; docs/kannel.md
   kiosk         hifadhi-kiosk $KIOSK_NO, pay point $K_PAY_POINT, SIMULATED (virtual reader, fake GPIO
                 board, receipts into a file): touch page $K_BASE/ (open it in a browser);
                 config, log var/run/kiosk.conf, var/run/kiosk.log; the guide: docs/kiosk.md
   at the kiosk  type $KIOSK_BEN under "My payments" or "Make a complaint"
                   ($kiosk_who). Present a finger when the screen asks for one:
                   deploy/finger.py var/run/kiosk-finger.sock arch
                 Lamps, drawer, buzzer: deploy/gpio.py var/run/kiosk-gpio.sock watch
                 Tamper switch: deploy/gpio.py var/run/kiosk-gpio.sock tamper 1 (locked; tamper 0, then
                   staff unlock it: POST /api/v1/kiosks/$KIOSK_NO/unlock as demo.payment-officer)
                 Receipts: deploy/receipt.py var/run/kiosk-receipts.bin --follow
                 No demo beneficiary has a fingerprint enrolled or a kiosk payment yet: to collect
                 cash, follow docs/kiosk.md "Try a collection" (a kiosk cycle for $K_PAY_POINT, then a
                 finger enrolled, or the PIN + staff fallback).
   roles         docs/roles.md   security: docs/security.md
 Stop with Ctrl-C (stops hifadhi-kiosk, hifadhi-gateway, Kannel, hifadhi-core, then MariaDB).
==================================================================================

BANNER

# Waits for Ctrl-C; a service that exits on its own stops everything.
rc=0
wait -n "$core_pid" "$gw_pid" "$kiosk_pid" || rc=$?
if ! kill -0 "$kiosk_pid" 2>/dev/null; then
	wait "$kiosk_pid" 2>/dev/null || true
	kiosk_pid=""
	tail -n 20 "$K_LOG" >&2 || true
	die "hifadhi-kiosk exited on its own (status $rc); log: var/run/kiosk.log"
fi
if ! kill -0 "$gw_pid" 2>/dev/null; then
	wait "$gw_pid" 2>/dev/null || true
	gw_pid=""
	tail -n 20 "$GW_LOG" >&2 || true
	die "hifadhi-gateway exited on its own (status $rc); log: var/run/gateway.log"
fi
wait "$core_pid" 2>/dev/null || true
core_pid=""
tail -n 20 "$LOG" >&2 || true
die "hifadhi-core exited on its own (status $rc); log: var/run/core.log"
