"""`gan-anomaly bench`: the end-to-end real-time benchmark of the node graph over DDS.

run.py brings the graph up case by case (camera, preprocess, scorer as processes) and watches
it with nodes/bench_probe_node.py; summary.py turns what was seen into figures (ROS-free);
report.py prints the table and writes JSON; profile.py samples the live nodes with py-spy.
"""
