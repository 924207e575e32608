#!/usr/bin/env bash
# The demo on a fresh machine:  bash scripts/demo.sh [gan-anomaly demo options]
# Sets everything up (scripts/setup.sh, idempotent), trains the small default model on
# synthetic RGB-D scenes if there is none (progress bar), then runs replay camera ->
# preprocess -> scorer as separate ROS 2 processes, printing scores and writing heatmaps.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup.sh"
# shellcheck disable=SC1091
. "$REPO/scripts/env.sh"
cd "$REPO"
echo
echo "==== gan-anomaly demo $*"
python -m gan_anomaly_ros.cli demo "$@"
