"""`python -m farm worker ...`: see `farm.worker`."""

import sys


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] != "worker":
        print("usage: python -m farm worker --master URL [--processes P] [--threads T] "
              "[--allow-python] [--token T | --token-file F] [--name N]", file=sys.stderr)
        return 2
    from .worker import main as worker_main

    return worker_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
