"""AffectStudio: emotional media generation steered by one shared emotion space."""

__version__ = "0.1.0"
