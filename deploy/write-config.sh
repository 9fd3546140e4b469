#!/usr/bin/env bash
# write-config.sh - write a hifadhi-core config with absolute paths for this checkout.
#
#   deploy/write-config.sh OUT_FILE VAR_DIR PORT
#
# VAR_DIR is the folder holding mariadb/ (the server from deploy/mariadb.sh) and keys/; relative
# arguments are taken from the current directory. HF_DB_DIR and HF_KEY_DIR, when set, override
# VAR_DIR/mariadb and VAR_DIR/keys (relative values are from the repository root, as in mariadb.sh);
# HF_LOG_LEVEL overrides the log level. Nothing machine-specific is committed: paths are computed here.
# The keys are documented in deploy/core.conf.example.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$#" -ne 3 ]; then
	echo "usage: $0 OUT_FILE VAR_DIR PORT" >&2
	exit 2
fi
out=$1
port=$3
case "$port" in '' | *[!0-9]*) echo "write-config: PORT must be a number, got '$port'" >&2; exit 2 ;; esac
mkdir -p "$2"
var=$(cd "$2" && pwd)

from_root() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }
db_dir=$var/mariadb
key_dir=$var/keys
[ -n "${HF_DB_DIR:-}" ] && db_dir=$(from_root "$HF_DB_DIR")
[ -n "${HF_KEY_DIR:-}" ] && key_dir=$(from_root "$HF_KEY_DIR")

for p in "$db_dir" "$key_dir" "$ROOT"; do
	case "$p" in *$'\n'* | *$'\r'*) echo "write-config: path contains a newline: $p" >&2; exit 2 ;; esac
done

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
cat >"$tmp" <<CONF
# Written by deploy/write-config.sh for this checkout; see deploy/core.conf.example. Rewritten each run.
[http]
bind = 127.0.0.1
port = $port
threads = 4

[db]
socket = $db_dir/mysqld.sock
name = hifadhi
user = hifadhi
password_file = $key_dir/db-app.password
migrate_user = hifadhi_admin
migrate_password_file = $key_dir/db-admin.password

[crypto]
key_dir = $key_dir
active_key_id = 1

[auth]
gateway_secret_file = $key_dir/gateway.secret

[log]
level = ${HF_LOG_LEVEL:-info}

[paths]
sql_dir = $ROOT/sql

[workflow]
dir = $ROOT/deploy/workflows

[eligibility]
dir = $ROOT/deploy/eligibility

[menus]
dir = $ROOT/menus

[payments]
callback_base = http://127.0.0.1:$port
CONF
# A payment provider (the simulator of `make run`): HF_PAYSIM_URL and HF_PAYSIM_DIR (its keys).
if [ -n "${HF_PAYSIM_URL:-}" ]; then
	sim_dir=$(from_root "$HF_PAYSIM_DIR")
	cat >>"$tmp" <<CONF

[providers]
b2c_name = mpesa
b2c_url = $HF_PAYSIM_URL
b2c_secret_file = $sim_dir/b2c.secret
g2p_name = g2pbank
g2p_url = $HF_PAYSIM_URL
g2p_public_key_file = $sim_dir/g2p.pub
g2p_sender_id = paysim
CONF
fi
mv -f "$tmp" "$out"
