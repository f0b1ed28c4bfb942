"""The pipeline's steps, one module per chapter, in the order the data flows:

1. :mod:`~edge_audio.steps.data` (chapter 1): the dataset on disk, validated, and its log-mel features;
2. :mod:`~edge_audio.steps.baselines` (chapter 2): the baselines trained, profiled and exported;
3. :mod:`~edge_audio.steps.quantization` (chapter 3): every baseline compressed, each variant run and timed;
4. :mod:`~edge_audio.steps.search` (chapter 4): the architecture search, its finalists trained like baselines;
5. :mod:`~edge_audio.steps.frontier` (chapter 5): the frontier over every record of the run, and the reports.

Each step takes the prepared data and the run's :class:`~edge_audio.settings.Settings`, loads what an earlier
run computed with the same settings (every cache is a :func:`~edge_audio.storage.cached` entry keyed by all that
changes it) or computes it, publishes the files users deploy under ``models/``, upserts its records, and returns
its results, typed. So any chapter runs on its own, and re-running is cheap. A step writes no prose, table or
figure: what a chapter shows is its view's (:mod:`edge_audio.chapters`), and the steps are wired together once,
by :class:`edge_audio.pipeline.Pipeline`. A step's helpers take what they use (features, a cache folder), not the
prepared data whole (``scripts/data_flow.py`` follows it).
"""
