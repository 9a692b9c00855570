#!/usr/bin/env bash
# PostgreSQL for cityhub's SQL source: tests and development. Uses Debian's
# server binaries (installed with apt-get when none are found), one cluster
# per data dir, TCP on 127.0.0.1 only, its unix socket inside the data dir.
#
#   scripts/postgres.sh start [--data DIR] [--port N] [--parent-pid PID]
#       Create the cluster in DIR on first use (initdb), start it in the
#       background, wait until it answers, make sure the database `cityhub`
#       and its owner `cityhub` exist, and print
#       CITYHUB_POSTGRES_URL=postgres://cityhub:PASS@127.0.0.1:PORT/cityhub?sslmode=disable
#       on stdout, e.g. `export $(scripts/postgres.sh start --port 0)`.
#       Port 0 picks a free port; without --port the port of the previous
#       start on DIR is reused (a free one the first time). With
#       --parent-pid a watcher stops the server within about a second once
#       process PID is gone. Starting one that already runs on DIR just
#       prints its URL again (and keeps its port and watcher).
#   scripts/postgres.sh stop [--data DIR]     fast shutdown (then immediate).
#   scripts/postgres.sh status [--data DIR]   exit 0 when running, 3 when not.
#   scripts/postgres.sh run [--data DIR] [--port N] -- CMD [ARGS...]
#       Start one (default: fresh temp data dir, free port), run CMD with
#       CITYHUB_POSTGRES_URL exported, stop it (unless it was already
#       running on --data DIR), exit with CMD's status.
#
# Default data dir: data/postgres. Files in it: pgdata/ (the cluster),
# run/ (unix socket), postgres.log, port, password (of user cityhub, made
# on first start, mode 600), watcher.pid. When run as root the server runs
# as the `postgres` system user (created when missing): DIR is chowned to it
# and its parent directories get search permission (o+x) where they lack it.
# The cluster's superuser is `postgres`, reachable only through the socket.
#
# Environment: POSTGRES_BIN (directory of initdb/pg_ctl/postgres),
# POSTGRES_START_TIMEOUT (s, default 60), POSTGRES_STOP_TIMEOUT (s,
# default 30), CITYHUB_POSTGRES_PASSWORD (password of user cityhub on the
# first start; default: random).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
default_data=$root/data/postgres

: "${POSTGRES_START_TIMEOUT:=60}"
: "${POSTGRES_STOP_TIMEOUT:=30}"

db_name=cityhub
db_user=cityhub
os_user=postgres

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { printf 'postgres.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# Sets $bin to the directory holding initdb, pg_ctl, postgres and psql.
bin=
# Server bin dirs of Debian's packages, newest major version first.
debian_bins() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -d "$d" ] && printf '%s\n' "$d"; done | sort -t/ -k4 -V -r
}
server_bin() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ] && [ -x "$1/psql" ]; }
find_bin() {
  [ -z "$bin" ] || return 0
  local d
  for d in ${POSTGRES_BIN:-} $(debian_bins); do
    if server_bin "$d"; then bin=$d; return 0; fi
  done
  if command -v pg_ctl >/dev/null; then
    d=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    if server_bin "$d"; then bin=$d; return 0; fi
  fi
  install_server
  for d in $(debian_bins); do
    if server_bin "$d"; then bin=$d; return 0; fi
  done
  die "no PostgreSQL server binaries after installing Debian's postgresql package"
}

install_server() {
  [ "$(id -u)" = 0 ] || die "PostgreSQL server binaries not found: install them (Debian: sudo apt-get install postgresql) or set POSTGRES_BIN"
  command -v apt-get >/dev/null || die "PostgreSQL server binaries not found and no apt-get to install them: set POSTGRES_BIN"
  local t0=$SECONDS
  log "installing Debian's postgresql package (apt-get update, apt-get install -y postgresql)"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2 ||
    die "apt-get install postgresql failed"
  log "installed PostgreSQL in $((SECONDS - t0))s"
}

# as_server CMD...: run CMD as the user the server runs as.
as_server() {
  # From /: the server user may not reach the caller's directory.
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u "$os_user" -- "$@"); else "$@"; fi
}

# As root: make sure the postgres system user exists, owns DIR and can reach it.
prepare_owner() {
  local data=$1
  [ "$(id -u)" = 0 ] || return 0
  if ! id -u "$os_user" >/dev/null 2>&1; then
    log "creating the system user $os_user"
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home --shell /usr/sbin/nologin "$os_user" ||
      die "cannot create the system user $os_user"
  fi
  chown "$os_user:" "$data"
  chmod 700 "$data"
  local d=$data
  while d=$(dirname "$d") && [ "$d" != / ]; do
    if ! runuser -u "$os_user" -- test -x "$d" 2>/dev/null; then
      log "granting search permission (o+x) on $d so that $os_user reaches $data"
      chmod o+x "$d" || die "$os_user cannot reach $data through $d"
    fi
  done
}

pgdata() { printf '%s/pgdata' "$1"; }
sockdir() { printf '%s/run' "$1"; }

