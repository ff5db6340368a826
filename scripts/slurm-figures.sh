#!/usr/bin/env bash
# The allocation figures of BENCHMARKS.md, on the local Slurm of scripts/slurm-up.sh:
#  1. time from submitting a one-shard job to its shard done on a newly allocated worker
#     (no worker connected before: the allocator's tick, sbatch, Slurm starting the job, srun,
#     the worker starting and registering, the shard), RUNS times;
#  2. allocations submitted for a burst of sleep shards against the ideal number.
# Usage: scripts/slurm-figures.sh [FARM_BINARY] (default target/debug/farm)
set -euo pipefail
farm=${1:-target/debug/farm}
runs=${RUNS:-5}
dir=$(mktemp -d)
"$farm" master --listen 127.0.0.1:0 --alloc-dir "$dir/alloc" >"$dir/out" 2>"$dir/log" &
master=$!
trap 'kill $master 2>/dev/null; wait $master 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q listening "$dir/out" && break; sleep 0.1; done
export FARM_MASTER=$(sed -n 's/.*listening on //p' "$dir/out")
now() { date +%s.%N; }
live() { "$farm" alloc list --json | python3 -c 'import json,sys; print(sum(a["state"] in ("queued","running") for q in json.load(sys.stdin) for a in q["allocations"]))'; }

"$farm" alloc add slurm --name first --max-workers 1 --threads 1 --idle-timeout 1s >/dev/null
echo "first shard on a new allocation (noop, 1 shard):"
for i in $(seq "$runs"); do
  while [[ $(live) != 0 ]]; do sleep 0.2; done
  start=$(now)
  "$farm" submit noop --range 0..1 --wait >/dev/null
  took=$(echo "$(now) - $start" | bc)
  # When the allocator submitted and when the worker joined, from the master's log.
  python3 - "$dir/log" "$start" "$took" "$i" <<'PY'
import re, sys, datetime
log, start, took, run = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def at(pattern):
    for line in reversed(open(log, errors="replace").read().splitlines()):
        m = re.match(r"\S*?(\d{4}-\d\d-\d\dT[\d:.]+)Z.*" + pattern, line)
        if m:
            t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
            return t.timestamp() - start
print(f"  run {run}: {took:.2f} s (sbatch done at {at('allocation submitted'):.2f} s, worker joined at {at('worker joined'):.2f} s)")
PY
done
"$farm" alloc remove first --now >/dev/null

shards=${SHARDS:-480}
ms=${MS:-250}
max=${MAX_WORKERS:-4}
while [[ $(live) != 0 ]]; do sleep 0.2; done
"$farm" alloc add slurm --name burst --max-workers "$max" --threads 1 --idle-timeout 5s >/dev/null
start=$(now)
"$farm" submit sleep --range "0..$shards" --shard-size 1 --param "ms=$ms" --wait >/dev/null
took=$(echo "$(now) - $start" | bc)
sleep 4 # the poll that sees a cancelled allocation end
echo "slurm node cpus: $(sinfo -h -o %c), so at most $(( $(sinfo -h -o %c) )) one-thread workers run at once"
"$farm" alloc list --json | python3 -c "
import json, sys
q = [q for q in json.load(sys.stdin) if q['spec']['name'] == 'burst'][0]
a = q['allocations']
print(f'burst: {$shards} sleep shards of {$ms} ms ({$shards * $ms / 1000:.0f} s of work), --max-workers {$max}, 1 thread each: {$took:.1f} s wall')
print(f'  allocations submitted {len(a)}: ' + ', '.join(f'{x[\"id\"]} {x[\"state\"]} {x[\"detail\"] or \"-\"} (workers seen {x[\"workers_seen\"]})' for x in a))
"
