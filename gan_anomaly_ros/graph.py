"""The inspection node graph, defined once.

``launch/inspect.launch.py`` turns it into launch_ros actions; ``gan-anomaly bringup`` (for
machines without ``ros2 launch``) starts the same nodes as processes. Neither adds nodes of
its own, so both bring up exactly this graph. This module imports no ROS package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

PACKAGE = "gan_anomaly_ros"

# realsense-ros 4.x default names (camera_namespace:=camera, camera_name:=camera).
COLOR_TOPIC = "/camera/camera/color/image_raw"
DEPTH_TOPIC = "/camera/camera/aligned_depth_to_color/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera/color/camera_info"
# Published by the replay camera only: the synthetic/dataset defect mask, for evaluation.
DEFECT_MASK_TOPIC = "/camera/camera/ground_truth/defect_mask"
MODEL_INPUT_TOPIC = "/gan_anomaly/model_input"
SCORE_TOPIC = "/anomaly_score"
HEATMAP_TOPIC = "/anomaly_heatmap"
OVERLAY_TOPIC = "/anomaly_overlay"
ANOMALY_CLOUD_TOPIC = "/anomaly_cloud"
MARKERS_TOPIC = "/anomaly_markers"
# With a geometry model beside the main one (inspection_graph(geometry_model=...)): each
# scorer's verdicts on its own topic, fused by verdict_fusion_node into SCORE_TOPIC.
COLOUR_SCORE_TOPIC = "/gan_anomaly/colour/anomaly_score"
GEOMETRY_PREFIX = "/gan_anomaly/geometry"
GEOMETRY_SCORE_TOPIC = f"{GEOMETRY_PREFIX}/anomaly_score"
SORT_DECISION_TOPIC = "/sort_decision"
PICK_TARGET_TOPIC = "/pick_target"

CAMERAS = ("realsense", "replay")


def default_model_path() -> Path:
    """Where `gan-anomaly demo` puts the small default model, and where nodes look for it."""
    base = os.environ.get("GAN_ANOMALY_HOME") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), PACKAGE)
    return Path(base) / "models" / "default_rgbd.safetensors"


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph: enough to build a launch_ros Node or a process command line."""

    executable: str
    name: str
    package: str = PACKAGE
    namespace: str = ""
    # Our nodes run as `python -m <module>` where no ament index is available.
    module: Optional[str] = None
    parameters: Dict[str, object] = field(default_factory=dict)
    remappings: Tuple[Tuple[str, str], ...] = ()
    # SROS2 enclave (config/sros2/policy.xml); None: no security identity.
    enclave: Optional[str] = None
    # A process that holds several nodes (the composed preprocess + scorer): ``name`` only
    # labels the process; the nodes keep their own names (no __node remap).
    composed: bool = False


@dataclass(frozen=True)
class LaunchInclude:
    """A launch file of another package, with a single node to run in its place without launch."""

    package: str
    launch_file: str
    arguments: Dict[str, str]
    fallback_node: NodeSpec


@dataclass(frozen=True)
class Graph:
    nodes: List[NodeSpec]
    includes: List[LaunchInclude]
    # Environment variables for every process of the graph, the included camera driver too.
    environment: Dict[str, str] = field(default_factory=dict)


FASTDDS_PROFILE = "fastdds_large_data.xml"
# Fast DDS 3 (Kilted and later) reads the first; 2.x (Humble, Jazzy) the second, which 3
# still honours with a deprecation warning.
FASTDDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FASTDDS_2_DISTROS = ("humble", "iron", "jazzy")


def ament_prefixes() -> List[Path]:
    """The install prefixes of AMENT_PREFIX_PATH, in order (as `ros2 run` searches them)."""
    return [Path(prefix) for prefix in
            filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))]


def config_file(name: str) -> Optional[Path]:
    """config/<name> of this package: the source tree's, else the one colcon installed
    (share/gan_anomaly_ros/config in an AMENT_PREFIX_PATH prefix)."""
    candidates = [Path(__file__).resolve().parents[1] / "config" / name]
    candidates += [prefix / "share" / PACKAGE / "config" / name for prefix in ament_prefixes()]
    return next((path for path in candidates if path.is_file()), None)


