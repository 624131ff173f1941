"""The package version, importable without importing the rest of distgan."""

__version__ = "0.1.0"
