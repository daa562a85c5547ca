"""The tasks: each one is a package that implements :class:`audit.core.registry.Task` and registers itself in one
line.

======================  ==========================================
task (card ``task:``)   package (card section, pipeline, report)
======================  ==========================================
classification          :mod:`audit.tasks.classification`
detection,              :mod:`audit.tasks.detection`
instance_segmentation
semantic_segmentation   :mod:`audit.tasks.segmentation`
panoptic_segmentation   :mod:`audit.tasks.panoptic`
======================  ==========================================

This package imports nothing: the registry imports each task package by name on its first lookup. No task
imports another (an import-linter contract).
"""