def dds_environment(environ=None) -> Dict[str, str]:
    """What the graph's processes need from DDS: with Fast DDS (the default RMW), our profile
    config/fastdds_large_data.xml, whose shared-memory segment holds camera images (the
    default 512 KB does not hold one 640x480 frame: frames were lost). Nothing when another
    RMW is chosen or a Fast DDS profile is set already."""
    environ = os.environ if environ is None else environ
    rmw = environ.get("RMW_IMPLEMENTATION") or "rmw_fastrtps_cpp"
    if not rmw.startswith("rmw_fastrtps") or any(environ.get(v)
                                                 for v in FASTDDS_PROFILE_VARIABLES):
        return {}
    profile = config_file(FASTDDS_PROFILE)
    if profile is None:
        return {}
    legacy = environ.get("ROS_DISTRO", "") in FASTDDS_2_DISTROS
    return {FASTDDS_PROFILE_VARIABLES[1 if legacy else 0]: str(profile)}


@dataclass(frozen=True)
class CameraSettings:
    """Which RealSense and where its topics are: realsense-ros 4.x publishes under
    /<namespace>/<name>/. Profiles are "width,height,fps" (realsense-ros >= 4.51 argument
    names rgb_camera.color_profile / depth_module.depth_profile); empty: the driver's default.
    ``serial_no`` picks one camera of several (quote leading zeros: serial_no:="'0123'")."""

    namespace: str = "camera"
    name: str = "camera"
    serial_no: str = ""
    color_profile: str = ""
    depth_profile: str = ""

    def prefix(self) -> str:
        parts = [p.strip("/") for p in (self.namespace, self.name) if p.strip("/")]
        return "/" + "/".join(parts) if parts else ""

    def topics(self) -> Tuple[str, str, str]:
        """(colour, aligned depth, camera_info) topics."""
        base = self.prefix()
        return (f"{base}/color/image_raw", f"{base}/aligned_depth_to_color/image_raw",
                f"{base}/color/camera_info")

    def remappings(self) -> Tuple[Tuple[str, str], ...]:
        colour, depth, info = self.topics()
        return (("color/image_raw", colour), ("depth/image_raw", depth),
                ("color/camera_info", info))


DEFAULT_CAMERA = CameraSettings()


def realsense_include(camera: CameraSettings = DEFAULT_CAMERA) -> LaunchInclude:
    arguments = {"align_depth.enable": "true", "camera_namespace": camera.namespace,
                 "camera_name": camera.name}
    optional = {"serial_no": camera.serial_no, "rgb_camera.color_profile": camera.color_profile,
                "depth_module.depth_profile": camera.depth_profile}
    arguments.update({key: value for key, value in optional.items() if value})
    node = NodeSpec(executable="realsense2_camera_node", name=camera.name,
                    namespace=camera.namespace, package="realsense2_camera",
                    parameters={"align_depth.enable": True,
                                **{k: v for k, v in optional.items() if v}})
    return LaunchInclude("realsense2_camera", "rs_launch.py", arguments, node)


def replay_camera_node(source: str = "synthetic", rate: float = 5.0, loop: bool = True,
                       **extra) -> NodeSpec:
    parameters = {"source": source, "rate": float(rate), "loop": bool(loop), **extra}
    return NodeSpec(executable="replay_camera_node", name="replay_camera",
                    module=f"{PACKAGE}.nodes.replay_camera_node", parameters=parameters,
                    remappings=(("color/image_raw", COLOR_TOPIC), ("depth/image_raw", DEPTH_TOPIC),
                                ("color/camera_info", CAMERA_INFO_TOPIC),
                                ("ground_truth/defect_mask", DEFECT_MASK_TOPIC)))


def preprocess_node(model: str, camera: CameraSettings = DEFAULT_CAMERA,
                    camera_queue: Optional[int] = None) -> NodeSpec:
    """``camera_queue``: frames kept per camera topic while busy (None: the node's default)."""
    parameters = {"model": model}
    if camera_queue is not None:
        parameters["camera_queue"] = int(camera_queue)
    return NodeSpec(executable="preprocess_node", name="preprocess",
                    module=f"{PACKAGE}.nodes.preprocess_node", parameters=parameters,
                    remappings=camera.remappings() + (("model_input", MODEL_INPUT_TOPIC),))


