"""Progress bars: ``tqdm.auto`` (a widget in a notebook), or tqdm's text bar when ipywidgets is absent.

``tqdm.auto`` in a notebook without ipywidgets warns "IProgress not found" and prints no bar; checking for
ipywidgets first gives the text bar instead, with no warning.
"""

from __future__ import annotations

__all__ = ["progress_class"]


def progress_class():
    """The tqdm class to use: ``tqdm.auto.tqdm`` when ipywidgets can be imported, else ``tqdm.std.tqdm``."""
    try:
        import ipywidgets  # noqa: F401  (tqdm.notebook's IProgress)
    except ImportError:
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm
