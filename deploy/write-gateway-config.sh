#!/usr/bin/env bash
# write-gateway-config.sh - write a hifadhi-gateway config with absolute paths for this checkout.
#
#   deploy/write-gateway-config.sh OUT_FILE VAR_DIR PORT
#
# PORT is the gateway's own (USSD and Kannel callbacks). VAR_DIR is the folder holding keys/ (core's key
# folder: the gateway secret that `hifadhi-core keygen` creates as keys/gateway.secret), kannel/ (the run
# folder of deploy/kannel.sh) and gateway/ (created here: the dispatcher's journal); relative arguments are
# taken from the current directory. Environment (relative paths are from the repository root, as in
# deploy/kannel.sh and deploy/mariadb.sh):
#   HF_CORE_URL     hifadhi-core's base URL                               (default http://127.0.0.1:8080)
#   HF_KEY_DIR      core's key folder, overrides VAR_DIR/keys
#   HF_KANNEL_DIR   Kannel's run folder, overrides VAR_DIR/kannel. When it holds a running Kannel's run.env
#                   and sendsms.password, outbound SMS go through its sendsms; otherwise the gateway answers
#                   USSD and SMS callbacks only (kannel.sendsms_url empty). Write this after `kannel.sh start`.
#   HF_LOG_LEVEL    the gateway's log level                                (default info)
# Nothing machine-specific is committed: paths are computed here. docs/gateway.md describes every key.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "write-gateway-config: $*" >&2; exit 1; }

if [ "$#" -ne 3 ]; then
	echo "usage: $0 OUT_FILE VAR_DIR PORT" >&2
	exit 2
fi
out=$1
port=$3
case "$port" in '' | *[!0-9]*) echo "write-gateway-config: PORT must be a number, got '$port'" >&2; exit 2 ;; esac
mkdir -p "$2"
var=$(cd "$2" && pwd)

from_root() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }
key_dir=$var/keys
kannel_dir=$var/kannel
[ -n "${HF_KEY_DIR:-}" ] && key_dir=$(from_root "$HF_KEY_DIR")
[ -n "${HF_KANNEL_DIR:-}" ] && kannel_dir=$(from_root "$HF_KANNEL_DIR")
core_url=${HF_CORE_URL:-http://127.0.0.1:8080}
gw_dir=$var/gateway

for p in "$key_dir" "$kannel_dir" "$gw_dir" "$ROOT" "$core_url"; do
	case "$p" in *$'\n'* | *$'\r'*) die "path or URL contains a newline: $p" ;; esac
done
case "$core_url" in http://* | https://*) ;; *) die "HF_CORE_URL must be an http(s) URL, got '$core_url'" ;; esac

# The gateway's service credential: made by `hifadhi-core keygen` (core.conf: auth.gateway_secret_file).
[ -s "$key_dir/gateway.secret" ] || die "$key_dir/gateway.secret not found: run hifadhi-core keygen first"

# The dispatcher's journal (no personal data: outbox ids only) lives here.
mkdir -p "$gw_dir"
chmod 0700 "$gw_dir"

# Kannel: the sendsms port the running Kannel was started with (run.env), its user and password file.
sendsms_url=""
kannel_user=""
kannel_pw=""
if [ -r "$kannel_dir/run.env" ] && [ -s "$kannel_dir/sendsms.password" ] && [ -s "$kannel_dir/sendsms.user" ]; then
	sendsms_port=$(sed -n 's/^SENDSMS_PORT=\([0-9][0-9]*\)$/\1/p' "$kannel_dir/run.env" | head -n 1)
	[ -n "$sendsms_port" ] || die "$kannel_dir/run.env has no SENDSMS_PORT"
	kannel_user=$(<"$kannel_dir/sendsms.user")
	[[ "$kannel_user" =~ ^[A-Za-z0-9._-]{1,63}$ ]] || die "bad user name in $kannel_dir/sendsms.user"
	sendsms_url="http://127.0.0.1:$sendsms_port/cgi-bin/sendsms"
	kannel_pw=$kannel_dir/sendsms.password
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
cat >"$tmp" <<CONF
# Written by deploy/write-gateway-config.sh for this checkout; see docs/gateway.md. Rewritten each run.
[http]
bind = 127.0.0.1
port = $port
threads = 8

[core]
url = $core_url
secret_file = $key_dir/gateway.secret
timeout_ms = 3000

[menus]
dir = $ROOT/menus/ussd

[dispatch]
journal = $gw_dir/dispatch.journal

[log]
level = ${HF_LOG_LEVEL:-info}

[kannel]
sender = 384
dlr_base = http://127.0.0.1:$port
CONF
if [ -n "$sendsms_url" ]; then
	printf '%s\n' "sendsms_url = $sendsms_url" "user = $kannel_user" "password_file = $kannel_pw" >>"$tmp"
else
	printf '%s\n' "# no sendsms_url: Kannel was not running when this was written, so no outbound SMS" >>"$tmp"
fi
mv -f "$tmp" "$out"
