#!/usr/bin/env bash
# Installs the integration-test dependencies (Prosody, python3-slixmpp,
# ejabberd with its Erlang/OTP) from Debian's packages. Idempotent,
# non-interactive; needs root (or sudo).
set -euo pipefail

have_deps() {
	command -v prosody >/dev/null 2>&1 &&
		command -v prosodyctl >/dev/null 2>&1 &&
		/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1 &&
		{ command -v ejabberdctl >/dev/null 2>&1 || [ -x /usr/sbin/ejabberdctl ]; } &&
		command -v erl >/dev/null 2>&1 &&
		compgen -G '/usr/lib/*/ejabberd-*/ebin' >/dev/null
}

if have_deps; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo -n"
fi

# Keep the packages from starting system-wide servers on all interfaces
# (Prosody on 5222/5269, ejabberd on 5222/5269/5280/... and an epmd on
# 4369): invoke-rc.d asks policy-rc.d, and 101 means "not allowed".
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
fi
# What was there before: a server the user installed is left alone.
had() { command -v "$1" >/dev/null 2>&1 && echo 1 || true; }
had_prosody="$(had prosody)"
had_ejabberd="$(had ejabberdctl)"
had_erlang="$(had erl)"

$SUDO apt-get update </dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	prosody python3-slixmpp ejabberd </dev/null

# In case a package this run installed still started its system server,
# stop it; on systemd machines also keep it from starting at boot (and the
# epmd units, when this run brought Erlang).
systemd=""
[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemd=1
quiet_stop() {
	$SUDO service "$1" stop >/dev/null 2>&1 </dev/null || true
	[ -z "$systemd" ] || $SUDO systemctl disable --now "$@" >/dev/null 2>&1 || true
}
[ -n "$had_prosody" ] || quiet_stop prosody
[ -n "$had_ejabberd" ] || quiet_stop ejabberd
[ -n "$had_erlang" ] || [ -z "$systemd" ] || quiet_stop epmd.socket epmd.service

if ! have_deps; then
	echo "install-deps.sh: prosody, python3-slixmpp or ejabberd still missing after install" >&2
	exit 1
fi
