#!/usr/bin/env bash
# End-to-end test of deploy/compose.yaml: builds the image, starts a master and 3 workers, runs
# a job, then kills one worker and cuts another off the network in the middle of a second job,
# and checks that both results are exact; heals the cluster and runs a job again; crashes a
# worker process and waits for the restart policy to bring it back; scales down to 2 workers in
# the middle of a job (SIGTERM, drain) and checks that result too; kills the master container
# (SIGKILL) in the middle of a job and starts it again, and checks that a client waiting with
# `farm submit --wait` on the compose network gets the exact result (when the binary has
# `farm master --journal`); then tears everything down.
#
# Usage: deploy/test-compose.sh
#   FARM_IMAGE          image tag to build and run        (default farm:local)
#   FARM_TEST_PROJECT   compose project name              (default farmtest)
#   FARM_TEST_BUILD     0 reuses an existing image instead of running deploy/build-image.sh
#   FARM_TEST_SPIN_MS   CPU milliseconds per shard of the fault job (default 50; 300 shards)
#
# Prints PASS or FAIL: <reason> as its last line and exits 0 or 1. Skips (prints SKIP and exits
# 0) when docker, its engine or a compose tool is missing. Every wait has a time limit; the
# stack is removed on every exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/test-lib.sh
source "$here/test-lib.sh"
root=$(cd "$here/.." && pwd)
project=${FARM_TEST_PROJECT:-farmtest}
spin_ms=${FARM_TEST_SPIN_MS:-50}
export FARM_IMAGE=${FARM_IMAGE:-farm:local}
export FARM_PUBLISH=127.0.0.1:0 # a free port on loopback, so a busy 7070 cannot clash
export FARM_THREADS=1
export FARM_CPUS=0

skip() {
    echo "SKIP: $*"
    exit 0
}

command -v docker >/dev/null || skip "docker is not installed: deploy/compose.yaml was not tested"
timeout 30 docker info >/dev/null 2>&1 || skip "the Docker engine does not answer (docker info failed): deploy/compose.yaml was not tested"
if timeout 30 docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null && timeout 30 docker-compose version >/dev/null 2>&1; then
    compose=(docker-compose)
else
    skip "neither 'docker compose' nor 'docker-compose' works: deploy/compose.yaml was not tested"
fi
log "compose tool: ${compose[*]} ($(timeout 30 "${compose[@]}" version --short 2>/dev/null || echo '?'))"

# Every command that talks to Docker is bounded.
dk() { timeout 60 docker "$@"; }
cx() { timeout 180 "${compose[@]}" -f "$here/compose.yaml" -p "$project" "$@"; }

failed=0
fail() {
    failed=1
    echo "FAIL: $*"
    exit 1
}
on_exit() {
    local rc=$?
    set +e
    if [[ $rc -ne 0 ]]; then
        [[ $failed -eq 1 ]] || echo "FAIL: unexpected error (exit code $rc); see the output above"
        echo "---- last logs ----"
        cx logs --no-color --tail 25 2>&1 | tail -120
        echo "-------------------"
    fi
    log "tearing down"
    cx down -v --remove-orphans >/dev/null 2>&1 || echo "warning: '${compose[*]} down' failed for project $project"
    exit "$rc"
}



# ---- image -------------------------------------------------------------------------------
if [[ ${FARM_TEST_BUILD:-1} == 0 ]] && dk image inspect "$FARM_IMAGE" >/dev/null 2>&1; then
    log "reusing image $FARM_IMAGE"
else
    log "building $FARM_IMAGE"
    timeout 900 "$here/build-image.sh" >/dev/null || fail "deploy/build-image.sh failed"
fi

# ---- up ----------------------------------------------------------------------------------
cx down -v --remove-orphans >/dev/null 2>&1 || true # leftovers of an interrupted run
trap on_exit EXIT
log "up: 1 master, 3 workers (project $project)"
cx up -d --scale worker=3 || fail "compose up failed"

master=$(cx ps -q master)
[[ -n $master ]] || fail "no master container"
farmc() { timeout 120 docker exec "$master" /farm "$@"; }

user=$(dk inspect -f '{{.Config.User}}' "$master")
[[ $user == 10001:10001 ]] || fail "the image runs as '$user', not 10001:10001"

