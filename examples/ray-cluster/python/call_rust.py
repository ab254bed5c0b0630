"""Calls RustyRay remote functions from Python through Ray's cross-language API.

RustyRay's workers expose one entry point to other languages, `RustyRayJson`: it takes the
registered id of a `#[rustyray::remote]` function (its module path and name) and the
arguments as a JSON array, and returns the result as JSON.

    python call_rust.py 127.0.0.1:6379 /path/to/folder/with/the/cdylib
"""

import json
import sys

import ray


def call(function, *args):
    """Runs the RustyRay function `function` on the cluster; returns its decoded result."""
    entry = ray.cross_language.cpp_function("RustyRayJson")
    return json.loads(ray.get(entry.remote(function, json.dumps(list(args)))))


def main():
    address, code_search_path = sys.argv[1], sys.argv[2]
    ray.init(
        address=address,
        job_config=ray.job_config.JobConfig(code_search_path=[code_search_path]),
        logging_level="WARNING",
    )
    total = call("ray_cluster::add", 2, 40)
    assert total == 42, total
    print("ray_cluster::add(2, 40) =", total)

    counts = call("ray_cluster::count_words", "the cat saw the dog and the bird")
    assert counts[0] == {"word": "the", "n": 3}, counts
    print("ray_cluster::count_words(...) =", counts[:3], "...")

    # A RustyRay error reaches Python as Ray's task error, with RustyRay's message in it.
    try:
        call("ray_cluster::check_even", 3)
        raise AssertionError("check_even(3) should fail")
    except ray.exceptions.RayError as error:
        assert "3 is odd" in str(error), error
        print("ray_cluster::check_even(3) failed as expected: 3 is odd")

    # An unknown id is reported by name.
    try:
        call("ray_cluster::no_such_function")
        raise AssertionError("an unknown id should fail")
    except ray.exceptions.RayError as error:
        assert "ray_cluster::no_such_function" in str(error), error
        print("an unknown id fails with its name")
    print("python -> rust: ok")


if __name__ == "__main__":
    main()
