#!/usr/bin/env bash
# Measures the three ports against their Ray originals on this machine (docs/performance.md,
# "Ray's own examples"): installs Ray 2.60 in a venv as .ci/ray does, builds the ports in
# release, and prints a Markdown table.
#
#   examples/ray_docs/measure.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${RUSTYRAY_RAY_VENV:-$PWD/target/ray-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "ray[default]==2.60.0" "ray-cpp==2.60.0" psutil
cargo build -q --release --example monte_carlo_pi --example map_reduce --example model_selection
# Each `ray.init()` starts a local, loopback-only cluster; without this, Ray 2.60 writes an auth
# token to ~/.ray, which later clusters started on this machine (.ci/ray) would then require.
RAY_ADDRESS= RAY_AUTH_MODE=disabled "$VENV/bin/python" examples/ray_docs/measure.py "$@"
