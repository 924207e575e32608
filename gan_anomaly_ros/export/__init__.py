"""Exporting a checkpoint to ONNX or TorchScript, and running the exported file.

The exported graph takes the raw crop (perception.preprocessing.resize_crop: colour 0..255,
depth metres; voxel grids as they are) and holds the checkpoint's normalisation itself, so a
runtime needs only the file. Every export records the checkpoint it came from and the
preprocessing fingerprint; a scorer refuses an export that belongs to another checkpoint.
"""

from .errors import ExportError

__all__ = ["ExportError"]
