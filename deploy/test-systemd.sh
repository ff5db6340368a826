#!/usr/bin/env bash
# Checks the units in deploy/systemd.
#
#  1. verify: `systemd-analyze verify` of farm-master.service and farm-worker@main.service in a
#     temporary root that holds the units, the farm binary at /usr/local/bin/farm and this
#     host's own unit directory. It must print nothing (it prints, and still exits 0, for an
#     unknown key or a missing binary). Then `systemd-analyze security --offline` prints the
#     exposure score of each.
#  2. boot (FARM_TEST_SYSTEMD_BOOT=0 to skip): systemd as PID 1 in a Docker container made of
#     this host's /usr directories (bind-mounted read-only) and a copy of its /etc, with the
#     units installed as an administrator would (sysusers file, unit files unchanged, env
#     files, the binary at /usr/local/bin/farm). Checks that a master and two worker instances
#     start with their own settings, a job's result is exact, the hardening is in force, a
#     worker killed with SIGKILL is restarted, the master's StateDirectory /var/lib/farm is
#     its own, a master killed with SIGKILL mid-job is restarted and (when the binary has
#     `farm master --journal`) the job still ends exact, a drained worker stays stopped, and
#     `systemctl stop` of a worker in the middle of 35-s shards waits for its 30-s drain
#     timeout (within TimeoutStopSec=45s), ends with status 0, and the job is still exact.
#     Needs a Debian-like host with systemd installed, docker, and an engine that lets a
#     container have CAP_SYS_ADMIN; it takes about 2 minutes.
#
# Usage: deploy/test-systemd.sh        (FARM_BIN: the binary, default target/release/farm)
# Prints PASS or FAIL: <reason> last; SKIP lines for the parts this machine cannot run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/test-lib.sh
source "$here/test-lib.sh"
root=$(cd "$here/.." && pwd)
bin=${FARM_BIN:-$root/target/release/farm}
units=(farm-master.service farm-worker@main.service)

failed=0
fail() {
    failed=1
    echo "FAIL: $*"
    exit 1
}

