# shellcheck shell=bash
# bench/servers.sh: starting and stopping the servers the bench/*.sh scripts compare.
#
# Sourced (not run) by compare.sh, datascale.sh and failover.sh after their `set -euo
# pipefail`. It finds the binaries (building cairn unless --no-build, installing etcd with
# apt-get when missing), makes a temporary directory $WORK, starts members of etcd or cairn
# with identical flags, and on exit stops exactly the processes it started, by PID, and
# removes $WORK (unless KEEP_LOGS is set).
#
# Environment shared by every script (all optional):
#   CAIRN, CAIRNCTL, ETCD   binaries (default: release builds in $CARGO_TARGET_DIR or
#                           target/, and etcd from PATH)
#   BASE_PORT               first port; member i listens on BASE_PORT+2i (client) and
#                           BASE_PORT+2i+1 (peer)
#   KEEP_LOGS=1             keep the temporary directory (server logs, raw reports)
#   BENCH_EMBEDDED=1        omit the machine description (set by compare.sh --all, which
#                           prints it once)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=$(basename "$0")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CAIRN=${CAIRN:-$TARGET_DIR/release/cairn}
CAIRNCTL=${CAIRNCTL:-$TARGET_DIR/release/cairnctl}
START_TIMEOUT_SECS=${START_TIMEOUT_SECS:-30}
STOP_TIMEOUT_SECS=${STOP_TIMEOUT_SECS:-60}
# $EPOCHREALTIME and awk's numbers must use a decimal point.
export LC_ALL=C

log() { printf '%s\n' "$*" >&2; }
die() {
  log "$SCRIPT: $*"
  exit 1
}

# setup_tools [--no-build]: checks (or builds) cairn and cairnctl, finds etcd and jq, and
# makes $WORK.
setup_tools() {
  if [[ "${1:-}" != "--no-build" ]]; then
    log "building cairn and cairnctl (release)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --bin cairn --bin cairnctl >&2)
  fi
  [[ -x "$CAIRN" ]] || die "no cairn binary at $CAIRN"
  [[ -x "$CAIRNCTL" ]] || die "no cairnctl binary at $CAIRNCTL"
  if [[ -z "${ETCD:-}" ]]; then
    if ! command -v etcd >/dev/null; then
      log "installing the reference etcd (Debian etcd-server)"
      apt-get install -y etcd-server >&2 || die "etcd is not installed and apt-get install etcd-server failed"
    fi
    ETCD=$(command -v etcd)
  fi
  command -v jq >/dev/null || die "jq is needed to read the JSON reports (apt-get install jq)"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-${SCRIPT%.sh}.XXXXXX")
}

WORK=""
# PIDs of the servers started and not yet reaped (a reaped PID is dropped at once, so a
# PID the kernel reuses for someone else's process is never signalled).
PIDS=()
# Other background processes of the script (e.g. a load generator), stopped on exit.
HELPERS=()

