"""The core: what every task shares and no task owns (it imports no task package).

:mod:`audit.core.cards`
    Card primitives: the validator, attribute specs, model sources and weights.
:mod:`audit.core.front_matter`
    A card's YAML front matter and Markdown body, the YAML's size bounded.
:mod:`audit.core.run`
    :class:`AuditRun`, provenance, reference-group checks and the ``results.json`` document.
"""
