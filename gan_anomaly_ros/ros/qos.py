"""QoS profiles used by our nodes.

Everything we receive is reliable with keep-last history: reliable because a frame is several
hundred kilobytes, fragmented over UDP, and best effort drops the whole frame when one fragment
is lost; keep-last because a slow consumer must never build a backlog.
"""

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy


def reliable_camera_qos() -> QoSProfile:
    """Camera input matching realsense-ros' default (reliable).

    For a camera configured best effort use time_sync.sensor_qos() (parameter
    camera_qos:=best_effort), which matches either kind of publisher.
    """
    return QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)


# Our own outputs are reliable so that recorders and robot controllers get every verdict.
RELIABLE_OUT = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE)
# Scorer input: a short queue that the executor empties at once into the scorer's one-slot
# mailbox, which drops (and counts) what the model had no time for. A depth-1 queue would
# drop inside DDS, where nobody counts.
SCORER_IN = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                       reliability=ReliabilityPolicy.RELIABLE)
