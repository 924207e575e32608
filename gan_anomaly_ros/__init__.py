"""gan_anomaly_ros: GAN-based anomaly detection for parts seen by an RGB-D camera.

The package has two halves. The core (everything outside ``gan_anomaly_ros.ros`` and
``gan_anomaly_ros.nodes``) imports no rclpy and runs in a notebook or on a GPU server.
The ROS half turns messages into core calls and back.
"""

# The colcon build installs the generated message modules (gan_anomaly_ros.msg) into the
# install tree, while tests and notebooks may import this source tree first; extend_path lets
# both halves of the package be found whichever comes first on sys.path.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"
