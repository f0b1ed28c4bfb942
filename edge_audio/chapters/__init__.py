"""What each chapter shows, one module per chapter, above the steps they read:

1. :mod:`~edge_audio.chapters.data`, 2. :mod:`~edge_audio.chapters.baselines`,
3. :mod:`~edge_audio.chapters.quantization`, 4. :mod:`~edge_audio.chapters.search`,
5. :mod:`~edge_audio.chapters.frontier`.

A step (:mod:`edge_audio.steps`) computes, caches and publishes, and returns typed results; it writes no prose.
A chapter module turns those results into what its notebook shows: the values its prose quotes (glued), its
sentences (stated through :class:`~edge_audio.claims.Claims`), its tables, its figures (also written under
``reports/``) and its invariants (:func:`~edge_audio.errors.invariant`). Each has ``run(namespace)``, the one
call of its notebook's setup cell: the settings from the parameters cell, the steps wired by
:class:`~edge_audio.pipeline.Pipeline` (as :class:`~edge_audio.reference.NotebookPipeline` wires them), the
values glued, and the chapter returned.
"""
