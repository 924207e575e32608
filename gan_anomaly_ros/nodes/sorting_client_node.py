"""sorting_client_node: an example of the robot's side. It listens to /anomaly_score, decides
accept / reject / retry per part with hysteresis over consecutive frames (sorting.py: never
accepting on NO_PART or INVALID_INPUT), and publishes the decision (SortDecision on
sort_decision) and, for accepted and rejected parts, where to pick them (PoseStamped on
pick_target, the part's box pose in the camera frame: transform it with TF into the robot's
base frame before moving there).
"""

from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node

from gan_anomaly_ros.msg import AnomalyScore, SortDecision

from ..ros.node_main import StartupError, run_node
from ..ros.parameters import declare_read_only
from ..ros.qos import RELIABLE_OUT
from ..sorting import Decision, PartSorter, SortingConfig, Verdict


class SortingClientNode(Node):
    def __init__(self):
        super().__init__("sorting_client")
        defaults = SortingConfig()
        try:
            config = SortingConfig(
                accept_after=int(declare_read_only(self, "accept_after", defaults.accept_after,
                                                   "good verdicts in a row to accept a part")),
                reject_after=int(declare_read_only(self, "reject_after", defaults.reject_after,
                                                   "anomalous verdicts in a row to reject")),
                retry_after=int(declare_read_only(self, "retry_after", defaults.retry_after,
                                                  "frames not inspected in a row: retry")),
                same_part_m=float(declare_read_only(self, "same_part_m", defaults.same_part_m,
                                                    "centroids closer than this: same part")))
        except ValueError as exc:
            raise StartupError(f"sorting parameters: {exc}") from exc
        self.sorter = PartSorter(config)
        self.pub_decision = self.create_publisher(SortDecision, "sort_decision", RELIABLE_OUT)
        self.pub_pick = self.create_publisher(PoseStamped, "pick_target", RELIABLE_OUT)
        # Reliable like the scorer: a robot must not miss a verdict.
        self.create_subscription(AnomalyScore, "anomaly_score", self.on_score, RELIABLE_OUT)
        self.get_logger().info(f"sorting: accept after {config.accept_after} good, reject "
                               f"after {config.reject_after} anomalous frames in a row")

    def on_score(self, score: AnomalyScore):
        outcome = self.sorter.update(Verdict(score.status, score.is_anomaly,
                                             (score.centroid.x, score.centroid.y,
                                              score.centroid.z)))
        if outcome is None:
            return
        inspected = outcome.decision is not Decision.RETRY
        decision = SortDecision(header=score.header, decision=int(outcome.decision),
                                frames=outcome.frames, reason=outcome.reason)
        if inspected:
            decision.pick_pose = score.part_pose
            self.pub_pick.publish(PoseStamped(header=score.header, pose=score.part_pose))
        self.pub_decision.publish(decision)
        self.get_logger().info(f"{outcome.decision.name}: {outcome.reason}")


def main(args=None):
    run_node(SortingClientNode, args)


if __name__ == "__main__":
    main()
