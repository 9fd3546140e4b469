#!/usr/bin/env bash
# provision.sh - turns a fresh Debian 12 machine into a Hifadhi kiosk terminal.
#
#   deploy/kiosk/provision.sh [--build DIR] [--kiosk-no NUMBER] [--core-url URL] [--receipt-url URL]
#                             [--code XXXX-XXXX-XXXX] [--no-ui] [--dry-run]
#
# Run as root from a checkout that holds a build of the kiosk (`make` -> build/release/bin/hifadhi-kiosk; or
# --build DIR for another build folder). It installs the runtime packages, creates the users and folders,
# installs the program, its page and texts, the systemd units, the PAM stack of the screen and the udev rules,
# writes /etc/hifadhi/kiosk.conf from kiosk.conf.example if there is none, enables the units and, given the
# one-time enrolment code staff got when they registered the terminal in core (--code), enrols the
# terminal's key and starts it. docs/kiosk.md, "Provisioning a terminal", walks through it.
#
# Every step says what it does before doing it, and can be run again: what is already there is kept. It never
# deletes anything, never overwrites the config or the keys (an existing config is checked, not replaced: a
# changed example does not reach a terminal by itself, see docs/kiosk.md "Updating"), and never touches
# other services than its own (and getty@tty1, which the screen replaces on the first console).
# --dry-run prints the steps without doing anything (no root needed). --no-ui: a terminal without a screen of
# its own (the daemon only), e.g. a test bench.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The installed layout; hifadhi-kiosk.service, hifadhi-kiosk-ui.service and kiosk.conf.example name the same
# paths (tests/integration/test_kiosk_deploy.py checks that they agree).
BIN=/usr/local/bin/hifadhi-kiosk
SHARE=/usr/local/share/hifadhi-kiosk
DOC=/usr/local/share/doc/hifadhi-kiosk
CONF_DIR=/etc/hifadhi
CONF=$CONF_DIR/kiosk.conf
STATE=/var/lib/hifadhi-kiosk
UI_HOME=/var/lib/hifadhi-ui
USER_DAEMON=hifadhi-kiosk
USER_UI=hifadhi-ui
# plugdev: the fingerprint reader, lp: the receipt printer, gpio: lamps and switches (70-hifadhi-fingerprint.rules).
DAEMON_GROUPS=(plugdev lp gpio)
UNIT_DIR=/etc/systemd/system
UDEV_RULES=/etc/udev/rules.d/70-hifadhi-fingerprint.rules
PAM_FILE=/etc/pam.d/hifadhi-kiosk-ui

# What the program needs at run time (its shared libraries: `readelf -d hifadhi-kiosk`), what the screen needs,
# and the tools the guide uses on a terminal (gpioinfo, lsusb, curl).
PACKAGES_DAEMON=(libfprint-2-2 libglib2.0-0 libgpiod2 libmicrohttpd12 libsodium23 libjansson4 libcurl4 libinih1
	ca-certificates systemd-timesyncd udev gpiod usbutils curl)
PACKAGES_UI=(cage chromium fonts-dejavu-core dbus-user-session)

build=$ROOT/build/release
kiosk_no=""
core_url=""
receipt_url=""
code=""
ui=true
dry=false

usage() {
	sed -n '3,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ "$#" -gt 0 ]; do
	case "$1" in
	--build) build=${2:?}; shift 2 ;;
	--kiosk-no) kiosk_no=${2:?}; shift 2 ;;
	--core-url) core_url=${2:?}; shift 2 ;;
	--receipt-url) receipt_url=${2:?}; shift 2 ;;
	--code) code=${2:?}; shift 2 ;;
	--no-ui) ui=false; shift ;;
	--dry-run) dry=true; shift ;;
	-h | --help) usage ;;
	*) echo "provision: unknown argument '$1'" >&2; usage ;;
	esac
done

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: %s\n' "$*" >&2; exit 1; }
# run CMD...: shows the command, then runs it (or only shows it with --dry-run).
run() {
	printf 'provision:   $'
	printf ' %q' "$@"
	printf '\n'
	$dry || "$@"
}
# A value substituted into the config: one line, no characters that would end or comment the INI line.
ini_value_ok() { [[ "$1" =~ ^[A-Za-z0-9:/._+@%=?\&-]+$ ]]; }

