"""Fairness and dataset-bias audits for computer-vision models."""

__version__ = "0.1.0"
