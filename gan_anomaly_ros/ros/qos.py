"""QoS profiles used by our nodes.

Camera input (camera_qos): ``auto`` (the default) subscribes reliable, which loses no frame
from a reliable camera (realsense-ros' default), and switches to best effort as soon as a
best-effort publisher appears on the colour topic (a reliable subscription would never match
it). Best effort is not the default because a frame of several hundred kilobytes is sent in
fragments, even on one machine, and best effort drops the whole frame when one fragment is
late. ``reliable`` and ``best_effort`` fix the choice. Our own topics are reliable with
keep-last history: every verdict reaches the robot, and a slow consumer never builds a
backlog.
"""

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy


def reliable_camera_qos(depth: int = 5) -> QoSProfile:
    """Camera input matching realsense-ros' default (reliable).

    For a camera configured best effort use time_sync.sensor_qos() (parameter
    camera_qos:=best_effort), which matches either kind of publisher.
    """
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)


# Our own outputs are reliable so that recorders and robot controllers get every verdict.
RELIABLE_OUT = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE)
# Scorer input: a short queue that the executor empties at once into the scorer's one-slot
# mailbox, which drops (and counts) what the model had no time for. A depth-1 queue would
# drop inside DDS, where nobody counts.
SCORER_IN = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                       reliability=ReliabilityPolicy.RELIABLE)


def _sensor_qos(depth: int = 10):
    from .time_sync import sensor_qos
    return sensor_qos(depth)


# camera_qos parameter of the nodes that subscribe to the camera ("auto" starts reliable);
# each takes the history depth: frames kept per topic while the node is busy.
CAMERA_QOS = {"auto": reliable_camera_qos, "best_effort": _sensor_qos,
              "reliable": reliable_camera_qos}


def has_best_effort_publisher(node, topic: str) -> bool:
    """Whether a publisher on ``topic`` offers only best effort (a reliable subscription
    cannot match it)."""
    from rclpy.qos import ReliabilityPolicy

    return any(info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
               for info in node.get_publishers_info_by_topic(topic))
