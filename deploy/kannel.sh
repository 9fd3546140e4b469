#!/usr/bin/env bash
# kannel.sh - a private Kannel on loopback: start | stop [smsbox|fakesmsc] | status | mo [-u] FROM TO TEXT
#
# Development and tests never rely on the distribution's Kannel service: this script runs its own boxes out of
# a run folder under var/, from deploy/kannel/kannel.conf.in, with a simulated operator (fakesmsc from
# kannel-extras) in front of bearerbox and the gateway's /kannel/mo as the SMS service. Every command is
# idempotent. docs/kannel.md describes ports, files, callbacks and crash behaviour.
#
#   start            writes kannel.conf (if bearerbox is not running), then starts, in this order and only what
#                    is not running yet: bearerbox (waits for its admin port), fakesmsc (waits for the link to
#                    come online), smsbox (waits for it to connect and for the sendsms port). Says so when
#                    everything already runs.
#   stop [PART]      stops smsbox, fakesmsc and bearerbox (SIGTERM, SIGKILL after a deadline). PART = smsbox or
#                    fakesmsc stops only that one (fakesmsc: MT then queue in bearerbox). Stopping bearerbox always
#                    stops smsbox too: smsbox would otherwise re-exec itself 10 s later under a pid nobody knows.
#   status           what runs, and bearerbox's counters; exit 0 all running, 3 all stopped, 1 partly.
#   mo [-u] FROM TO TEXT
#                    one MO SMS through fakesmsc (a line "FROM TO text TEXT" into its FIFO; -u sends it as UCS-2)
#                    and waits until bearerbox has counted it. At most 255 bytes per line (fakesmsc's buffer).
#
# Settings (environment; relative paths are relative to the repository root):
#   HF_KANNEL_DIR              run folder: kannel.conf, logs, store/, dlr.sqlite3, pid files, passwords,
#                              mo.fifo, fakesmsc.log                                      (default var/kannel)
#   HF_KANNEL_ADMIN_PORT       bearerbox admin HTTP (/status.txt?password=...)            (default 13000)
#   HF_KANNEL_SMSBOX_PORT      bearerbox <-> smsbox                                       (default 13001)
#   HF_KANNEL_SENDSMS_PORT     smsbox /cgi-bin/sendsms                                    (default 13013)
#   HF_KANNEL_FAKE_PORT        bearerbox's listener for fakesmsc                          (default 13015)
#   HF_GATEWAY_PORT            the gateway; MO go to http://127.0.0.1:PORT/kannel/mo      (default 8081)
#   HF_KANNEL_SENDSMS_USER     sendsms user name (password generated: sendsms.password)  (default hifadhi-gateway)
#   HF_KANNEL_LOG_LEVEL        0 debug .. 4 panic; 3 for anything timed                   (default 1)
#   HF_KANNEL_HTTP_RETRY       retries of a failed MO/DLR callback                        (default 5)
#   HF_KANNEL_HTTP_QUEUE_DELAY seconds between those retries                              (default 2)
#   HF_KANNEL_SMPP=1           also an SMPP link (smsc-id smpp) to 127.0.0.1:HF_SMPP_PORT (default 2775),
#                              bound as HF_SMPP_SYSTEM_ID (hifadhi) / HF_SMPP_PASSWORD (hf-sim)
#   HF_KANNEL_FAKESMSC         the fakesmsc binary                       (default /usr/lib/kannel/test/fakesmsc)
# The ports and options are read when bearerbox starts; other commands take them from the run folder.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="$PATH:/usr/sbin:/sbin"

abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }

DIR=$(abspath "${HF_KANNEL_DIR:-var/kannel}")
TEMPLATES="$ROOT/deploy/kannel"
CONF="$DIR/kannel.conf"
RUN_ENV="$DIR/run.env"
FIFO="$DIR/mo.fifo"
FAKESMSC=${HF_KANNEL_FAKESMSC:-/usr/lib/kannel/test/fakesmsc}
START_DEADLINE_S=20
STOP_DEADLINE_S=15
MO_DEADLINE_S=10
PARTS=(bearerbox fakesmsc smsbox)

