"""score_recorder_node: prints every AnomalyScore and saves the heatmap and overlay images.

It pairs each score with the images and (when a replay camera publishes it) the ground-truth
defect mask of the same stamp, so a run can be checked against the truth. The demo uses it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

from rclpy.node import Node
from sensor_msgs.msg import Image

from gan_anomaly_ros.msg import AnomalyScore

from ..graph import DEFECT_MASK_TOPIC, HEATMAP_TOPIC, OVERLAY_TOPIC, SCORE_TOPIC
from ..ros.image_conversion import image_to_numpy
from ..ros.node_main import run_node
from ..ros.parameters import declare_read_only
from ..ros.qos import RELIABLE_OUT


@dataclass
class ScoreRecord:
    stamp_ns: int
    score: float
    score_normalized: float
    is_anomaly: bool
    latency_ms: float
    checkpoint_id: str
    # True/False from the ground-truth mask, None when no mask arrived for this stamp.
    truly_defective: Optional[bool] = None
    status: str = "INSPECTED"
    centroid_m: Optional[List[float]] = None


STATUS_NAMES = {AnomalyScore.INSPECTED: "INSPECTED", AnomalyScore.NO_PART: "NO_PART",
                AnomalyScore.INVALID_INPUT: "INVALID_INPUT", AnomalyScore.SKIPPED: "SKIPPED"}


def stamp_key(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


class ScoreRecorderNode(Node):
    def __init__(self, output_dir: str = "", echo: bool = True, max_records: int = 0):
        super().__init__("score_recorder")
        # 0 = no limit; the demo stops listening after the frames it asked for.
        self.max_records = int(declare_read_only(self, "max_records", max_records,
                                                 "stop recording after this many; 0: never"))
        output_dir = declare_read_only(self, "output_dir", output_dir, "scores.jsonl and images")
        self.echo = bool(declare_read_only(self, "echo", echo, "print every score"))
        self.output_dir = Path(output_dir) if output_dir else None
        if self.output_dir:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.records: List[ScoreRecord] = []
        self.truth: Dict[int, bool] = {}
        self.create_subscription(AnomalyScore, SCORE_TOPIC, self.on_score, RELIABLE_OUT)
        self.create_subscription(Image, DEFECT_MASK_TOPIC, self.on_mask, RELIABLE_OUT)
        if self.output_dir:
            self.create_subscription(Image, HEATMAP_TOPIC,
                                     lambda m: self.save(m, "heatmap"), RELIABLE_OUT)
            self.create_subscription(Image, OVERLAY_TOPIC,
                                     lambda m: self.save(m, "overlay"), RELIABLE_OUT)

    def on_mask(self, message: Image):
        self.truth[stamp_key(message.header)] = bool(image_to_numpy(message).any())
        for record in self.records:  # the mask may arrive after its score
            if record.stamp_ns == stamp_key(message.header):
                record.truly_defective = self.truth[record.stamp_ns]

    def on_score(self, message: AnomalyScore):
        if self.max_records and len(self.records) >= self.max_records:
            return
        key = stamp_key(message.header)
        status = STATUS_NAMES.get(message.status, f"UNKNOWN({message.status})")
        centroid = [message.centroid.x, message.centroid.y, message.centroid.z]
        record = ScoreRecord(key, message.score, message.score_normalized, message.is_anomaly,
                             message.latency_ms, message.checkpoint_id, self.truth.get(key),
                             status, centroid if all(map(math.isfinite, centroid)) else None)
        self.records.append(record)
        if self.echo:
            truth = {None: "", True: "  (truth: defective)", False: "  (truth: good)"}
            verdict = "ANOMALY" if message.is_anomaly else "ok"
            if status != "INSPECTED":
                print(f"frame {key / 1e9:.3f}  {status}: {message.status_detail}  "
                      f"(not accepted){truth[record.truly_defective]}", flush=True)
            else:
                print(f"frame {key / 1e9:.3f}  score {message.score:.4f}  normalized "
                      f"{message.score_normalized:.3f}  {verdict:7s}  latency "
                      f"{message.latency_ms:.0f} ms{truth[record.truly_defective]}", flush=True)
        if self.output_dir:
            with open(self.output_dir / "scores.jsonl", "a") as handle:
                handle.write(json.dumps(asdict(record)) + "\n")

    def rewrite_records(self) -> None:
        """scores.jsonl again, with the truth of masks that arrived after their scores."""
        if self.output_dir:
            lines = "".join(json.dumps(asdict(record)) + "\n" for record in self.records)
            (self.output_dir / "scores.jsonl").write_text(lines)

    def save(self, message: Image, kind: str):
        from PIL import Image as PILImage

        if stamp_key(message.header) not in {r.stamp_ns for r in self.records}:
            return  # images of frames we did not record (before the first, after the last)
        path = self.output_dir / f"{stamp_key(message.header)}_{kind}.png"
        PILImage.fromarray(image_to_numpy(message)).save(path)


def summarize(records: List[ScoreRecord]) -> Dict[str, float]:
    """Mean score of good and defective frames (inspected ones: the others have no score), and
    accuracy where the truth is known (a frame not inspected counts as rejected)."""
    known = [r for r in records if r.truly_defective is not None]
    good = [r.score for r in known if not r.truly_defective and r.status == "INSPECTED"]
    bad = [r.score for r in known if r.truly_defective and r.status == "INSPECTED"]
    mean = lambda xs: sum(xs) / len(xs) if xs else math.nan  # noqa: E731
    correct = sum(r.is_anomaly == r.truly_defective for r in known)
    return {"frames": len(records), "with_truth": len(known), "mean_score_good": mean(good),
            "mean_score_defective": mean(bad),
            "accuracy": correct / len(known) if known else math.nan,
            "not_inspected": sum(r.status != "INSPECTED" for r in records),
            "median_latency_ms": sorted(r.latency_ms for r in records)[len(records) // 2]
            if records else math.nan}


def main(args=None):
    run_node(ScoreRecorderNode, args)


if __name__ == "__main__":
    main()
