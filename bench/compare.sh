#!/usr/bin/env bash
# bench/compare.sh: cairn against the reference etcd, side by side, in one run.
#
# Starts the reference etcd and cairn on 127.0.0.1 with the same flags (first one member
# each, then three members each), runs the same `cairnctl bench` matrix against each, and
# prints a Markdown table of cairn/etcd ratios (throughput and p99 latency) followed by
# the exact command lines used. Each server gets ports of its own (from $BASE_PORT) and a
# fresh data directory under a temporary directory; only the processes this script
# started are stopped, by PID. Every benchmark run is bounded by $BENCH_TIMEOUT_SECS.
#
# Usage: bench/compare.sh [--no-build]
# Environment (all optional):
#   CAIRN, CAIRNCTL, ETCD   binaries (default: release builds in $CARGO_TARGET_DIR or
#                           target/, and etcd from PATH; etcd-server is installed with
#                           apt-get when missing)
#   SIZES="1 3"             cluster sizes to run
#   PUT1_TOTAL PUT_TOTAL RANGE_TOTAL TXN_TOTAL   requests per run (see defaults below)
#   BASE_PORT=23790         first port used; 12 ports from it
#   BENCH_TIMEOUT_SECS=120  limit for one benchmark run
#   KEEP_LOGS=1             keep the temporary directory (server logs, raw JSON)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CAIRN=${CAIRN:-$TARGET_DIR/release/cairn}
CAIRNCTL=${CAIRNCTL:-$TARGET_DIR/release/cairnctl}
SIZES=${SIZES:-"1 3"}
PUT1_TOTAL=${PUT1_TOTAL:-1000}
PUT_TOTAL=${PUT_TOTAL:-10000}
RANGE_TOTAL=${RANGE_TOTAL:-20000}
TXN_TOTAL=${TXN_TOTAL:-10000}
BASE_PORT=${BASE_PORT:-23790}
BENCH_TIMEOUT_SECS=${BENCH_TIMEOUT_SECS:-120}
START_TIMEOUT_SECS=30
TOKEN=cairn-compare

log() { printf '%s\n' "$*" >&2; }
die() { log "compare.sh: $*"; exit 1; }

# ---------------------------------------------------------------------------- tools
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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-compare.XXXXXX")
PIDS=()

stop_servers() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

