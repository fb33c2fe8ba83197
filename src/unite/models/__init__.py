"""Model definitions: GE blocks, the Generative Encoder, decoders, and the size registry."""

from unite.models.registry import build_model
from unite.models.unite_model import UNITE

__all__ = ["UNITE", "build_model"]
