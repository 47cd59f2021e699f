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

# The software a posterior depends on, recorded with it (sampling's provenance attrs)
# and shown in the report: distribution name -> the key in the records.
ENVIRONMENT_PACKAGES = {"numpy": "numpy", "scipy": "scipy", "pandas": "pandas",
                        "arviz": "arviz", "pymc": "pymc", "pytensor": "pytensor",
                        "nutpie": "nutpie", "numba": "numba"}


def environment() -> dict[str, str]:
    """Python, the packages of :data:`ENVIRONMENT_PACKAGES` and the platform, as strings.

    Read from the installed metadata (nothing is imported); a package that is not
    installed is recorded as ``"not installed"``.
    """
    import platform

    out = {"bayes_poem": __version__, "python": platform.python_version()}
    for distribution, key in ENVIRONMENT_PACKAGES.items():
        try:
            out[key] = version(distribution)
        except PackageNotFoundError:
            out[key] = "not installed"
    out["platform"] = platform.platform()
    return out
