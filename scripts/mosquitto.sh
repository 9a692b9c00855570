#!/usr/bin/env bash
# Runs a local Eclipse Mosquitto MQTT broker (Debian's package) on a loopback
# address for cityhub's MQTT tests and for trying MQTT connectors by hand.
# Installs the package on first use (`apt-get update` once, then
# `apt-get install -y mosquitto`; needs root or sudo).
#
#   scripts/mosquitto.sh start [--data DIR] [--port N] [--parent-pid PID]
#       Write DIR/mosquitto.conf, start the broker in the background (default
#       data dir: data/mosquitto, port 1883; port 0 picks a free port), wait
#       until the port answers, print CITYHUB_MQTT_URL=tcp://127.0.0.1:PORT on
#       stdout, e.g. `export $(scripts/mosquitto.sh start --port 0)`. With
#       --parent-pid a watcher stops the broker (gracefully) within about a
#       second once process PID is gone. Starting one that already runs on
#       DIR just prints its URL again.
#   scripts/mosquitto.sh stop [--data DIR]
#       SIGTERM (Mosquitto then writes its persistence file), SIGKILL after
#       MOSQUITTO_STOP_TIMEOUT seconds.
#   scripts/mosquitto.sh restart [--data DIR] [--parent-pid PID]
#       Stop, then start again on the same port with the same persistence:
#       persistent sessions and their queued QoS 1/2 messages survive.
#   scripts/mosquitto.sh status [--data DIR]    exit 0 when running, 3 when not.
#   scripts/mosquitto.sh run [--data DIR] [--port N] -- CMD [ARGS...]
#       Start one (default: fresh temp data dir, free port), run CMD with
#       CITYHUB_MQTT_URL exported, stop it (unless it was already running on
#       --data DIR), exit with CMD's status.
#
# The broker is for tests: anonymous clients are allowed, it listens on
# 127.0.0.1 only. Persistence is on (persistence_location DIR, saved on every
# change and at shutdown), so messages queued for a disconnected persistent
# session survive a restart. Files in DIR: mosquitto.conf, mosquitto.pid,
# port, mosquitto.log, mosquitto.db, watcher.pid and watcher.parent (with
# --parent-pid).
#
# Environment: MOSQUITTO_START_TIMEOUT (s, default 20), MOSQUITTO_STOP_TIMEOUT
# (s, default 15), MOSQUITTO_BIN (broker binary, default from PATH or
# /usr/sbin/mosquitto).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
default_data=$root/data/mosquitto

: "${MOSQUITTO_START_TIMEOUT:=20}"
: "${MOSQUITTO_STOP_TIMEOUT:=15}"

log() { printf 'mosquitto.sh: %s\n' "$*" >&2; }
die() { printf 'mosquitto.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Sets $bin to the broker binary, installing Debian's package if missing.
bin=
find_bin() {
  [ -z "$bin" ] || return 0
  if [ -n "${MOSQUITTO_BIN:-}" ]; then
    [ -x "$MOSQUITTO_BIN" ] || die "MOSQUITTO_BIN=$MOSQUITTO_BIN is not executable"
    bin=$MOSQUITTO_BIN
    return 0
  fi
  bin=$(command -v mosquitto 2>/dev/null || true)
  [ -n "$bin" ] || [ ! -x /usr/sbin/mosquitto ] || bin=/usr/sbin/mosquitto
  [ -z "$bin" ] || return 0
  install_pkg
  bin=$(command -v mosquitto 2>/dev/null || true)
  [ -n "$bin" ] || [ ! -x /usr/sbin/mosquitto ] || bin=/usr/sbin/mosquitto
  [ -n "$bin" ] || die "the mosquitto package installed no mosquitto binary"
}

install_pkg() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "mosquitto is not installed and this is not root: apt-get install mosquitto"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null || die "mosquitto is not installed and there is no apt-get: install Mosquitto 2.x by hand"
  # One install at a time: parallel starts wait for it, then use it.
  local lock=${TMPDIR:-/tmp}/cityhub-mosquitto-install.lock
  exec 8>"$lock"
  if command -v flock >/dev/null; then flock 8; fi
  if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then exec 8>&-; return 0; fi
  local t0
  t0=$(now_ms)
  log "installing Debian's mosquitto package (apt-get update, apt-get install -y mosquitto)"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
  # The package's own service is not started inside containers without an
  # init system; on hosts with one, it may start a broker on port 1883 too,
  # which does not concern ours.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends mosquitto >&2 ||
    die "apt-get install mosquitto failed"
  log "installed mosquitto in $(( $(now_ms) - t0 )) ms"
  exec 8>&-
}

