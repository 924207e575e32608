# Source me (bash), from any directory:  . scripts/env.sh
# Activates the venv and the colcon install tree made by scripts/setup.sh, so that
# `python -m pytest`, `ros2 run gan_anomaly_ros ...` and `from gan_anomaly_ros.msg import ...` work.
# Safe under `set -u` and when sourced twice.

_gar_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_gar_venv="${GAN_ANOMALY_VENV:-$_gar_repo/.venv}"
# venv's activate and colcon's setup.bash read unset variables: relax -u while sourcing them.
case $- in *u*) _gar_u=1; set +u ;; *) _gar_u=0 ;; esac
_gar_rc=0

if [ ! -x "$_gar_venv/bin/python" ] || [ ! -f "$_gar_repo/install/setup.bash" ]; then
  echo "env.sh: no venv at $_gar_venv or no $_gar_repo/install; run: bash scripts/setup.sh" >&2
  _gar_rc=1
else
  read -r _gar_mode _gar_ros_setup 2>/dev/null < "$_gar_venv/gan_anomaly_ros_mode" || _gar_mode=wheels
  if [ "$_gar_mode" = system ] && [ -z "${ROS_DISTRO:-}" ] && [ -f "$_gar_ros_setup" ]; then
    . "$_gar_ros_setup"            # the real ROS 2 the venv was made against
  fi
  . "$_gar_venv/bin/activate"
  if [ "$_gar_mode" = wheels ]; then
    # The ros-* wheels install their ament prefix (share/, lib/) into the venv itself.
    for _gar_var in AMENT_PREFIX_PATH CMAKE_PREFIX_PATH; do
      case ":${!_gar_var:-}:" in
        *":$_gar_venv:"*) ;;
        *) export "$_gar_var=$_gar_venv${!_gar_var:+:${!_gar_var}}" ;;
      esac
    done
  fi
  # Puts our generated message libraries on LD_LIBRARY_PATH (else publishing fails with
  # UnsupportedTypeSupport) and the install tree on PYTHONPATH / AMENT_PREFIX_PATH.
  . "$_gar_repo/install/setup.bash"
  export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
fi

[ "$_gar_u" = 1 ] && set -u
unset _gar_repo _gar_venv _gar_u _gar_mode _gar_ros_setup _gar_var
return "$_gar_rc" 2>/dev/null || exit "$_gar_rc"
