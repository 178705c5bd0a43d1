"""callscribe's composition root: settings, logging and the `callscribe` CLI wire the parts."""

__version__ = "0.1.0"
