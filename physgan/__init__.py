"""physgan: conditional WGANs as fast stand-ins for physics Monte Carlo, judged by physics observables."""
__version__ = "0.1.0"
