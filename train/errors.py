"""Errors raised by the data sources (one-line messages meant for the user)."""
from __future__ import annotations


class DataError(ValueError):
    """Training data that is missing, unreadable or malformed; the message says which and why."""
