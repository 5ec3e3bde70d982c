#!/usr/bin/env bash
# Runs the real-client compatibility suite against ringcast: redis-py, redis-cli
# and the programs in examples/ under pytest, then ioredis and node-redis under
# `node --test` (compat/node).
#
#   compat/run.sh [pytest args...]
#
# RINGCAST_BIN     server binary (default: target/release/ringcast if present,
#                  else target/debug/ringcast, built if missing; CARGO_TARGET_DIR
#                  is honoured)
# COMPAT_TARGET    ringcast (default) or redis: run the same suite against a real
#                  redis-server, which is how the suite itself is checked
# PYTHON           interpreter used to create compat/.venv (default python3)
# The cluster scenarios (marker `cluster`) start clusters of their own: `-m cluster`
# runs only them, `-m 'not cluster'` leaves them out.
# Node.js 20 or later and npm must be on PATH; compat/node/node_modules is
# installed with `npm ci` from package-lock.json when missing or stale.
#
# The plain server is started here (ringcast from Debian's stock redis.conf)
# on a free 127.0.0.1 port and handed to pytest
# in COMPAT_PORT; fixtures start the other variants (two workers, requirepass,
# restartable) themselves. Exits non-zero if a test fails, the server dies
# during the run, or it does not shut down cleanly on SIGTERM.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
target=${COMPAT_TARGET:-ringcast}
export COMPAT_TARGET=$target PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf 'compat: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v redis-cli >/dev/null || die "redis-cli not found (Debian package redis-tools)"
command -v node >/dev/null || die "node not found (Node.js 20 or later; Debian package nodejs)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js $(node --version) is too old: the pinned ioredis and node-redis need 20 or later"

# --- Python environment: compat/.venv, rebuilt when requirements.txt changes.
venv=$here/.venv
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || $(cat "$venv/.requirements.sha256" 2>/dev/null) != "$want" ]]; then
    log "creating $venv"
    rm -rf "$venv"
    python=${PYTHON:-python3}
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # A Debian python3 without ensurepip needs python3-venv; try it before giving up.
        rm -rf "$venv"
        /usr/bin/python3 -m venv "$venv" || die "cannot create a venv (install python3-venv)"
    fi
    timeout 600 "$venv/bin/pip" install -q -r "$here/requirements.txt"
    echo "$want" >"$venv/.requirements.sha256"
fi

# --- Node.js packages: compat/node/node_modules, reinstalled when the lock file changes.
node_dir=$here/node
want=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
if [[ $(cat "$node_dir/node_modules/.lock.sha256" 2>/dev/null) != "$want" ]]; then
    command -v npm >/dev/null || die "npm not found (Debian package npm)"
    log "npm ci in $node_dir"
    (cd "$node_dir" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
    echo "$want" >"$node_dir/node_modules/.lock.sha256"
fi

# --- Server command line.
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
case $target in
ringcast)
    if [[ -z ${RINGCAST_BIN:-} ]]; then
        tdir=${CARGO_TARGET_DIR:-$root/target}
        [[ $tdir = /* ]] || tdir=$root/$tdir
        if [[ -x $tdir/release/ringcast ]]; then
            RINGCAST_BIN=$tdir/release/ringcast
        else
            if [[ ! -x $tdir/debug/ringcast ]]; then
                log "building ringcast-server"
                (cd "$root" && cargo build -p ringcast-server)
            fi
            RINGCAST_BIN=$tdir/debug/ringcast
        fi
    fi
    [[ -x $RINGCAST_BIN ]] || die "no executable at RINGCAST_BIN=$RINGCAST_BIN"
    export RINGCAST_BIN
    # Started as an operator moving from Redis would: from Debian's stock
    # redis.conf, changing only what a foreground run beside the suite needs
    # (this port, no daemon or supervisor, the log on standard output, a
    # scratch working directory).
    stock=/etc/redis/redis.conf
    [[ -r $stock ]] || die "$stock is missing (Debian package redis-server)"
    workdir=$(mktemp -d "${TMPDIR:-/tmp}/compat-dir.XXXXXX")
    server=("$RINGCAST_BIN" "$stock" --port "$port" --daemonize no --supervised no
        --logfile "" --pidfile "" --dir "$workdir")
    ;;
redis)
    command -v redis-server >/dev/null || die "redis-server not found (Debian package redis-server)"
    server=(redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no)
    ;;
*) die "COMPAT_TARGET must be ringcast or redis, not '$target'" ;;
esac

# --- Start it; always stop it again, however this script ends.
server_log=$(mktemp "${TMPDIR:-/tmp}/compat-server.XXXXXX")
pid=
server_status=
stop_server() {
    # Sets server_status; SIGTERM, then SIGKILL if it lingers for 10 s.
    local status=0
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "server ignored SIGTERM for 10s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" || status=$?
        pid=
    fi
    server_status=$status
}
cleanup() {
    [[ -z $pid ]] || stop_server
    rm -f "$server_log"
    [[ -z ${workdir:-} ]] || rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "target $target: ${server[*]}"
"${server[@]}" >"$server_log" 2>&1 </dev/null &
pid=$!

ready=
for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || { stop_server; cat "$server_log" >&2; die "server exited at start (status $server_status)"; }
    if [[ -n $(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) ]]; then ready=1; break; fi
    sleep 0.1
done
[[ -n $ready ]] || { cat "$server_log" >&2; die "server did not answer on port $port within 15s"; }
# The readiness line is part of the server's contract (operators and scripts wait for it).
for _ in $(seq 50); do grep -q 'Ready to accept connections' "$server_log" && break; sleep 0.1; done
grep -q 'Ready to accept connections' "$server_log" || { cat "$server_log" >&2; die "server never logged 'Ready to accept connections'"; }

# --- Run the suites: pytest first, then node --test, both against this server.
rc=0
(cd "$here" && COMPAT_PORT=$port timeout 900 "$venv/bin/python" -m pytest -p no:cacheprovider "$@") || rc=$?
node_rc=0
(cd "$node_dir" && COMPAT_PORT=$port timeout 300 node --test --test-reporter=spec ./*.test.mjs) || node_rc=$?

if ! kill -0 "$pid" 2>/dev/null; then
    log "server died during the run; its log:"
    cat "$server_log" >&2
    stop_server
    die "server exited with status $server_status during the suite"
fi
stop_server
if [[ $server_status != 0 ]]; then
    cat "$server_log" >&2
    die "server exited with status $server_status on SIGTERM (want 0)"
fi
[[ $rc = 0 ]] || { log "pytest failed (exit $rc)"; exit "$rc"; }
[[ $node_rc = 0 ]] || { log "node --test failed (exit $node_rc)"; exit "$node_rc"; }
log "all passed against $target"
