"""The one graph definition and the rviz config that shows it (no ROS needed)."""

from pathlib import Path

import pytest
import yaml

from gan_anomaly_ros.graph import (ANOMALY_CLOUD_TOPIC, COLOR_TOPIC, HEATMAP_TOPIC,
                                   MARKERS_TOPIC, OVERLAY_TOPIC, inspection_graph,
                                   ros_arguments)

RVIZ = Path(__file__).resolve().parents[1] / "config" / "inspect.rviz"


def scorer_arguments(**kwargs):
    graph = inspection_graph(camera="replay", model="/m.safetensors", **kwargs)
    return ros_arguments(next(n for n in graph.nodes if n.name == "scorer"))


def test_a_threshold_override_reaches_the_scorer_only_when_given():
    assert "threshold:=0.75" in scorer_arguments(threshold=0.75)
    assert not any("threshold" in a for a in scorer_arguments())


def test_the_rviz_config_shows_what_the_graph_publishes():
    config = yaml.safe_load(RVIZ.read_text())
    displays = {d["Name"]: d for d in config["Visualization Manager"]["Displays"]}
    topics = {d["Topic"]["Value"] for d in displays.values() if "Topic" in d}
    assert topics == {COLOR_TOPIC, HEATMAP_TOPIC, OVERLAY_TOPIC, ANOMALY_CLOUD_TOPIC,
                      MARKERS_TOPIC}
    cloud = displays["Anomaly cloud"]
    # The cloud's colour comes from the per-point field the scorer fills (part_messages.py).
    assert cloud["Color Transformer"] == "Intensity" and cloud["Channel Name"] == "anomaly"
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == \
        "camera_color_optical_frame"


def test_another_realsense_changes_the_driver_arguments_and_our_topics():
    from gan_anomaly_ros.graph import CameraSettings

    camera = CameraSettings(namespace="cell2", name="d435", serial_no="'0123'",
                            color_profile="848,480,30")
    graph = inspection_graph(camera="realsense", model="/m.safetensors", realsense=camera)
    include = graph.includes[0]
    assert include.arguments["camera_namespace"] == "cell2"
    assert include.arguments["serial_no"] == "'0123'"
    assert include.arguments["rgb_camera.color_profile"] == "848,480,30"
    assert "depth_module.depth_profile" not in include.arguments   # empty: driver default
    preprocess = next(n for n in graph.nodes if n.name == "preprocess")
    assert ("depth/image_raw", "/cell2/d435/aligned_depth_to_color/image_raw") in \
        preprocess.remappings
    # The replay camera keeps the default topics, and so does the graph that listens to it.
    replay = inspection_graph(camera="replay", model="/m.safetensors", realsense=camera)
    assert ("color/image_raw", "/camera/camera/color/image_raw") in replay.nodes[1].remappings


def test_a_geometry_model_gets_its_own_pair_and_one_fused_verdict_topic():
    from gan_anomaly_ros.graph import (COLOUR_SCORE_TOPIC, GEOMETRY_PREFIX,
                                       GEOMETRY_SCORE_TOPIC, SCORE_TOPIC)

    graph = inspection_graph(camera="replay", model="/colour.safetensors",
                             geometry_model="/height.safetensors")
    nodes = {n.name: n for n in graph.nodes}
    assert set(nodes) == {"replay_camera", "preprocess", "scorer", "preprocess_geometry",
                          "scorer_geometry", "verdict_fusion"}
    targets = {name: dict(n.remappings) for name, n in nodes.items()}
    # Each scorer reads its own preprocess node's input and says its verdict on its own topic.
    assert targets["scorer"]["anomaly_score"] == COLOUR_SCORE_TOPIC
    assert targets["scorer_geometry"]["anomaly_score"] == GEOMETRY_SCORE_TOPIC
    assert targets["scorer_geometry"]["model_input"] == \
        targets["preprocess_geometry"]["model_input"] != targets["preprocess"]["model_input"]
    assert all(t.startswith(GEOMETRY_PREFIX) for t in targets["scorer_geometry"].values())
    assert "model:='/height.safetensors'" in ros_arguments(nodes["scorer_geometry"])
    # Both preprocess nodes hear the same camera; only the fusion node publishes the verdict.
    assert targets["preprocess_geometry"]["color/image_raw"] == \
        targets["preprocess"]["color/image_raw"]
    publishers = [name for name, t in targets.items() if t.get("anomaly_score") == SCORE_TOPIC]
    assert publishers == ["verdict_fusion"]
    assert targets["verdict_fusion"]["colour/anomaly_score"] == COLOUR_SCORE_TOPIC
    assert targets["verdict_fusion"]["geometry/anomaly_score"] == GEOMETRY_SCORE_TOPIC


POLICY = Path(__file__).resolve().parents[1] / "config" / "sros2" / "policy.xml"


