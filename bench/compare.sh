#!/usr/bin/env bash
# bench/compare.sh: cairn against the reference etcd, side by side, in one run.
#
# Starts the reference etcd and cairn on 127.0.0.1 with the same flags (first one member
# each, then three members each; both clusters run side by side on ports of their own),
# runs the same `cairnctl bench` matrix against each, and prints a Markdown table of
# cairn/etcd ratios (throughput, p50 and p99 latency) with issue 12's target next to the
# rows it names, followed by the exact command lines used. Each row is run REPEAT times,
# alternating etcd and cairn (etcd first in odd repeats, cairn first in even ones), and
# each figure is the median of its repeats: on a shared machine the speed drifts by tens
# of percent within minutes, and one matrix per server a minute apart measured that drift
# as much as the servers.
# With --all it also runs bench/datascale.sh (a million keys: memory, disk, restart time)
# and bench/failover.sh (leader SIGKILL -> next acknowledged put) and appends their
# tables, so that one command regenerates the whole comparison of BENCHMARKS.md.
# Each server gets ports of its own (from $BASE_PORT) and a fresh data directory under a
# temporary directory; only the processes this script started are stopped, by PID. Every
# benchmark run is bounded by $BENCH_TIMEOUT_SECS.
#
# Usage: bench/compare.sh [--no-build] [--all]
# Environment (all optional; see also bench/servers.sh):
#   SIZES="1 3"             cluster sizes to run
#   PUT1_TOTAL PUT_TOTAL RANGE_TOTAL TXN_TOTAL WATCH_PUT_TOTAL   requests per run (see
#                           defaults below)
#   REPEAT=3                runs of each row per server (the median is reported)
#   SETTLE_SECS=1           pause before each run (background work of the previous one,
#                           e.g. flushes, ends first)
#   BASE_PORT=23790         first port used: six from it for etcd, six from BASE_PORT+6
#                           for cairn, and with --all two from BASE_PORT+10
#                           (datascale.sh, after the matrix) and six from BASE_PORT+20
#                           (failover.sh)
#   BENCH_TIMEOUT_SECS=120  limit for one benchmark run
#   BENCH_ALL=1             same as --all
#   ROWS=REGEX              run only the matrix rows whose scenario name matches the
#                           extended regular expression (e.g. ROWS='watch|range lin')
#   KEYS, ROUNDS, ...       passed on to datascale.sh and failover.sh (see their headers)
set -euo pipefail

SIZES=${SIZES:-"1 3"}
PUT1_TOTAL=${PUT1_TOTAL:-1000}
PUT_TOTAL=${PUT_TOTAL:-10000}
RANGE_TOTAL=${RANGE_TOTAL:-20000}
TXN_TOTAL=${TXN_TOTAL:-10000}
WATCH_PUT_TOTAL=${WATCH_PUT_TOTAL:-2000}
REPEAT=${REPEAT:-3}
SETTLE_SECS=${SETTLE_SECS:-1}
BASE_PORT=${BASE_PORT:-23790}
BENCH_TIMEOUT_SECS=${BENCH_TIMEOUT_SECS:-120}
ROWS=${ROWS:-}
TOKEN=cairn-compare

# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"

BUILD="" ALL=${BENCH_ALL:-}
for arg in "$@"; do
  case $arg in
    --no-build) BUILD=--no-build ;;
    --all) ALL=1 ;;
    *) die "usage: bench/compare.sh [--no-build] [--all]" ;;
  esac
done
setup_tools "$BUILD"

# Ports of each kind's members: etcd from BASE_PORT, cairn six ports above.
declare -A PORT_BASE=([etcd]=$BASE_PORT [cairn]=$((BASE_PORT + 6)))
declare -A ENDPOINTS

# start_cluster KIND SIZE: starts SIZE members of KIND (etcd|cairn) with identical flags
# on the kind's ports; sets ENDPOINTS[KIND] (comma separated client endpoints).
start_cluster() {
  local kind=$1 size=$2 i
  local BASE_PORT=${PORT_BASE[$kind]}
  for ((i = 0; i < size; i++)); do start_member "$kind" "$i" "$size"; done
  ENDPOINTS[$kind]=$(endpoints "$size")
  wait_serving "${ENDPOINTS[$kind]}" "$kind ($size members)"
}