healthy() { [[ $(dk inspect -f '{{.State.Health.Status}}' "$master") == healthy ]]; }
wait_for 60 "the master's HEALTHCHECK to report healthy" healthy
log "master healthy (HEALTHCHECK: /farm --master http://127.0.0.1:7070 workers)"

wait_for 60 "3 workers to register" workers_are 3
log "3 workers registered"

# The published port, from the host, if this checkout has a farm binary.
port=$(cx port master 7070 | tail -1)
if [[ -x $root/target/release/farm ]]; then
    n=$(count_workers "$(timeout 30 "$root/target/release/farm" --master "http://$port" workers --json)")
    [[ $n == 3 ]] || fail "the host client through $port sees $n workers, not 3"
    log "host client through the published port $port sees 3 workers"
else
    log "no target/release/farm on the host: published port $port not checked from the host"
fi

# The standard gRPC health service, as Kubernetes' grpc probe asks it (service ""), if this
# host's python3 has grpcio and grpcio-health-checking.
if python3 -c 'import grpc, grpc_health.v1.health_pb2' 2>/dev/null; then
    status=$(timeout 30 python3 - "$port" <<'PY'
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(sys.argv[1]))
print(health_pb2.HealthCheckResponse.ServingStatus.Name(
    stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status))
PY
    ) || fail "grpc.health.v1.Health/Check on $port failed"
    [[ $status == SERVING ]] || fail "grpc.health.v1.Health/Check on $port says $status"
    log "grpc.health.v1.Health/Check(\"\") on $port: SERVING"
else
    log "no python3 grpcio/grpcio-health-checking: gRPC health service not checked"
fi

# ---- a job -------------------------------------------------------------------------------
out=$(farmc submit primes --range 0..1000000 --shard-size 10000 --wait --json) || fail "primes job failed: $out"
[[ $(field "$out" state) == succeeded && $(field "$out" result) == 78498 ]] ||
    fail "primes 0..1000000: expected 78498, got: $out"
log "primes 0..1000000 = 78498: $out"

# ---- faults in the middle of a job -------------------------------------------------------
out=$(farmc submit spin --range 0..300 --shard-size 1 --param "ms=$spin_ms" --json) || fail "submit spin failed: $out"
job=$(field "$out" job)
[[ $job =~ ^[0-9]+$ ]] || fail "no job id in: $out"
log "spin job $job submitted (300 shards of ${spin_ms} ms)"

started() {
    local s
    s=$(farmc status "$job" --json)
    [[ $(field "$s" state) == running && $(field "$s" "done") -ge 5 ]]
}
wait_for 60 "job $job to be running" started

# Victims: two workers that are running shards of the job right now. A worker's hostname is
# its container's short id.
mapfile -t busy < <(farmc workers --json | sed 's/},{/}\n{/g' |
    sed -n 's/.*"hostname":"\([0-9a-f]*\)".*"in_flight":\([0-9]*\).*/\2 \1/p' | awk '$1 > 0 { print $2 }')
