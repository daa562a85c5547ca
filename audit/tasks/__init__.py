"""The tasks: each one implements :class:`audit.core.registry.Task` and registers itself in one line.

======================  ==========================================  ========================================
task (card ``task:``)   registration                                its code
======================  ==========================================  ========================================
classification          :mod:`audit.tasks.classification`           ``audit/tasks/classification/``,
                                                                    ``audit/cards.py`` (its card)
detection,              :mod:`audit.tasks.detection`                ``audit/detection/``
instance_segmentation
semantic_segmentation   :mod:`audit.tasks.segmentation`             ``audit/segmentation/``
======================  ==========================================  ========================================

This package imports nothing: the registry imports each module by name on its first lookup. No task imports another.
"""
