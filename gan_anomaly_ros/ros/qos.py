"""QoS profiles used by our nodes."""

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

# Camera inputs use time_sync.sensor_qos() (best effort: receives from reliable and
# best-effort publishers alike, as realsense-ros can be configured either way).
# Our own outputs are reliable so that recorders and robot controllers get every verdict.
RELIABLE_OUT = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE)
# The scorer keeps only the newest input: old frames are worth nothing to a sorting robot.
LATEST_ONLY = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.BEST_EFFORT)
