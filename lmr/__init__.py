"""Shared core of lmr: errors, settings and the word splitter used by every stage."""

__version__ = "0.1.0"
