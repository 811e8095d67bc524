"""Build and install the dmaplane package.

The native part, dmaplane._native, compiles libdmaplane from this
repository into the extension itself, so the package needs no installed
library and never mirrors a UAPI struct in Python.
"""
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
# The repository root: the UAPI header and libdmaplane live there.
ROOT = os.path.dirname(HERE)

native = Extension(
    "dmaplane._native",
    sources=[
        os.path.join("src", "_native.c"),
        os.path.join(ROOT, "src", "lib", "libdmaplane.c"),
    ],
    include_dirs=[
        os.path.join(ROOT, "src", "include", "uapi"),
        os.path.join(ROOT, "src", "lib"),
    ],
    # Rebuild when the UAPI or the library's interface changes.
    depends=[
        os.path.join(ROOT, "src", "include", "uapi", "linux", "dmaplane.h"),
        os.path.join(ROOT, "src", "lib", "libdmaplane.h"),
    ],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-Wall", "-Wextra"],
)

setup(
    name="dmaplane",
    version="0.1",
    description="dmaplane buffers, zero-copy numpy/torch views and RDMA "
    "endpoints from Python",
    packages=["dmaplane"],
    ext_modules=[native],
    python_requires=">=3.11",
)
