"""The package version, in one place (pyproject.toml reads it; model files record it)."""

__version__ = "0.3.0"
