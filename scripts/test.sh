#!/usr/bin/env bash
# The project's test command:  bash scripts/test.sh [pytest args]
# Sets up (idempotent, fast when done), then runs pytest on test/ from the repo root.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup.sh"
# shellcheck disable=SC1091
. "$REPO/scripts/env.sh"
cd "$REPO"
# setup.sh built ROS here: tests marked requires_ros must run, not skip (see test/conftest.py).
export GAN_ANOMALY_REQUIRE_ROS=1
echo
echo "==== pytest test $*"
# Exit code 5 (no tests collected) fails too: set -e passes it on.
python -m pytest test "$@"