cleanup() {
  stop_servers
  if [[ -n "${KEEP_LOGS:-}" ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------- servers
# start_cluster KIND SIZE: starts SIZE members of KIND (etcd|cairn) with identical flags;
# sets ENDPOINTS (comma separated client endpoints).
start_cluster() {
  local kind=$1 size=$2 binary i initial="" eps=()
  case $kind in
    etcd) binary=$ETCD ;;
    cairn) binary=$CAIRN ;;
  esac
  for ((i = 0; i < size; i++)); do
    initial+="${initial:+,}m$i=http://127.0.0.1:$((BASE_PORT + 2 * i + 1))"
  done
  for ((i = 0; i < size; i++)); do
    local client="http://127.0.0.1:$((BASE_PORT + 2 * i))"
    local peer="http://127.0.0.1:$((BASE_PORT + 2 * i + 1))"
    local dir="$WORK/$kind-$size-m$i"
    mkdir -p "$dir"
    "$binary" --name "m$i" --data-dir "$dir/data" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$initial" --initial-cluster-token "$TOKEN" \
      --initial-cluster-state new >"$dir/server.log" 2>&1 &
    PIDS+=($!)
    eps+=("127.0.0.1:$((BASE_PORT + 2 * i))")
  done
  ENDPOINTS=$(IFS=,; echo "${eps[*]}")
  local deadline=$((SECONDS + START_TIMEOUT_SECS))
  until "$CAIRNCTL" --endpoints "$ENDPOINTS" --command-timeout 2s put compare-probe ok >/dev/null 2>&1 &&
    "$CAIRNCTL" --endpoints "$ENDPOINTS" --command-timeout 2s endpoint health >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$kind ($size members) did not serve within ${START_TIMEOUT_SECS}s; logs in $WORK"
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------- matrix
# name|global bench flags|scenario and its flags
MATRIX=(
  "put, 1 client|--clients 1 --conns 1|put --total $PUT1_TOTAL --key-size 8 --val-size 256 --key-space-size 100000"
  "put, 64 clients|--clients 64 --conns 8|put --total $PUT_TOTAL --key-size 8 --val-size 256 --key-space-size 100000"
  "put, 256 clients|--clients 256 --conns 16|put --total $PUT_TOTAL --key-size 8 --val-size 256 --key-space-size 100000"
  "range linearizable, 64 clients|--clients 64 --conns 8|range compare-probe --consistency l --total $RANGE_TOTAL"
  "range serializable, 64 clients|--clients 64 --conns 8|range compare-probe --consistency s --total $RANGE_TOTAL"
  "txn-put, 64 clients|--clients 64 --conns 8|txn-put --total $TXN_TOTAL --key-size 8 --val-size 256 --key-space-size 100000"
)

COMMANDS=()
declare -A RPS P99 ERRS

# run_matrix KIND SIZE
run_matrix() {
  local kind=$1 size=$2 entry name flags scenario out
  for entry in "${MATRIX[@]}"; do
    IFS='|' read -r name flags scenario <<<"$entry"
    out="$WORK/$kind-$size-$(echo "$name" | tr -c 'a-z0-9' '-').json"
    # shellcheck disable=SC2086 # flags and scenario are word lists
    local cmd=("$CAIRNCTL" --endpoints "$ENDPOINTS" -w json bench $flags $scenario)
    COMMANDS+=("[$kind, $size member(s)] $(basename "$CAIRNCTL") --endpoints $ENDPOINTS -w json bench $flags $scenario")
    log "[$kind x$size] $name"
    if ! timeout "$BENCH_TIMEOUT_SECS" "${cmd[@]}" >"$out" 2>"$out.progress"; then
      log "  failed or timed out (see $out.progress)"
      RPS[$kind,$size,$name]=0; P99[$kind,$size,$name]=0; ERRS[$kind,$size,$name]="run failed"
      continue
    fi
    RPS[$kind,$size,$name]=$(jq '.reports[0].requests_per_sec' "$out")
    P99[$kind,$size,$name]=$(jq '[.reports[0].percentiles[] | select(.percentile == 99) | .secs][0]' "$out")
    ERRS[$kind,$size,$name]=$(jq '.reports[0].errors' "$out")
    log "  $(printf '%.0f' "${RPS[$kind,$size,$name]}") req/s, p99 $(awk -v s="${P99[$kind,$size,$name]}" 'BEGIN{printf "%.2f", s*1000}') ms"
  done
}

for size in $SIZES; do
  for kind in etcd cairn; do
    log "starting $kind with $size member(s)"
    start_cluster "$kind" "$size"
    run_matrix "$kind" "$size"
    stop_servers
  done
done

# ---------------------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }

echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r), data dirs on $(df -T "$WORK" | awk 'NR == 2 {print $2}')"
echo "Reference: $("$ETCD" --version | head -1); cairn: $("$CAIRN" --version | head -1)"
echo "All members of a cluster, the servers and the benchmark client share these cores."
echo
echo "| members | scenario | etcd req/s | cairn req/s | cairn/etcd throughput | etcd p99 ms | cairn p99 ms | cairn/etcd p99 | errors (etcd/cairn) |"
echo "|---|---|---|---|---|---|---|---|---|"
for size in $SIZES; do
  for entry in "${MATRIX[@]}"; do
    IFS='|' read -r name _ _ <<<"$entry"
    e="etcd,$size,$name" c="cairn,$size,$name"
    printf '| %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s/%s |\n' "$size" "$name" \
      "${RPS[$e]}" "${RPS[$c]}" "$(ratio "${RPS[$c]}" "${RPS[$e]}")" \
      "$(ms "${P99[$e]}")" "$(ms "${P99[$c]}")" "$(ratio "${P99[$c]}" "${P99[$e]}")" \
      "${ERRS[$e]}" "${ERRS[$c]}"
  done
done
echo
echo "Throughput ratio > 1: cairn is faster. p99 ratio < 1: cairn's tail latency is lower."
echo
echo "Server flags (both): --name mN --data-dir DIR --listen-client-urls URL --advertise-client-urls URL"
echo "  --listen-peer-urls URL --initial-advertise-peer-urls URL --initial-cluster m0=...[,m1=...,m2=...]"
echo "  --initial-cluster-token $TOKEN --initial-cluster-state new"
echo
echo "Commands:"
for cmd in "${COMMANDS[@]}"; do echo "  $cmd"; done