pid_file() { printf '%s/mosquitto.pid' "$1"; }
port_file() { printf '%s/port' "$1"; }
log_file() { printf '%s/mosquitto.log' "$1"; }
conf_file() { printf '%s/mosquitto.conf' "$1"; }
watcher_file() { printf '%s/watcher.pid' "$1"; }

# The pid of the broker that owns DIR, if it runs.
running_pid() {
  local data=$1 pid
  [ -f "$(pid_file "$data")" ] || return 1
  pid=$(cat "$(pid_file "$data")" 2>/dev/null) || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  alive "$pid" || return 1
  # Guard against a recycled pid: it must be a broker on this config.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-c $(conf_file "$data")" || return 1
  printf '%s\n' "$pid"
}

# alive PID: the process exists and is not a zombie (a broker started by an
# earlier run of this script is reaped by init, maybe only later).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true)
  [ "$state" != Z ]
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# An MQTT 3.1.1 CONNECT of an anonymous clean-session client "probe": true
# when the broker answers with a CONNACK (0x20). The client then disconnects.
mqtt_answers() {
  local port=$1 reply
  # shellcheck disable=SC2016 # $0 expands in the inner bash
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "\x10\x11\x00\x04MQTT\x04\x02\x00\x05\x00\x05probe" >&3
    head -c 4 <&3 | od -An -tx1
    printf "\xe0\x00" >&3' "$port" 2>/dev/null) || return 1
  reply=${reply//[[:space:]]/}
  [ "${reply:0:4}" = 2002 ]
}

# A free port on 127.0.0.1, chosen by the kernel.
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 40000 ))
    port_busy "$p" || { echo "$p"; return; }
  done
  die "found no free port"
}

write_conf() {
  local data=$1 port=$2 user
  # Started as root, Mosquitto drops privileges to `user`: the package's
  # mosquitto account, which is then given DIR (it writes mosquitto.db and
  # mosquitto.log there). Started as anyone else it stays that user.
  user=$(id -un)
  if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    user=mosquitto
  fi
  cat >"$(conf_file "$data")" <<EOF
# Written by scripts/mosquitto.sh: a broker for cityhub's tests.
per_listener_settings false
listener $port 127.0.0.1
allow_anonymous true
user $user
persistence true
persistence_location $data/
persistence_file mosquitto.db
# Also saved every second, not only at shutdown: a broker that is killed
# loses at most the last second.
autosave_interval 1
autosave_on_changes false
log_dest file $(log_file "$data")
log_type error
log_type warning
log_type notice
connection_messages true
log_timestamp_format %Y-%m-%dT%H:%M:%S
# Room for the tests' bursts (the default queue is 1000 messages per
# client). The inflight window keeps Mosquitto's default (20
# unacknowledged QoS 1 messages per client), as on a stock broker.
max_queued_messages 100000
EOF
}

