#!/usr/bin/env bash
# bench/datascale.sh: memory, disk and restart time at a million keys, cairn against the
# reference etcd, in one run (issue 12's "data-scale" benchmark).
#
# For etcd, then cairn, each a single member started with the same flags on a fresh data
# directory: loads $KEYS distinct keys of $VAL_SIZE-byte values through the API with
# `cairnctl bench put --sequential-keys` (checks that exactly $KEYS keys are stored), and
# measures
#   * the server's resident memory (VmRSS from /proc/PID/status) after the load,
#   * the size of its data directory (du -sb),
#   * after a clean stop (SIGTERM) and a restart on the same data directory: the time from
#     starting the process to the first successful linearizable read (`cairnctl get
#     --consistency l`, which must return the key written before the stop), polled every
#     20 ms: first until the client port accepts connections, then with a get that may wait
#     up to $READ_TIMEOUT for the server to become able to serve it;
#   * the resident memory after that first read.
# Prints a Markdown table with etcd, cairn, cairn/etcd and issue 12's target for each
# figure, then the commands used. Only the processes this script started are stopped.
#
# Usage: bench/datascale.sh [--no-build]
# Environment (all optional; see also bench/servers.sh):
#   KEYS=1000000        keys loaded (each written once)
#   KEY_SIZE=16 VAL_SIZE=256
#   LOAD_CLIENTS=64 LOAD_CONNS=8
#   BASE_PORT=23820     two ports from it
#   SETTLE_SECS=2       pause between the end of the load and the memory reading
#   LOAD_TIMEOUT_SECS=3600 RESTART_TIMEOUT_SECS=300   bounds of the load and of a restart
set -euo pipefail

KEYS=${KEYS:-1000000}
KEY_SIZE=${KEY_SIZE:-16}
VAL_SIZE=${VAL_SIZE:-256}
LOAD_CLIENTS=${LOAD_CLIENTS:-64}
LOAD_CONNS=${LOAD_CONNS:-8}
BASE_PORT=${BASE_PORT:-23820}
SETTLE_SECS=${SETTLE_SECS:-2}
LOAD_TIMEOUT_SECS=${LOAD_TIMEOUT_SECS:-3600}
RESTART_TIMEOUT_SECS=${RESTART_TIMEOUT_SECS:-300}
READ_TIMEOUT=5s
POLL_SECS=0.02
TOKEN=cairn-datascale
PROBE_KEY=datascale-probe

# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"
setup_tools "${1:-}"

ENDPOINT=$(client_endpoint 0)
PORT=$((BASE_PORT))
LOAD_CMD=(bench --clients "$LOAD_CLIENTS" --conns "$LOAD_CONNS" put --sequential-keys
  --key-space-size "$KEYS" --total "$KEYS" --key-size "$KEY_SIZE" --val-size "$VAL_SIZE")
declare -A LOAD_RPS RSS_LOADED DISK STOP_SECS LISTEN_SECS RESTART_SECS RSS_RESTARTED

# stored_keys: how many keys the server holds (a linearizable count of every key).
stored_keys() {
  "$CAIRNCTL" --endpoints "$ENDPOINT" --command-timeout 600s get --from-key '' --count-only -w fields |
    awk '/^"Count" :/ {print $3}'
}