def scorer_node(model: str, device: str, threshold: Optional[float] = None,
                runtime: str = "eager", exported_model: str = "",
                input_queue: Optional[int] = None) -> NodeSpec:
    """``threshold``: override the checkpoint's calibrated threshold (None: keep it).
    ``runtime`` torchscript / onnxruntime score with ``exported_model`` (gan-anomaly export).
    ``input_queue``: inputs the scorer keeps while busy (None: the node's default, 1)."""
    parameters = {"model": model, "device": device}
    if input_queue is not None:
        parameters["input_queue"] = int(input_queue)
    if threshold is not None:
        parameters["threshold"] = float(threshold)
    if runtime != "eager" or exported_model:
        parameters.update(runtime=runtime, exported_model=str(exported_model))
    return NodeSpec(executable="scorer_node", name="scorer",
                    module=f"{PACKAGE}.nodes.scorer_node", parameters=parameters,
                    remappings=(("model_input", MODEL_INPUT_TOPIC), ("anomaly_score", SCORE_TOPIC),
                                ("anomaly_heatmap", HEATMAP_TOPIC),
                                ("anomaly_overlay", OVERLAY_TOPIC),
                                ("anomaly_cloud", ANOMALY_CLOUD_TOPIC),
                                ("anomaly_markers", MARKERS_TOPIC)))


def retargeted(spec: NodeSpec, name: str, targets: Dict[str, str]) -> NodeSpec:
    """The node under another name, with some of its topics remapped elsewhere (``targets``:
    the node's own topic name -> where it goes): a second scorer beside the first."""
    return replace(spec, name=name, remappings=tuple(
        (source, targets.get(source, target)) for source, target in spec.remappings))


def geometry_nodes(model: str, device: str, camera: CameraSettings,
                   camera_queue: Optional[int] = None) -> List[NodeSpec]:
    """A second preprocess + scorer pair for a geometry model (e.g. `--mode height`) on the
    same camera, its topics under GEOMETRY_PREFIX, and the node that fuses the two scorers'
    verdicts into SCORE_TOPIC."""
    model_input = f"{GEOMETRY_PREFIX}/model_input"
    scorer = scorer_node(model, device)
    own_topics = {source: f"{GEOMETRY_PREFIX}/{source}" for source, _ in scorer.remappings}
    fusion = NodeSpec(executable="verdict_fusion_node", name="verdict_fusion",
                      module=f"{PACKAGE}.nodes.verdict_fusion_node",
                      remappings=(("colour/anomaly_score", COLOUR_SCORE_TOPIC),
                                  ("geometry/anomaly_score", GEOMETRY_SCORE_TOPIC),
                                  ("anomaly_score", SCORE_TOPIC)))
    return [retargeted(preprocess_node(model, camera, camera_queue), "preprocess_geometry",
                       {"model_input": model_input}),
            retargeted(scorer, "scorer_geometry", own_topics), fusion]


def composed_inspection_node(preprocess: NodeSpec, scorer: NodeSpec) -> NodeSpec:
    """preprocess and scorer in one process (nodes/inspection_composed.py): the model input is
    handed over in memory instead of serialised through DDS. Same node code, same names,
    parameters and remappings (theirs do not collide: the shared ones, model and
    stale_after_s, have the same value in both)."""
    return NodeSpec(executable="inspection_composed", name="inspection",
                    module=f"{PACKAGE}.nodes.inspection_composed",
                    parameters={**preprocess.parameters, **scorer.parameters},
                    remappings=tuple(dict(preprocess.remappings + scorer.remappings).items()),
                    composed=True)


def recorder_node(camera: CameraSettings = DEFAULT_CAMERA, **parameters) -> NodeSpec:
    """Records the camera topics to MCAP bags (launch/record.launch.py, record:=true)."""
    return NodeSpec(executable="recorder_node", name="recorder",
                    module=f"{PACKAGE}.nodes.recorder_node", parameters=dict(parameters),
                    remappings=camera.remappings())


