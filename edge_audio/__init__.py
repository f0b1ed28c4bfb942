"""edge-audio: how much accuracy does an audio classifier give up to fit on an edge device?

The package does the work (data, features, models, training, profiling, quantization, export, search,
frontier analysis); the chapters in ``book/`` are thin views over it. See README.md.
"""
__version__ = "0.1.0"
