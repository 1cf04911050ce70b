#!/usr/bin/env bash
# bench/profile.sh: where a 3-member cairn spends its CPU under a put or a read load.
#
# Starts three cairn members on 127.0.0.1 (the same flags as compare.sh), runs one of
# issue 12's target rows against all three (LOAD_KIND=put: 256 clients on 16 connections,
# 256 B values; LOAD_KIND=range: linearizable reads of one key, 64 clients on 8
# connections), and while it runs samples every member with `perf record` (DWARF call
# graphs). Writes, into OUT_DIR (NAME is put-3node or range-3node):
#   NAME.svg           a flame graph of the three members' stacks, when
#                      inferno-flamegraph is installed (`cargo install inferno`); the
#                      collapsed stacks it is drawn from stay in the temporary directory
#                      (KEEP_LOGS=1 keeps it)
#   NAME.txt           CPU share by area (network stack, raft, storage, ...) and the
#                      functions with the most samples of their own
# Only the processes this script started are stopped, by PID.
#
# Usage: bench/profile.sh [--no-build]
# Environment (all optional; see also bench/servers.sh):
#   OUT_DIR=bench/profiles   where the results go
#   PROFILE_SECS=3           how long perf samples (it starts 2 s into the load)
#   FREQ=1999                samples per second of CPU time
#   LOAD_KIND=put            put or range
#   RANGE_TOTAL=200000       reads the range load makes (stopped when sampling ends)
#   PUT_TOTAL=40000          puts the load makes (it is stopped when sampling ends); the
#                            default keeps the data within the memtables, as in a
#                            compare.sh run, where a longer load reaches fjall's tables
#   PRELOAD=0                puts made before the load (the put load's shape): with
#                            e.g. 60000 the sampled puts mostly update keys that exist,
#                            and reads and writes reach fjall's tables, as in the later
#                            rows of a compare.sh run
#   BASE_PORT=23830          first port (six from it)
set -euo pipefail

PROFILE_SECS=${PROFILE_SECS:-3}
FREQ=${FREQ:-1999}
PUT_TOTAL=${PUT_TOTAL:-40000}
PRELOAD=${PRELOAD:-0}
RANGE_TOTAL=${RANGE_TOTAL:-200000}
LOAD_KIND=${LOAD_KIND:-put}
NAME=$LOAD_KIND-3node
BASE_PORT=${BASE_PORT:-23830}
# shellcheck disable=SC2034 # read by servers.sh
TOKEN=cairn-profile

# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"
OUT_DIR=${OUT_DIR:-$ROOT/bench/profiles}

BUILD=""
for arg in "$@"; do
  case $arg in
    --no-build) BUILD=--no-build ;;
    *) die "usage: bench/profile.sh [--no-build]" ;;
  esac
done
setup_tools "$BUILD"
command -v perf >/dev/null || die "perf is needed (apt-get install linux-perf)"
mkdir -p "$OUT_DIR"

SIZE=3
for ((i = 0; i < SIZE; i++)); do start_member cairn "$i" "$SIZE"; done
ENDPOINTS=$(endpoints "$SIZE")
wait_serving "$ENDPOINTS" "cairn ($SIZE members)"

if ((PRELOAD > 0)); then
  log "preloading $PRELOAD puts"
  timeout 300 "$CAIRNCTL" --endpoints "$ENDPOINTS" bench --clients 256 --conns 16 put \
    --total "$PRELOAD" --key-size 8 --val-size 256 --key-space-size 100000 >/dev/null 2>&1 ||
    die "the preload failed"
fi

# Enough requests to outlast the sampling; the load stops by itself (--total and timeout).
case $LOAD_KIND in
  put) load=(--clients 256 --conns 16 put --total "$PUT_TOTAL" --key-size 8 --val-size 256
    --key-space-size 100000) ;;
  range)
    "$CAIRNCTL" --endpoints "$ENDPOINTS" put bench-probe ok >/dev/null
    load=(--clients 64 --conns 8 range bench-probe --consistency l --total "$RANGE_TOTAL") ;;
  *) die "LOAD_KIND is put or range, not $LOAD_KIND" ;;
esac
log "$LOAD_KIND load: ${load[*]}; sampling ${PROFILE_SECS}s at ${FREQ} Hz"
timeout $((PROFILE_SECS + 60)) "$CAIRNCTL" --endpoints "$ENDPOINTS" -w json bench "${load[@]}" \
  >"$WORK/bench.json" 2>"$WORK/bench.progress" &
LOAD=$!
HELPERS+=("$LOAD")
sleep 2
pids=$(IFS=,; echo "${PIDS[*]}")
perf record -q -F "$FREQ" -g --call-graph dwarf,16384 -p "$pids" -o "$WORK/perf.data" \
  -- sleep "$PROFILE_SECS" 2>"$WORK/perf.log" || die "perf record failed: $(cat "$WORK/perf.log")"
