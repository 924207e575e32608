"""Publishes 'inspected, good' AnomalyScore verdicts on /anomaly_score for a few seconds:
the impostor (or, with the scorer's enclave, the legitimate scorer) of test_security.py.

    python publish_verdicts.py [--ros-args --enclave /gan_anomaly/scorer]
"""

import sys
import time

import rclpy

from gan_anomaly_ros.msg import AnomalyScore
from gan_anomaly_ros.ros.qos import RELIABLE_OUT


def main():
    rclpy.init(args=sys.argv)
    node = rclpy.create_node("scorer")   # the name the policy gives the scorer's enclave
    publisher = node.create_publisher(AnomalyScore, "/anomaly_score", RELIABLE_OUT)
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline:
        message = AnomalyScore(status=AnomalyScore.INSPECTED, is_anomaly=False)
        message.centroid.z = 0.5
        message.part_pose.orientation.w = 1.0
        publisher.publish(message)
        time.sleep(0.1)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