def sorting_client_node(**parameters) -> NodeSpec:
    """The example robot-side client (not part of the inspection graph: a robot cell runs its
    own, this one shows the pattern)."""
    return NodeSpec(executable="sorting_client_node", name="sorting_client",
                    module=f"{PACKAGE}.nodes.sorting_client_node", parameters=dict(parameters),
                    remappings=(("anomaly_score", SCORE_TOPIC),
                                ("sort_decision", SORT_DECISION_TOPIC),
                                ("pick_target", PICK_TARGET_TOPIC)))


def inspection_graph(camera: str = "replay", model: str = "", device: str = "auto",
                     replay: Optional[Dict[str, object]] = None,
                     threshold: Optional[float] = None,
                     realsense: CameraSettings = DEFAULT_CAMERA, secure: bool = False,
                     composed: bool = False, runtime: str = "eager", exported_model: str = "",
                     camera_queue: Optional[int] = None,
                     scorer_queue: Optional[int] = None, geometry_model: str = "") -> Graph:
    """The whole pipeline: camera (RealSense or replay) -> preprocess -> scorer. The replay
    camera publishes on the default RealSense topics; ``realsense`` names another camera.
    ``composed``: preprocess and scorer in one process (composed_inspection_node).
    ``geometry_model``: a second model (trained with `--mode height` or voxels) scores the
    same frames beside ``model`` and verdict_fusion_node publishes one verdict per frame on
    SCORE_TOPIC (geometry_nodes); ``model``'s pictures stay on the usual topics, the second
    model's are under GEOMETRY_PREFIX; ``threshold`` applies to ``model``."""
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")
    if composed and secure:
        raise ValueError("secure needs one process per node (an SROS2 enclave is per "
                         "process): use separate processes (composed false) with secure")
    model = str(model or default_model_path())
    topics = realsense if camera == "realsense" else DEFAULT_CAMERA
    scorer = scorer_node(model, device, threshold, runtime, exported_model, scorer_queue)
    if geometry_model:
        scorer = retargeted(scorer, scorer.name, {"anomaly_score": COLOUR_SCORE_TOPIC})
    nodes = [preprocess_node(model, topics, camera_queue), scorer]
    if composed:
        nodes = [composed_inspection_node(*nodes)]
    if geometry_model:
        nodes += geometry_nodes(str(geometry_model), device, topics, camera_queue)
    includes = []
    if camera == "replay":
        nodes.insert(0, replay_camera_node(**(replay or {})))
    else:
        includes.append(realsense_include(realsense))
    if secure:
        # With a geometry model the main scorer may not publish verdicts itself: another
        # identity, allowed only its own topic to the fusion node (config/sros2/policy.xml).
        nodes = [with_enclave(node, COLOUR_SCORER_ENCLAVE if geometry_model and
                              node.name == "scorer" else None) for node in nodes]
    return Graph(nodes=nodes, includes=includes, environment=dds_environment())


ENCLAVE_ROOT = "/gan_anomaly"
COLOUR_SCORER_ENCLAVE = "colour_scorer"


def with_enclave(spec: NodeSpec, enclave: Optional[str] = None) -> NodeSpec:
    """The node with its SROS2 identity: enclave /gan_anomaly/<enclave or node name>, as in
    config/sros2/policy.xml (ROS_SECURITY_ENABLE=true and a keystore made from that policy)."""
    return replace(spec, enclave=f"{ENCLAVE_ROOT}/{enclave or spec.name}")


def ros_arguments(spec: NodeSpec) -> List[str]:
    """`--ros-args` command-line arguments equivalent to the spec's name, remaps and params."""
    args = ["--ros-args"] + ([] if spec.composed else ["-r", f"__node:={spec.name}"])
    if spec.namespace:
        args += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    if spec.enclave:
        args += ["--enclave", spec.enclave]
    for source, target in spec.remappings:
        args += ["-r", f"{source}:={target}"]
    for key, value in spec.parameters.items():
        args += ["-p", f"{key}:={_param_text(value)}"]
    return args


def _param_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # Quoted so that "1.0" or "true" given as a path stays a string for rclpy's YAML parse.
        return "'" + value.replace("'", "''") + "'"
    return str(value)