die() { echo "kannel: $*" >&2; exit 1; }
say() { echo "kannel: $*"; }

number() {
	case "$2" in '' | *[!0-9]*) die "$1 must be a number, got '$2'" ;; esac
	printf '%s\n' "$2"
}

# Settings: from the environment when bearerbox is (re)started, else from run.env written at that start, so
# that status/stop/mo talk to the Kannel that runs even if the caller's environment differs.
load_settings() {
	ADMIN_PORT=${HF_KANNEL_ADMIN_PORT:-13000}
	SMSBOX_PORT=${HF_KANNEL_SMSBOX_PORT:-13001}
	SENDSMS_PORT=${HF_KANNEL_SENDSMS_PORT:-13013}
	FAKE_PORT=${HF_KANNEL_FAKE_PORT:-13015}
	GATEWAY_PORT=${HF_GATEWAY_PORT:-8081}
	SMPP=${HF_KANNEL_SMPP:-0}
	SMPP_PORT=${HF_SMPP_PORT:-2775}
	if [ "${1:-}" = saved ] && [ -r "$RUN_ENV" ]; then
		local key value
		while IFS='=' read -r key value; do
			case "$key" in
			ADMIN_PORT | SMSBOX_PORT | SENDSMS_PORT | FAKE_PORT | GATEWAY_PORT | SMPP | SMPP_PORT)
				printf -v "$key" '%s' "$value"
				;;
			esac
		done <"$RUN_ENV"
	fi
	ADMIN_PORT=$(number HF_KANNEL_ADMIN_PORT "$ADMIN_PORT")
	SMSBOX_PORT=$(number HF_KANNEL_SMSBOX_PORT "$SMSBOX_PORT")
	SENDSMS_PORT=$(number HF_KANNEL_SENDSMS_PORT "$SENDSMS_PORT")
	FAKE_PORT=$(number HF_KANNEL_FAKE_PORT "$FAKE_PORT")
	GATEWAY_PORT=$(number HF_GATEWAY_PORT "$GATEWAY_PORT")
	SMPP_PORT=$(number HF_SMPP_PORT "$SMPP_PORT")
	case "$SMPP" in 0 | 1) ;; *) die "HF_KANNEL_SMPP must be 0 or 1, got '$SMPP'" ;; esac
}

# ---- processes

# True when pid is one of OUR boxes: the right program, and our config file (boxes) or our FIFO as standard
# input (fakesmsc). A pid file alone proves nothing: after kill -9 it is stale, and smsbox re-execs itself.
is_ours() {
	local part=$1 pid=$2 comm="" arg
	read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
	[ "$comm" = "$part" ] || return 1
	gone "$pid" && return 1
	if [ "$part" = fakesmsc ]; then
		[ "$(readlink "/proc/$pid/fd/0" 2>/dev/null)" = "$FIFO" ]
		return
	fi
	while IFS= read -r -d '' arg; do
		[ "$arg" = "$CONF" ] && return 0
	done <"/proc/$pid/cmdline" 2>/dev/null
	return 1
}

# Every pid of PART that is ours (normally one): the pid file first, then a scan of /proc.
part_pids() {
	local part=$1 pid found=""
	if [ -s "$DIR/$part.pid" ]; then
		pid=$(<"$DIR/$part.pid")
		case "$pid" in '' | *[!0-9]*) ;; *) is_ours "$part" "$pid" && found=$pid ;; esac
	fi
	for pid in /proc/[0-9]*; do
		pid=${pid#/proc/}
		[ "$pid" = "$found" ] && continue
		is_ours "$part" "$pid" 2>/dev/null && found+=" $pid"
	done
	found=${found# }
	[ -n "$found" ] || return 1
	printf '%s\n' "$found"
}

# Gone = no such process, or a zombie nobody has reaped yet.
gone() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[ "${stat%% *}" = Z ]
}

