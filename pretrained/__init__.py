"""Shipped weights; installed as the ``infoatlas_loss.weights`` package (see pyproject.toml)."""
