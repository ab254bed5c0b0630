#!/usr/bin/env bash
# Instructions per operation, counted by callgrind, for this tree against an older commit
# (default 9ce81cd, the last one before the observability work). Instruction counts do not
# drift with the machine's load the way wall-clock times do, so a few percent is visible.
#
#   rustyray-bench/instructions.sh [BASE_COMMIT]
#
# Each workload of examples/instructions.rs runs at 2 and at 6 rounds; the difference over the
# 80,000 extra operations is the cost of one. Needs valgrind (`apt install valgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-9ce81cd}
command -v valgrind >/dev/null || { echo "valgrind not found: apt install valgrind" >&2; exit 1; }

worktree=target/instructions-base
git worktree remove --force "$worktree" 2>/dev/null || true
git worktree add --force --detach "$worktree" "$base" >/dev/null
trap 'git worktree remove --force "$worktree" 2>/dev/null || true' EXIT
cp rustyray-bench/examples/instructions.rs "$worktree/rustyray-bench/examples/"

echo "building the workload at $base and at this tree (release)..."
(cd "$worktree" && cargo build --release -q -p rustyray-bench --example instructions)
cargo build --release -q -p rustyray-bench --example instructions
before="$worktree/target/release/examples/instructions"
now=target/release/examples/instructions

count() { # binary workload rounds
  valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 |
    awk '/Collected/ { print $4 }'
}
per_op() { # binary workload
  echo $(( ($(count "$1" "$2" 6) - $(count "$1" "$2" 2)) / 80000 ))
}

printf '\n%-8s %12s %12s %8s\n' workload "$base" "this tree" change
for workload in async sync actor ping put; do
  b=$(per_op "$before" "$workload")
  n=$(per_op "$now" "$workload")
  printf '%-8s %12s %12s %7.1f%%\n' "$workload" "$b" "$n" "$(echo "100 * ($n - $b) / $b" | bc -l)"
done
echo "(instructions per operation; callgrind runs the threads one at a time, in turn with"
echo " --fair-sched, so a run varies by about 1% with how they interleave)"