[[ -x $bin ]] || fail "$bin is missing: build it with cargo build --release --bin farm"
work=$(mktemp -d "${TMPDIR:-/tmp}/farm-systemd.XXXXXX")
container=farm-systemd-test-$$
image=farm-systemd-test:local
cleanup() {
    local rc=$?
    set +e
    [[ $rc -eq 0 || $failed -eq 1 ]] || echo "FAIL: unexpected error (exit code $rc); see the output above"
    if command -v docker >/dev/null; then
        if [[ $rc -ne 0 ]] && docker inspect "$container" >/dev/null 2>&1; then
            echo "---- journal ----"
            timeout 30 docker exec "$container" journalctl -u 'farm-*' --no-pager -n 40
        fi
        timeout 60 docker rm -f "$container" >/dev/null 2>&1
        timeout 60 docker rmi "$image" >/dev/null 2>&1
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

# ---- 1. verify ---------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed (apt-get install systemd): units not verified"
else
    vroot=$work/verify
    mkdir -p "$vroot/usr/local/bin" "$vroot/etc/systemd/system" "$vroot/usr/lib/systemd"
    cp "$bin" "$vroot/usr/local/bin/farm"
    cp "$here"/systemd/*.service "$vroot/etc/systemd/system/"
    cp -a /usr/lib/systemd/system "$vroot/usr/lib/systemd/" # sysinit.target and the rest
    out=$(cd "$vroot/etc/systemd/system" && systemd-analyze verify --root="$vroot" "${units[@]}" 2>&1) ||
        fail "systemd-analyze verify: $out"
    [[ -z $out ]] || fail "systemd-analyze verify printed: $out"
    log "systemd-analyze verify ${units[*]}: no complaint"
    for u in "${units[@]}"; do
        score=$(cd "$vroot/etc/systemd/system" &&
            systemd-analyze security --offline=true --root="$vroot" "$u" 2>&1 | grep 'Overall exposure') ||
            score="no score"
        log "systemd-analyze security --offline: ${score#→ }"
    done
fi

# ---- 2. boot -----------------------------------------------------------------------------
boot_skip() {
    echo "SKIP: $*: the units were not run"
    echo "PASS"
    exit 0
}
[[ ${FARM_TEST_SYSTEMD_BOOT:-1} == 1 ]] || boot_skip "FARM_TEST_SYSTEMD_BOOT=0"
command -v docker >/dev/null || boot_skip "docker is not installed"
timeout 30 docker info >/dev/null 2>&1 || boot_skip "the Docker engine does not answer"
[[ -x /lib/systemd/systemd ]] || boot_skip "this host has no /lib/systemd/systemd to boot"

umask 022
rootfs=$work/boot/rootfs
mkdir -p "$rootfs"
(
    cd "$rootfs"
    ln -s usr/bin bin && ln -s usr/sbin sbin && ln -s usr/lib lib && ln -s usr/lib64 lib64
    mkdir -p usr/local/bin var/log var/lib var/tmp run tmp root
    chmod 1777 tmp var/tmp
)
# A copy of this host's /etc, without the services it enables (docker, databases, timers...).
cp -a /etc "$rootfs/etc"
rm -rf "$rootfs"/etc/systemd/system/*.wants "$rootfs/etc/machine-id"
: >"$rootfs/etc/machine-id"
# Installed as deploy/README.md says.
install -m 0755 "$bin" "$rootfs/usr/local/bin/farm"
install -D -m 0644 "$here/systemd/farm.sysusers" "$rootfs/etc/sysusers.d/farm.conf"
install -m 0644 "$here"/systemd/*.service "$rootfs/etc/systemd/system/"
mkdir -p "$rootfs/etc/farm"
echo 'FARM_MASTER=http://127.0.0.1:7070' >"$rootfs/etc/farm/worker.env"
echo 'FARM_THREADS=1' >"$rootfs/etc/farm/worker-a.env"
printf 'FARM_THREADS=2\nFARM_ALLOW_EXEC=true\n' >"$rootfs/etc/farm/worker-b.env"
printf 'FROM scratch\nCOPY rootfs/ /\n' >"$work/boot/Dockerfile"
timeout 300 docker build -q -t "$image" "$work/boot" >/dev/null || fail "docker build of the systemd test image failed"

mounts=()
for d in /usr/*; do
    [[ $d == /usr/local ]] || mounts+=(-v "$d:$d:ro")
done
if ! timeout 60 docker run -d --name "$container" --cap-add SYS_ADMIN --security-opt seccomp=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    -e container=docker "${mounts[@]}" "$image" /lib/systemd/systemd >/dev/null; then
    boot_skip "this Docker engine cannot run systemd in a container"
fi
sx() { timeout 120 docker exec "$container" "$@"; }
farmc() { sx /usr/local/bin/farm "$@"; }
booted() { [[ $(sx systemctl is-system-running 2>/dev/null) =~ ^(running|degraded)$ ]]; }
wait_for 60 "systemd to boot in the container" booted
log "systemd booted in container $container"
sx getent passwd farm >/dev/null || fail "systemd-sysusers did not create the user farm"

sx systemctl start farm-master farm-worker@a farm-worker@b || fail "systemctl start failed"
wait_for 30 "2 workers" workers_are 2
w=$(farmc workers --json | sed 's/},{/}\n{/g' | sed -n 's/.*"name":"\([^"]*\)".*"threads":\([0-9]*\).*/\1 \2/p')
if ! grep -q -- '-a 1$' <<<"$w" || ! grep -q -- '-b 2$' <<<"$w"; then
    fail "instances a and b do not show their names (HOST-a, HOST-b) and threads (1, 2): $w"
fi
log "farm-master, farm-worker@a and farm-worker@b running; name and threads: $(tr '\n' ' ' <<<"$w")"

out=$(farmc submit primes --range 0..1000000 --shard-size 10000 --wait --json)
[[ $out == *'"result":78498,'* ]] || fail "primes: expected 78498, got: $out"
log "primes 0..1000000 = 78498"

for u in farm-master farm-worker@a; do
    pid=$(sx systemctl show -p MainPID --value "$u")
    st=$(sx cat "/proc/$pid/status")
    [[ $st == *$'NoNewPrivs:\t1'* && $st == *$'Seccomp:\t2'* && $st == *$'CapEff:\t0000000000000000'* ]] ||
        fail "$u (pid $pid) is not confined: $(grep -E 'NoNewPrivs|Seccomp:|CapEff' <<<"$st")"
    [[ $(sx ps -o user= -p "$pid") == farm ]] || fail "$u does not run as farm"
done
out=$(farmc submit exec --range 0..2 --param 'cmd=/usr/bin/echo hi {}' --wait --json)
[[ $out == *'"stdout":"hi 0\n"'*'"stdout":"hi 1\n"'* ]] || fail "exec kernel under the hardening: $out"
out=$(farmc submit exec --range 0..1 --param 'cmd=/usr/bin/touch /var/lib/farm-test' --param allow_fail=true --wait --json)
[[ $out == *'"exit_code":1'* ]] || fail "an exec shard could write to /var/lib despite ProtectSystem=strict: $out"
log "hardening in force: user farm, NoNewPrivs, seccomp filter, no capabilities; exec kernel runs echo, cannot write /var"

st=$(sx stat -c '%U %a' /var/lib/farm)
[[ $st == "farm 700" ]] || fail "the master's StateDirectory /var/lib/farm is '$st', not 'farm 700'"
log "the master's StateDirectory /var/lib/farm: owner farm, mode 700"
if has_journal; then
    sx test -s /var/lib/farm/journal.redb || fail "no journal at /var/lib/farm/journal.redb"
    job=$(farmc submit spin --range 0..90 --shard-size 1 --param ms=100 --json | sed -n 's/.*"job":\([0-9]*\).*/\1/p')
    midway() { [[ $(farmc status "$job" --json) =~ \"done\":([0-9]+) ]] && ((BASH_REMATCH[1] >= 10)); }
    wait_for 30 "job $job to be under way" midway
    sx systemctl kill -s KILL farm-master
    back() { (($(sx systemctl show -p NRestarts --value farm-master) >= 1)) && workers_are 2; }
    wait_for 30 "farm-master to be restarted after SIGKILL, with both workers" back
    out=$(farmc watch "$job" --json) || fail "watch $job after the master restart failed"
    [[ $out == *'"state":"succeeded"'* && $out == *'"result":90,'* ]] || fail "spin 0..90 across a master restart: expected 90, got: $out"
    log "farm-master killed with SIGKILL mid-job: restarted, replayed /var/lib/farm/journal.redb, spin 0..90 = 90"
else
    log "this farm has no 'master --journal': master restart mid-job not checked"
fi

pid=$(sx systemctl show -p MainPID --value farm-worker@a)
sx kill -KILL "$pid"
restarted() { (($(sx systemctl show -p NRestarts --value farm-worker@a) >= 1)) && workers_are 2; }
wait_for 30 "farm-worker@a to be restarted after SIGKILL" restarted
log "farm-worker@a killed with SIGKILL: restarted (Restart=on-failure)"

# One line per worker; "worker" (the id) comes before "name" in each.
id=$(farmc workers --json | sed 's/},{/}\n{/g' | grep '"name":"[^"]*-a"' | sed -n 's/.*"worker":\([0-9]*\).*/\1/p')
[[ $id =~ ^[0-9]+$ ]] || fail "no worker named HOST-a in: $(farmc workers --json)"
farmc workers drain "$id" >/dev/null
stopped() { [[ $(sx systemctl is-active farm-worker@a || true) == inactive ]]; }
wait_for 30 "farm-worker@a to exit after a drain" stopped
sleep 3
[[ $(sx systemctl is-active farm-worker@a || true) == inactive ]] || fail "a drained worker was restarted"
log "farm-worker@a drained (farm workers drain $id): exited 0 and stays stopped"

# Worker b takes both 35-s shards; stop it 3 s in.
job=$(farmc submit spin --range 0..2 --shard-size 1 --param ms=35000 --json | sed -n 's/.*"job":\([0-9]*\).*/\1/p')
busy() { [[ $(farmc status "$job" --json) == *'"in_flight":2,'* ]]; }
wait_for 30 "job $job to run on worker b" busy
sleep 3
t0=$SECONDS
sx systemctl stop farm-worker@b
took=$((SECONDS - t0))
res=$(sx systemctl show -p Result --value farm-worker@b)
code=$(sx systemctl show -p ExecMainStatus --value farm-worker@b)
[[ $res == success && $code == 0 ]] || fail "stopping a draining worker: Result=$res, status $code (SIGKILLed?)"
((took >= 25 && took < 45)) || fail "stopping a draining worker took ${took}s; expected its 30-s drain timeout"
log "systemctl stop farm-worker@b mid-shard took ${took}s (drain timeout 30 s < TimeoutStopSec 45 s), Result=success"
sx systemctl start farm-worker@a farm-worker@b
out=$(timeout 150 docker exec "$container" /usr/local/bin/farm watch "$job" --json) || fail "watch $job failed"
[[ $out == *'"state":"succeeded"'* && $out == *'"result":2,'* ]] || fail "spin 0..2 after the drain: expected 2, got: $out"
log "the handed-back shards ran again on a and b: spin 0..2 = 2"

sx systemctl stop farm-master farm-worker@a farm-worker@b
[[ $(sx systemctl show -p Result --value farm-master) == success ]] || fail "farm-master did not stop cleanly"
log "all units stopped cleanly"
echo "PASS"
