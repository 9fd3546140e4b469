#!/usr/bin/env bash
# mariadb.sh - a private MariaDB server for one checkout: start | stop | status | init-db | dump [DB]
#
# Hifadhi never relies on the distribution's MariaDB service: `make run` and `make test` each run their own
# mariadbd as root, out of a folder under var/, listening on a unix socket in that folder and on
# 127.0.0.1 only. Every command is idempotent so scripts can call it without checking state first.
#
# Settings (environment; relative paths are relative to the repository root):
#   HF_DB_DIR          server folder: data/, mysqld.sock, mysqld.pid, error.log   (default var/mariadb)
#   HF_DB_PORT         TCP port on 127.0.0.1                                     (default 3307)
#   HF_KEY_DIR         where db-admin.password and db-app.password live          (default var/keys)
#   HF_DB_NAME         database that init-db creates and dump dumps              (default hifadhi)
#   HF_DB_BUFFER_POOL  innodb_buffer_pool_size                                   (default 512M)
#
# Accounts made by init-db, on 'localhost' (unix socket) and '127.0.0.1' (TCP):
#   hifadhi_admin  ALL on the database; used only by `hifadhi-core migrate`
#   hifadhi        SELECT, INSERT, UPDATE, DELETE; used by the service
# root has no password and is reachable only over the socket; the server folder is mode 0700.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH="$PATH:/usr/sbin:/sbin"

abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }

DB_DIR=$(abspath "${HF_DB_DIR:-var/mariadb}")
KEY_DIR=$(abspath "${HF_KEY_DIR:-var/keys}")
PORT=${HF_DB_PORT:-3307}
DB_NAME=${HF_DB_NAME:-hifadhi}
BUFFER_POOL=${HF_DB_BUFFER_POOL:-512M}
DATA="$DB_DIR/data"
SOCK="$DB_DIR/mysqld.sock"
PIDFILE="$DB_DIR/mysqld.pid"
ERRLOG="$DB_DIR/error.log"
START_DEADLINE_S=30
STOP_DEADLINE_S=30

die() { echo "mariadb: $*" >&2; exit 1; }

case "$PORT" in '' | *[!0-9]*) die "HF_DB_PORT must be a number, got '$PORT'" ;; esac
# DB_NAME is put into SQL below: accept only plain identifiers.
[[ "$DB_NAME" =~ ^[A-Za-z0-9_]{1,64}$ ]] || die "HF_DB_NAME must match [A-Za-z0-9_]{1,64}, got '$DB_NAME'"
# sun_path holds 108 bytes including the NUL; a deep checkout would otherwise fail with an obscure error.
[ "${#SOCK}" -le 107 ] || die "socket path too long for a unix socket (${#SOCK} > 107): $SOCK; set HF_DB_DIR shorter"

root_sql() { mariadb --no-defaults --socket="$SOCK" -uroot --batch --skip-column-names "$@"; }
ping_ok() { mariadb-admin --no-defaults --socket="$SOCK" -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

is_our_server() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "--datadir=$DATA "; }

# The pid of OUR mariadbd: from the pid file, checked against /proc so a reused pid is not mistaken for it;
# without a pid file (deleted, or not written yet), by looking for a mariadbd on our datadir.
server_pid() {
	local pid=""
	[ -s "$PIDFILE" ] && pid=$(<"$PIDFILE")
	case "$pid" in
	'' | *[!0-9]*) ;;
	*) if is_our_server "$pid"; then printf '%s\n' "$pid"; return 0; fi ;;
	esac
	local comm
	for pid in /proc/[0-9]*; do
		pid=${pid#/proc/}
		comm=""
		read -r comm 2>/dev/null <"/proc/$pid/comm" || true
		if [ "$comm" = mariadbd ] && is_our_server "$pid"; then
			printf '%s\n' "$pid"
			return 0
		fi
	done
	return 1
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

# Gone = no such process, or a zombie nobody has reaped yet (its pid still answers kill -0).
gone() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[ "${stat%% *}" = Z ]
}