# ---------------------------------------------------------------------------- matrix
# name|cluster sizes|global bench flags|scenario and its flags|report read (default: the
# first). The watch scenario's second report, "watch events", counts events received.
MATRIX=(
  "put, 1 client|1 3|--clients 1 --conns 1|put --total $PUT1_TOTAL --key-size 8 --val-size 256 --key-space-size 100000|"
  "put, 64 clients|1 3|--clients 64 --conns 8|put --total $PUT_TOTAL --key-size 8 --val-size 256 --key-space-size 100000|"
  "put, 256 clients|1 3|--clients 256 --conns 16|put --total $PUT_TOTAL --key-size 8 --val-size 256 --key-space-size 100000|"
  "range linearizable, 64 clients|1 3|--clients 64 --conns 8|range bench-probe --consistency l --total $RANGE_TOTAL|"
  "range serializable, 64 clients|1 3|--clients 64 --conns 8|range bench-probe --consistency s --total $RANGE_TOTAL|"
  "txn-put, 64 clients|1 3|--clients 64 --conns 8|txn-put --total $TXN_TOTAL --key-size 8 --val-size 256 --key-space-size 100000|"
  "watch fan-out, 100 watchers (events/s)|3|--clients 8 --conns 4|watch --streams 10 --watch-per-stream 10 --key-space-size 1 --put-total $WATCH_PUT_TOTAL|watch events"
)

# Issue 12's targets, by "members|scenario": space-separated clauses METRIC OP LIMIT on the
# cairn/etcd ratios (rps: throughput, p50 and p99: latency).
declare -A TARGETS=(
  ["3|put, 256 clients"]="rps>=1.5 p99<=1"
  ["3|range linearizable, 64 clients"]="rps>=2"
  ["1|put, 1 client"]="p50<=1"
  ["3|txn-put, 64 clients"]="rps>=1.5"
  ["3|watch fan-out, 100 watchers (events/s)"]="rps>=1.5"
)

COMMANDS=()
declare -A RPS P50 P99 ERRS

# runs_on SIZE SIZES NAME: whether the row NAME runs with SIZE members: SIZE is one of
# its space-separated SIZES and NAME matches $ROWS (when set).
runs_on() { [[ " $2 " == *" $1 "* ]] && [[ -z "$ROWS" || "$3" =~ $ROWS ]]; }

# run_row KIND SIZE ENTRY REP: one run of a matrix row; its figures go to
# RPS/P50/P99/ERRS[KIND,SIZE,NAME,REP].
run_row() {
  local kind=$1 size=$2 entry=$3 rep=$4 name sizes flags scenario report out args
  IFS='|' read -r name sizes flags scenario report <<<"$entry"
  local key="$kind,$size,$name,$rep" endpoints=${ENDPOINTS[$kind]}
  out="$WORK/$kind-$size-$(echo "$name" | tr -c 'a-z0-9' '-')-$rep.json"
  read -ra args <<<"$flags $scenario"
  local cmd=("$CAIRNCTL" --endpoints "$endpoints" -w json bench "${args[@]}")
  [[ "$rep" != 1 ]] || COMMANDS+=("[$kind, $size member(s)] $(basename "$CAIRNCTL") --endpoints $endpoints -w json bench $flags $scenario")
  log "[$kind x$size, run $rep/$REPEAT] $name"
  sleep "$SETTLE_SECS"
  if ! timeout "$BENCH_TIMEOUT_SECS" "${cmd[@]}" >"$out" 2>"$out.progress"; then
    log "  failed or timed out (see $out.progress)"
    RPS[$key]=0 P50[$key]=0 P99[$key]=0 ERRS[$key]="run failed"
    return
  fi
  local select='.reports[0]'
  [[ -z "$report" ]] || select="[.reports[] | select(.name == \"$report\")][0]"
  RPS[$key]=$(jq "$select.requests_per_sec // 0" "$out")
  P50[$key]=$(jq "[$select.percentiles[] | select(.percentile == 50) | .secs][0] // 0" "$out")
  P99[$key]=$(jq "[$select.percentiles[] | select(.percentile == 99) | .secs][0] // 0" "$out")
  ERRS[$key]=$(jq "$select.errors // 0" "$out")
  log "  $(printf '%.0f' "${RPS[$key]}") /s, p50 $(ms "${P50[$key]}") ms, p99 $(ms "${P99[$key]}") ms"
}

# median VALUE...: the median (the upper one of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'; }

# summarize KIND SIZE NAME: the medians of the repeats into RPS/P50/P99[KIND,SIZE,NAME],
# and the errors of all repeats (summed; "run failed" if any run failed).
summarize() {
  local base="$1,$2,$3" rep runs_rps=() runs_p50=() runs_p99=() errs=0 failed=""
  for ((rep = 1; rep <= REPEAT; rep++)); do
    runs_rps+=("${RPS[$base,$rep]}") runs_p50+=("${P50[$base,$rep]}") runs_p99+=("${P99[$base,$rep]}")
    if [[ "${ERRS[$base,$rep]}" == "run failed" ]]; then failed=1; else errs=$((errs + ERRS[$base,$rep])); fi
  done
  RPS[$base]=$(median "${runs_rps[@]}") P50[$base]=$(median "${runs_p50[@]}") P99[$base]=$(median "${runs_p99[@]}")
  ERRS[$base]=${failed:+run failed}
  [[ -n "$failed" ]] || ERRS[$base]=$errs
}

ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }

