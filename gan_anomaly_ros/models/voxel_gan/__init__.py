"""Voxel GANomaly: GANomaly in 3D (Conv3d encoder-decoder-encoder) on TSDF or occupancy
voxel grids of a part, with a per-voxel residual anomaly map.

Inputs are B x 1 x R x R x R grids from perception/voxels.py (R = 32 by default, 64 also
works); the native score is GANomaly's latent distance, the residual score (the default:
it finds small dents the latent distance misses) reduces the 3D map.
Memory and combined scores, patch mode and the 2D training augmentations do not apply to
voxel models and are refused.
"""

from .model import VoxelGan

__all__ = ["VoxelGan"]
