#!/usr/bin/env bash
# MariaDB (the MySQL server Debian ships) for cityhub's SQL source: tests
# and development. Uses Debian's mariadb-server (installed with apt-get when
# no server is found), one server per data dir, TCP on 127.0.0.1 only, its
# unix socket inside the data dir.
#
#   scripts/mysql.sh start [--data DIR] [--port N] [--parent-pid PID]
#       Create the server's files in DIR on first use (mariadb-install-db),
#       start it in the background, wait until it answers, make sure the
#       database `cityhub` and the user `cityhub` exist, and print
#       CITYHUB_MYSQL_DSN=cityhub:PASS@tcp(127.0.0.1:PORT)/cityhub
#       on stdout, e.g. `export "$(scripts/mysql.sh start --port 0)"` (quote
#       it: the DSN has parentheses). The user owns `cityhub` and every
#       database named cityhub_* (tests make their own). Port 0 picks a free
#       port; without --port the port of the previous start on DIR is reused
#       (a free one the first time). With --parent-pid a watcher stops the
#       server within about a second once process PID is gone. Starting one
#       that already runs on DIR just prints its DSN again.
#   scripts/mysql.sh stop [--data DIR]     shutdown, SIGKILL after a timeout.
#   scripts/mysql.sh status [--data DIR]   exit 0 when running, 3 when not.
#   scripts/mysql.sh run [--data DIR] [--port N] -- CMD [ARGS...]
#       Start one (default: fresh temp data dir, free port), run CMD with
#       CITYHUB_MYSQL_DSN exported, stop it (unless it was already running
#       on --data DIR), exit with CMD's status.
#
# Default data dir: data/mysql. Files in it: data/ (the server's), run/
# (socket, pid file), mysql.log, port, password (of user cityhub, made on
# first start, mode 600), watcher.pid. When run as root the server runs as
# the `mysql` system user (created when missing): DIR is chowned to it and
# its parent directories get search permission (o+x) where they lack it.
# The server's administrator is that system user, through the socket only.
#
# Environment: MYSQL_START_TIMEOUT (s, default 60), MYSQL_STOP_TIMEOUT (s,
# default 30), CITYHUB_MYSQL_PASSWORD (password of user cityhub on the first
# start; default: random).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
default_data=$root/data/mysql

: "${MYSQL_START_TIMEOUT:=60}"
: "${MYSQL_STOP_TIMEOUT:=30}"

db_name=cityhub
db_user=cityhub
os_user=mysql
[ "$(id -u)" = 0 ] || os_user=$(id -un)

log() { printf 'mysql.sh: %s\n' "$*" >&2; }
die() { printf 'mysql.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# Sets $server, $installdb, $client and $admin.
server='' installdb='' client='' admin=''
find_bin() {
  [ -z "$server" ] || return 0
  locate() {
    server=$(command -v mariadbd || command -v mysqld || true)
    if [ -z "$server" ] && [ -x /usr/sbin/mariadbd ]; then server=/usr/sbin/mariadbd; fi
    installdb=$(command -v mariadb-install-db || command -v mysql_install_db || true)
    client=$(command -v mariadb || command -v mysql || true)
    admin=$(command -v mariadb-admin || command -v mysqladmin || true)
    [ -n "$server" ] && [ -n "$installdb" ] && [ -n "$client" ] && [ -n "$admin" ]
  }
  locate && return 0
  [ "$(id -u)" = 0 ] || die "MariaDB server not found: install it (Debian: sudo apt-get install mariadb-server)"
  command -v apt-get >/dev/null || die "MariaDB server not found and no apt-get to install it"
  local t0=$SECONDS
  log "installing Debian's mariadb-server package (apt-get update, apt-get install -y mariadb-server)"
  apt-get update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >&2 ||
    die "apt-get install mariadb-server failed"
  log "installed MariaDB in $((SECONDS - t0))s"
  locate || die "no MariaDB server binaries after installing Debian's mariadb-server package"
}

# as_server CMD...: run CMD as the user the server runs as, from / (it may
# not reach the caller's directory).
as_server() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u "$os_user" -- "$@"); else "$@"; fi
}