def policy_profiles():
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(POLICY).getroot()
    profiles = {}
    for enclave in root.iter("enclave"):
        profile = enclave.find("profiles/profile")
        allowed = {"publish": set(), "subscribe": set()}
        for topics in profile.findall("topics"):
            for kind in allowed:
                if topics.get(kind) == "ALLOW":
                    allowed[kind] |= {"/" + t.text for t in topics.findall("topic")}
        profiles[enclave.get("path")] = (profile.get("node"), allowed)
    return profiles


@pytest.mark.parametrize("geometry_model", ["", "/h.safetensors"])
def test_secure_nodes_carry_the_enclaves_the_policy_defines(geometry_model):
    from gan_anomaly_ros.graph import sorting_client_node, with_enclave

    graph = inspection_graph(camera="replay", model="/m.safetensors", secure=True,
                             geometry_model=geometry_model)
    profiles = policy_profiles()
    for node in graph.nodes + [with_enclave(sorting_client_node())]:
        arguments = ros_arguments(node)
        assert arguments[arguments.index("--enclave") + 1] == node.enclave
        name, allowed = profiles[node.enclave]
        assert name == node.name
        # Each node may use exactly the topics the graph connects it to (plus the common ones).
        mine = {target for _, target in node.remappings}
        common = {"/rosout", "/parameter_events", "/diagnostics"}
        assert mine <= allowed["publish"] | allowed["subscribe"], (node.name, mine)
        assert allowed["publish"] | allowed["subscribe"] <= mine | common, node.name
    assert not any("--enclave" in ros_arguments(n) for n in inspection_graph(
        camera="replay", model="/m.safetensors").nodes)


def test_only_the_scorer_or_the_fusion_node_may_publish_verdicts():
    publishers = [path for path, (_, allowed) in policy_profiles().items()
                  if "/anomaly_score" in allowed["publish"]]
    assert publishers == ["/gan_anomaly/scorer", "/gan_anomaly/verdict_fusion"]
    # With a geometry model the main scorer runs under another identity, which may not.
    secure = inspection_graph(camera="replay", model="/m.safetensors", secure=True,
                              geometry_model="/h.safetensors")
    scorer = next(n for n in secure.nodes if n.name == "scorer")
    assert scorer.enclave == "/gan_anomaly/colour_scorer"
    assert "/anomaly_score" not in policy_profiles()[scorer.enclave][1]["publish"]


def test_with_fast_dds_every_process_gets_the_large_data_profile():
    from xml.etree import ElementTree

    from gan_anomaly_ros.graph import FASTDDS_PROFILE_VARIABLES, dds_environment

    new, old = FASTDDS_PROFILE_VARIABLES
    environment = dds_environment({})            # no RMW chosen: Fast DDS, the default
    profile = Path(environment[new])
    assert profile.is_file() and list(environment) == [new]
    assert inspection_graph(camera="replay").environment == dds_environment()
    # Humble and Jazzy ship Fast DDS 2, which reads the older variable.
    assert list(dds_environment({"ROS_DISTRO": "jazzy"})) == [old]
    # Another RMW, or a profile of the user's own: nothing is changed.
    assert dds_environment({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == {}
    assert dds_environment({new: "/etc/my_profile.xml"}) == {}
    assert dds_environment({old: "/etc/my_profile.xml"}) == {}
    # The segment holds a few 848x480 frame sets (rgb8 + 16UC1: 2 MB), not 512 KB.
    namespace = {"dds": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ElementTree.parse(profile).getroot()
    sizes = [int(e.text) for e in root.iterfind(".//dds:segment_size", namespace)]
    assert sizes and min(sizes) >= 3 * 848 * 480 * 5


@pytest.mark.requires_ros
def test_the_profile_gives_fast_dds_its_large_segment(ros_env):
    """In a real process: the participant's shared-memory segment is 8 MB with our profile,
    Fast DDS' 512 KB without (the size that lost camera frames)."""
    import json
    import os
    import sys

    from gan_anomaly_ros.graph import FASTDDS_PROFILE_VARIABLES, dds_environment
    from process_helpers import start_process, wait_process

    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm: Fast DDS has no shared-memory transport here")
    if not (ros_env.get("RMW_IMPLEMENTATION") or "rmw_fastrtps").startswith("rmw_fastrtps"):
        pytest.skip("the RMW is not Fast DDS")
    check = Path(__file__).parent / "dds_peers" / "shm_segment_check.py"
    plain = {k: v for k, v in ros_env.items() if k not in FASTDDS_PROFILE_VARIABLES}

    def segment_sizes(env):
        process = start_process([sys.executable, str(check)], env=env)
        output = wait_process(process, timeout=60)
        assert process.returncode == 0, output
        return json.loads(output.strip().splitlines()[-1])

    assert max(segment_sizes(plain)) < 1 << 20
    assert max(segment_sizes({**plain, **dds_environment(plain)})) >= 8 << 20