# forget_pid PID: drops a reaped PID from PIDS.
forget_pid() {
  local keep=() pid
  for pid in "${PIDS[@]}"; do [[ "$pid" == "$1" ]] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

# stop_pid PID: SIGTERM, wait up to STOP_TIMEOUT_SECS, then SIGKILL; reaps and forgets it.
# Returns 1 when it had to be killed.
stop_pid() {
  local pid=$1 clean=0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((STOP_TIMEOUT_SECS * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    clean=1
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
  return $clean
}

# stop_servers: stops every server still running (SIGTERM to all first, so they stop in
# parallel).
stop_servers() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do stop_pid "$pid" || true; done
  PIDS=()
}

cleanup() {
  local pid
  for pid in "${HELPERS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  stop_servers
  if [[ -z "$WORK" ]]; then return; fi
  if [[ -n "${KEEP_LOGS:-}" ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# client_endpoint I / peer_url I: addresses of member I.
client_endpoint() { echo "127.0.0.1:$((BASE_PORT + 2 * $1))"; }
peer_url() { echo "http://127.0.0.1:$((BASE_PORT + 2 * $1 + 1))"; }

# initial_cluster SIZE: the --initial-cluster value for members m0..m(SIZE-1).
initial_cluster() {
  local i initial=""
  for ((i = 0; i < $1; i++)); do initial+="${initial:+,}m$i=$(peer_url "$i")"; done
  echo "$initial"
}

# endpoints SIZE [EXCEPT]: comma-separated client endpoints of the members, without
# member EXCEPT.
endpoints() {
  local i eps=()
  for ((i = 0; i < $1; i++)); do
    [[ "$i" == "${2:-}" ]] || eps+=("$(client_endpoint "$i")")
  done
  (IFS=,; echo "${eps[*]}")
}

# server_command KIND I SIZE [FLAG...]: sets SERVER_CMD to the command line of member I of
# a SIZE-member cluster of KIND (etcd|cairn), its data under $WORK/KIND-SIZE-mI. Both
# kinds get exactly the same flags. Started again on the same data directory, the same
# command restarts the member (an existing data directory wins over --initial-cluster*).
server_command() {
  local kind=$1 i=$2 size=$3 binary
  shift 3
  case $kind in
    etcd) binary=$ETCD ;;
    cairn) binary=$CAIRN ;;
    *) die "unknown server kind $kind" ;;
  esac
  local client peer
  client="http://$(client_endpoint "$i")"
  peer=$(peer_url "$i")
  SERVER_DIR="$WORK/$kind-$size-m$i"
  SERVER_CMD=("$binary" --name "m$i" --data-dir "$SERVER_DIR/data"
    --listen-client-urls "$client" --advertise-client-urls "$client"
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer"
    --initial-cluster "$(initial_cluster "$size")" --initial-cluster-token "$TOKEN"
    --initial-cluster-state new "$@")
}

# start_member KIND I SIZE [FLAG...]: starts member I (see server_command); its PID is
# added to PIDS and left in SERVER_PID, its log appended to $SERVER_DIR/server.log.
start_member() {
  server_command "$@"
  mkdir -p "$SERVER_DIR"
  "${SERVER_CMD[@]}" >>"$SERVER_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
}

# wait_serving ENDPOINTS WHAT: waits (at most START_TIMEOUT_SECS) until a put through
# ENDPOINTS succeeds and every endpoint reports healthy.
wait_serving() {
  local deadline=$((SECONDS + START_TIMEOUT_SECS))
  until "$CAIRNCTL" --endpoints "$1" --command-timeout 2s put bench-probe ok >/dev/null 2>&1 &&
    "$CAIRNCTL" --endpoints "$1" --command-timeout 2s endpoint health >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$2 did not serve within ${START_TIMEOUT_SECS}s; logs in $WORK"
    sleep 0.2
  done
}

# rss_kib PID: the resident set size of PID, in KiB (VmRSS).
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ratio A B: A/B with two decimals, "n/a" when either is not a number or B is not positive.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    number = "^[0-9.]+([eE][-+]?[0-9]+)?$"
    if (a ~ number && b ~ number && b > 0) printf "%.2f", a / b; else print "n/a"
  }'
}

# meets RATIO OP LIMIT: "yes" or "no" (OP is >= or <=), "n/a" without a ratio.
meets() {
  awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
    if (r == "n/a") { print "n/a"; exit }
    ok = (op == ">=") ? (r + 0 >= t + 0) : (r + 0 <= t + 0)
    print ok ? "yes" : "no"
  }'
}

# target_text OP LIMIT: "≥ 1.5×" or "≤ 1×".
target_text() {
  case $1 in
    ">=") echo "≥ $2×" ;;
    "<=") echo "≤ $2×" ;;
  esac
}

# print_machine: where the figures were measured (skipped when BENCH_EMBEDDED is set).
print_machine() {
  [[ -z "${BENCH_EMBEDDED:-}" ]] || return 0
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r), data dirs on $(df -T "$WORK" | awk 'NR == 2 {print $2}')"
  # sed reads every line: `head -1` would close the pipe early, and cairn panics on EPIPE.
  echo "Reference: $("$ETCD" --version | sed -n 1p); cairn: $("$CAIRN" --version | sed -n 1p)"
  echo "The servers and the benchmark client share these cores."
  echo
}
