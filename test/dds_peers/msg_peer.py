"""One end of a DDS round trip, run as its own process by test_message_dds.py.

    python msg_peer.py pub <Type> <topic> '<json fields>'   # publish every 0.1 s until SIGINT
    python msg_peer.py sub <Type> <topic>                   # print first message as JSON, exit

<Type> is a message of gan_anomaly_ros.msg. Messages are filled from / dumped to plain dicts
generically (nested messages -> dicts, arrays -> lists, NaN kept: Python's json allows it),
so the test states the expected values once and compares what came out of the other process.
"""

import array
import json
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy

import gan_anomaly_ros.msg


def to_dict(msg):
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: to_dict(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (array.array, bytes, list, tuple)) or type(msg).__name__ == "ndarray":
        return [to_dict(v) for v in msg]
    return msg


def fill(msg, values: dict):
    for name, value in values.items():
        current = getattr(msg, name)
        if isinstance(value, dict):
            fill(current, value)
        elif isinstance(current, array.array):
            setattr(msg, name, array.array(current.typecode, value))
        else:
            setattr(msg, name, value)
    return msg


def main():
    role, type_name, topic = sys.argv[1:4]
    msg_type = getattr(gan_anomaly_ros.msg, type_name)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    rclpy.init()
    node = rclpy.create_node(f"dds_peer_{role}")
    try:
        if role == "pub":
            msg = fill(msg_type(), json.loads(sys.argv[4]))
            pub = node.create_publisher(msg_type, topic, qos)
            node.create_timer(0.1, lambda: pub.publish(msg))
            print("PUBLISHING", flush=True)
            rclpy.spin(node)
        else:
            received = []
            node.create_subscription(msg_type, topic, received.append, qos)
            print("READY", flush=True)
            while not received:
                rclpy.spin_once(node, timeout_sec=0.1)
            print("RECEIVED " + json.dumps(to_dict(received[0])), flush=True)
    except (KeyboardInterrupt, ExternalShutdownException):
        print("STOPPED by SIGINT", flush=True)  # the Ctrl-C path process_helpers uses
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
