"""spokenqa: extractive question answering over spoken content."""

__version__ = "0.1.0"