# restart_to_first_read KIND: starts member 0 again on its data directory and sets
# LISTEN_SECS[KIND] to the time until its client port accepts connections and
# RESTART_SECS[KIND] to the time until a linearizable read of PROBE_KEY succeeds.
restart_to_first_read() {
  local kind=$1 start end deadline value
  deadline=$((SECONDS + RESTART_TIMEOUT_SECS))
  start=$EPOCHREALTIME
  start_member "$kind" 0 1
  # Poll the port without a client process (a refused connection fails at once; a gRPC
  # client would wait out its dial timeout instead).
  until { : <"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "$kind exited during its restart; log: $SERVER_DIR/server.log"
    ((SECONDS < deadline)) || die "$kind did not listen within ${RESTART_TIMEOUT_SECS}s of its restart"
    sleep "$POLL_SECS"
  done
  LISTEN_SECS[$kind]=$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.3f", e - s }')
  until value=$("$CAIRNCTL" --endpoints "$ENDPOINT" --command-timeout "$READ_TIMEOUT" \
    get --consistency l --print-value-only "$PROBE_KEY" 2>/dev/null); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "$kind exited during its restart; log: $SERVER_DIR/server.log"
    ((SECONDS < deadline)) || die "$kind did not serve a linearizable read within ${RESTART_TIMEOUT_SECS}s of its restart"
    sleep "$POLL_SECS"
  done
  end=$EPOCHREALTIME
  [[ "$value" == "ok" ]] || die "$kind lost $PROBE_KEY across its restart (read '$value')"
  RESTART_SECS[$kind]=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
}

for kind in etcd cairn; do
  log "[$kind] starting one member"
  start_member "$kind" 0 1
  wait_serving "$ENDPOINT" "$kind"
  log "[$kind] loading $KEYS keys of $VAL_SIZE bytes"
  out="$WORK/$kind-load.json"
  if ! timeout "$LOAD_TIMEOUT_SECS" "$CAIRNCTL" --endpoints "$ENDPOINT" -w json "${LOAD_CMD[@]}" \
    >"$out" 2>"$out.progress"; then
    die "[$kind] the load failed or timed out: $(tr '\r' '\n' <"$out.progress" | tail -n 3)"
  fi
  LOAD_RPS[$kind]=$(jq '.reports[0].requests_per_sec' "$out")
  errors=$(jq '.reports[0].errors' "$out")
  [[ "$errors" == 0 ]] || die "[$kind] $errors puts of the load failed (see $out)"
  "$CAIRNCTL" --endpoints "$ENDPOINT" put "$PROBE_KEY" ok >/dev/null
  sleep "$SETTLE_SECS"
  RSS_LOADED[$kind]=$(rss_kib "$SERVER_PID")
  DISK[$kind]=$(du -sb "$SERVER_DIR/data" | cut -f1)
  log "[$kind] loaded at $(printf '%.0f' "${LOAD_RPS[$kind]}") puts/s; RSS $((RSS_LOADED[$kind] / 1024)) MiB, data dir $((DISK[$kind] / 1048576)) MiB"
  # Counted after the memory reading: a full count may pull data into caches.
  stored=$(stored_keys)
  # Every loaded key plus the probe key (bench-probe from wait_serving has the same range).
  expected=$((KEYS + 2))
  [[ "$stored" == "$expected" ]] || die "[$kind] $stored keys stored, expected $expected ($KEYS loaded + 2 probes)"

  log "[$kind] stopping (SIGTERM) and restarting on the same data directory"
  stop_at=$EPOCHREALTIME
  if stop_pid "$SERVER_PID"; then
    STOP_SECS[$kind]=$(awk -v s="$stop_at" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.3f", e - s }')
  else
    log "[$kind] did not stop within ${STOP_TIMEOUT_SECS}s of SIGTERM; killed"
    STOP_SECS[$kind]="killed after ${STOP_TIMEOUT_SECS}"
  fi
  restart_to_first_read "$kind"
  RSS_RESTARTED[$kind]=$(rss_kib "$SERVER_PID")
  log "[$kind] listening $(awk -v s="${LISTEN_SECS[$kind]}" 'BEGIN { printf "%.0f", s * 1000 }') ms and first linearizable read $(awk -v s="${RESTART_SECS[$kind]}" 'BEGIN { printf "%.0f", s * 1000 }') ms after the restart; RSS $((RSS_RESTARTED[$kind] / 1024)) MiB"
  stop_servers
done

# ---------------------------------------------------------------------------- report
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
row() { # name etcd cairn ratio target-op target-limit
  local met="" target="—"
  if [[ -n "${5:-}" ]]; then
    target=$(target_text "$5" "$6")
    met=$(meets "$4" "$5" "$6")
  fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$target" "$met"
}

print_machine
echo "### Data scale: $KEYS keys × $VAL_SIZE B values (keys of $KEY_SIZE B), one member"
echo
echo "| measure | etcd | cairn | cairn/etcd | target | met |"
echo "|---|---|---|---|---|---|"
row "RSS after the load (MiB)" "$(mib "${RSS_LOADED[etcd]}")" "$(mib "${RSS_LOADED[cairn]}")" \
  "$(ratio "${RSS_LOADED[cairn]}" "${RSS_LOADED[etcd]}")" "<=" 0.5
row "data dir after the load (MiB, du -sb)" "$(mib $((DISK[etcd] / 1024)))" "$(mib $((DISK[cairn] / 1024)))" \
  "$(ratio "${DISK[cairn]}" "${DISK[etcd]}")"
row "SIGTERM → exit (s)" "${STOP_SECS[etcd]}" "${STOP_SECS[cairn]}" \
  "$(ratio "${STOP_SECS[cairn]}" "${STOP_SECS[etcd]}")"
row "restart → client port accepting connections (s)" "${LISTEN_SECS[etcd]}" "${LISTEN_SECS[cairn]}" \
  "$(ratio "${LISTEN_SECS[cairn]}" "${LISTEN_SECS[etcd]}")"
row "restart → first linearizable read (s)" "${RESTART_SECS[etcd]}" "${RESTART_SECS[cairn]}" \
  "$(ratio "${RESTART_SECS[cairn]}" "${RESTART_SECS[etcd]}")" "<=" 0.25
row "RSS after restart and first read (MiB)" "$(mib "${RSS_RESTARTED[etcd]}")" "$(mib "${RSS_RESTARTED[cairn]}")" \
  "$(ratio "${RSS_RESTARTED[cairn]}" "${RSS_RESTARTED[etcd]}")"
row "load throughput (puts/s)" "$(printf '%.0f' "${LOAD_RPS[etcd]}")" "$(printf '%.0f' "${LOAD_RPS[cairn]}")" \
  "$(ratio "${LOAD_RPS[cairn]}" "${LOAD_RPS[etcd]}")"
echo
echo "Ratios < 1: cairn uses less memory or disk, restarts faster. The restart time runs from"
echo "starting the process to the return of the first successful \`get --consistency l\`"
echo "(polled every 20 ms; it includes starting one cairnctl process)."
echo
echo "Commands (the same for both servers; the data dir is fresh for the load):"
echo "  load:    $(basename "$CAIRNCTL") --endpoints $ENDPOINT -w json ${LOAD_CMD[*]}"
echo "  restart: <server> --name m0 --data-dir DIR --listen-client-urls URL --advertise-client-urls URL"
echo "             --listen-peer-urls URL --initial-advertise-peer-urls URL --initial-cluster m0=URL"
echo "             --initial-cluster-token $TOKEN --initial-cluster-state new   (same DIR, after SIGTERM)"
echo "  read:    $(basename "$CAIRNCTL") --endpoints $ENDPOINT --command-timeout $READ_TIMEOUT get --consistency l --print-value-only $PROBE_KEY"
