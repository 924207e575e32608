"""The ROS 2 nodes: thin wrappers that turn messages into core calls and back."""

import os

# numpy's OpenBLAS keeps a worker thread spinning after each matrix product; our per-frame
# products are tiny (RANSAC: 4000 x 3 by 3 x 100), where one thread is as fast, and the
# spinning thread took half a core from the other nodes on a 2-core machine (preprocess: 94 %
# CPU with it, 66 % without; README, "Real time"). Set before numpy is first imported; an
# OPENBLAS_NUM_THREADS in the environment still wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
