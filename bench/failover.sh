#!/usr/bin/env bash
# bench/failover.sh: how long a cluster stops acknowledging writes when its leader dies,
# cairn against the reference etcd, in one run (issue 12: leader SIGKILL -> next
# acknowledged put, same election timeout).
#
# For etcd, then cairn: starts three members with the same flags (including the same
# --heartbeat-interval and --election-timeout), then for each of $ROUNDS rounds
#   1. finds the leader (`endpoint status -w json`: the member whose leader is itself),
#   2. starts a writer against the two other members: every $PUT_INTERVAL seconds it starts
#      one `cairnctl put` (each with --command-timeout $PUT_TIMEOUT, not waiting for the
#      previous one) and logs when the put started and when it was acknowledged,
#   3. once puts are being acknowledged, SIGKILLs the leader and measures the time from
#      the kill to the first acknowledgement of a put started after the kill (a put
#      started before it may have been committed by the dead leader, so it proves
#      nothing; the open-loop writer bounds the error to about $PUT_INTERVAL),
#   4. restarts the killed member on its data directory and waits until a linearizable
#      read through it succeeds (it has caught up) before the next round.
# Prints a Markdown table with the median and the maximum for each server, their ratio and
# issue 12's target (median ratio <= 1), each round's figure, and the commands used. Only
# the processes this script started are stopped.
#
# Usage: bench/failover.sh [--no-build]
# Environment (all optional; see also bench/servers.sh):
#   ROUNDS=5                   leader kills per server
#   HEARTBEAT_MS=100 ELECTION_MS=1000   flags given to both servers (etcd's defaults)
#   PUT_INTERVAL=0.025         seconds between the starts of two puts
#   PUT_TIMEOUT=5s             --command-timeout of each put
#   FAILOVER_TIMEOUT_SECS=60   limit for one failover
#   BASE_PORT=23830            six ports from it
set -euo pipefail

ROUNDS=${ROUNDS:-5}
HEARTBEAT_MS=${HEARTBEAT_MS:-100}
ELECTION_MS=${ELECTION_MS:-1000}
PUT_INTERVAL=${PUT_INTERVAL:-0.025}
PUT_TIMEOUT=${PUT_TIMEOUT:-5s}
FAILOVER_TIMEOUT_SECS=${FAILOVER_TIMEOUT_SECS:-60}
BASE_PORT=${BASE_PORT:-23830}
SIZE=3
TOKEN=cairn-failover
SERVER_FLAGS=(--heartbeat-interval "$HEARTBEAT_MS" --election-timeout "$ELECTION_MS")

# shellcheck source=bench/servers.sh
source "$(dirname "$0")/servers.sh"
setup_tools "${1:-}"

ALL=$(endpoints "$SIZE")
declare -A MEMBER_PID SECS

