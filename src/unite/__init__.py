"""UNITE: one Generative Encoder that tokenizes and denoises, trained end to end (arXiv 2603.22283)."""

__version__ = "0.1.0"
