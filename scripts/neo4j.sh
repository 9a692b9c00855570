#!/usr/bin/env bash
# Runs a local Neo4j Community 5.26 (embedded, Bolt on a loopback address) for
# cityhub's tests and for `cityhub serve` during development. No Docker and no
# download site: scripts/neo4j/ is a tiny Maven project whose jars come from
# Maven Central. It is built on first use into a cache directory keyed by its
# sources and the JVM, so later runs, checkouts and clones reuse the build.
#
#   scripts/neo4j.sh start [--data DIR] [--port N] [--password PW] [--parent-pid PID]
#       Start in the background (default data dir: data/neo4j, port 7687; port 0
#       picks a free port; with --parent-pid it stops by itself within about a
#       second once process PID is gone), wait until Bolt answers, print
#       CITYHUB_NEO4J_URI=bolt://127.0.0.1:PORT on stdout, e.g.
#       `export $(scripts/neo4j.sh start)`. Starting one that already runs on
#       DIR just prints its URI again.
#   scripts/neo4j.sh stop [--data DIR]      SIGTERM, then SIGKILL after a timeout.
#   scripts/neo4j.sh status [--data DIR]    exit 0 when running, 3 when not.
#   scripts/neo4j.sh run [--data DIR] [--port N] [--password PW] -- CMD [ARGS...]
#       Start one (default: fresh temp data dir, free port), run CMD with
#       CITYHUB_NEO4J_URI exported, stop it (unless it was already running on
#       --data DIR), exit with CMD's status.
#   scripts/neo4j.sh build                  Rebuild the launcher now.
#
# Auth is off unless --password (or $CITYHUB_NEO4J_PASSWORD) is given; then the
# user is neo4j, and CITYHUB_NEO4J_USER / CITYHUB_NEO4J_PASSWORD are printed and
# exported too. The database is Neo4j's default one, "neo4j". Files in the data
# dir: neo4j.pid, uri, neo4j.log (launcher output), logs/debug.log (Neo4j's).
#
# Environment: NEO4J_JAVA_OPTS (JVM options, default below), JAVA_HOME,
# NEO4J_PAGECACHE (default 256m), NEO4J_START_TIMEOUT (s, default 120),
# NEO4J_STOP_TIMEOUT (s, default 30), NEO4J_CDS=0 (no class-data-sharing
# archive), CITYHUB_NEO4J_CACHE (build cache, default ~/.cache/cityhub/neo4j-launcher).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
launcher_dir=$here/neo4j
default_data=$root/data/neo4j

: "${NEO4J_JAVA_OPTS:=-Xms256m -Xmx1g -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -XX:+ExitOnOutOfMemoryError -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.disable.jmx=true}"
: "${NEO4J_PAGECACHE:=256m}"
: "${NEO4J_START_TIMEOUT:=120}"
: "${NEO4J_STOP_TIMEOUT:=30}"
: "${NEO4J_CDS:=1}"
: "${CITYHUB_NEO4J_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/cityhub/neo4j-launcher}"

log() { printf 'neo4j.sh: %s\n' "$*" >&2; }
die() { printf 'neo4j.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# Sets $java to a Java 17+ binary.
java=
find_java() {
  [ -z "$java" ] || return 0
  local j
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then j=$JAVA_HOME/bin/java
  else j=$(command -v java) || die "java not found: install a JDK 17 or 21 (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
  fi
  local v major
  v=$("$j" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1)
  major=${v%%.*}
  case $major in
    ''|*[!0-9]*) die "cannot tell the version of $j" ;;
  esac
  [ "$major" -ge 17 ] || die "$j is Java $v; Neo4j 5.26 needs Java 17 or 21"
  [ "$major" -le 21 ] || log "warning: $j is Java $v; Neo4j 5.26 supports Java 17 and 21 (set JAVA_HOME)"
  java=$j
}

# Sets $build_dir, $jar and $jsa: where the launcher for these sources and this
# JVM lives (the CDS archive is only valid for the JVM that wrote it).
build_dir='' jar='' jsa=''
locate_build() {
  find_java
  local key
  key=$(
    cd "$launcher_dir"
    find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    readlink -f "$java"
    "$java" -version 2>&1
    echo "layout=1"
  ) || die "cannot read the launcher sources in $launcher_dir"
  key=$(printf '%s' "$key" | sha256sum | cut -c1-16)
  build_dir=$CITYHUB_NEO4J_CACHE/$key
  jar=$build_dir/neo4j-launcher.jar
  jsa=$build_dir/neo4j-launcher.jsa
}

