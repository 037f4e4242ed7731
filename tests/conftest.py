"""Fixtures shared by the test suite: kernel configurations and the hypothesis profile."""

from __future__ import annotations

import os
import sys
import types

import pytest

import mlxq
import oracle
from mlxq import _core
from support import KERNEL_CONFIGS, config_id, isa_supported, use_kernel

# mlx-lm's models/olmo.py (OLMo 1 in AI2's hf_olmo layout) exits the interpreter unless AI2's
# ``hf_olmo`` package imports, and uses nothing of it (an availability probe): an empty
# stand-in lets the oracle build OLMo 1 models without installing ai2-olmo and torch.
sys.modules.setdefault("hf_olmo", types.ModuleType("hf_olmo"))

#: Why the live MLX / mlx-lm checks are skipped (another version than the pinned one is
#: installed), or None: see tests/oracle.py.
ORACLE_SKIPPED = oracle.guard()


@pytest.fixture(params=KERNEL_CONFIGS, ids=config_id)
def kernel(request) -> str:
    """The ``impl`` argument to pass, with the ISA cap and thread count already applied
    (and restored after the test): the reference kernel, then the fast kernels under every
    instruction set with one and two threads. ISAs this CPU lacks are skipped."""
    impl, isa, threads = request.param
    if isa is not None and not isa_supported(isa):
        pytest.skip(f"this CPU cannot run the {isa} kernels (detected: {_core.isa()[1]})")
    with use_kernel(impl, isa, threads) as name:
        yield name


def pytest_report_header(config) -> list[str]:
    active, detected = _core.isa()
    lines = [f"mlxq: kernels {active} (detected {detected}), {mlxq.get_num_threads()} threads"]
    if ORACLE_SKIPPED:
        lines.append(ORACLE_SKIPPED)
        return lines
    have = oracle.installed()
    if have:
        lines.append("live oracle (pinned versions): " + ", ".join(
            f"{d} {v}" for d, v in sorted(have.items())))
    if len(have) < len(oracle.MODULES):
        lines.append("mlx / mlx-lm not installed: their live comparisons are skipped")
    return lines


try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a test extra; test_mlx_live.py skips without it
    pass
else:
    # Reproducible by default: the same examples on every run and machine, and no example
    # database written into the work tree. MLXQ_HYPOTHESIS_PROFILE=thorough explores more.
    settings.register_profile(
        "ci",
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=150,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )
    settings.register_profile(
        "thorough", parent=settings.get_profile("ci"), derandomize=False, max_examples=2000
    )
    settings.load_profile(os.environ.get("MLXQ_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def hub(tmp_path):
    """A stand-in Hugging Face Hub (tests/hub_server.py) on 127.0.0.1, with
    ``huggingface_hub`` pointed at it for the test (in this process and in subprocesses:
    ``HF_ENDPOINT`` and ``HF_HOME`` under ``tmp_path``, telemetry off, no token) and every
    other host refused. Publish folders with ``hub.add_repo("org/name", folder)``."""
    pytest.importorskip("huggingface_hub")
    from hub_server import HubServer, point_client_at

    with HubServer() as server, point_client_at(server.endpoint, tmp_path / "hf-home"):
        yield server


@pytest.fixture
def no_retry_sleep(monkeypatch):
    """huggingface_hub's downloads wait one second before each resume after a cut
    connection (``http_get``: ``time.sleep(1)``); tests that cut connections on purpose skip
    the wait."""
    import types

    from huggingface_hub import file_download

    monkeypatch.setattr(file_download, "time", types.SimpleNamespace(sleep=lambda s: None))


@pytest.fixture(scope="module")
def torch_cache_in_pytests_folders(tmp_path_factory):
    """torch (through transformers) keeps a compile cache in TMPDIR/torchinductor_USER;
    for the modules that run torch it goes under pytest's own folders, which the
    no-leftovers rule allows."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("torchinductor")))
    yield
    mp.undo()
