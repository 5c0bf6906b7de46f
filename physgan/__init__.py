"""physgan: conditional WGANs as fast stand-ins for physics Monte Carlo, judged by physics observables.

The Python API (physgan/api.py, docs/api.md): simulate, load_sample, train, load, validate and the classes
Sample, Generator, Verdict, loaded on first use, so that `import physgan` stays light (no torch, no numpy).
"""
__version__ = "0.1.0"

_API = ("Generator", "Sample", "Verdict", "load", "load_sample", "simulate", "train", "validate")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from physgan import api

        return getattr(api, name)
    raise AttributeError(f"module 'physgan' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_API})
