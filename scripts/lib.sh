# shellcheck shell=bash
# Functions scripts/prosody.sh and scripts/ejabberd.sh share; each sources
# this file after setting NAME (its own name, for messages), DIR,
# PIDFILE and ENVFILE, and defines is_ours PID (the process is our server).

# Both servers listen on loopback only and declare the same domain,
# components, secrets and accounts, so that the tests run unchanged against
# either.
HOST=127.0.0.1
DOMAIN=localhost
COMPONENT=echo.localhost
COMPONENT_SECRET=echo-secret-1
COMPONENT2=echo2.localhost
COMPONENT2_SECRET=echo2-secret-2
SPARE_COMPONENT=spare.localhost
SPARE_SECRET=spare-secret-3
# One private component domain per process of a scaled-out component
# (docs/components-at-scale.md): each process sends its own requests from
# its node domain, so that their replies come back to it.
NODE_COMPONENTS="node1.echo.localhost:node1-secret node2.echo.localhost:node2-secret node3.echo.localhost:node3-secret"
USERS="alice:alicepass bob:bobpass carol:carolpass"

log() { echo "$NAME: $*" >&2; }

# The PID this script recorded for the server, if any.
recorded_pid() {
	if [ -f "$PIDFILE" ]; then
		tr -dc '0-9' <"$PIDFILE"
	fi
}

# A zombie (PID 1 may reap orphans late) has closed its ports: stopped.
alive() {
	local pid="$1" state
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)"
	[ -n "$state" ] && [ "$state" != Z ]
}

port_open() {
	# bash's /dev/tcp; the subshell closes the descriptor again
	(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# check_ports HINT PORT...: each port is a number in 1..65535 (HINT names
# the variables that set them), no two are the same, and none is in use.
check_ports() {
	local hint="$1" port
	shift
	for port in "$@"; do
		if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
			log "invalid port '$port' ($hint must be 1..65535)"
			exit 1
		fi
	done
	if [ "$(printf '%s\n' "$@" | sort -u | wc -l)" -ne $# ]; then
		log "the ports ($hint) must differ"
		exit 1
	fi
}

# ports_free PORT...: fails the script when another process listens on one.
ports_free() {
	local port
	for port in "$@"; do
		if port_open "$port"; then
			log "port $HOST:$port is already in use by another process"
			exit 1
		fi
	done
}

# stop_pid PID SECONDS: stops our server with SIGTERM, and with SIGKILL
# when it is still alive after SECONDS.
stop_pid() {
	local pid="$1" secs="$2" i
	is_ours "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 $((secs * 10))); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		log "PID $pid did not stop on SIGTERM within $secs s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for i in $(seq 1 20); do
			alive "$pid" || break
			sleep 0.1
		done
	fi
}

# wait_up PID SECONDS PORT...: waits until the server accepts connections
# on every port; fails (returns 1) when it exits or SECONDS pass first.
wait_up() {
	local pid="$1" secs="$2" i port up
	shift 2
	for i in $(seq 1 $((secs * 10))); do
		if ! alive "$pid"; then
			log "the server (PID $pid) exited during start-up"
			return 1
		fi
		up=1
		for port in "$@"; do
			port_open "$port" || up=""
		done
		[ -n "$up" ] && return 0
		sleep 0.1
	done
	return 1
}

# write_env SERVER PIDVAR PID: writes the env file the tests load, at once.
write_env() {
	cat >"$ENVFILE.tmp" <<ENV
export IQ_XMPP_SERVER=$1
export IQ_XMPP_C2S_ADDR=$HOST:$C2S_PORT
export IQ_XMPP_COMPONENT_ADDR=$HOST:$COMPONENT_PORT
export IQ_XMPP_DOMAIN=$DOMAIN
export IQ_XMPP_COMPONENT=$COMPONENT
export IQ_XMPP_COMPONENT_SECRET=$COMPONENT_SECRET
export IQ_XMPP_COMPONENT2=$COMPONENT2
export IQ_XMPP_COMPONENT2_SECRET=$COMPONENT2_SECRET
export IQ_XMPP_SPARE_COMPONENT=$SPARE_COMPONENT
export IQ_XMPP_SPARE_SECRET=$SPARE_SECRET
export IQ_XMPP_NODE_COMPONENTS="$NODE_COMPONENTS"
export IQ_XMPP_USERS="$USERS"
export $2=$3
ENV
	mv "$ENVFILE.tmp" "$ENVFILE"
	log "started PID $3 (c2s $HOST:$C2S_PORT, component $HOST:$COMPONENT_PORT); . $ENVFILE"
}

do_env() {
	if [ ! -f "$ENVFILE" ]; then
		log "no $ENVFILE: run scripts/$NAME start"
		exit 1
	fi
	cat "$ENVFILE"
}

# main ARG: runs the command the script was given (do_start and do_stop
# are the script's own).
main() {
	case "${1:-}" in
	start) do_start ;;
	stop) do_stop ;;
	restart)
		do_stop
		do_start
		;;
	env) do_env ;;
	*)
		echo "usage: $0 start|stop|restart|env" >&2
		exit 2
		;;
	esac
}
