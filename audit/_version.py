"""The package version (a leaf module, so that the pipeline need not import the package)."""

__version__ = "0.1.0"
