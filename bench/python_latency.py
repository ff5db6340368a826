#!/usr/bin/env python3
"""One-task latency from the Python client: a one-shard noop job, Submit then Watch until it
finished, N times against a running master; prints one JSON line
{"p50_ms": .., "p99_ms": .., "n": ..}.

    python3 bench/python_latency.py --master 127.0.0.1:7070 --n 500

A stand-in written for `farm-bench peers` (the stubs are generated from proto/farm.proto as
examples/python/farm_client.py does; needs grpcio and grpcio-tools). FARM_TOKEN, when set, is
sent as the token. A few round trips are made first and not counted (connection set-up).
"""

import argparse
import importlib
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "proto")
WARMUP = 10


def load_stubs():
    """Generates farm_pb2 / farm_pb2_grpc from proto/farm.proto and imports them."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="farm-py-")
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}", "farm.proto"]
    if protoc.main(args) != 0:
        sys.exit("error: cannot generate the Python stubs from proto/farm.proto")
    sys.path.insert(0, out)
    return importlib.import_module("farm_pb2"), importlib.import_module("farm_pb2_grpc")


def one_job(farm, pb, metadata):
    """Submits a one-shard noop job and watches it to its end; fails unless it succeeded."""
    spec = pb.JobSpec(kind="noop", start=0, end=1, shard_size=1)
    job = farm.Submit(pb.SubmitRequest(spec=spec), metadata=metadata, timeout=30)
    final = None
    for event in farm.Watch(pb.WatchRequest(job_id=job.job_id), metadata=metadata, timeout=30):
        if event.WhichOneof("event") == "finished":
            final = event.finished
    if final is None or pb.JobState.Name(final.state) != "JOB_STATE_SUCCEEDED":
        sys.exit(f"error: job {job.job_id} did not succeed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", required=True, help="host:port (an http:// prefix is dropped)")
    parser.add_argument("--n", type=int, default=1000, help="round trips to time")
    args = parser.parse_args()

    import grpc

    pb, rpc = load_stubs()
    target = args.master.removeprefix("http://")
    token = os.environ.get("FARM_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else []
    samples = []
    with grpc.insecure_channel(target) as channel:
        farm = rpc.FarmServiceStub(channel)
        for i in range(WARMUP + args.n):
            start = time.perf_counter()
            one_job(farm, pb, metadata)
            if i >= WARMUP:
                samples.append((time.perf_counter() - start) * 1000.0)
    samples.sort()
    pct = lambda p: samples[min(int(len(samples) * p), len(samples) - 1)]  # noqa: E731
    print(json.dumps({"p50_ms": round(pct(0.50), 3), "p99_ms": round(pct(0.99), 3), "n": len(samples)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
