"""The Deplite agent: runs workflow files that live on this host when the Deplite server asks."""

# The one place the version is written: pyproject.toml reads it, and the server serves the wheel under it.
__version__ = "0.3.0"