[ -z "$kiosk_no" ] || [[ "$kiosk_no" =~ ^[A-Z0-9-]{3,32}$ ]] || die "--kiosk-no: 3-32 capital letters, digits or '-'"
for u in "$core_url" "$receipt_url"; do
	[ -z "$u" ] || { [[ "$u" =~ ^https?:// ]] && ini_value_ok "$u"; } || die "not an http(s) URL: $u"
done
[ -z "$code" ] || [[ "$code" =~ ^[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}$ ]] ||
	die "--code: the enrolment code looks like XXXX-XXXX-XXXX"

if $dry; then
	say "dry run: nothing below is done, only shown"
else
	[ "$(id -u)" -eq 0 ] || die "run as root (or with --dry-run to see the steps)"
fi
if [ -r /etc/debian_version ] && [[ "$(cat /etc/debian_version)" == 12* ]]; then
	:
else
	say "warning: made for Debian 12; this is $(cat /etc/debian_version 2>/dev/null || echo 'not Debian'): package names may differ"
fi
[ -x "$build/bin/hifadhi-kiosk" ] || die "$build/bin/hifadhi-kiosk not found: build it first (make), or give --build DIR"
build=$(cd "$build" && pwd)
for f in hifadhi-kiosk.service hifadhi-kiosk-ui.service hifadhi-kiosk-ui.pam 70-hifadhi-fingerprint.rules \
	kiosk.conf.example; do
	[ -r "$ROOT/deploy/kiosk/$f" ] || die "deploy/kiosk/$f missing from this checkout"
done

# ---- 1. packages
packages=("${PACKAGES_DAEMON[@]}")
$ui && packages+=("${PACKAGES_UI[@]}")
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
	grep -qx -- "$p installed" <<<"$installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	say "1. packages: all present (${packages[*]})"
else
	say "1. packages: installing ${missing[*]}"
	run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- 2. groups and users
say "2. users: $USER_DAEMON runs the daemon (groups ${DAEMON_GROUPS[*]}); $USER_UI runs the screen"
getent group gpio >/dev/null || run groupadd --system gpio
if ! id "$USER_DAEMON" >/dev/null 2>&1; then
	run useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin \
		--comment "Hifadhi kiosk daemon" "$USER_DAEMON"
fi
for g in "${DAEMON_GROUPS[@]}"; do
	id -nG "$USER_DAEMON" 2>/dev/null | tr ' ' '\n' | grep -qx "$g" || run usermod --append --groups "$g" "$USER_DAEMON"
done
if $ui && ! id "$USER_UI" >/dev/null 2>&1; then
	run useradd --system --user-group --home-dir "$UI_HOME" --create-home --shell /usr/sbin/nologin \
		--comment "Hifadhi kiosk screen" "$USER_UI"
fi

# ---- 3. folders (modes enforced each run: the keys must stay the daemon's alone)
say "3. folders: $STATE (keys/, state/: mode 0700, $USER_DAEMON), $CONF_DIR, $SHARE, $DOC"
run install -d -m 0755 -o root -g root "$CONF_DIR" "$SHARE" "$SHARE/ui" "$SHARE/menus" "$DOC"
run install -d -m 0700 -o "$USER_DAEMON" -g "$USER_DAEMON" "$STATE" "$STATE/keys" "$STATE/state"

# ---- 4. the program, its page, texts and guide (replaced by this checkout's: that is how a terminal is updated)
say "4. program: $BIN, page and texts in $SHARE, guide in $DOC/kiosk.md"
run install -m 0755 -o root -g root "$build/bin/hifadhi-kiosk" "$BIN"
run cp -R --no-preserve=ownership,mode "$ROOT/kiosk/ui/." "$SHARE/ui/"
run cp -R --no-preserve=ownership,mode "$ROOT/menus/kiosk/." "$SHARE/menus/"
run chmod -R u=rwX,go=rX "$SHARE"
run install -m 0644 -o root -g root "$ROOT/docs/kiosk.md" "$DOC/kiosk.md"

# ---- 5. units, PAM, udev
if $ui; then
	say "5. systemd units in $UNIT_DIR, the screen's PAM stack $PAM_FILE, udev rules $UDEV_RULES"
else
	say "5. systemd unit in $UNIT_DIR, udev rules $UDEV_RULES"
fi
run install -m 0644 -o root -g root "$ROOT/deploy/kiosk/hifadhi-kiosk.service" "$UNIT_DIR/hifadhi-kiosk.service"
if $ui; then
	run install -m 0644 -o root -g root "$ROOT/deploy/kiosk/hifadhi-kiosk-ui.service" "$UNIT_DIR/hifadhi-kiosk-ui.service"
	run install -m 0644 -o root -g root "$ROOT/deploy/kiosk/hifadhi-kiosk-ui.pam" "$PAM_FILE"
fi
run install -m 0644 -o root -g root "$ROOT/deploy/kiosk/70-hifadhi-fingerprint.rules" "$UDEV_RULES"
say "   applying the udev rules to the devices already plugged in (reader, printer, GPIO chip)"
run udevadm control --reload
run udevadm trigger --action=change --subsystem-match=usb --subsystem-match=usbmisc --subsystem-match=gpio

# ---- 6. the config
if [ -e "$CONF" ]; then
	say "6. config: $CONF exists: kept as it is (checked below)"
	[ -z "$kiosk_no$core_url$receipt_url" ] ||
		say "   --kiosk-no/--core-url/--receipt-url apply to a new config only: edit $CONF to change them"
else
	say "6. config: writing $CONF from deploy/kiosk/kiosk.conf.example (root:$USER_DAEMON, mode 0640)"
	sedargs=()
	[ -z "$kiosk_no" ] || sedargs+=(-e "s|^number = .*|number = $kiosk_no|")
	[ -z "$core_url" ] || sedargs+=(-e "/^\[core\]/,/^\[/ s|^url = .*|url = $core_url|")
	[ -z "$receipt_url" ] || sedargs+=(-e "/^\[receipt\]/,/^\[/ s|^url = .*|url = $receipt_url|")
	tmp="$CONF.new"
	if [ "${#sedargs[@]}" -gt 0 ]; then
		printf 'provision:   $ sed %s deploy/kiosk/kiosk.conf.example > %s\n' "${sedargs[*]}" "$tmp"
		$dry || sed "${sedargs[@]}" "$ROOT/deploy/kiosk/kiosk.conf.example" >"$tmp"
	else
		run cp "$ROOT/deploy/kiosk/kiosk.conf.example" "$tmp"
	fi
	run chown "root:$USER_DAEMON" "$tmp"
	run chmod 0640 "$tmp"
	run mv -n "$tmp" "$CONF"
fi
kiosk() { runuser -u "$USER_DAEMON" -- "$BIN" -c "$CONF" "$@"; }
registered=false
if ! $dry; then
	rc=0
	out=$(kiosk pubkey 2>&1) || rc=$?
	case "$rc" in
	0) registered=true; say "   the terminal has its key already: $out" ;;
	1) say "   config valid; the terminal has no key yet" ;;
	*) printf '%s\n' "$out" >&2; die "$CONF is not valid (above): fix it and run this again" ;;
	esac
	if grep -qx 'number = K00000000' "$CONF"; then
		say "   kiosk.number is still the example's K00000000: set the number staff registered in $CONF"
		[ -z "$code" ] || die "cannot enrol without the terminal's number (--kiosk-no, or edit $CONF)"
	fi
