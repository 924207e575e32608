"""AnoGAN (Schlegl et al., IPMI 2017): a DCGAN trained on normal images, scored by latent search."""

from .model import Anogan, DcganAnomalyModel

__all__ = ["Anogan", "DcganAnomalyModel"]
