"""Predictive dialer and IVR server for Asterisk."""

__version__ = "0.1.0"
