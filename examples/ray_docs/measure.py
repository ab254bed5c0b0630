"""Runs each port and its Ray original, and prints a table: wall time end to end, the time
each program reports for its work (after start-up), and the peak resident memory of the whole
process tree (the driver and every process it started: Ray's head, raylet and workers too).

Called by measure.sh, with the Ray venv's Python (measure.sh installs psutil there).
"""
import re
import subprocess
import sys
import time

import psutil

PROGRAMS = ["monte_carlo_pi", "map_reduce", "model_selection"]


def tree_rss(process):
    total = 0
    try:
        for p in [process] + process.children(recursive=True):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def run(command):
    started = time.time()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss(process))
        time.sleep(0.02)  # sampling the tree: this script is a measurement, not the runtime
    wall = time.time() - started
    output = child.stdout.read()
    if child.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{output}")
    work = float(re.search(r"work took ([0-9.]+) s", output).group(1))
    return wall, work, peak


def main():
    quick = "--quick" in sys.argv
    extra = ["--quick"] if quick else []
    print(f"| program | RustyRay end to end | Ray 2.60 end to end | ratio | RustyRay after start-up | Ray after start-up | ratio | peak memory RustyRay | peak memory Ray (process tree) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in PROGRAMS:
        ours = run([f"target/release/examples/{name}"] + extra)
        ray = run([sys.executable, f"examples/ray_docs/{name}.py"] + extra)
        mib = lambda b: f"{b / (1 << 20):.0f} MiB"
        print(
            f"| {name} | {ours[0]:.2f} s | {ray[0]:.2f} s | {ray[0] / ours[0]:.1f}× "
            f"| {ours[1]:.3f} s | {ray[1]:.3f} s | {ray[1] / max(ours[1], 1e-3):.0f}× "
            f"| {mib(ours[2])} | {mib(ray[2])} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
