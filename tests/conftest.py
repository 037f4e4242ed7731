"""Fixtures shared by the test suite: kernel configurations and the hypothesis profile."""

from __future__ import annotations

import os

import pytest

import mlxq
from mlxq import _core

ISAS = ("scalar", "avx2", "avx512")

# (impl, isa cap, threads): the reference kernel once, the fast kernels under every
# instruction set and with one and two threads.
KERNEL_CONFIGS = [("reference", None, None)] + [
    ("fast", isa, threads) for isa in ISAS for threads in (1, 2)
]


def _config_id(cfg: tuple) -> str:
    impl, isa, threads = cfg
    return impl if isa is None else f"{impl}-{isa}-t{threads}"


def isa_supported(isa: str) -> bool:
    return ISAS.index(isa) <= ISAS.index(_core.isa()[1])


def use_kernel(impl: str, isa: str | None, threads: int | None):
    """Context manager: cap the ISA and set the thread count, restoring both afterwards."""
    import contextlib

    @contextlib.contextmanager
    def cm():
        if isa is None:
            yield impl
            return
        prev_isa = _core.set_isa(isa)
        prev_threads = mlxq.get_num_threads()
        try:
            mlxq.set_num_threads(threads)
            yield impl
        finally:
            _core.set_isa(prev_isa)
            mlxq.set_num_threads(prev_threads)

    return cm()


@pytest.fixture(params=KERNEL_CONFIGS, ids=_config_id)
def kernel(request) -> str:
    """The ``impl`` argument to pass, with the ISA cap and thread count already applied."""
    impl, isa, threads = request.param
    if isa is not None and not isa_supported(isa):
        pytest.skip(f"this CPU cannot run the {isa} kernels (detected: {_core.isa()[1]})")
    with use_kernel(impl, isa, threads) as name:
        yield name


def supported_fast_isas() -> list[str]:
    return [isa for isa in ISAS if isa_supported(isa)]


def pytest_report_header(config) -> list[str]:
    active, detected = _core.isa()
    lines = [f"mlxq: kernels {active} (detected {detected}), {mlxq.get_num_threads()} threads"]
    try:
        import mlx.core as mx

        lines.append(f"mlx (live oracle): {mx.__version__}")
    except ImportError:
        lines.append("mlx: not installed; live comparisons will be skipped")
    return lines


try:
    from hypothesis import HealthCheck, settings

    # Reproducible by default: the same examples on every run and machine, no example
    # database written into the work tree. MLXQ_HYPOTHESIS_PROFILE=thorough explores more.
    settings.register_profile(
        "ci",
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=60,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
    )
    settings.register_profile(
        "thorough",
        parent=settings.get_profile("ci"),
        derandomize=False,
        max_examples=2000,
    )
    settings.load_profile(os.environ.get("MLXQ_HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra; test_mlx_live.py skips without it
    pass
