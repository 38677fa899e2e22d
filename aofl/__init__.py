"""AO-FL Explorer: angle-optimized partial disentanglement for multimodal emotion recognition
in conversation (arXiv 2511.22447), reconstructed for analysis and teaching."""

__version__ = "0.1.0"
