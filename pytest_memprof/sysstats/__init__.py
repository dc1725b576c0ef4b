"""System statistics in the manner of Glances: psutil collectors with declared fields, generic printers,
a terminal view, a web server with a REST API and a page, and a client/server mode (``memprof sys``)."""

from __future__ import annotations

from .plugins import PLUGINS
from .registry import Field, Plugin
from .source import LocalSource

__all__ = ["PLUGINS", "Field", "LocalSource", "Plugin"]