# Builds the launcher unless the cache has it; then, unless NEO4J_CDS=0, trains
# a class-data-sharing archive for it (about a third less CPU at start-up:
# Neo4j loads some 12,000 classes).
build() {
  local force=${1:-}
  locate_build
  needs_work() {
    [ -f "$build_dir/.complete" ] || return 0
    [ "$NEO4J_CDS" != 0 ] && [ ! -f "$jsa" ] && [ ! -f "$build_dir/.cds-failed" ]
  }
  if [ -z "$force" ] && ! needs_work; then
    touch "$build_dir/.complete" # keeps it from being pruned
    return 0
  fi
  mkdir -p "$CITYHUB_NEO4J_CACHE"
  # One build at a time: parallel runs wait for it, then use it.
  exec 9>"$CITYHUB_NEO4J_CACHE/.lock"
  if command -v flock >/dev/null; then flock 9; fi
  local t0
  if [ -n "$force" ] || [ ! -f "$build_dir/.complete" ]; then
    command -v mvn >/dev/null || die "mvn not found: install Maven 3.8+ (Debian: apt-get install maven)"
    rm -rf "$build_dir"
    mkdir -p "$build_dir"
    log "building the Neo4j launcher into $build_dir (a machine's first build fetches ~120 MB of jars from Maven Central)"
    t0=$SECONDS
    if ! mvn -q -B -Dstyle.color=never -f "$launcher_dir/pom.xml" -Dlauncher.buildDir="$build_dir" \
        package >"$build_dir/build.log" 2>&1; then
      grep -v '^\s*$' "$build_dir/build.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -n 40 >&2
      die "building the Neo4j launcher failed (full log: $build_dir/build.log)"
    fi
    [ -f "$jar" ] || die "the build left no $jar"
    rm -rf "$build_dir/classes" "$build_dir/generated-sources" "$build_dir/maven-status" "$build_dir/maven-archiver"
    touch "$build_dir/.complete"
    log "built the launcher in $((SECONDS - t0))s"
    # Drop builds (of other sources or JVMs) unused for two weeks.
    local old
    find "$CITYHUB_NEO4J_CACHE" -mindepth 2 -maxdepth 2 -name .complete -mtime +14 2>/dev/null |
      while IFS= read -r old; do rm -rf "${old%/.complete}"; done
  fi
  if [ "$NEO4J_CDS" != 0 ] && [ ! -f "$jsa" ] && [ ! -f "$build_dir/.cds-failed" ]; then
    t0=$SECONDS
    log "training a class-data-sharing archive for faster start-ups (once per build; NEO4J_CDS=0 skips it)"
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/cityhub-neo4j-train.XXXXXX")
    # The archive records the jars' paths: train where the jar will run from.
    # shellcheck disable=SC2086 # NEO4J_JAVA_OPTS is a list of words
    if timeout 300 "$java" -XX:ArchiveClassesAtExit="$jsa.tmp" -Xlog:cds=off -Xlog:cds+dynamic=off \
        $NEO4J_JAVA_OPTS -jar "$jar" --data "$tmp" --listen 127.0.0.1:0 --no-auth --train \
        --delete-data-on-exit --parent-pid $$ >"$build_dir/train.log" 2>&1 && [ -s "$jsa.tmp" ]; then
      mv -f "$jsa.tmp" "$jsa"
      log "trained it in $((SECONDS - t0))s"
    else
      rm -f "$jsa.tmp"
      touch "$build_dir/.cds-failed"
      log "warning: no class-data-sharing archive (see $build_dir/train.log); starting without it"
    fi
    rm -rf "$tmp"
  fi
  exec 9>&-
}

# Files kept in the data dir.
pid_file() { printf '%s/neo4j.pid' "$1"; }
uri_file() { printf '%s/uri' "$1"; }
log_file() { printf '%s/neo4j.log' "$1"; }