# As root: make sure the mysql system user exists, owns DIR and can reach it.
prepare_owner() {
  local data=$1
  [ "$(id -u)" = 0 ] || return 0
  if ! id -u "$os_user" >/dev/null 2>&1; then
    log "creating the system user $os_user"
    useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$os_user" ||
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

socket() { printf '%s/run/mysqld.sock' "$1"; }
pidfile() { printf '%s/run/mysqld.pid' "$1"; }

# The server's pid when one runs on DATA.
running_pid() {
  local data=$1 pid
  [ -f "$(pidfile "$data")" ] || return 1
  pid=$(cat "$(pidfile "$data")" 2>/dev/null) || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must be a server on this data dir.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--datadir=$data/data" || return 1
  printf '%s\n' "$pid"
}

running_port() {
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | sed -n 's/^--port=//p'
}

sql_admin() {
  local data=$1
  shift
  as_server "$client" --no-defaults --protocol=socket --socket="$(socket "$data")" -u "$os_user" "$@"
}

answers() { as_server "$admin" --no-defaults --protocol=socket --socket="$(socket "$1")" -u "$os_user" --connect-timeout=2 ping >/dev/null 2>&1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p _
  for _ in $(seq 1 50); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "found no free port"
}

# The password of the cityhub user, made on first start.
password() {
  local data=$1 f
  f=$data/password
  if [ ! -s "$f" ]; then
    local pw=${CITYHUB_MYSQL_PASSWORD:-}
    [ -n "$pw" ] || pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    case $pw in *[!A-Za-z0-9._~-]*) die "CITYHUB_MYSQL_PASSWORD may hold only letters, digits and . _ ~ -" ;; esac
    (umask 077; printf '%s\n' "$pw" >"$f")
  fi
  cat "$f"
}

