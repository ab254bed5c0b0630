"""Ray's own microbenchmark workloads with Ray's Python API, for `ray-bench` to print beside
RustyRay's on the same head in the same run.

    python workloads.py 127.0.0.1:6379 [--quick]

Prints one JSON object on its last line: each workload's name and its median rate per second.
The workloads and their sizes are those of `src/bin/ray-bench.rs`; keep the two in step.
"""

import json
import statistics
import sys
import time

import numpy as np
import ray


@ray.remote
def square(x):
    return x * x


@ray.remote(num_returns=2)
def div_mod(a, b):
    return a // b, a % b


@ray.remote(num_returns="streaming")
def numbers(n):
    for i in range(n):
        yield i


@ray.remote
def total(values):
    return int(values.sum())


@ray.remote
class Counter:
    def __init__(self, start):
        self.count = start

    def add(self, n):
        self.count += n
        return self.count


def rate(budget, ops, round_):
    """Runs `round_` (which does `ops` operations) for about `budget` seconds; the median rate."""
    round_()  # warm-up: workers started, code loaded
    rates = []
    start = time.perf_counter()
    while len(rates) < 3 or (time.perf_counter() - start < budget and len(rates) < 15):
        t = time.perf_counter()
        round_()
        rates.append(ops / (time.perf_counter() - t))
    return statistics.median(rates)


def main():
    address = sys.argv[1]
    quick = "--quick" in sys.argv
    budget = 1.0 if quick else 4.0
    batch = 200 if quick else 1000
    settle = 1.0 if quick else 5.0
    ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    # Let the head settle: workers started, then a pause before anything is timed.
    ray.get([square.remote(i) for i in range(batch)])
    time.sleep(settle)

    out = {}
    out["single client tasks sync"] = rate(
        budget, 10, lambda: [ray.get(square.remote(i)) for i in range(10)]
    )
    out["single client tasks async"] = rate(
        budget, batch, lambda: ray.get([square.remote(i) for i in range(batch)])
    )
    counter = Counter.remote(0)
    out["1:1 actor calls sync"] = rate(
        budget, 10, lambda: [ray.get(counter.add.remote(1)) for _ in range(10)]
    )
    out["1:1 actor calls async"] = rate(
        budget, batch, lambda: ray.get([counter.add.remote(1) for _ in range(batch)])
    )
    out["tasks with num_returns = 2 async"] = rate(
        budget,
        batch,
        lambda: ray.get([part for i in range(batch) for part in div_mod.remote(i, 3)]),
    )
    out["stream items (1000 a stream)"] = rate(
        budget, batch, lambda: ray.get(list(numbers.remote(batch)))
    )
    out["streams of 3 items"] = rate(
        budget, 10, lambda: [ray.get(list(numbers.remote(3))) for _ in range(10)]
    )
    big = ray.put(np.arange(8 << 20, dtype=np.uint64))  # 64 MiB, read in place by the worker
    out["64 MiB Vec<u64> task by &T"] = rate(budget, 1, lambda: ray.get(total.remote(big)))
    # The same task, beside RustyRay's `&[u64]` line (a slice read where Ray's buffer holds it).
    out["64 MiB task by &[u64]"] = out["64 MiB Vec<u64> task by &T"]
    out["put + get calls (small)"] = rate(
        budget, 100, lambda: [ray.get(ray.put(i)) for i in range(100)]
    )
    ray.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
