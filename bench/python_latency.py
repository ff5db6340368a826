#!/usr/bin/env python3
"""One-task latency from Python: a one-shard noop job, from submit to its finished result.

    python3 bench/python_latency.py --master URL [--n 1000] [--mode watch|run]

Against a running master (`farm master --listen 127.0.0.1:0 --workers 1 --threads 1` prints
its address), it waits for a worker, warms up, then times N jobs one after another and prints
one JSON line: {"p50_ms", "p99_ms", "max_ms", "n", "mode"}. Mode `watch` is Submit then Watch
until the final status; mode `run` is one Run call (submit and wait). The stubs are generated
from proto/farm.proto as examples/python/farm_client.py does (pip install -r
examples/python/requirements.txt). FARM_TOKEN, when set, is sent as the token.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "python"))

import farm_client  # noqa: E402  (found through the path above)

# How long the master gets to show a connected worker.
WORKER_WAIT_S = 30.0
# A job that takes longer than this fails the run rather than hang it.
JOB_TIMEOUT_S = 30.0


def wait_for_worker(farm, pb, metadata):
    """Waits until the master lists a worker, so the first timed job does not wait for one."""
    deadline = time.monotonic() + WORKER_WAIT_S
    while time.monotonic() < deadline:
        reply = farm.ListWorkers(pb.ListWorkersRequest(), metadata=metadata, timeout=5)
        if reply.workers:
            return
        time.sleep(0.05)
    sys.exit(f"error: no worker connected within {WORKER_WAIT_S:.0f} s")


def one_watch(farm, pb, spec, metadata):
    """Submit, then Watch until the final status."""
    final, _ = farm_client.submit_and_watch(
        farm, pb, spec, metadata, JOB_TIMEOUT_S, shard_results=False)
    if final is None:
        sys.exit("error: the watch ended without the job's final status")
    return final


def one_run(farm, pb, spec, metadata):
    """One Run call: submit and wait."""
    return farm_client.run(farm, pb, spec, metadata, JOB_TIMEOUT_S)


def percentile(sorted_ns, p):
    """The sample at fraction p of the sorted samples, in ms (as farm-bench picks it)."""
    i = min(int(len(sorted_ns) * p), len(sorted_ns) - 1)
    return sorted_ns[i] / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", required=True, help="master URL or host:port")
    parser.add_argument("--n", type=int, default=1000, help="timed jobs")
    parser.add_argument("--warmup", type=int, default=100, help="untimed jobs first")
    parser.add_argument("--mode", choices=["watch", "run"], default="watch")
    args = parser.parse_args()
    if args.n < 1:
        sys.exit("error: --n must be at least 1")

    import grpc

    pb, rpc = farm_client.load_stubs()
    target = args.master.removeprefix("http://")
    token = os.environ.get("FARM_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else []
    one = one_run if args.mode == "run" else one_watch
    spec = pb.JobSpec(kind="noop", start=0, end=1, shard_size=1)

    with grpc.insecure_channel(target) as channel:
        farm = rpc.FarmServiceStub(channel)
        wait_for_worker(farm, pb, metadata)
        samples = []
        for i in range(args.warmup + args.n):
            start = time.perf_counter_ns()
            final = one(farm, pb, spec, metadata)
            took = time.perf_counter_ns() - start
            if final.state != pb.JOB_STATE_SUCCEEDED:
                sys.exit(f"error: job {final.job_id} ended {final.state}: {final.error}")
            if i >= args.warmup:
                samples.append(took)
    samples.sort()
    print(json.dumps({
        "p50_ms": round(percentile(samples, 0.50), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "max_ms": round(samples[-1] / 1e6, 3),
        "n": len(samples),
        "mode": args.mode,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