# leader_index: the index of the member that is the leader (waits until one is).
leader_index() {
  local deadline=$((SECONDS + FAILOVER_TIMEOUT_SECS)) endpoint
  while ((SECONDS < deadline)); do
    endpoint=$("$CAIRNCTL" --endpoints "$ALL" --command-timeout 2s endpoint status -w json 2>/dev/null |
      jq -r '[.[] | select(.Status.leader != 0 and .Status.leader == .Status.header.member_id) | .Endpoint][0] // empty' || true)
    if [[ -n "$endpoint" ]]; then
      echo $(((${endpoint##*:} - BASE_PORT) / 2))
      return
    fi
    sleep 0.1
  done
  die "no leader within ${FAILOVER_TIMEOUT_SECS}s"
}

# put_once ENDPOINTS N: one put; prints "start ack ok|fail" (seconds since the epoch).
put_once() {
  local start=$EPOCHREALTIME status=fail
  if "$CAIRNCTL" --endpoints "$1" --command-timeout "$PUT_TIMEOUT" put failover-key "v$2" >/dev/null 2>&1; then
    status=ok
  fi
  echo "$start $EPOCHREALTIME $status"
}

# writer ENDPOINTS LOG STOPFILE: starts a put every PUT_INTERVAL until STOPFILE exists (or
# for at most FAILOVER_TIMEOUT_SECS + 30 s), then waits for the puts in flight.
writer() {
  local n=0 deadline=$((SECONDS + FAILOVER_TIMEOUT_SECS + 30))
  while [[ ! -e "$3" ]] && ((SECONDS < deadline)); do
    put_once "$1" "$n" >>"$2" &
    n=$((n + 1))
    sleep "$PUT_INTERVAL"
  done
  wait
}

# acks_after LOG T: how many puts started at or after T were acknowledged.
acks_after() { awk -v t="$2" '$3 == "ok" && $1 >= t { n++ } END { print n + 0 }' "$1"; }

# one_round KIND ROUND: kills the leader once; appends the seconds to SECS[KIND].
one_round() {
  local kind=$1 round=$2 leader survivors out stop writer_pid kill_at deadline secs
  leader=$(leader_index)
  survivors=$(endpoints "$SIZE" "$leader")
  out="$WORK/$kind-round$round.log"
  stop="$WORK/$kind-round$round.stop"
  : >"$out"
  writer "$survivors" "$out" "$stop" &
  writer_pid=$!
  HELPERS+=("$writer_pid")
  deadline=$((SECONDS + FAILOVER_TIMEOUT_SECS))
  until (($(acks_after "$out" 0) >= 3)); do
    ((SECONDS < deadline)) || die "[$kind] no put through $survivors was acknowledged"
    sleep 0.05
  done
  kill_at=$EPOCHREALTIME
  kill -KILL "${MEMBER_PID[$leader]}"
  wait "${MEMBER_PID[$leader]}" 2>/dev/null || true
  forget_pid "${MEMBER_PID[$leader]}"
  until (($(acks_after "$out" "$kill_at") >= 1)); do
    ((SECONDS < deadline)) || die "[$kind] no put acknowledged within ${FAILOVER_TIMEOUT_SECS}s of killing m$leader"
    sleep 0.02
  done
  touch "$stop"
  wait "$writer_pid" || true
  HELPERS=()
  secs=$(awk -v t="$kill_at" '$3 == "ok" && $1 >= t && (min == "" || $2 < min) { min = $2 }
    END { printf "%.3f", min - t }' "$out")
  SECS[$kind]+="${SECS[$kind]:+ }$secs"
  log "[$kind] round $round: killed leader m$leader; next acknowledged put after $secs s"

  start_member "$kind" "$leader" "$SIZE" "${SERVER_FLAGS[@]}"
  MEMBER_PID[$leader]=$SERVER_PID
  deadline=$((SECONDS + START_TIMEOUT_SECS))
  until "$CAIRNCTL" --endpoints "$(client_endpoint "$leader")" --command-timeout 2s \
    get --consistency l failover-key >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "[$kind] m$leader did not rejoin within ${START_TIMEOUT_SECS}s; log: $SERVER_DIR/server.log"
    sleep 0.1
  done
}

for kind in etcd cairn; do
  log "[$kind] starting $SIZE members"
  for ((i = 0; i < SIZE; i++)); do
    start_member "$kind" "$i" "$SIZE" "${SERVER_FLAGS[@]}"
    MEMBER_PID[$i]=$SERVER_PID
  done
  wait_serving "$ALL" "$kind"
  SECS[$kind]=""
  for ((round = 1; round <= ROUNDS; round++)); do one_round "$kind" "$round"; done
  stop_servers
done

# ---------------------------------------------------------------------------- report
# summary WHICH LIST: the median or the maximum of a space-separated list.
summary() {
  tr ' ' '\n' <<<"$2" | sort -g | awk -v which="$1" '{ v[NR] = $1 } END {
    if (which == "max") { printf "%.3f", v[NR]; exit }
    if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2
  }'
}

emed=$(summary median "${SECS[etcd]}") cmed=$(summary median "${SECS[cairn]}")
emax=$(summary max "${SECS[etcd]}") cmax=$(summary max "${SECS[cairn]}")
mratio=$(ratio "$cmed" "$emed")
print_machine
echo "### Failover: leader SIGKILL → next acknowledged put, $SIZE members, rounds: $ROUNDS"
echo
echo "| measure | etcd | cairn | cairn/etcd | target | met |"
echo "|---|---|---|---|---|---|"
echo "| median (s) | $emed | $cmed | $mratio | $(target_text "<=" 1) | $(meets "$mratio" "<=" 1) |"
echo "| max (s) | $emax | $cmax | $(ratio "$cmax" "$emax") | — |  |"
echo "| each round (s) | ${SECS[etcd]// /, } | ${SECS[cairn]// /, } |  |  |  |"
echo
echo "Ratios < 1: cairn acknowledged writes again sooner. A round runs from the SIGKILL of the"
echo "leader to the acknowledgement of the first put started after it; puts are started every"
echo "${PUT_INTERVAL}s against the two surviving members, each by its own cairnctl process."
echo
echo "Commands (the same for both servers):"
echo "  servers: <server> --name mN --data-dir DIR --listen-client-urls URL --advertise-client-urls URL"
echo "             --listen-peer-urls URL --initial-advertise-peer-urls URL --initial-cluster m0=...,m1=...,m2=..."
echo "             --initial-cluster-token $TOKEN --initial-cluster-state new ${SERVER_FLAGS[*]}"
echo "  leader:  $(basename "$CAIRNCTL") --endpoints $ALL endpoint status -w json"
echo "  writer:  $(basename "$CAIRNCTL") --endpoints <the two other members> --command-timeout $PUT_TIMEOUT put failover-key vN   (one started every ${PUT_INTERVAL}s)"
echo "  kill:    kill -KILL <leader PID>; the member is then restarted with its command line and data dir"