((${#busy[@]} >= 2)) || fail "fewer than 2 workers are running shards of job $job: ${busy[*]:-none}"
kill_id=${busy[0]}
cut_id=${busy[1]}
# shellcheck disable=SC2016 # a Go template, not a shell expansion
net=$(dk inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$cut_id")
dk kill "$kill_id" >/dev/null
dk network disconnect "$net" "$cut_id"
s=$(farmc status "$job" --json)
log "killed worker container $kill_id, disconnected $cut_id from $net; job then: $s"
[[ $(field "$s" state) == running ]] || fail "job $job ended before the faults hit it; raise FARM_TEST_SPIN_MS"

out=$(farmc watch "$job" --json) || fail "watch $job failed: $out"
[[ $(field "$out" state) == succeeded && $(field "$out" result) == 300 ]] ||
    fail "spin 0..300 after the faults: expected 300, got: $out"
reruns=$(field "$out" reruns)
((reruns >= 1)) || fail "job $job shows no rerun shards, so the faults did not hit it: $out"
log "spin 0..300 = 300 despite the faults ($reruns shards run again): $out"

wait_for 30 "the master to drop both lost workers" workers_are 1
log "master shows 1 worker"

# ---- heal --------------------------------------------------------------------------------
dk network connect "$net" "$cut_id"
cx up -d --scale worker=3 || fail "compose up (heal) failed"
wait_for 90 "3 workers after reconnecting one and restarting the other" workers_are 3
out=$(farmc submit primes --range 0..1000000 --shard-size 10000 --wait --json) || fail "primes job after heal failed: $out"
[[ $(field "$out" result) == 78498 ]] || fail "primes after heal: expected 78498, got: $out"
log "healed: 3 workers again, primes = 78498"

# ---- a crash: the restart policy ---------------------------------------------------------
# `docker kill` counts as a deliberate stop, which no restart policy undoes. A crash is a
# process that dies by itself: SIGKILL the worker process from the host (this needs the test
# to run on the engine's own host with the right to signal uid 10001, e.g. as root).
victim=$(cx ps -q worker | head -1)
pid=$(dk top "$victim" -o pid,args | awk '$2 == "/farm" && $3 == "worker" { print $1 }')
if [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; then
    restarted() { (($(dk inspect -f '{{.RestartCount}}' "$victim") >= 1)); }
    wait_for 60 "Docker to restart the crashed worker container" restarted
    wait_for 60 "3 workers after the restart" workers_are 3
    log "crashed worker process $pid (SIGKILL from the host) was restarted by the restart policy"
else
    log "cannot signal container processes from here: restart-on-crash not checked"
fi

# ---- scale down in the middle of a job: a drain ------------------------------------------
out=$(farmc submit spin --range 0..100 --shard-size 1 --param "ms=$spin_ms" --json) || fail "submit spin failed: $out"
job=$(field "$out" job)
wait_for 60 "job $job to be running" started
cx up -d --scale worker=2 || fail "compose up --scale worker=2 failed"
out=$(farmc watch "$job" --json) || fail "watch $job failed: $out"
[[ $(field "$out" state) == succeeded && $(field "$out" result) == 100 ]] ||
    fail "spin 0..100 across a scale-down: expected 100, got: $out"
wait_for 30 "2 workers after the scale-down" workers_are 2
log "scaled to 2 workers mid-job (SIGTERM, drain): spin 0..100 = 100: $out"

# ---- the master killed in the middle of a job: its journal --------------------------------
# The master keeps its journal on the volume master-state (FARM_JOURNAL in compose.yaml). A
# binary without `farm master --journal` ignores that variable, and this step is skipped.
if has_journal; then
    waiter_out=$(mktemp) waiter_err=$(mktemp)
    # A client in its own container on the compose network ($net, found above), as another
    # service would be.
    timeout 300 docker run --rm --no-healthcheck --network "$net" "$FARM_IMAGE" \
        --master http://master:7070 submit spin --range 0..200 --shard-size 1 \
        --param "ms=$spin_ms" --wait --json --reconnect-for 120s >"$waiter_out" 2>"$waiter_err" &
    waiter=$!
    # The waiter's job is the newest the master lists.
    newest_running() {
        local s
        s=$(farmc jobs --json | sed 's/},{/}\n{/g' | head -1)
        [[ $(field "$s" state) == running && $(field "$s" "done") -ge 10 ]]
    }
    wait_for 60 "the waiter's job to be running" newest_running
    dk kill "$master" >/dev/null # a crash: no goodbye, no flush
    log "killed the master container mid-job; starting it again"
    dk start "$master" >/dev/null || fail "docker start of the master failed"
    wait_for 90 "the restarted master's HEALTHCHECK to report healthy" healthy
    wait "$waiter" || fail "the waiting client failed across the master restart: $(cat "$waiter_out" "$waiter_err")"
    out=$(cat "$waiter_out")
    [[ $(field "$out" state) == succeeded && $(field "$out" result) == 200 ]] ||
        fail "spin 0..200 across a master restart: expected 200, got: $out"
    grep -q "lost the master; reconnecting" "$waiter_err" ||
        fail "the waiter did not say it lost the master: $(cat "$waiter_err")"
    rm -f "$waiter_out" "$waiter_err"
    log "master killed and restarted mid-job: the waiting client got spin 0..200 = 200: $out"
else
    log "this farm has no 'master --journal': master restart mid-job not checked"
fi

# ---- down --------------------------------------------------------------------------------
trap - EXIT
log "down"
cx down -v --remove-orphans || fail "compose down failed"
left=$(dk ps -aq --filter "label=com.docker.compose.project=$project")
[[ -z $left ]] || fail "containers left after down: $left"
echo "PASS"