# The postmaster's pid when the cluster in DATA runs.
running_pid() {
  local data=$1 pid
  [ -f "$(pgdata "$data")/postmaster.pid" ] || return 1
  pid=$(head -n1 "$(pgdata "$data")/postmaster.pid" 2>/dev/null) || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must be a postgres on this data dir.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(pgdata "$data")" || return 1
  printf '%s\n' "$pid"
}

# The port the running cluster listens on (line 4 of postmaster.pid).
running_port() { sed -n 4p "$(pgdata "$1")/postmaster.pid" 2>/dev/null; }

answers() {
  local data=$1 port=$2
  "$bin/pg_isready" -q -h "$(sockdir "$data")" -p "$port" -t 2 >/dev/null 2>&1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p _
  for _ in $(seq 1 50); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "found no free port"
}

psql_super() {
  local data=$1 port=$2
  shift 2
  as_server "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$(sockdir "$data")" -p "$port" -U postgres -d postgres "$@"
}

# The password of the cityhub user, made on first start.
password() {
  local data=$1 f
  f=$data/password
  if [ ! -s "$f" ]; then
    local pw=${CITYHUB_POSTGRES_PASSWORD:-}
    [ -n "$pw" ] || pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    case $pw in *[!A-Za-z0-9._~-]*) die "CITYHUB_POSTGRES_PASSWORD may hold only letters, digits and . _ ~ - (it goes into a URL)" ;; esac
    (umask 077; printf '%s\n' "$pw" >"$f")
  fi
  cat "$f"
}

# Creates the user and database when missing (idempotent, one psql call).
ensure_db() {
  local data=$1 port=$2 pw=$3
  psql_super "$data" "$port" -v pw="$pw" <<SQL
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', '$db_user', :'pw')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$db_user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', '$db_user', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$db_name', '$db_user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db_name') \gexec
SQL
}

url_for() { printf 'postgres://%s:%s@127.0.0.1:%s/%s?sslmode=disable' "$db_user" "$2" "$1" "$db_name"; }

# start_watcher DATA PARENT: stop the server once PARENT is gone.
start_watcher() {
  local data=$1 parent=$2
  stop_watcher "$data"
  # setsid + closed fds: `$(postgres.sh start)` returns at once.
  # shellcheck disable=SC2016 # $1.. expand in the watcher's bash
  setsid bash -c '
    parent=$1 self=$2 data=$3
    while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
    "$self" stop --data "$data" >>"$data/postgres.log" 2>&1
  ' watcher "$parent" "$here/postgres.sh" "$data" </dev/null >/dev/null 2>&1 &
  printf '%s\n' "$!" >"$data/watcher.pid"
}

stop_watcher() {
  local data=$1 pid
  [ -f "$data/watcher.pid" ] || return 0
  pid=$(cat "$data/watcher.pid" 2>/dev/null || true)
  rm -f "$data/watcher.pid"
  case $pid in ''|*[!0-9]*) return 0 ;; esac
  [ "$pid" != "$PPID" ] || return 0 # called by the watcher itself
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$data"; then kill "$pid" 2>/dev/null || true; fi
}

