#!/bin/sh
# install-chromium.sh installs Debian's chromium (and chromium-driver) with
# apt-get when /usr/bin/chromium is missing. It is idempotent: when the binary
# is already there it does nothing. It must run as root and never prompts.
set -eu

if [ -x /usr/bin/chromium ]; then
	echo "install-chromium: /usr/bin/chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-chromium: must run as root to apt-get install chromium" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	chromium chromium-driver fonts-liberation

if [ ! -x /usr/bin/chromium ]; then
	echo "install-chromium: /usr/bin/chromium still missing after apt-get install" >&2
	exit 1
fi
echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
