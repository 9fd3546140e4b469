#!/usr/bin/env bash
# write-kiosk-config.sh - write a hifadhi-kiosk config for a SIMULATED terminal of this checkout (`make run`).
#
#   deploy/write-kiosk-config.sh OUT_FILE VAR_DIR PORT KIOSK_NO
#
# PORT is the touch page's (127.0.0.1). KIOSK_NO is the terminal's number as registered in core. VAR_DIR
# holds the terminal's folder NAME/ (keys/ and state/, created here, mode 0700) and run/, where the simulated
# devices live:
#   run/NAME-finger.sock   the fingerprint reader: libfprint's virtual_image driver listens there, and
#                          deploy/finger.py presents a finger through it
#   run/NAME-gpio.sock     the lamps, buzzer, drawer and switches (the fake GPIO board of kiosk/gpio.h, every
#                          line mapped): deploy/gpio.py watches the lamps and flips the tamper switch
#   run/NAME-receipts.bin  the receipt "printer": ESC/POS bytes appended, one receipt after the other
#                          (created here, empty: the daemon never creates it, as it never creates /dev/usb/lp0);
#                          deploy/receipt.py prints them as text
# NAME is "kiosk" unless HF_KIOSK_NAME says otherwise (a second terminal needs its own). Relative arguments are
# taken from the current directory. Environment:
#   HF_CORE_URL         hifadhi-core's base URL (default http://127.0.0.1:8080); also the receipts' QR base
#   HF_KIOSK_NAME       the terminal's folder and device names (default kiosk)
#   HF_KIOSK_ENROLMENT  1 = an enrolment station (staff also set its mode in core) instead of a pay point
#   HF_LOG_LEVEL        the daemon's log level (default info)
# Nothing machine-specific is committed: paths are computed here. deploy/kiosk/kiosk.conf.example describes
# every key with production values; docs/kiosk.md, "make run", describes the simulation.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "write-kiosk-config: $*" >&2; exit 1; }

if [ "$#" -ne 4 ]; then
	echo "usage: $0 OUT_FILE VAR_DIR PORT KIOSK_NO" >&2
	exit 2
fi
out=$1
port=$3
kiosk_no=$4
case "$port" in '' | *[!0-9]*) echo "write-kiosk-config: PORT must be a number, got '$port'" >&2; exit 2 ;; esac
[[ "$kiosk_no" =~ ^[A-Z0-9-]{3,32}$ ]] || die "KIOSK_NO must be 3-32 capital letters, digits or '-', got '$kiosk_no'"
name=${HF_KIOSK_NAME:-kiosk}
[[ "$name" =~ ^[a-z0-9-]{1,32}$ ]] || die "HF_KIOSK_NAME must be 1-32 of a-z, 0-9 and '-', got '$name'"
enrolment=false
case "${HF_KIOSK_ENROLMENT:-0}" in 1 | true | yes) enrolment=true ;; esac
core_url=${HF_CORE_URL:-http://127.0.0.1:8080}
case "$core_url" in http://* | https://*) ;; *) die "HF_CORE_URL must be an http(s) URL, got '$core_url'" ;; esac
mkdir -p "$2"
var=$(cd "$2" && pwd)
kdir=$var/$name
run=$var/run
finger=$run/$name-finger.sock
gpio=$run/$name-gpio.sock
receipts=$run/$name-receipts.bin

for p in "$kdir" "$run" "$ROOT" "$core_url"; do
	case "$p" in *$'\n'* | *$'\r'* | *';'* | *'#'*) die "path or URL contains a newline, ';' or '#': $p" ;; esac
done
# A unix socket's path must fit sockaddr_un (108 bytes with its NUL): a deep checkout would fail later, in
# libfprint or the fake GPIO board, with a less helpful message.
for s in "$finger" "$gpio"; do
	[ "${#s}" -le 100 ] || die "socket path too long for a unix socket (${#s} bytes, at most 100): $s; use a shorter VAR_DIR"
done

# The terminal's keys and state are its own (the daemon also refuses a key file others can read).
mkdir -p "$kdir/keys" "$kdir/state" "$run"
chmod 0700 "$kdir" "$kdir/keys" "$kdir/state"
[ -e "$receipts" ] || : >"$receipts"

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
cat >"$tmp" <<CONF
# Written by deploy/write-kiosk-config.sh for this checkout: a SIMULATED terminal (virtual fingerprint reader,
# fake GPIO board, receipts into a file). Rewritten each run. Production values: deploy/kiosk/kiosk.conf.example.
[kiosk]
number = $kiosk_no
enrolment_station = $enrolment

[core]
url = $core_url
timeout_ms = 3000
# Short, so that a demo sees staff unlocks and link changes within seconds.
heartbeat_s = 5

[key]
dir = $kdir/keys

[state]
dir = $kdir/state

[ui]
bind = 127.0.0.1
port = $port
static_dir = $ROOT/kiosk/ui
menus_dir = $ROOT/menus/kiosk
languages = en,sw,fr
idle_s = 120

[reader]
enabled = true
simulate = image:$finger
scan_timeout_s = 60

[gpio]
backend = fake:$gpio
lamp_green = 0
lamp_red = 1
lamp_fault = 2
buzzer = 3
drawer = 4
tamper = 5
door = 6
help = 7

[printer]
path = $receipts

[receipt]
url = $core_url

[log]
level = ${HF_LOG_LEVEL:-info}
CONF
mv -f "$tmp" "$out"
