# Ray's Monte Carlo π tutorial (doc/source/ray-core/doc_code/monte_carlo_pi.py), as measured
# against examples/ray_docs/monte_carlo_pi.rs: same sizes, ray.init(num_cpus=2). The progress
# poll waits on the results instead of sleeping a second, as the Rust port does.
import math
import random
import sys
import time

import ray

started = time.time()
ray.init(num_cpus=2)
after_start = time.time()

QUICK = "--quick" in sys.argv
NUM_SAMPLING_TASKS = 10
NUM_SAMPLES_PER_TASK = 200_000 if QUICK else 10_000_000
TOTAL_NUM_SAMPLES = NUM_SAMPLING_TASKS * NUM_SAMPLES_PER_TASK


@ray.remote
class ProgressActor:
    def __init__(self, total_num_samples: int):
        self.total_num_samples = total_num_samples
        self.num_samples_completed_per_task = {}

    def report_progress(self, task_id: int, num_samples_completed: int) -> None:
        self.num_samples_completed_per_task[task_id] = num_samples_completed

    def get_progress(self) -> float:
        return sum(self.num_samples_completed_per_task.values()) / self.total_num_samples


@ray.remote
def sampling_task(num_samples: int, task_id: int, progress_actor) -> int:
    num_inside = 0
    for i in range(num_samples):
        x, y = random.uniform(-1, 1), random.uniform(-1, 1)
        if math.hypot(x, y) <= 1:
            num_inside += 1
        if (i + 1) % 1_000_000 == 0:
            progress_actor.report_progress.remote(task_id, i + 1)
    progress_actor.report_progress.remote(task_id, num_samples)
    return num_inside


progress_actor = ProgressActor.remote(TOTAL_NUM_SAMPLES)
results = [
    sampling_task.remote(NUM_SAMPLES_PER_TASK, i, progress_actor)
    for i in range(NUM_SAMPLING_TASKS)
]
pending = results
while pending:
    _, pending = ray.wait(pending, num_returns=1)
    progress = ray.get(progress_actor.get_progress.remote())
    print(f"Progress: {int(progress * 100)}%")

total_num_inside = sum(ray.get(results))
pi = (total_num_inside * 4) / TOTAL_NUM_SAMPLES
print(f"Estimated value of π is: {pi}")
print(f"work took {time.time() - after_start:.3f} s")
print(f"start-up took {after_start - started:.3f} s")
