"""Build script for mlxq's C extension (metadata lives in pyproject.toml).

The C core in src/ is compiled into the single extension module mlxq._core. Exactness is a
build property: -ffp-contract=off stops GCC from fusing a*b+c into an FMA (which would round
once where MLX rounds twice) and nothing enables -ffast-math. SIMD code is compiled per
function with target attributes and chosen at run time, so no -march flag is used.
MLXQ_SANITIZE=1 builds with AddressSanitizer and UBSan for `make test-asan`.
"""

import os
import shlex
import subprocess
from glob import glob

import numpy
from setuptools import Extension, setup


def pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", *args, "json-c"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(
            "mlxq needs json-c and pkg-config to build: run `make deps` "
            "(apt-get install libjson-c-dev pkg-config)"
        ) from exc
    return shlex.split(out)


cflags = [
    "-std=c11",
    "-O2",
    "-ffp-contract=off",
    "-fno-fast-math",
    "-fno-strict-aliasing",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
    # an undeclared function is assumed to return int: a 64-bit offset would be cut to 32
    "-Werror=implicit-function-declaration",
    "-D_GNU_SOURCE",
]
ldflags: list[str] = []
if os.environ.get("MLXQ_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
           "-fno-omit-frame-pointer", "-g"]
    cflags = [f for f in cflags if f != "-O2"] + ["-O1"] + san
    ldflags += san

sources = sorted(glob("src/*.c")) + sorted(glob("src/python/*.c"))

setup(
    ext_modules=[
        Extension(
            "mlxq._core",
            sources=sources,
            include_dirs=["src", numpy.get_include()],
            extra_compile_args=cflags + pkg_config("--cflags"),
            extra_link_args=ldflags + pkg_config("--libs") + ["-lm", "-lpthread"],
            depends=sorted(glob("src/*.h")),
        )
    ],
)