# start_server DATA PORT [PARENT_PID]: start (or find) the broker; sets $url,
# and $started when this call started it. An empty PORT is 1883, or the port
# of the broker already running on DATA.
url='' started=''
start_server() {
  local data=$1 port=$2 parent=${3:-}
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  local pid
  if pid=$(running_pid "$data"); then
    local p
    p=$(cat "$(port_file "$data")" 2>/dev/null || true)
    if [ -n "$p" ] && mqtt_answers "$p"; then
      if [ -n "$port" ] && [ "$port" != 0 ] && [ "$port" != "$p" ]; then
        die "Mosquitto on $data already runs on port $p (pid $pid), not on port $port: stop it first"
      fi
      url=tcp://127.0.0.1:$p
      [ -z "$parent" ] || start_watcher "$data" "$parent"
      log "already running (pid $pid) at $url"
      return 0
    fi
    die "a broker (pid $pid) holds $data but does not answer: scripts/mosquitto.sh stop --data $data"
  fi
  rm -f "$(pid_file "$data")"

  find_bin
  [ -n "$port" ] || port=1883
  if [ "$port" = 0 ]; then port=$(free_port)
  elif port_busy "$port"; then
    die "port $port on 127.0.0.1 is busy (another broker?): use --port N, or --port 0 for a free one"
  fi
  printf '%s\n' "$port" >"$(port_file "$data")"
  write_conf "$data" "$port"
  local logf
  logf=$(log_file "$data")
  [ ! -f "$logf" ] || mv -f "$logf" "$logf.1"
  : >"$logf"
  if grep -qx 'user mosquitto' "$(conf_file "$data")"; then
    chown mosquitto "$data" "$logf"
    [ ! -e "$data/mosquitto.db" ] || chown mosquitto "$data/mosquitto.db"
  fi

  local t0
  t0=$(now_ms)
  # Not -d: the pid of the background job is the broker's, and its stderr
  # (errors before the log file opens) lands in the log.
  nohup "$bin" -c "$(conf_file "$data")" </dev/null >>"$logf" 2>&1 &
  pid=$!
  started=1
  printf '%s\n' "$pid" >"$(pid_file "$data")"

  local deadline=$((SECONDS + MOSQUITTO_START_TIMEOUT))
  while ! mqtt_answers "$port"; do
    if ! alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      rm -f "$(pid_file "$data")"
      tail -n 20 "$logf" >&2 || true
      die "Mosquitto exited during start-up (log: $logf)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$logf" >&2 || true
      stop_server "$data" >/dev/null 2>&1 || true
      die "port $port did not answer MQTT within ${MOSQUITTO_START_TIMEOUT}s (log: $logf)"
    fi
    sleep 0.05
  done
  url=tcp://127.0.0.1:$port
  [ -z "$parent" ] || start_watcher "$data" "$parent"
  log "Mosquitto up at $url (pid $pid, data $data) in $(( $(now_ms) - t0 )) ms"
}

# start_watcher DATA PARENT: a detached loop that stops the broker on DATA
# once PARENT is gone (or the broker is). One watcher per data dir; it
# writes its own pid to DATA/watcher.pid, its parent to DATA/watcher.parent.
start_watcher() {
  local data=$1 parent=$2 bpid
  stop_watcher "$data"
  bpid=$(cat "$(pid_file "$data")")
  printf '%s\n' "$parent" >"$data/watcher.parent"
  # setsid: the watcher outlives this script and its terminal.
  # shellcheck disable=SC2016 # $0.. expand in the inner bash
  setsid bash -c '
    parent=$0 broker=$1 script=$2 data=$3
    echo $$ >"$data/watcher.pid.tmp" && mv -f "$data/watcher.pid.tmp" "$data/watcher.pid"
    up() { kill -0 "$1" 2>/dev/null && ! grep -q "^[0-9]* (.*) Z" "/proc/$1/stat" 2>/dev/null; }
    while up "$parent" && up "$broker"; do sleep 0.5; done
    if up "$broker"; then "$script" stop --data "$data" --from-watcher; fi
    if [ "$(cat "$data/watcher.pid" 2>/dev/null)" = $$ ]; then rm -f "$data/watcher.pid" "$data/watcher.parent"; fi
  ' "$parent" "$bpid" "$self" "$data" </dev/null >/dev/null 2>&1 &
  local deadline=$((SECONDS + 5))
  until [ -s "$(watcher_file "$data")" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the parent watcher did not start"
    sleep 0.02
  done
}

# The pid of the watcher of DATA, if it runs.
watcher_pid() {
  local data=$1 w
  w=$(cat "$(watcher_file "$data")" 2>/dev/null || true)
  case $w in ''|*[!0-9]*) return 1 ;; esac
  # Only our watcher: its command line names this script and data dir.
  tr '\0' ' ' <"/proc/$w/cmdline" 2>/dev/null | grep -qF -- "$self $data" || return 1
  printf '%s\n' "$w"
}

stop_watcher() {
  local data=$1 w
  if w=$(watcher_pid "$data"); then kill -TERM "$w" 2>/dev/null || true; fi
  rm -f "$(watcher_file "$data")" "$data/watcher.parent"
}

stop_server() {
  local data=$1 from_watcher=${2:-} pid
  [ -d "$data" ] || { log "not running ($data does not exist)"; return 0; }
  data=$(cd "$data" && pwd)
  [ -n "$from_watcher" ] || stop_watcher "$data"
  if ! pid=$(running_pid "$data"); then
    rm -f "$(pid_file "$data")"
    log "not running ($data)"
    return 0
  fi
  local t0
  t0=$(now_ms)
  # SIGTERM: Mosquitto closes its clients and saves mosquitto.db.
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + MOSQUITTO_STOP_TIMEOUT))
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "still running after ${MOSQUITTO_STOP_TIMEOUT}s: SIGKILL $pid"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || true
  rm -f "$(pid_file "$data")"
  log "stopped (pid $pid) in $(( $(now_ms) - t0 )) ms"
}