# The pid of the launcher that owns DIR, if it runs.
running_pid() {
  local data=$1 pid
  [ -f "$(pid_file "$data")" ] || return 1
  pid=$(cat "$(pid_file "$data")" 2>/dev/null) || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must be our launcher on this data dir.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "neo4j-launcher.jar --data $data " || return 1
  printf '%s\n' "$pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A Bolt handshake (magic 6060B017, versions 5.4..5.0 and 4.4..4.2): true when
# the server picks a version.
bolt_answers() {
  local host=$1 port=$2 reply
  # shellcheck disable=SC2016 # $0 and $1 expand in the inner bash
  reply=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "\x60\x60\xb0\x17\x00\x04\x04\x05\x00\x02\x04\x04\x00\x00\x00\x00\x00\x00\x00\x00" >&3
    head -c 4 <&3 | od -An -tx1' "$host" "$port" 2>/dev/null) || return 1
  reply=${reply//[[:space:]]/}
  [ "${#reply}" -eq 8 ] && [ "$reply" != 00000000 ]
}

print_env() {
  local uri=$1 password=$2
  printf 'CITYHUB_NEO4J_URI=%s\n' "$uri"
  if [ -n "$password" ]; then
    printf 'CITYHUB_NEO4J_USER=neo4j\n'
    printf 'CITYHUB_NEO4J_PASSWORD=%q\n' "$password"
  fi
}

# start_server DATA PORT PASSWORD [PARENT_PID [TEMP]]: start (or find) the
# server; sets $uri, and $started when this call started it. With PARENT_PID
# the server stops when that process dies; with TEMP it then also deletes DATA.
uri='' started=''
start_server() {
  local data=$1 port=$2 password=$3 parent=${4:-} temp=${5:-}
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  local pid
  if pid=$(running_pid "$data"); then
    uri=$(cat "$(uri_file "$data")" 2>/dev/null || true)
    if [ -n "$uri" ] && bolt_answers 127.0.0.1 "${uri##*:}"; then
      if [ "$port" != 0 ] && [ "$port" != "${uri##*:}" ]; then
        die "Neo4j on $data already runs at $uri (pid $pid), not on port $port: stop it first"
      fi
      log "already running (pid $pid) at $uri"
      return 0
    fi
    die "a launcher (pid $pid) holds $data but Bolt does not answer: scripts/neo4j.sh stop --data $data"
  fi
  rm -f "$(pid_file "$data")" "$(uri_file "$data")"

  build
  if [ "$port" != 0 ] && port_busy "$port"; then
    die "port $port on 127.0.0.1 is busy (another Neo4j?): use --port N, or --port 0 for a free one"
  fi

  local logf
  logf=$(log_file "$data")
  [ ! -f "$logf" ] || mv -f "$logf" "$logf.1"
  local args=(--data "$data" --listen "127.0.0.1:$port" --pagecache "$NEO4J_PAGECACHE"
              --ready-file "$(uri_file "$data")")
  # The password goes through the environment, not the command line (ps).
  [ -n "$password" ] || args+=(--no-auth)
  [ -z "$parent" ] || args+=(--parent-pid "$parent")
  [ -z "$temp" ] || args+=(--delete-data-on-exit)
  local cds=()
  if [ "$NEO4J_CDS" != 0 ] && [ -f "$jsa" ]; then
    # An archive that does not match this JVM or these jars is ignored (-Xshare:auto).
    cds=(-XX:SharedArchiveFile="$jsa" -Xlog:cds=off -Xlog:cds+dynamic=off)
  fi
  local t0
  t0=$(date +%s%N)
  # shellcheck disable=SC2086 # NEO4J_JAVA_OPTS is a list of words
  CITYHUB_NEO4J_PASSWORD=$password nohup "$java" "${cds[@]}" $NEO4J_JAVA_OPTS -jar "$jar" "${args[@]}" \
    </dev/null >"$logf" 2>&1 &
  pid=$!
  started=1
  printf '%s\n' "$pid" >"$(pid_file "$data")"

  local deadline=$((SECONDS + NEO4J_START_TIMEOUT))
  uri=
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      rm -f "$(pid_file "$data")"
      grep -m1 '^neo4j-launcher: failed' "$logf" >&2 || tail -n 30 "$logf" >&2 || true
      die "Neo4j exited during start-up (log: $logf, debug log: $data/logs/debug.log)"
    fi
    if [ -s "$(uri_file "$data")" ] && grep -q '^bolt ready on ' "$logf"; then
      uri=$(cat "$(uri_file "$data")")
      bolt_answers 127.0.0.1 "${uri##*:}" && break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$logf" >&2 || true
      stop_server "$data" >/dev/null 2>&1 || true
      die "Bolt did not answer within ${NEO4J_START_TIMEOUT}s (log: $logf)"
    fi
    sleep 0.1
  done
  log "Neo4j up at $uri (pid $pid, data $data) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

stop_server() {
  local data=$1 pid
  [ -d "$data" ] || { log "not running ($data does not exist)"; return 0; }
  data=$(cd "$data" && pwd)
  if ! pid=$(running_pid "$data"); then
    rm -f "$(pid_file "$data")" "$(uri_file "$data")"
    log "not running ($data)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + NEO4J_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "still running after ${NEO4J_STOP_TIMEOUT}s: SIGKILL $pid"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
  rm -f "$(pid_file "$data")" "$(uri_file "$data")"
  log "stopped (pid $pid)"
}

status_server() {
  local data=$1 pid
  if [ -d "$data" ] && data=$(cd "$data" && pwd) && pid=$(running_pid "$data"); then
    local u
    u=$(cat "$(uri_file "$data")" 2>/dev/null || true)
    if [ -n "$u" ] && bolt_answers 127.0.0.1 "${u##*:}"; then
      echo "running: pid $pid, $u, data $data"
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
data='' port='' parent_pid='' password=${CITYHUB_NEO4J_PASSWORD:-}
while [ $# -gt 0 ]; do
  case $1 in
    --data) [ $# -ge 2 ] || die "--data needs a directory"; data=$2; shift 2 ;;
    --data=*) data=${1#*=}; shift ;;
    --port) [ $# -ge 2 ] || die "--port needs a number"; port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --password) [ $# -ge 2 ] || die "--password needs a value"; password=$2; shift 2 ;;
    --password=*) password=${1#*=}; shift ;;
    --no-auth) password=; shift ;;
    --parent-pid) [ $# -ge 2 ] || die "--parent-pid needs a pid"; parent_pid=$2; shift 2 ;;
    --parent-pid=*) parent_pid=${1#*=}; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) [ "$cmd" = run ] && break; die "unknown option $1 (see scripts/neo4j.sh --help)" ;;
  esac
done
case $port in ''|*[!0-9]*) [ -z "$port" ] || die "--port wants a number, got $port" ;; esac
[ -z "$port" ] || [ "$port" -le 65535 ] || die "--port $port is out of range"
case $parent_pid in ''|*[!0-9]*) [ -z "$parent_pid" ] || die "--parent-pid wants a pid, got $parent_pid" ;; esac
[ -z "$parent_pid" ] || kill -0 "$parent_pid" 2>/dev/null || die "--parent-pid $parent_pid: no such process"

case $cmd in
  start)
    start_server "${data:-$default_data}" "${port:-7687}" "$password" "$parent_pid"
    print_env "$uri" "$password"
    ;;
  stop) stop_server "${data:-$default_data}" ;;
  status) status_server "${data:-$default_data}" ;;
  build)
    build force
    log "launcher: $jar"
    ;;
  run)
    [ $# -gt 0 ] || die "run needs a command: scripts/neo4j.sh run -- CMD [ARGS...]"
    tmp=
    if [ -z "$data" ]; then
      tmp=$(mktemp -d "${TMPDIR:-/tmp}/cityhub-neo4j.XXXXXX")
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
    # --parent-pid: should this script be killed outright, Neo4j goes too.
    start_server "$data" "${port:-0}" "$password" "$$" "$tmp"
    export CITYHUB_NEO4J_URI=$uri
    if [ -n "$password" ]; then
      export CITYHUB_NEO4J_USER=neo4j CITYHUB_NEO4J_PASSWORD=$password
    fi
    status=0
    "$@" || status=$?
    exit "$status"
    ;;
  ''|-h|--help|help) usage ;;
  *) die "unknown command '$cmd' (start, stop, status, run, build)" ;;
esac
