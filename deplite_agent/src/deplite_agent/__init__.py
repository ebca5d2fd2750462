"""The Deplite agent: runs workflow files that live on this host when the Deplite server asks."""

__version__ = "0.1.0"
