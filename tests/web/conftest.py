"""The observation tests' plant serves the page tests too."""

from tests.observations.conftest import plant

__all__ = ["plant"]
