# Ray's "A Simple MapReduce Example" (doc/source/ray-core/examples/map_reduce.ipynb), as
# measured against examples/ray_docs/map_reduce.rs: the same corpus (the Zen of Python, from
# zen.txt, repeated), 3 partitions, ray.init(num_cpus=2).
import os
import sys
import time

import ray

started = time.time()
ray.init(num_cpus=2)
after_start = time.time()

copies = 50 if "--quick" in sys.argv else 20_000
zen = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "zen.txt")).read()
corpus = (zen * copies).split()
num_partitions = 3
chunk = len(corpus) // num_partitions
partitions = [corpus[i * chunk : (i + 1) * chunk] for i in range(num_partitions)]


def map_function(document):
    for word in document.lower().split():
        yield word, 1


@ray.remote
def apply_map(corpus, num_partitions=3):
    map_results = [list() for _ in range(num_partitions)]
    for document in corpus:
        for result in map_function(document):
            first_letter = result[0][0]
            word_index = ord(first_letter) % num_partitions
            map_results[word_index].append(result)
    return map_results


map_results = [
    apply_map.options(num_returns=num_partitions).remote(data, num_partitions)
    for data in partitions
]


@ray.remote
def apply_reduce(*results):
    reduce_results = dict()
    for res in results:
        for key, value in res:
            if key not in reduce_results:
                reduce_results[key] = 0
            reduce_results[key] += value
    return reduce_results


outputs = []
for i in range(num_partitions):
    outputs.append(apply_reduce.remote(*[partition[i] for partition in map_results]))

counts = {k: v for output in ray.get(outputs) for k, v in output.items()}
sorted_counts = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
for word, count in sorted_counts[:10]:
    print(f"{word}: {count}")
print(f"{len(counts)} distinct words, {sum(counts.values())} in all")
print(f"work took {time.time() - after_start:.3f} s")
print(f"start-up took {after_start - started:.3f} s")