status_server() {
  local data=$1 pid
  if [ -d "$data" ] && data=$(cd "$data" && pwd) && pid=$(running_pid "$data"); then
    local p
    p=$(cat "$(port_file "$data")" 2>/dev/null || true)
    if [ -n "$p" ] && mqtt_answers "$p"; then
      echo "running: pid $pid, tcp://127.0.0.1:$p, data $data"
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
data='' port='' parent_pid='' from_watcher=''
while [ $# -gt 0 ]; do
  case $1 in
    --data) [ $# -ge 2 ] || die "--data needs a directory"; data=$2; shift 2 ;;
    --data=*) data=${1#*=}; shift ;;
    --port) [ $# -ge 2 ] || die "--port needs a number"; port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --parent-pid) [ $# -ge 2 ] || die "--parent-pid needs a pid"; parent_pid=$2; shift 2 ;;
    --parent-pid=*) parent_pid=${1#*=}; shift ;;
    --from-watcher) from_watcher=1; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) [ "$cmd" = run ] && break; die "unknown option $1 (see scripts/mosquitto.sh --help)" ;;
  esac
done
case $port in ''|*[!0-9]*) [ -z "$port" ] || die "--port wants a number, got $port" ;; esac
[ -z "$port" ] || [ "$port" -le 65535 ] || die "--port $port is out of range"
case $parent_pid in ''|*[!0-9]*) [ -z "$parent_pid" ] || die "--parent-pid wants a pid, got $parent_pid" ;; esac
[ -z "$parent_pid" ] || kill -0 "$parent_pid" 2>/dev/null || die "--parent-pid $parent_pid: no such process"

case $cmd in
  start)
    start_server "${data:-$default_data}" "$port" "$parent_pid"
    printf 'CITYHUB_MQTT_URL=%s\n' "$url"
    ;;
  stop) stop_server "${data:-$default_data}" "$from_watcher" ;;
  restart)
    d=${data:-$default_data}
    [ -d "$d" ] || die "restart: $d does not exist (start it first)"
    d=$(cd "$d" && pwd)
    p=$(cat "$(port_file "$d")" 2>/dev/null || true)
    case $p in ''|*[!0-9]*) die "restart: no port recorded in $(port_file "$d") (start it first)" ;; esac
    [ -z "$port" ] || [ "$port" = "$p" ] || die "restart keeps port $p; stop and start to change it"
    # Keep a watcher's parent unless a new one is given.
    if [ -z "$parent_pid" ] && watcher_pid "$d" >/dev/null; then
      parent_pid=$(cat "$d/watcher.parent" 2>/dev/null || true)
      case $parent_pid in ''|*[!0-9]*) parent_pid='' ;; esac
      [ -z "$parent_pid" ] || kill -0 "$parent_pid" 2>/dev/null || parent_pid=''
    fi
    t_restart=$(now_ms)
    stop_server "$d"
    # The old socket may linger a moment after the process is gone.
    deadline=$((SECONDS + MOSQUITTO_START_TIMEOUT))
    while port_busy "$p"; do
      [ "$SECONDS" -lt "$deadline" ] || die "port $p still busy after the broker stopped"
      sleep 0.05
    done
    start_server "$d" "$p" "$parent_pid"
    log "restarted in $(( $(now_ms) - t_restart )) ms"
    printf 'CITYHUB_MQTT_URL=%s\n' "$url"
    ;;
  status) status_server "${data:-$default_data}" ;;
  run)
    [ $# -gt 0 ] || die "run needs a command: scripts/mosquitto.sh run -- CMD [ARGS...]"
    tmp=
    if [ -z "$data" ]; then
      tmp=$(mktemp -d "${TMPDIR:-/tmp}/cityhub-mosquitto.XXXXXX")
      data=$tmp
    fi
    # shellcheck disable=SC2317 # called from the EXIT trap
    cleanup() {
      # A broker that was already running on --data DIR is left running.
      if [ -n "$started" ]; then stop_server "$data" || true; fi
      if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # --parent-pid: should this script be killed outright, the broker goes too.
    start_server "$data" "${port:-0}" "$$"
    export CITYHUB_MQTT_URL=$url
    status=0
    "$@" || status=$?
    exit "$status"
    ;;
  ''|-h|--help|help) usage ;;
  *) die "unknown command '$cmd' (start, stop, restart, status, run)" ;;
esac
