"""edge-audio: how much accuracy does an audio classifier give up to fit on an edge device?

The package does the work (data, features, models, training, profiling, quantization, export, search,
frontier analysis); the chapters in ``book/`` are thin views over it. See README.md.
"""
__version__ = "0.1.0"


def __getattr__(name: str):
    """``from edge_audio import NotebookPipeline, PipelineConfig`` without importing torch at package import."""
    if name in ("NotebookPipeline", "PipelineConfig"):
        from . import reference

        return getattr(reference, name)
    raise AttributeError(f"module 'edge_audio' has no attribute {name!r}")
