#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages Hifadhi needs to build, test and run, and nothing else.
#
# Called by `make deps` before every test/run/bench, so it must cost nothing when all is present: one
# dpkg-query for the whole list, silence, exit 0. Only when something is missing does it run apt-get update
# and install exactly the missing packages (non-interactively: CI has no standard input).
# Extra package names given as arguments are added to the list (`make fuzz` asks for clang this way).
set -euo pipefail

PACKAGES=(
	build-essential pkg-config
	libmicrohttpd-dev libmariadb-dev libsodium-dev libjansson-dev libcurl4-openssl-dev libinih-dev libcsv-dev
	libssl-dev libqrencode-dev libcrack2-dev cracklib-runtime
	mariadb-server mariadb-client
	wrk python3 python3-cryptography python3-nacl curl ca-certificates
	kannel kannel-extras libsmpp34-dev
	libfprint-2-dev libglib2.0-dev libgpiod-dev chromium fonts-dejavu-core nodejs
	"$@"
)

# One dpkg-query for all packages; unknown ones print nothing on stdout (an error on stderr, ignored).
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
	if ! grep -qx -- "$p installed" <<<"$installed"; then
		missing+=("$p")
	fi
done
# npm comes with nodejs from some sources (NodeSource) and as its own Debian package otherwise.
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
echo "deps: done" >&2
