"""IVR flows: the flow file format (`model`), its loader and validator, schedule evaluation,
and the `dialer flows` commands. `load_flowset(directory)` is the entry point for the server."""

from dialer.ivr.diagnostics import Diagnostic
from dialer.ivr.loader import load_files, load_flowset
from dialer.ivr.model import FlowSet

__all__ = ["Diagnostic", "FlowSet", "load_files", "load_flowset"]
