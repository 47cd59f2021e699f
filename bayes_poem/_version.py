"""The package version, in a leaf module that every layer may import.

``bayes_poem.__version__`` re-exports it; modules inside the package import it from
here, so that recording the version never imports the package's public API (and
with it :mod:`bayes_poem.spec`) back.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayes-poem")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
