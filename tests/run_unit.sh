#!/usr/bin/env bash
# run_unit.sh - run every unit test binary of a build and add up their results.
#
#   tests/run_unit.sh BUILD_DIR        (make unit; also used by tests/run_all.sh, which sources it)
#
# Each BUILD_DIR/tests/test_* binary prints its checks and, as its last line, "N passed, N failed". A
# binary that crashes, times out or prints no summary counts as one failure, so a broken test can never
# look green. One line per suite; the output of a failing suite is shown without its "ok" lines (all of
# it with HF_TEST_VERBOSE=1). The last line is the total "N passed, N failed"; the exit code is non-zero
# if anything failed.
#
# Environment: HF_TEST_TIMEOUT (seconds per suite, default 300), HF_TEST_LOG_DIR (keep each suite's full
# output there), HF_TEST_VERBOSE=1.
set -euo pipefail

HF_TOTAL_PASSED=0
HF_TOTAL_FAILED=0
HF_SUITE_PID=""

# True while pid runs (a zombie we have not reaped yet does not count).
hf_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# Stops the running suite, if any (for traps): SIGTERM lets it stop its servers and print its summary; after
# 10 s its whole process group (the suite and whatever it started) is killed.
hf_stop_suite() {
	local pid=$HF_SUITE_PID tries=200
	[ -n "$pid" ] || return 0
	HF_SUITE_PID=""
	kill -TERM "$pid" 2>/dev/null || true
	while hf_alive "$pid" && ((tries-- > 0)); do sleep 0.05; done
	kill -KILL -- "-$pid" 2>/dev/null || true
	{ wait "$pid" || true; } 2>/dev/null
}

# hf_run_suite LABEL TIMEOUT_S CMD...: runs one suite, prints its line, adds to HF_TOTAL_PASSED/FAILED.
hf_run_suite() {
	local label=$1 limit=$2
	shift 2
	local log rc=0 passed=0 failed=0 summary note=""
	if [ -n "${HF_TEST_LOG_DIR:-}" ]; then
		mkdir -p "$HF_TEST_LOG_DIR"
		log="$HF_TEST_LOG_DIR/${label//\//_}.log"
	else
		log=$(mktemp)
	fi
	# In the background and waited for, so that Ctrl-C or SIGTERM reaches our trap at once (timeout puts the
	# suite in its own process group, out of reach of the terminal's signals); see hf_stop_suite. The suite
	# gets no descriptor but 0, 1, 2 (not our saved stderr: nothing outliving us may hold our caller's pipe).
	# The shell's own "Segmentation fault" notice is discarded: the status is reported below.
	(
		for fd in "/proc/$BASHPID/fd/"*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		exec timeout --kill-after=10 "$limit" "$@" </dev/null >"$log" 2>&1
	) &
	HF_SUITE_PID=$!
	{ wait "$HF_SUITE_PID" || rc=$?; } 2>/dev/null
	HF_SUITE_PID=""
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
	if [ -z "$summary" ]; then
		failed=1
		case "$rc" in
		0) note="exited 0 without a summary line" ;;
		124 | 137) note="timed out after ${limit}s, no summary" ;;
		*) note="crashed (exit $rc$( ((rc > 128)) && printf ', signal %s' "$(kill -l $((rc - 128)) 2>/dev/null)")), no summary" ;;
		esac
	else
		passed=${summary%% passed*}
		failed=${summary#*, }
		failed=${failed%% failed}
		if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
			failed=1
			note="exit $rc after its summary"
		fi
	fi
	HF_TOTAL_PASSED=$((HF_TOTAL_PASSED + passed))
	HF_TOTAL_FAILED=$((HF_TOTAL_FAILED + failed))
	if [ "$failed" -eq 0 ]; then
		printf '  pass  %-40s %s passed, %s failed\n' "$label" "$passed" "$failed"
		[ "${HF_TEST_VERBOSE:-0}" = 1 ] && sed 's/^/        /' "$log"
	else
		printf '  FAIL  %-40s %s passed, %s failed%s\n' "$label" "$passed" "$failed" "${note:+ ($note)}"
		if [ "${HF_TEST_VERBOSE:-0}" = 1 ]; then
			sed 's/^/        /' "$log"
		else
			grep -vE '^ok( |$)' "$log" | head -n 150 | sed 's/^/        /' || true
		fi
		[ -n "${HF_TEST_LOG_DIR:-}" ] && printf '        (full output: %s)\n' "$log"
	fi
	[ -n "${HF_TEST_LOG_DIR:-}" ] || rm -f "$log"
	return 0
}

# hf_run_unit_suites BUILD_DIR: every BUILD_DIR/tests/test_* executable, from the repository root.
hf_run_unit_suites() {
	local build=$1 bin found=false
	for bin in "$build"/tests/test_*; do
		if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
		case "$bin" in *.d | *.o) continue ;; esac
		found=true
		hf_run_suite "unit/$(basename "$bin")" "${HF_TEST_TIMEOUT:-300}" "$bin"
	done
	$found || echo "  (no unit test binaries in $build/tests)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	if [ "$#" -ne 1 ]; then
		echo "usage: $0 BUILD_DIR" >&2
		exit 2
	fi
	ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	trap hf_stop_suite EXIT
	exec {stderr_fd}>&2
	trap 'exec 2>&"$stderr_fd"; echo "run_unit: interrupted" >&2; exit 130' INT
	trap 'exec 2>&"$stderr_fd"; echo "run_unit: terminated" >&2; exit 143' TERM HUP
	[ -d "$1" ] || { echo "run_unit: no build directory $1 (run make first)" >&2; exit 2; }
	BUILD=$(cd "$1" && pwd)
	cd "$ROOT"
	echo "unit tests ($BUILD)"
	hf_run_unit_suites "$BUILD"
	echo "$HF_TOTAL_PASSED passed, $HF_TOTAL_FAILED failed"
	[ "$HF_TOTAL_FAILED" -eq 0 ]
fi
