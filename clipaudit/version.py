"""The version of clipaudit, in one place: every output document records it."""

__version__ = "0.1.0"
