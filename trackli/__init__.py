"""Trackli: Confluence tasks assigned to you, on your own board."""

__version__ = "0.1.0"
