"""Declaring node parameters the ROS way: read-only where a change needs a restart (so that
`ros2 param set` refuses it instead of printing "successful" and changing nothing), dynamic
where the node applies it on the next frame."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult

from ..graph import default_model_path
from .node_main import StartupError


def declare_read_only(node, name: str, default, description: str):
    """A parameter fixed at startup (set it with -p, a params file or a launch argument)."""
    descriptor = ParameterDescriptor(description=description, read_only=True)
    return node.declare_parameter(name, default, descriptor).value


def declare_dynamic(node, name: str, default, description: str):
    """A parameter the node reads again on every change (see on_parameter_changes)."""
    return node.declare_parameter(name, default,
                                  ParameterDescriptor(description=description)).value


def on_parameter_changes(node, appliers: Dict[str, Callable[[object], None]]) -> None:
    """Apply changes of dynamic parameters with ``appliers[name](value)``. An applier checks
    the value before it changes anything and raises ValueError to refuse it: `ros2 param set`
    then prints the reason and the old value stays."""
    def callback(parameters) -> SetParametersResult:
        for parameter in parameters:
            apply = appliers.get(parameter.name)
            if apply is None:
                continue
            try:
                apply(parameter.value)
            except ValueError as exc:
                return SetParametersResult(successful=False,
                                           reason=f"{parameter.name}: {exc}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)


def declare_model(node) -> str:
    """The ``model`` parameter: a checkpoint path, empty = the default model (what
    `gan-anomaly demo` trains), the same in the launch file, `ros2 run` and params files."""
    model = declare_read_only(node, "model", "", "checkpoint (.safetensors); empty: the default "
                              "model that `gan-anomaly demo` trains")
    if model:
        return model
    default = default_model_path()
    if not Path(default).is_file():
        raise StartupError(f"parameter model is empty and the default model {default} does not "
                           "exist: run `gan-anomaly demo` once (it trains it), or set "
                           "model:=/path/to/checkpoint.safetensors")
    return str(default)
