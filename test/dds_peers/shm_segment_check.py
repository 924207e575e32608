"""Prints (JSON) the sizes of the Fast DDS shared-memory segments this process creates: one per
participant, in /dev/shm. Run by test_graph_definition.py with and without our profile."""

import json
import os
import re
import sys
import time

SEGMENT = re.compile(r"^fastdds_[0-9a-f]{16}$")


def segments():
    return {name for name in os.listdir("/dev/shm") if SEGMENT.match(name)}


def main():
    before = segments()
    import rclpy
    from std_msgs.msg import String

    rclpy.init()
    node = rclpy.create_node("shm_segment_check")
    node.create_publisher(String, "shm_segment_check", 1).publish(String(data="x"))
    time.sleep(0.5)
    sizes = sorted(os.path.getsize(os.path.join("/dev/shm", name))
                   for name in segments() - before)
    node.destroy_node()
    rclpy.shutdown()
    print(json.dumps(sizes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
