# Ray's "Simple Parallel Model Selection" tutorial (plot_hyperparameter.ipynb), as measured
# against examples/ray_docs/model_selection.rs: the same synthetic dataset and model (logistic
# regression, one epoch of minibatch SGD with momentum, in plain Python as the port's Rust is
# plain loops), random hyperparameters, results taken with ray.wait; ray.init(num_cpus=2).
import math
import random
import sys
import time

import ray

started = time.time()
ray.init(num_cpus=2)
after_start = time.time()

QUICK = "--quick" in sys.argv
NUM_EVALUATIONS, POINTS = (4, 2_000) if QUICK else (10, 200_000)
FEATURES = 20


def dataset(points, seed):
    rng = random.Random(seed)
    hidden = [rng.gauss(0, 1) for _ in range(FEATURES)]
    xs, ys = [], []
    for _ in range(points):
        x = [rng.gauss(0, 1) for _ in range(FEATURES)]
        side = sum(a * b for a, b in zip(x, hidden)) > 0
        flipped = rng.random() < 0.05
        xs.append(x)
        ys.append(1.0 if side != flipped else 0.0)
    return xs, ys


@ray.remote
def evaluate_hyperparameters(config, points):
    xs, ys = dataset(points, 7)
    split = points * 4 // 5
    train, test, train_y, test_y = xs[:split], xs[split:], ys[:split], ys[split:]
    w, velocity = [0.0] * (FEATURES + 1), [0.0] * (FEATURES + 1)
    b = config["batch_size"]
    for start in range(0, len(train), b):
        batch, labels = train[start : start + b], train_y[start : start + b]
        grad = [0.0] * (FEATURES + 1)
        for x, y in zip(batch, labels):
            z = w[FEATURES] + sum(a * c for a, c in zip(x, w))
            error = 1.0 / (1.0 + math.exp(-z)) - y
            for i in range(FEATURES):
                grad[i] += error * x[i]
            grad[FEATURES] += error
        for i in range(FEATURES + 1):
            velocity[i] = config["momentum"] * velocity[i] - config["learning_rate"] * grad[i] / len(batch)
            w[i] += velocity[i]
    correct = 0
    for x, y in zip(test, test_y):
        z = w[FEATURES] + sum(a * c for a, c in zip(x, w))
        correct += (z > 0) == (y > 0.5)
    return correct / len(test)


rng = random.Random(42)
remaining, configs = [], {}
for _ in range(NUM_EVALUATIONS):
    config = {
        "learning_rate": 10 ** (-4 + 3 * rng.random()),
        "momentum": 0.1 + 0.8 * rng.random(),
        "batch_size": rng.choice([16, 32, 64]),
    }
    ref = evaluate_hyperparameters.remote(config, POINTS)
    remaining.append(ref)
    configs[ref] = config

best, best_config = 0.0, None
while remaining:
    [done], remaining = ray.wait(remaining, num_returns=1)
    accuracy = ray.get(done)
    print(f"accuracy {accuracy:.3f} with {configs[done]}")
    if accuracy > best:
        best, best_config = accuracy, configs[done]
print(f"best accuracy {best:.3f} with {best_config}")
print(f"work took {time.time() - after_start:.3f} s")
print(f"start-up took {after_start - started:.3f} s")