all_gone() {
	local pid
	for pid in "$@"; do gone "$pid" || return 1; done
}

# Polls every 50 ms until cond succeeds or deadline_s passes; no fixed sleeps.
poll() {
	local deadline_s=$1
	shift
	local tries=$((deadline_s * 20))
	while ((tries-- > 0)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# Closes every descriptor above 2 of the current (sub)shell, before it execs a daemon.
close_inherited_fds() {
	local fd
	for fd in "/proc/$BASHPID/fd/"*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
}

# launch PART STDIN OUT CMD...: runs CMD as a daemon of its own session (Ctrl-C in the caller's terminal and
# the caller's pipes never reach it; `stop` ends it) and records its pid. Prints the pid.
launch() {
	local part=$1 in=$2 out=$3
	shift 3
	if [ "$in" = "$FIFO" ]; then
		# Read-write: the open does not wait for a writer, and fakesmsc itself keeps a writer open, so it never
		# sees end-of-file (it would then spin on a NULL line) however many `mo` writers come and go.
		(close_inherited_fds && exec setsid "$@" <>"$in" >>"$out" 2>&1) &
	else
		(close_inherited_fds && exec setsid "$@" <"$in" >>"$out" 2>&1) &
	fi
	local pid=$!
	printf '%s\n' "$pid" >"$DIR/$part.pid"
	printf '%s\n' "$pid"
}

# stop_part PART [SIGNAL]: SIGNAL (default TERM) to every pid of PART, SIGKILL after the deadline, and again
# for whatever takes their place: a signal that reaches smsbox while it waits to restart (its bearerbox died)
# makes it fork its replacement at once, under a new pid.
stop_part() {
	local part=$1 sig=${2:-TERM} pids pid _
	for _ in 1 2 3 4 5; do
		pids=$(part_pids "$part") || break
		# shellcheck disable=SC2086  # a list of pids
		kill -"$sig" $pids 2>/dev/null || true
		# shellcheck disable=SC2086
		if ! poll "$STOP_DEADLINE_S" all_gone $pids; then
			echo "kannel: $part (pid $pids) still running after ${STOP_DEADLINE_S}s; killing it" >&2
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null || true
			# shellcheck disable=SC2086
			poll 5 all_gone $pids || die "could not kill $part (pid $pids)"
		fi
		for pid in $pids; do say "stopped $part (pid $pid)"; done
	done
	part_pids "$part" >/dev/null && die "$part keeps coming back (pid $(part_pids "$part"))"
	rm -f "$DIR/$part.pid"
	return 0
}

# ---- bearerbox's admin interface

admin_password() { cat "$DIR/admin.password" 2>/dev/null; }

# GET PATH on the admin port; the password goes through curl's stdin config, never onto a command line.
admin_get() {
	local pw
	pw=$(admin_password) || return 1
	curl -sS --fail --max-time 3 -K - 2>/dev/null <<<"url = \"http://127.0.0.1:$ADMIN_PORT$1?password=$pw\""
}

admin_ok() { admin_get /status.txt >/dev/null; }

# The fake link's line of /status.txt, e.g. "fake[fake]    FAKE:13015 (online 3s, rcvd: sms 2 ...".
fake_link_line() { admin_get /status.txt | grep -F "FAKE:$FAKE_PORT " | head -n 1; }
fake_online() { fake_link_line | grep -qF '(online'; }
smsbox_connected() { admin_get /status.txt | grep -qE '^[[:space:]]+smsbox:'; }
sendsms_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$SENDSMS_PORT") 2>/dev/null; }
smsbox_ready() { smsbox_connected && sendsms_answers; }

# How many MO the fake link has received so far (for `mo` to know its line went through).
fake_received() {
	local line
	line=$(fake_link_line) || return 1
	line=${line#*rcvd: sms }
	printf '%s\n' "${line%% *}"
}

# ---- files

# Reads a secret file, or creates it with a fresh random alphanumeric value (mode 0600, no newline).
secret_from() {
	local file=$1 value
	if [ ! -s "$file" ]; then
		value=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
		(umask 077 && printf '%s' "$value" >"$file.tmp")
		mv -f "$file.tmp" "$file"
	fi
	chmod 0600 "$file"
	value=$(<"$file")
	[[ "$value" =~ ^[A-Za-z0-9._-]{8,64}$ ]] || die "bad secret in $file (want 8-64 of [A-Za-z0-9._-])"
	printf '%s' "$value"
}

# A value that goes between double quotes in kannel.conf.
conf_safe() {
	case "$2" in *'"'* | *\\* | *$'\n'*) die "$1 may not contain quotes, backslashes or newlines: '$2'" ;; esac
	printf '%s' "$2"
}

# fill TEMPLATE: the template with every @NAME@ replaced (plain text replacement, no sed metacharacters).
fill() {
	local text
	text=$(<"$1")
	text=${text//@DIR@/$DIR}
	text=${text//@ADMIN_PORT@/$ADMIN_PORT}
	text=${text//@SMSBOX_PORT@/$SMSBOX_PORT}
	text=${text//@SENDSMS_PORT@/$SENDSMS_PORT}
	text=${text//@FAKE_PORT@/$FAKE_PORT}
	text=${text//@GATEWAY_PORT@/$GATEWAY_PORT}
	text=${text//@SMPP_PORT@/$SMPP_PORT}
	text=${text//@ADMIN_PASSWORD@/$ADMIN_PASSWORD}
	text=${text//@SENDSMS_USER@/$SENDSMS_USER}
	text=${text//@SENDSMS_PASSWORD@/$SENDSMS_PASSWORD}
	text=${text//@SMPP_SYSTEM_ID@/$SMPP_SYSTEM_ID}
	text=${text//@SMPP_PASSWORD@/$SMPP_PASSWORD}
	text=${text//@LOG_LEVEL@/$LOG_LEVEL}
	text=${text//@HTTP_RETRY@/$HTTP_RETRY}
	text=${text//@HTTP_QUEUE_DELAY@/$HTTP_QUEUE_DELAY}
	if [[ "$text" =~ @[A-Z_]+@ ]]; then
		die "$1: no value for ${BASH_REMATCH[0]}"
	fi
	printf '%s\n' "$text"
}

write_config() {
	LOG_LEVEL=$(number HF_KANNEL_LOG_LEVEL "${HF_KANNEL_LOG_LEVEL:-1}")
	HTTP_RETRY=$(number HF_KANNEL_HTTP_RETRY "${HF_KANNEL_HTTP_RETRY:-5}")
	HTTP_QUEUE_DELAY=$(number HF_KANNEL_HTTP_QUEUE_DELAY "${HF_KANNEL_HTTP_QUEUE_DELAY:-2}")
	[ "$LOG_LEVEL" -le 4 ] || die "HF_KANNEL_LOG_LEVEL must be 0..4, got $LOG_LEVEL"
	conf_safe HF_KANNEL_DIR "$DIR" >/dev/null
	SENDSMS_USER=$(conf_safe HF_KANNEL_SENDSMS_USER "${HF_KANNEL_SENDSMS_USER:-hifadhi-gateway}")
	SMPP_SYSTEM_ID=$(conf_safe HF_SMPP_SYSTEM_ID "${HF_SMPP_SYSTEM_ID:-hifadhi}")
	SMPP_PASSWORD=$(conf_safe HF_SMPP_PASSWORD "${HF_SMPP_PASSWORD:-hf-sim}")
	ADMIN_PASSWORD=$(secret_from "$DIR/admin.password")
	SENDSMS_PASSWORD=$(secret_from "$DIR/sendsms.password")
	printf '%s' "$SENDSMS_USER" >"$DIR/sendsms.user"

	local conf
	conf=$(fill "$TEMPLATES/kannel.conf.in")
	if [ "$SMPP" = 1 ]; then
		conf+=$'\n'$(fill "$TEMPLATES/smpp.conf.in")
	fi
	(umask 077 && printf '%s\n' "$conf" >"$CONF.tmp")
	mv -f "$CONF.tmp" "$CONF"
	printf '%s\n' "ADMIN_PORT=$ADMIN_PORT" "SMSBOX_PORT=$SMSBOX_PORT" "SENDSMS_PORT=$SENDSMS_PORT" \
		"FAKE_PORT=$FAKE_PORT" "GATEWAY_PORT=$GATEWAY_PORT" "SMPP=$SMPP" "SMPP_PORT=$SMPP_PORT" >"$RUN_ENV"

	# Kannel does not create its DLR table. The columns are the ones kannel.conf.in names in group dlr-db.
	python3 - "$DIR/dlr.sqlite3" <<'PY' || die "could not create the DLR table in $DIR/dlr.sqlite3"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE IF NOT EXISTS dlr (smsc TEXT, ts TEXT, destination TEXT, source TEXT, service TEXT,"
           " url TEXT, mask INTEGER, status INTEGER, boxc TEXT)")
db.execute("CREATE INDEX IF NOT EXISTS dlr_lookup ON dlr (smsc, ts)")
db.commit()
PY
}

log_tail() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "--- ${f#"$ROOT"/} (last lines)" >&2
		tail -n 15 "$f" >&2
	done
}

# ---- commands

need_programs() {
	local p
	for p in bearerbox smsbox curl python3 flock; do
		command -v "$p" >/dev/null 2>&1 || die "$p not found (run deploy/deps.sh)"
	done
	[ -x "$FAKESMSC" ] || die "$FAKESMSC not found (package kannel-extras; run deploy/deps.sh)"
}

start_bearerbox() {
	local pid
	# Boxes left over from a bearerbox that died (kill -9, crash): smsbox would re-exec itself under a new pid
	# 10 s later (SIGKILL is the one signal that does not make it restart at once), and fakesmsc has lost its
	# connection. They start again after bearerbox.
	stop_part smsbox KILL
	stop_part fakesmsc KILL
	load_settings
	write_config
	rm -f "$DIR/bearerbox.pid"
	: >>"$DIR/bearerbox.out"
	pid=$(launch bearerbox /dev/null "$DIR/bearerbox.out" bearerbox -v 3 "$CONF")
	local tries=$((START_DEADLINE_S * 20))
	until admin_ok; do
		if gone "$pid"; then
			log_tail "$DIR/bearerbox.out" "$DIR/bearerbox.log"
			die "bearerbox exited during startup (a port in use? ports $ADMIN_PORT $SMSBOX_PORT $FAKE_PORT)"
		fi
		if ((tries-- <= 0)); then
			log_tail "$DIR/bearerbox.out" "$DIR/bearerbox.log"
			die "bearerbox did not answer on 127.0.0.1:$ADMIN_PORT within ${START_DEADLINE_S}s"
		fi
		sleep 0.05
	done
	say "started bearerbox (pid $pid, admin 127.0.0.1:$ADMIN_PORT)"
}

start_fakesmsc() {
	local pid tries=$((START_DEADLINE_S * 20))
	[ -p "$FIFO" ] || { rm -f "$FIFO" && mkfifo -m 0600 "$FIFO"; }
	# fakesmsc prints each MT it receives at debug level ("Got message N: <...>"), hence -v 0; tests read them.
	pid=$(launch fakesmsc "$FIFO" "$DIR/fakesmsc.log" stdbuf -oL -eL "$FAKESMSC" -H 127.0.0.1 -r "$FAKE_PORT" -v 0)
	until fake_online; do
		if gone "$pid"; then
			# It connects once and exits if bearerbox's listener is not up yet: try again.
			pid=$(launch fakesmsc "$FIFO" "$DIR/fakesmsc.log" stdbuf -oL -eL "$FAKESMSC" -H 127.0.0.1 -r "$FAKE_PORT" -v 0)
		fi
		if ((tries-- <= 0)); then
			log_tail "$DIR/fakesmsc.log" "$DIR/bearerbox.log"
			die "the fake SMSC link (127.0.0.1:$FAKE_PORT) did not come online within ${START_DEADLINE_S}s"
		fi
		sleep 0.05
	done
	say "started fakesmsc (pid $pid, link 127.0.0.1:$FAKE_PORT, MO fifo ${FIFO#"$ROOT"/})"
}

start_smsbox() {
	local pid tries=$((START_DEADLINE_S * 20))
	: >>"$DIR/smsbox.out"
	pid=$(launch smsbox /dev/null "$DIR/smsbox.out" smsbox -v 3 "$CONF")
	until smsbox_ready; do
		if gone "$pid"; then
			log_tail "$DIR/smsbox.out" "$DIR/smsbox.log"
			die "smsbox exited during startup (sendsms port $SENDSMS_PORT in use?)"
		fi
		if ((tries-- <= 0)); then
			log_tail "$DIR/smsbox.out" "$DIR/smsbox.log"
			die "smsbox did not connect and open 127.0.0.1:$SENDSMS_PORT within ${START_DEADLINE_S}s"
		fi
		sleep 0.05
	done
	say "started smsbox (pid $pid, sendsms http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms," \
		"MO -> http://127.0.0.1:$GATEWAY_PORT/kannel/mo)"
}

cmd_start() {
	need_programs
	mkdir -p "$DIR/store"
	chmod 0700 "$DIR"
	# One start at a time per run folder (two callers racing would start two bearerboxes).
	exec {lock_fd}>"$DIR/start.lock"
	flock -w "$((START_DEADLINE_S * 3))" "$lock_fd" || die "another start holds $DIR/start.lock"
	local started=false
	if part_pids bearerbox >/dev/null; then
		load_settings saved
		poll "$START_DEADLINE_S" admin_ok || die "bearerbox runs but does not answer on 127.0.0.1:$ADMIN_PORT"
	else
		start_bearerbox
		started=true
	fi
	if ! part_pids fakesmsc >/dev/null; then
		start_fakesmsc
		started=true
	fi
	if ! part_pids smsbox >/dev/null; then
		start_smsbox
		started=true
	fi
	if ! $started; then
		say "already running (admin 127.0.0.1:$ADMIN_PORT, sendsms 127.0.0.1:$SENDSMS_PORT, folder ${DIR#"$ROOT"/})"
	fi
}

cmd_stop() {
	load_settings saved
	# smsbox exits cleanly on SIGTERM while its bearerbox runs; without one it is waiting to re-exec itself,
	# and only SIGKILL stops that.
	local smsbox_signal=TERM
	part_pids bearerbox >/dev/null || smsbox_signal=KILL
	case "${1:-all}" in
	all | bearerbox)
		stop_part smsbox "$smsbox_signal"
		stop_part fakesmsc
		stop_part bearerbox
		;;
	smsbox) stop_part smsbox "$smsbox_signal" ;;
	fakesmsc) stop_part fakesmsc ;;
	*) die "stop: unknown part '$1' (smsbox, fakesmsc, or nothing for all)" ;;
	esac
}

cmd_status() {
	load_settings saved
	local part pids running=0
	for part in "${PARTS[@]}"; do
		if pids=$(part_pids "$part"); then
			echo "$part: running (pid $pids)"
			running=$((running + 1))
		else
			echo "$part: stopped"
		fi
	done
	if [ "$running" -gt 0 ] && admin_ok; then
		admin_get /status.txt | grep -E '^(SMS|DLR):|^[[:space:]]+(smsbox:|[a-z]+\[)' || true
	fi
	echo "folder: ${DIR#"$ROOT"/}  admin 127.0.0.1:$ADMIN_PORT  sendsms 127.0.0.1:$SENDSMS_PORT  fake link $FAKE_PORT" \
		"$([ "$SMPP" = 1 ] && echo " smpp 127.0.0.1:$SMPP_PORT")"
	[ "$running" -eq "${#PARTS[@]}" ] && return 0
	[ "$running" -eq 0 ] && return 3
	return 1
}

# UTF-8 text as fakesmsc's ucs2 field: UTF-16BE, every byte percent-encoded.
ucs2_field() {
	local hex out="" b
	hex=$(printf '%s' "$1" | iconv -f UTF-8 -t UTF-16BE | od -An -v -tx1) || die "mo: text is not valid UTF-8"
	for b in $hex; do out+="%$b"; done
	printf '%s' "$out"
}

cmd_mo() {
	local type=text
	if [ "${1:-}" = -u ]; then
		type=ucs2
		shift
	fi
	[ "$#" -eq 3 ] || die "usage: $0 mo [-u] FROM TO TEXT"
	local from=$1 to=$2 text=$3 line before
	[[ "$from" =~ ^[+0-9A-Za-z]{1,20}$ ]] || die "mo: FROM must be 1-20 of [+0-9A-Za-z], got '$from'"
	[[ "$to" =~ ^[+*#0-9A-Za-z]{1,20}$ ]] || die "mo: TO must be 1-20 of [+*#0-9A-Za-z], got '$to'"
	case "$text" in '' | *$'\n'* | *$'\r'*) die "mo: TEXT must be one non-empty line" ;; esac
	if [ "$type" = ucs2 ]; then text=$(ucs2_field "$text"); fi
	line="$from $to $type $text"
	# fakesmsc reads stdin with fgets into 256 bytes: a longer line would become two messages.
	[ "$(printf '%s\n' "$line" | LC_ALL=C wc -c)" -le 255 ] || die "mo: line longer than 255 bytes: $line"
	load_settings saved
	part_pids fakesmsc >/dev/null || die "mo: fakesmsc is not running (deploy/kannel.sh start)"
	# fakesmsc handles one line per wake-up of its select(): a second line already in the pipe would sit in
	# its stdio buffer until the next write. So: one writer at a time, and wait until bearerbox has the line.
	exec {lock_fd}>"$DIR/mo.lock"
	flock -w "$MO_DEADLINE_S" "$lock_fd" || die "mo: another mo holds $DIR/mo.lock"
	before=$(fake_received) || die "mo: bearerbox does not answer on 127.0.0.1:$ADMIN_PORT"
	# Opened read-write so that it cannot block even if fakesmsc died a moment ago.
	exec {fifo_fd}<>"$FIFO"
	printf '%s\n' "$line" >&"$fifo_fd"
	exec {fifo_fd}>&-
	mo_counted() { local n; n=$(fake_received) && [ "$n" -gt "$before" ]; }
	poll "$MO_DEADLINE_S" mo_counted || die "mo: bearerbox did not receive the line within ${MO_DEADLINE_S}s"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop "${2:-all}" ;;
status) cmd_status ;;
mo)
	shift
	cmd_mo "$@"
	;;
*)
	echo "usage: $0 start|stop [smsbox|fakesmsc]|status|mo [-u] FROM TO TEXT" \
		"  (env: HF_KANNEL_DIR HF_KANNEL_*_PORT HF_GATEWAY_PORT HF_KANNEL_SMPP HF_SMPP_PORT; see the header)" >&2
	exit 2
	;;
esac
