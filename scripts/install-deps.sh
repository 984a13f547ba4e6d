#!/usr/bin/env bash
# Installs the integration-test dependencies (Prosody, python3-slixmpp) from
# Debian's packages. Idempotent, non-interactive; needs root (or sudo).
set -euo pipefail

have_deps() {
	command -v prosody >/dev/null 2>&1 &&
		command -v prosodyctl >/dev/null 2>&1 &&
		/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1
}

if have_deps; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo -n"
fi

# Keep the package from starting a system-wide server on all interfaces.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
fi

$SUDO apt-get update </dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y prosody python3-slixmpp </dev/null

# In case the package still started the system server, stop it.
$SUDO service prosody stop >/dev/null 2>&1 </dev/null || true

if ! have_deps; then
	echo "install-deps.sh: prosody or python3-slixmpp still missing after install" >&2
	exit 1
fi
