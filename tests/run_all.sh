#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup is reached only through trap
# run_all.sh - every test suite of a build: `make test` calls `tests/run_all.sh build/release`.
#
# First the unit test binaries (tests/run_unit.sh), then the integration suites tests/integration/test_*.py
# against a THROWAWAY MariaDB server (var/test/mariadb-PID on 127.0.0.1:3317, or the next free port up to
# 3336 when another run holds it; accounts and passwords in var/test/keys-PID), which is stopped and removed
# on exit, whatever happens. Runs may overlap. Servers and folders left by a run that was killed are cleaned
# up at the start of the next one.
#
# Each suite prints "N passed, N failed" last; one that crashes, times out or prints no summary counts as one
# failure. One line per suite, then the very last line: the total "N passed, N failed". Exit code non-zero if
# anything failed. The full output of every suite is kept in var/test/run-PID/logs/ when something failed
# (until the next run), and removed when everything passed.
#
# Integration suites get: HF_BUILD (bin folder), HF_TEST_VAR (scratch folder of this run), HF_DB_SOCKET,
# HF_DB_PORT, HF_DB_DIR, HF_KEY_DIR, HF_SQL_DIR (see tests/integration/harness.py).
# Knobs: HF_TEST_DB_PORT (3317), HF_TEST_TIMEOUT (unit, 300 s), HF_TEST_INTEGRATION_TIMEOUT (900 s),
# HF_TEST_VERBOSE=1 (show every suite's whole output), HF_TEST_ONLY=PATTERN (integration suites matching).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ "$#" -ne 1 ]; then
	echo "usage: $0 BUILD_DIR   (e.g. build/release)" >&2
	exit 2
fi
[ -d "$1" ] || { echo "run_all: no build directory $1 (run make first)" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)

# shellcheck source=tests/run_unit.sh
. "$ROOT/tests/run_unit.sh"

TEST_ROOT="$ROOT/var/test"
RUN="$TEST_ROOT/run-$$"
export HF_DB_DIR="$TEST_ROOT/mariadb-$$"
export HF_KEY_DIR="$TEST_ROOT/keys-$$"
export HF_DB_PORT=${HF_TEST_DB_PORT:-3317}
export HF_DB_SOCKET="$HF_DB_DIR/mysqld.sock"
export HF_BUILD="$BUILD/bin"
export HF_TEST_VAR="$RUN/var"
export HF_SQL_DIR="$ROOT/sql"
export HF_TEST_LOG_DIR="$RUN/logs"
unset HF_DB_NAME
export PYTHONDONTWRITEBYTECODE=1
MARIADB="$ROOT/deploy/mariadb.sh"

# Leftovers of runs that no longer exist (killed, machine rebooted): stop their server, remove their folders.
reap_stale() {
	local d pid
	for d in "$TEST_ROOT"/mariadb-* "$TEST_ROOT"/keys-* "$TEST_ROOT"/run-*; do
		[ -e "$d" ] || continue
		pid=${d##*-}
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'run_all\.sh'; then
			continue
		fi
		case "$d" in */mariadb-*) HF_DB_DIR="$d" "$MARIADB" stop >/dev/null 2>&1 || true ;; esac
		rm -rf "$d"
	done
}

cleaned=false
cleanup() {
	$cleaned && return 0
	cleaned=true
	hf_stop_suite
	"$MARIADB" stop >>"$RUN/mariadb-stop.log" 2>&1 || echo "run_all: could not stop the test MariaDB in $HF_DB_DIR" >&2
	rm -rf "$HF_DB_DIR" "$HF_KEY_DIR"
}
trap cleanup EXIT
# A signal may arrive inside hf_run_suite's `wait`, whose stderr is /dev/null: restore it first.
exec {stderr_fd}>&2
trap 'exec 2>&"$stderr_fd"; echo "run_all: interrupted" >&2; exit 130' INT
trap 'exec 2>&"$stderr_fd"; echo "run_all: terminated" >&2; exit 143' TERM HUP

mkdir -p "$TEST_ROOT"
reap_stale
mkdir -p "$RUN" "$HF_TEST_VAR" "$HF_TEST_LOG_DIR"

echo "unit tests (${BUILD#"$ROOT"/})"
hf_run_unit_suites "$BUILD"

# Another run (this checkout or another one) may hold the port: take the next free one of 20.
start_test_db() {
	local first=$HF_DB_PORT port
	for ((port = first; port < first + 20; port++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "port $port is taken"
			continue
		fi
		HF_DB_PORT=$port
		rm -f "$HF_DB_DIR/error.log"
		if "$MARIADB" start; then
			"$MARIADB" init-db
			return
		fi
		grep -q 'Address already in use' "$HF_DB_DIR/error.log" 2>/dev/null || return 1
	done
	return 1
}

db_ok=true
if ! start_test_db >"$HF_TEST_LOG_DIR/mariadb-setup.log" 2>&1; then
	db_ok=false
	echo "integration tests"
	HF_TOTAL_FAILED=$((HF_TOTAL_FAILED + 1))
	printf '  FAIL  %-40s could not start the test MariaDB\n' "integration/setup"
	sed 's/^/        /' "$HF_TEST_LOG_DIR/mariadb-setup.log"
else
	echo "integration tests (throwaway MariaDB on 127.0.0.1:$HF_DB_PORT)"
fi
if $db_ok; then
	found=false
	for suite in tests/integration/test_*.py; do
		[ -f "$suite" ] || continue
		case "$suite" in *"${HF_TEST_ONLY:-}"*) ;; *) continue ;; esac
		found=true
		# A suite may stop the server (database-down tests) and die before restarting it.
		"$MARIADB" start >>"$HF_TEST_LOG_DIR/mariadb-setup.log" 2>&1 || true
		hf_run_suite "integration/$(basename "$suite" .py)" \
			"${HF_TEST_INTEGRATION_TIMEOUT:-900}" /usr/bin/python3 -u "$suite"
	done
	$found || echo "  (no integration suites)"
fi

cleanup
if [ "$HF_TOTAL_FAILED" -eq 0 ]; then
	rm -rf "$RUN"
else
	echo "logs and scratch files kept in ${RUN#"$ROOT"/}/ (removed by the next run)"
fi
echo "$HF_TOTAL_PASSED passed, $HF_TOTAL_FAILED failed"
[ "$HF_TOTAL_FAILED" -eq 0 ]
