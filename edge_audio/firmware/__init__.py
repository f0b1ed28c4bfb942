"""Firmware: the model as dependency-free C (:mod:`.network`), the front end as C (:mod:`.front_end`), built for the
host and cross-built for emulated Cortex-M boards (:mod:`.boards`, :mod:`.build`)."""