# target_cells KEY RPS-RATIO P50-RATIO P99-RATIO: the "target" and "met" cells of a row.
target_cells() {
  local clauses=${TARGETS[$1]:-} clause metric op limit value text="" met=yes
  if [[ -z "$clauses" ]]; then
    printf '— | '
    return
  fi
  for clause in $clauses; do
    [[ "$clause" =~ ^([a-z0-9]+)(>=|<=)([0-9.]+)$ ]] || die "bad target clause $clause"
    metric=${BASH_REMATCH[1]} op=${BASH_REMATCH[2]} limit=${BASH_REMATCH[3]}
    case $metric in
      rps) value=$2 text+="${text:+, }throughput " ;;
      p50) value=$3 text+="${text:+, }p50 " ;;
      p99) value=$4 text+="${text:+, }p99 " ;;
      *) die "bad target metric $metric" ;;
    esac
    text+=$(target_text "$op" "$limit")
    case $(meets "$value" "$op" "$limit") in
      yes) ;;
      no) met=no ;;
      *) [[ "$met" == no ]] || met=n/a ;;
    esac
  done
  printf '%s | %s' "$text" "$met"
}

for size in $SIZES; do
  for kind in etcd cairn; do
    log "starting $kind with $size member(s)"
    start_cluster "$kind" "$size"
  done
  for entry in "${MATRIX[@]}"; do
    IFS='|' read -r name sizes _ <<<"$entry"
    runs_on "$size" "$sizes" "$name" || continue
    for ((rep = 1; rep <= REPEAT; rep++)); do
      order="etcd cairn"
      ((rep % 2)) || order="cairn etcd"
      for kind in $order; do run_row "$kind" "$size" "$entry" "$rep"; done
    done
    for kind in etcd cairn; do summarize "$kind" "$size" "$name"; done
  done
  stop_servers
done

# ---------------------------------------------------------------------------- the others
export CAIRN CAIRNCTL ETCD
EXTRA=()
if [[ -n "$ALL" ]]; then
  for extra in datascale:10 failover:20; do
    name=${extra%:*}
    log "running bench/$name.sh"
    if ! BENCH_EMBEDDED=1 BASE_PORT=$((BASE_PORT + ${extra#*:})) "$ROOT/bench/$name.sh" --no-build >"$WORK/$name.md"; then
      echo "bench/$name.sh failed; its messages went to stderr." >"$WORK/$name.md"
    fi
    EXTRA+=("$WORK/$name.md")
  done
fi

# ---------------------------------------------------------------------------- report
print_machine
echo "### Requests (cairnctl bench)"
echo
echo "| members | scenario | etcd req/s | cairn req/s | cairn/etcd throughput | etcd p50 ms | cairn p50 ms | cairn/etcd p50 | etcd p99 ms | cairn p99 ms | cairn/etcd p99 | target | met | errors (etcd/cairn) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for size in $SIZES; do
  for entry in "${MATRIX[@]}"; do
    IFS='|' read -r name sizes _ _ _ <<<"$entry"
    runs_on "$size" "$sizes" "$name" || continue
    e="etcd,$size,$name" c="cairn,$size,$name"
    rps=$(ratio "${RPS[$c]}" "${RPS[$e]}") p50=$(ratio "${P50[$c]}" "${P50[$e]}") p99=$(ratio "${P99[$c]}" "${P99[$e]}")
    printf '| %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s |\n' "$size" "$name" \
      "${RPS[$e]}" "${RPS[$c]}" "$rps" \
      "$(ms "${P50[$e]}")" "$(ms "${P50[$c]}")" "$p50" \
      "$(ms "${P99[$e]}")" "$(ms "${P99[$c]}")" "$p99" \
      "$(target_cells "$size|$name" "$rps" "$p50" "$p99")" \
      "${ERRS[$e]}" "${ERRS[$c]}"
  done
done
echo
echo "Throughput ratio > 1: cairn is faster. Latency ratios < 1: cairn's latency is lower."
echo "The watch row counts events received by the 100 watchers, and its latencies run from the"
echo "start of a put to the arrival of its event."
echo
echo "Server flags (both): --name mN --data-dir DIR --listen-client-urls URL --advertise-client-urls URL"
echo "  --listen-peer-urls URL --initial-advertise-peer-urls URL --initial-cluster m0=...[,m1=...,m2=...]"
echo "  --initial-cluster-token $TOKEN --initial-cluster-state new"
echo
echo "Commands:"
for cmd in "${COMMANDS[@]}"; do echo "  $cmd"; done
for file in "${EXTRA[@]}"; do
  echo
  cat "$file"
done