# start_server DATA PORT [PARENT_PID]: start (or find) the cluster; sets
# $url, and $started when this call started it.
url='' started=''
start_server() {
  local data=$1 port=$2 parent=${3:-}
  local t0
  t0=$(date +%s%N)
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  find_bin
  local pid pw
  if pid=$(running_pid "$data"); then
    local p
    p=$(running_port "$data")
    if [ -n "$port" ] && [ "$port" != 0 ] && [ "$port" != "$p" ]; then
      die "PostgreSQL on $data already runs on port $p (pid $pid), not $port: stop it first"
    fi
    answers "$data" "$p" || die "PostgreSQL (pid $pid) holds $data but does not answer: scripts/postgres.sh stop --data $data"
    pw=$(password "$data")
    url=$(url_for "$p" "$pw")
    log "already running (pid $pid) on 127.0.0.1:$p"
    return 0
  fi

  prepare_owner "$data"
  local pg
  pg=$(pgdata "$data")
  if [ ! -f "$pg/PG_VERSION" ]; then
    [ ! -e "$pg" ] || [ -z "$(ls -A "$pg" 2>/dev/null)" ] || die "$pg exists but holds no cluster: remove it"
    log "initdb into $pg"
    as_server "$bin/initdb" -D "$pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --no-locale --no-instructions >"$data/initdb.log" 2>&1 ||
      { tail -n 20 "$data/initdb.log" >&2; die "initdb failed (log: $data/initdb.log)"; }
  fi
  mkdir -p "$(sockdir "$data")"
  if [ "$(id -u)" = 0 ]; then chown "$os_user:" "$(sockdir "$data")"; fi
  chmod 700 "$(sockdir "$data")"
  pw=$(password "$data")
  if [ "$(id -u)" = 0 ]; then chown root: "$data/password"; fi

  local pick=''
  if [ -z "$port" ]; then port=$(cat "$data/port" 2>/dev/null || true); fi
  if [ -z "$port" ] || [ "$port" = 0 ]; then pick=1; port=$(free_port); fi
  local logf=$data/postgres.log tries=0
  touch "$logf"
  if [ "$(id -u)" = 0 ]; then chown "$os_user:" "$logf"; fi
  while :; do
    if port_busy "$port"; then
      [ -n "$pick" ] || die "port $port on 127.0.0.1 is busy: use --port N, or --port 0 for a free one"
      port=$(free_port)
      continue
    fi
    # pg_ctl -w waits until the server accepts connections.
    if as_server "$bin/pg_ctl" -D "$pg" -l "$logf" -w -t "$POSTGRES_START_TIMEOUT" -s \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $(sockdir "$data") -c synchronous_commit=off" start >&2; then
      break
    fi
    tries=$((tries + 1))
    if [ -n "$pick" ] && [ "$tries" -lt 3 ] && tail -n 20 "$logf" | grep -q 'could not bind'; then
      port=$(free_port) # lost a race for the port: another one
      continue
    fi
    tail -n 20 "$logf" >&2 || true
    die "PostgreSQL did not start (log: $logf)"
  done
  started=1
  printf '%s\n' "$port" >"$data/port"
  ensure_db "$data" "$port" "$pw" || die "cannot create the $db_name database and user (log: $logf)"
  [ -z "$parent" ] || start_watcher "$data" "$parent"
  url=$(url_for "$port" "$pw")
  log "PostgreSQL up on 127.0.0.1:$port (data $data) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

stop_server() {
  local data=$1 pid
  [ -d "$data" ] || { log "not running ($data does not exist)"; return 0; }
  data=$(cd "$data" && pwd)
  stop_watcher "$data"
  if ! pid=$(running_pid "$data"); then
    log "not running ($data)"
    return 0
  fi
  find_bin
  if ! as_server "$bin/pg_ctl" -D "$(pgdata "$data")" -m fast -w -t "$POSTGRES_STOP_TIMEOUT" -s stop >&2; then
    log "still running after ${POSTGRES_STOP_TIMEOUT}s: immediate shutdown"
    as_server "$bin/pg_ctl" -D "$(pgdata "$data")" -m immediate -w -t 10 -s stop >&2 || kill -KILL "$pid" 2>/dev/null || true
  fi
  log "stopped (pid $pid)"
}

status_server() {
  local data=$1 pid
  if [ -d "$data" ] && data=$(cd "$data" && pwd) && pid=$(running_pid "$data"); then
    find_bin
    local p
    p=$(running_port "$data")
    if answers "$data" "$p"; then
      echo "running: pid $pid, 127.0.0.1:$p, data $data"
    else
      echo "starting or unresponsive: pid $pid, data $data"
    fi
    return 0
  fi
  echo "not running (data $data)"
  return 3
}

cmd=${1:-}
[ $# -eq 0 ] || shift
data='' port='' parent_pid=''
while [ $# -gt 0 ]; do
  case $1 in
    --data) [ $# -ge 2 ] || die "--data needs a directory"; data=$2; shift 2 ;;
    --data=*) data=${1#*=}; shift ;;
    --port) [ $# -ge 2 ] || die "--port needs a number"; port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --parent-pid) [ $# -ge 2 ] || die "--parent-pid needs a pid"; parent_pid=$2; shift 2 ;;
    --parent-pid=*) parent_pid=${1#*=}; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) [ "$cmd" = run ] && break; die "unknown option $1 (see scripts/postgres.sh --help)" ;;
  esac
done
case $port in ''|*[!0-9]*) [ -z "$port" ] || die "--port wants a number, got $port" ;; esac
[ -z "$port" ] || [ "$port" -le 65535 ] || die "--port $port is out of range"
case $parent_pid in ''|*[!0-9]*) [ -z "$parent_pid" ] || die "--parent-pid wants a pid, got $parent_pid" ;; esac
[ -z "$parent_pid" ] || kill -0 "$parent_pid" 2>/dev/null || die "--parent-pid $parent_pid: no such process"

case $cmd in
  start)
    start_server "${data:-$default_data}" "$port" "$parent_pid"
    printf 'CITYHUB_POSTGRES_URL=%s\n' "$url"
    ;;
  stop) stop_server "${data:-$default_data}" ;;
  status) status_server "${data:-$default_data}" ;;
  run)
    [ $# -gt 0 ] || die "run needs a command: scripts/postgres.sh run -- CMD [ARGS...]"
    tmp=
    if [ -z "$data" ]; then
      tmp=$(mktemp -d "${TMPDIR:-/tmp}/cityhub-postgres.XXXXXX")
      data=$tmp
    fi
    # shellcheck disable=SC2317 # called from the EXIT trap
    cleanup() {
      # A server that was already running on --data DIR is left running.
      if [ -n "$started" ]; then stop_server "$data" || true; fi
      if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # --parent-pid: should this script be killed outright, PostgreSQL goes too.
    start_server "$data" "${port:-0}" "$$"
    export CITYHUB_POSTGRES_URL=$url
    status=0
    "$@" || status=$?
    exit "$status"
    ;;
  ''|-h|--help|help) usage ;;
  *) die "unknown command '$cmd' (start, stop, status, run)" ;;
esac