cmd_start() {
	local pid
	if ping_ok; then
		return 0
	fi
	if pid=$(server_pid); then
		# Running but not answering yet (e.g. started a moment ago by someone else): wait for it.
		poll "$START_DEADLINE_S" ping_ok && return 0
		die "mariadbd (pid $pid) is running but does not answer on $SOCK; see $ERRLOG"
	fi
	mkdir -p "$DB_DIR"
	chmod 0700 "$DB_DIR"
	rm -f "$PIDFILE" "$SOCK"
	if [ ! -d "$DATA/mysql" ]; then
		rm -rf "$DATA" "$DB_DIR/.secured"
		if ! mariadb-install-db --no-defaults --user=root --datadir="$DATA" \
			--auth-root-authentication-method=normal --skip-test-db >"$DB_DIR/install.log" 2>&1; then
			cat "$DB_DIR/install.log" >&2
			die "mariadb-install-db failed"
		fi
	fi
	# The server must not hold our caller's terminal, pipes or other descriptors (a caller reading our
	# stdout, a saved stderr, make's jobserver pipe would stay open as long as it runs), and Ctrl-C in
	# `make run` must not reach it: the caller stops it cleanly with `stop`. Hence a subshell that closes
	# every fd above 2, setsid, and redirections.
	# innodb_autoinc_lock_mode=2 is what Galera requires, so single-server runs see the same id behaviour.
	# Temporary tables live in the server's own folder: a shared /tmp may be cleaned under a running query.
	mkdir -p -m 0700 "$DB_DIR/tmp"
	(
		close_inherited_fds
		exec setsid mariadbd --no-defaults --user=root \
			--datadir="$DATA" --socket="$SOCK" --port="$PORT" --bind-address=127.0.0.1 \
			--tmpdir="$DB_DIR/tmp" \
			--pid-file="$PIDFILE" --log-error="$ERRLOG" --skip-name-resolve \
			--innodb-buffer-pool-size="$BUFFER_POOL" --innodb-flush-log-at-trx-commit=1 \
			--innodb-autoinc-lock-mode=2 --max-connections=500 --max-heap-table-size=1G \
			--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
			--default-time-zone=+00:00 </dev/null >>"$ERRLOG" 2>&1
	) &
	local spid=$!
	local tries=$((START_DEADLINE_S * 20))
	while ! ping_ok; do
		if ! kill -0 "$spid" 2>/dev/null; then
			tail -n 20 "$ERRLOG" >&2 || true
			die "mariadbd exited during startup (port $PORT in use?); log: $ERRLOG"
		fi
		if ((tries-- <= 0)); then
			tail -n 20 "$ERRLOG" >&2 || true
			die "mariadbd did not answer within ${START_DEADLINE_S}s; log: $ERRLOG"
		fi
		sleep 0.05
	done
	if [ ! -e "$DB_DIR/.secured" ]; then
		# mariadb-install-db's "normal" root may also exist for TCP without a password, plus anonymous users
		# on some versions: keep root to the socket (inside a 0700 folder) and drop the rest. Once per datadir.
		root_sql -e "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$(uname -n)', ''@'localhost', ''@'$(uname -n)';"
		: >"$DB_DIR/.secured"
	fi
}

cmd_stop() {
	local pid
	if ! pid=$(server_pid); then
		rm -f "$PIDFILE"
		return 0
	fi
	# shutdown waits for the server to finish; if it cannot (hung), fall back to signals.
	mariadb-admin --no-defaults --socket="$SOCK" -uroot --connect-timeout=2 shutdown >/dev/null 2>&1 ||
		kill -TERM "$pid" 2>/dev/null || true
	if ! poll "$STOP_DEADLINE_S" gone "$pid"; then
		echo "mariadb: pid $pid still running after ${STOP_DEADLINE_S}s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		poll 5 gone "$pid" || die "could not kill pid $pid"
	fi
	rm -f "$PIDFILE"
}

cmd_status() {
	local pid
	if ping_ok; then
		pid=$(server_pid) || pid="unknown: no pid file"
		echo "mariadb: running (pid $pid, socket $SOCK, 127.0.0.1:$PORT)"
		return 0
	fi
	if pid=$(server_pid); then
		echo "mariadb: starting or stuck (pid $pid, not answering on $SOCK)"
		return 1
	fi
	echo "mariadb: stopped ($DB_DIR)"
	return 3
}

# Reads a password file, or creates it with a fresh random password (mode 0600, no trailing newline).
password_from() {
	local file=$1 pw
	if [ ! -s "$file" ]; then
		mkdir -p "$KEY_DIR"
		chmod 0700 "$KEY_DIR"
		pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
		(umask 077 && printf '%s' "$pw" >"$file.tmp")
		mv -f "$file.tmp" "$file"
	fi
	chmod 0600 "$file"
	pw=$(<"$file")
	pw=${pw%$'\r'}
	[ -n "$pw" ] || die "empty password in $file"
	printf '%s' "$pw"
}

# A MariaDB string literal: backslash and single quote escaped (passwords may come from operators).
sql_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\'/\\\'}
	printf "'%s'" "$s"
}

cmd_init_db() {
	ping_ok || die "server not running on $SOCK (run: deploy/mariadb.sh start)"
	local admin_pw app_pw sql host
	admin_pw=$(sql_str "$(password_from "$KEY_DIR/db-admin.password")")
	app_pw=$(sql_str "$(password_from "$KEY_DIR/db-app.password")")
	sql="CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
	for host in localhost 127.0.0.1; do
		sql+="
CREATE USER IF NOT EXISTS 'hifadhi_admin'@'$host' IDENTIFIED BY $admin_pw;
ALTER USER 'hifadhi_admin'@'$host' IDENTIFIED BY $admin_pw;
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO 'hifadhi_admin'@'$host' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'hifadhi'@'$host' IDENTIFIED BY $app_pw;
ALTER USER 'hifadhi'@'$host' IDENTIFIED BY $app_pw;
GRANT SELECT, INSERT ON \`$DB_NAME\`.* TO 'hifadhi'@'$host';
REVOKE UPDATE, DELETE ON \`$DB_NAME\`.* FROM 'hifadhi'@'$host';"
	done
	# The service account may UPDATE/DELETE only what migrate grants it table by table: never the audit
	# trail (audit_log, audit_checkpoints), which it can only append to and read.
	# Through stdin, so the passwords never appear in a process listing.
	root_sql <<<"$sql"
}

cmd_dump() {
	local db=${1:-$DB_NAME}
	[[ "$db" =~ ^[A-Za-z0-9_]{1,64}$ ]] || die "bad database name '$db'"
	ping_ok || die "server not running on $SOCK"
	mariadb-dump --no-defaults --socket="$SOCK" -uroot --single-transaction "$db"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
init-db) cmd_init_db ;;
dump) cmd_dump "${2:-}" ;;
*)
	echo "usage: $0 start|stop|status|init-db|dump [DB]   (env: HF_DB_DIR HF_DB_PORT HF_KEY_DIR HF_DB_NAME)" >&2
	exit 2
	;;
esac
