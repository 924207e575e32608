"""Who may speak on the line: with SROS2 on, only the scorer's identity can publish verdicts.

Needs DDS security in the middleware and the sros2 tools (`ros2 security`). The Fast DDS of
the PyPI wheels is built without the security plugins and there is no sros2 wheel, so on such
machines this test skips saying so; on a ROS 2 install it runs.
"""

import ctypes.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gan_anomaly_ros.graph import ros_arguments, sorting_client_node, with_enclave
from process_helpers import read_output, start_process, stop_process, wait_for_output

pytestmark = pytest.mark.requires_ros

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "config" / "sros2" / "policy.xml"
PUBLISHER = Path(__file__).parent / "dds_peers" / "publish_verdicts.py"


def fastdds_library():
    for folder in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep):
        for name in ("libfastdds.so", "libfastrtps.so"):
            if folder and (Path(folder) / name).exists():
                return Path(folder) / name
    found = ctypes.util.find_library("fastdds") or ctypes.util.find_library("fastrtps")
    return Path(found) if found and Path(found).exists() else None


def security_unavailable_reason():
    if shutil.which("ros2") is None:
        return "no ros2 command (sros2's `ros2 security` builds the keystore; not on PyPI)"
    if subprocess.run(["ros2", "security", "-h"], capture_output=True).returncode != 0:
        return "sros2 is not installed: `ros2 security` is missing"
    library = fastdds_library()
    if library is None:
        return "Fast DDS library not found"
    if b"DDS:Auth:PKI-DH" not in library.resolve().read_bytes():
        return f"{library} was built without DDS security (no DDS:Auth:PKI-DH plugin)"
    return None


def test_without_the_scorers_identity_nobody_can_tell_the_robot_a_part_is_good(ros_env,
                                                                                tmp_path):
    reason = security_unavailable_reason()
    if reason:
        pytest.skip(reason)
    keys = tmp_path / "keys"
    for command in (["ros2", "security", "create_keystore", str(keys)],
                    ["ros2", "security", "generate_artifacts", "-k", str(keys), "-p",
                     str(POLICY)]):
        done = subprocess.run(command, env=ros_env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    secure = dict(ros_env, ROS_SECURITY_KEYSTORE=str(keys), ROS_SECURITY_ENABLE="true",
                  ROS_SECURITY_STRATEGY="Enforce")
    spec = with_enclave(sorting_client_node(accept_after=3))
    client = start_process([sys.executable, "-m", spec.module, *ros_arguments(spec)], env=secure)
    try:
        wait_for_output(client, "sorting:", timeout=60)
        # An impostor without an identity publishes "good" verdicts: the client never hears.
        impostor = subprocess.run([sys.executable, str(PUBLISHER)], env=ros_env,
                                  capture_output=True, text=True, timeout=60)
        assert impostor.returncode == 0, impostor.stderr
        assert "ACCEPT" not in read_output(client)
        # The same verdicts from the scorer's identity are heard: the check above can fail.
        scorer = subprocess.run([sys.executable, str(PUBLISHER), "--ros-args", "--enclave",
                                 "/gan_anomaly/scorer"], env=secure, capture_output=True,
                                text=True, timeout=60)
        assert scorer.returncode == 0, scorer.stderr
        wait_for_output(client, "ACCEPT", timeout=30)
    finally:
        stop_process(client)
