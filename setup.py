"""Builds the compiled Ising Monte Carlo kernels; everything else is in pyproject.toml."""
import sys

from setuptools import Extension, setup

# OpenMP runs independent chains on all cores; the kernel still builds (single-threaded) without it.
openmp = [] if sys.platform == "darwin" else ["-fopenmp"]

setup(
    ext_modules=[
        Extension(
            "physgan.systems.ising._kernels",
            sources=["physgan/systems/ising/_kernels.c"],
            extra_compile_args=["-O3", "-std=c99"] + openmp,
            extra_link_args=openmp,
        )
    ]
)