# Creates the user and database when missing (idempotent).
ensure_db() {
  local data=$1 pw=$2
  sql_admin "$data" <<SQL
CREATE DATABASE IF NOT EXISTS \`$db_name\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$db_user'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER '$db_user'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON \`$db_name\`.* TO '$db_user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`${db_name}\\_%\`.* TO '$db_user'@'127.0.0.1';
SQL
}

dsn_for() { printf '%s:%s@tcp(127.0.0.1:%s)/%s' "$db_user" "$2" "$1" "$db_name"; }

# start_watcher DATA PARENT: stop the server once PARENT is gone.
start_watcher() {
  local data=$1 parent=$2
  stop_watcher "$data"
  # setsid + closed fds: `$(mysql.sh start)` returns at once.
  # shellcheck disable=SC2016 # $1.. expand in the watcher's bash
  setsid bash -c '
    parent=$1 self=$2 data=$3
    while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
    "$self" stop --data "$data" >>"$data/mysql.log" 2>&1
  ' watcher "$parent" "$here/mysql.sh" "$data" </dev/null >/dev/null 2>&1 &
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

# start_server DATA PORT [PARENT_PID]: start (or find) the server; sets
# $dsn, and $started when this call started it.
dsn='' started=''
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
    p=$(running_port "$pid")
    if [ -n "$port" ] && [ "$port" != 0 ] && [ "$port" != "$p" ]; then
      die "MariaDB on $data already runs on port $p (pid $pid), not $port: stop it first"
    fi
    answers "$data" || die "MariaDB (pid $pid) holds $data but does not answer: scripts/mysql.sh stop --data $data"
    pw=$(password "$data")
    dsn=$(dsn_for "$p" "$pw")
    log "already running (pid $pid) on 127.0.0.1:$p"
    return 0
  fi

  prepare_owner "$data"
  mkdir -p "$data/run"
  if [ "$(id -u)" = 0 ]; then chown "$os_user:" "$data/run"; fi
  chmod 700 "$data/run"
  if [ ! -d "$data/data/mysql" ]; then
    [ ! -e "$data/data" ] || [ -z "$(ls -A "$data/data" 2>/dev/null)" ] || die "$data/data exists but holds no server files: remove it"
    mkdir -p "$data/data"
    if [ "$(id -u)" = 0 ]; then chown "$os_user:" "$data/data"; fi
    log "mariadb-install-db into $data/data"
    as_server "$installdb" --no-defaults --datadir="$data/data" --user="$os_user" --skip-test-db \
      --auth-root-authentication-method=socket >"$data/install-db.log" 2>&1 ||
      { tail -n 20 "$data/install-db.log" >&2; die "mariadb-install-db failed (log: $data/install-db.log)"; }
  fi
  pw=$(password "$data")
  if [ "$(id -u)" = 0 ]; then chown root: "$data/password"; fi

  local pick=''
  if [ -z "$port" ]; then port=$(cat "$data/port" 2>/dev/null || true); fi
  if [ -z "$port" ] || [ "$port" = 0 ]; then pick=1; port=$(free_port); fi
  local logf=$data/mysql.log tries=0
  touch "$logf"
  if [ "$(id -u)" = 0 ]; then chown "$os_user:" "$logf"; fi
  while :; do
    if port_busy "$port"; then
      [ -n "$pick" ] || die "port $port on 127.0.0.1 is busy: use --port N, or --port 0 for a free one"
      port=$(free_port)
      continue
    fi
    # setsid + closed fds: the server outlives this script and holds none
    # of its caller's pipes.
    if [ "$(id -u)" = 0 ]; then
      (cd / && setsid runuser -u "$os_user" -- "$server" --no-defaults --datadir="$data/data" --port="$port" \
        --bind-address=127.0.0.1 --socket="$(socket "$data")" --pid-file="$(pidfile "$data")" \
        --log-error="$logf" --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin </dev/null >/dev/null 2>&1 &) </dev/null >/dev/null 2>&1
    else
      (cd / && setsid "$server" --no-defaults --datadir="$data/data" --port="$port" \
        --bind-address=127.0.0.1 --socket="$(socket "$data")" --pid-file="$(pidfile "$data")" \
        --log-error="$logf" --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin </dev/null >/dev/null 2>&1 &) </dev/null >/dev/null 2>&1
    fi
    local deadline=$((SECONDS + MYSQL_START_TIMEOUT)) ok=''
    while [ "$SECONDS" -lt "$deadline" ]; do
      if answers "$data" && running_pid "$data" >/dev/null; then ok=1; break; fi
      if tail -n 5 "$logf" | grep -q -e 'Do you already have another' -e 'Aborting'; then break; fi
      sleep 0.1
    done
    [ -z "$ok" ] || break
    tries=$((tries + 1))
    if [ -n "$pick" ] && [ "$tries" -lt 3 ] && tail -n 20 "$logf" | grep -q 'Do you already have another'; then
      port=$(free_port) # lost a race for the port: another one
      continue
    fi
    tail -n 20 "$logf" >&2 || true
    stop_server "$data" >/dev/null 2>&1 || true
    die "MariaDB did not answer within ${MYSQL_START_TIMEOUT}s (log: $logf)"
  done
  started=1
  printf '%s\n' "$port" >"$data/port"
  ensure_db "$data" "$pw" || die "cannot create the $db_name database and user (log: $logf)"
  [ -z "$parent" ] || start_watcher "$data" "$parent"
  dsn=$(dsn_for "$port" "$pw")
  log "MariaDB up on 127.0.0.1:$port (data $data) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
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
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + MYSQL_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "still running after ${MYSQL_STOP_TIMEOUT}s: SIGKILL $pid"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  log "stopped (pid $pid)"
}

status_server() {
  local data=$1 pid
  if [ -d "$data" ] && data=$(cd "$data" && pwd) && pid=$(running_pid "$data"); then
    find_bin
    if answers "$data"; then
      echo "running: pid $pid, 127.0.0.1:$(running_port "$pid"), data $data"
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
    *) [ "$cmd" = run ] && break; die "unknown option $1 (see scripts/mysql.sh --help)" ;;
  esac
done
case $port in ''|*[!0-9]*) [ -z "$port" ] || die "--port wants a number, got $port" ;; esac
[ -z "$port" ] || [ "$port" -le 65535 ] || die "--port $port is out of range"
case $parent_pid in ''|*[!0-9]*) [ -z "$parent_pid" ] || die "--parent-pid wants a pid, got $parent_pid" ;; esac
[ -z "$parent_pid" ] || kill -0 "$parent_pid" 2>/dev/null || die "--parent-pid $parent_pid: no such process"

case $cmd in
  start)
    start_server "${data:-$default_data}" "$port" "$parent_pid"
    printf 'CITYHUB_MYSQL_DSN=%s\n' "$dsn"
    ;;
  stop) stop_server "${data:-$default_data}" ;;
  status) status_server "${data:-$default_data}" ;;
  run)
    [ $# -gt 0 ] || die "run needs a command: scripts/mysql.sh run -- CMD [ARGS...]"
    tmp=
    if [ -z "$data" ]; then
      tmp=$(mktemp -d "${TMPDIR:-/tmp}/cityhub-mysql.XXXXXX")
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
    # --parent-pid: should this script be killed outright, MariaDB goes too.
    start_server "$data" "${port:-0}" "$$"
    export CITYHUB_MYSQL_DSN=$dsn
    status=0
    "$@" || status=$?
    exit "$status"
    ;;
  ''|-h|--help|help) usage ;;
  *) die "unknown command '$cmd' (start, stop, status, run)" ;;
esac