fi

# ---- 7. units enabled (started below only once the terminal is enrolled)
say "7. enabling the units at boot"
run systemctl daemon-reload
run systemctl enable hifadhi-kiosk.service
if $ui; then
	run systemctl enable hifadhi-kiosk-ui.service
	default=$(systemctl get-default 2>/dev/null || echo unknown)
	if [ "$default" != graphical.target ]; then
		say "   the screen starts with graphical.target; the default boot target is $default: changing it"
		run systemctl set-default graphical.target
	fi
fi

# ---- 8. enrolment with core, then start
if [ -n "$code" ]; then
	say "8. enrolling this terminal's key with core (hifadhi-kiosk register CODE; the code works once)"
	if $dry; then
		run runuser -u "$USER_DAEMON" -- "$BIN" -c "$CONF" register "$code"
	elif kiosk register "$code"; then
		registered=true
	else
		die "enrolment refused or core unreachable (above). Ask staff for a new code if this one was used or expired"
	fi
fi
if $registered; then
	say "   starting the terminal"
	run systemctl restart hifadhi-kiosk.service
	if $ui; then
		run systemctl restart hifadhi-kiosk-ui.service
	fi
	fp=$(kiosk pubkey 2>/dev/null || true)
	say "done. Public key $fp: staff compare its fingerprint in the console (GET /api/v1/kiosks)."
	say "Check: systemctl status hifadhi-kiosk; journalctl -u hifadhi-kiosk -f; curl -s http://127.0.0.1:8082/healthz"
elif $dry; then
	say "dry run over: nothing was changed"
else
	say "done, but not enrolled yet: set kiosk.number in $CONF (the number staff registered), then run"
	say "  $0 --code XXXX-XXXX-XXXX      (the one-time code staff got; docs/kiosk.md \"Registering\")"
fi
