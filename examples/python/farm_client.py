#!/usr/bin/env python3
"""A farm client in Python, generated from proto/farm.proto: any language with gRPC can submit
jobs to a farm master and stream their results.

    pip install -r examples/python/requirements.txt
    python3 examples/python/farm_client.py --master 127.0.0.1:7070 primes 0 1000000 10000

It generates the Python stubs from proto/farm.proto into a temporary folder (with grpcio-tools,
no system protoc), submits the job, streams progress and every shard's result, checks that
each shard arrived exactly once, and prints the job's final status as JSON. With --run it
makes one call instead, Run, which submits the job and answers with its final status (no
shard results): the quickest way to a small job's result. FARM_TOKEN, when set, is sent as
the token. The exit status is 0 only if the job succeeded.
"""

import argparse
import importlib
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "proto")


def load_stubs():
    """Generates farm_pb2 / farm_pb2_grpc from proto/farm.proto and imports them."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="farm-py-")
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}", "farm.proto"]
    if protoc.main(args) != 0:
        sys.exit("error: cannot generate the Python stubs from proto/farm.proto")
    sys.path.insert(0, out)
    return importlib.import_module("farm_pb2"), importlib.import_module("farm_pb2_grpc")


def submit_and_watch(farm, pb, spec, metadata, timeout, shard_results=True):
    """Submit, then Watch (with shard results unless told not to) until the job ends: (final
    status, or None if the watch ended without it; times each shard's result was seen)."""
    job = farm.Submit(pb.SubmitRequest(spec=spec), metadata=metadata, timeout=30)
    seen = {}
    final = None
    # replay: the shard results accepted between Submit and Watch come first, none missed.
    request = pb.WatchRequest(job_id=job.job_id, shard_results=shard_results, replay=shard_results)
    for event in farm.Watch(request, metadata=metadata, timeout=timeout):
        which = event.WhichOneof("event")
        if which == "shard":
            seen[event.shard.shard] = seen.get(event.shard.shard, 0) + 1
        elif which == "finished":
            final = event.finished
    return final, seen


def run(farm, pb, spec, metadata, timeout):
    """One call, Run: submits the job and answers once it ended with its final status (a
    failed job's too). The job keeps running if this client goes away or times out."""
    return farm.Run(pb.RunRequest(spec=spec), metadata=metadata, timeout=timeout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="127.0.0.1:7070", help="master host:port")
    parser.add_argument("kind", help="kernel, e.g. primes")
    parser.add_argument("start", type=int, help="first index")
    parser.add_argument("end", type=int, help="one past the last index")
    parser.add_argument("shard_size", type=int, help="indices per shard")
    parser.add_argument("--param", action="append", default=[], help="key=value, repeatable")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the job")
    parser.add_argument("--run", action="store_true",
                        help="one Run call instead of Submit and Watch (no shard results)")
    args = parser.parse_args()

    import grpc

    pb, rpc = load_stubs()
    params = dict(p.split("=", 1) for p in args.param)
    token = os.environ.get("FARM_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else []

    with grpc.insecure_channel(args.master) as channel:
        farm = rpc.FarmServiceStub(channel)
        spec = pb.JobSpec(kind=args.kind, start=args.start, end=args.end,
                          shard_size=args.shard_size, params=params)
        try:
            if args.run:
                final, seen = run(farm, pb, spec, metadata, args.timeout), None
            else:
                final, seen = submit_and_watch(farm, pb, spec, metadata, args.timeout)
        except grpc.RpcError as e:
            sys.exit(f"error: {e.code().name.lower()}: {e.details()}")
        if final is None:
            sys.exit("error: the watch ended without the job's final status")
        twice = [s for s, n in (seen or {}).items() if n > 1]
        state = pb.JobState.Name(final.state).removeprefix("JOB_STATE_").lower()
        print(json.dumps({
            "job": final.job_id,
            "kind": final.kind,
            "state": state,
            "shards": final.shards_total,
            "call": "run" if args.run else "submit+watch",
            "shard_results_seen": None if seen is None else len(seen),
            "shards_seen_twice": None if seen is None else len(twice),
            "error": final.error or None,
            "result": json.loads(final.result_json) if final.result_json else None,
            "elapsed_ms": final.elapsed_ms,
        }))
        return 0 if state == "succeeded" and not twice else 1


if __name__ == "__main__":
    sys.exit(main())