kill -TERM "$LOAD" 2>/dev/null || true
wait "$LOAD" 2>/dev/null || true
HELPERS=()

FOLDED=$WORK/$NAME.folded
# Collapse to "frame;frame;...;leaf count" (root first), as inferno and flamegraph.pl read.
# Rust symbol hashes (::h0123...) are dropped so frames add up, and so are inlined frames
# (each sample keeps the functions that were really called); kernel frames end in _[k].
perf script -i "$WORK/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null | awk '
  function flush() {
    if (n == 0) return
    stack = frames[n]
    for (j = n - 1; j >= 1; j--) stack = stack ";" frames[j]
    counts[stack]++
    n = 0
  }
  /^[^ \t]/ { flush(); next }
  /^[ \t]*$/ { flush(); next }
  / \(inlined\)$/ { next }
  {
    sub(/^[ \t]*[0-9a-f]+[ \t]+/, "")
    kernel = $0 ~ /\(\[kernel\.kallsyms\]\)$/
    sub(/[ \t]*\([^()]*\)$/, "")
    sub(/\+0x[0-9a-f]+$/, "")
    gsub(/::h[0-9a-f]{16}/, "")
    gsub(/;/, ":")
    if ($0 == "") $0 = "[unknown]"
    if (kernel) $0 = $0 "_[k]"
    frames[++n] = $0
  }
  END { flush(); for (s in counts) print s, counts[s] }
' | sort >"$FOLDED"

if command -v inferno-flamegraph >/dev/null; then
  inferno-flamegraph --title "cairn, 3 members, $LOAD_KIND load (bench/profile.sh)" --minwidth 0.2 \
    <"$FOLDED" >"$OUT_DIR/$NAME.svg"
else
  log "inferno-flamegraph not found: no SVG (cargo install inferno)"
fi

{
  total=$(awk '{ s += $NF } END { print s }' "$FOLDED")
  rate=$(jq -r '.reports[0].requests_per_sec // empty | floor' "$WORK/bench.json" 2>/dev/null || true)
  echo "cairn, 3 members, $LOAD_KIND load (cairnctl bench ${load[*]}):"
  ((PRELOAD == 0)) || echo "after a preload of $PRELOAD puts (--clients 256 --conns 16 ... --key-space-size 100000);"
  echo "$total samples of the three members over"
  echo "${PROFILE_SECS}s at ${FREQ} Hz each (2 cores: at most $((2 * FREQ * PROFILE_SECS)) samples in all)."
  [[ -z "$rate" ]] || echo "The load was stopped when sampling ended; it ran at $rate requests/s."
  echo
  # Each stack goes to the first area whose pattern one of its frames matches.
  echo "CPU by area (whole call stacks):"
  awk '
    BEGIN {
      # Areas in order, "pattern@name"; a pattern may list alternatives with "|".
      n = split("cairn_core::mvcc::range::@reads: the Range itself (mvcc::range, state machine reads)" \
        "#mvcc::history::newest_at|mvcc::history::live_meta_at@apply: looking up the previous version of each key (mvcc::history)" \
        "#as cairn_core::storage::Engine>::write@storage writes and fsync (fjall write batches: raft log, applied state)" \
        "#apply_batch|apply_entries@apply: the rest of the state machine" \
        "#raft::@raft-rs (stepping messages, building Readies)" \
        "#cairn_node::peer@peer links (raft messages between members)" \
        "#h2::|hyper::|tonic::@client requests: HTTP/2, gRPC, protobuf (h2, hyper, tonic, prost)" \
        "#EventLoop@event loop, outside the above (commands, replies, read rounds)" \
        "#tokio::@tokio (scheduling, timers, wake-ups)" \
        "#_\\[k\\] *$@kernel, outside the above (idle wake-ups, page faults)", areas, "#")
      for (i = 1; i <= n; i++) { split(areas[i], pair, "@"); pat[i] = pair[1]; name[i] = pair[2] }
    }
    {
      c = $NF; $NF = ""; a = "other (fjall background flush and compaction, allocator, ...)"
      for (i = 1; i <= n; i++) if ($0 ~ pat[i]) { a = name[i]; break }
      area[a] += c; all += c
    }
    END { for (a in area) printf "  %5.1f%%  %s\n", 100 * area[a] / all, a }' \
    "$FOLDED" | sort -rn
  echo
  echo "Functions with the most samples of their own (top 25):"
  awk '{ n = $NF; $NF = ""; sub(/ $/, ""); k = split($0, f, ";"); self[f[k]] += n; all += n }
    END { for (s in self) printf "  %5.1f%%  %s\n", 100 * self[s] / all, substr(s, 1, 110) }' \
    "$FOLDED" | sort -rn | sed -n 1,25p
} >"$OUT_DIR/$NAME.txt"
cat "$OUT_DIR/$NAME.txt"
