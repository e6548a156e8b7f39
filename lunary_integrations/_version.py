"""The package version: a leaf module, so any module can name it without importing the root
(``pyproject.toml`` reads it from here: one place to bump)."""

__version__ = "0.1.0"
