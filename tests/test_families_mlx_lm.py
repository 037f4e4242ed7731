"""Every family, end to end: each checkpoint transformers built (tests/fixtures/hf/) is
converted by mlxq and by mlx_lm.convert itself with the same flags, and the folders must
be identical — tensors (names, dtypes, shapes, bytes), the quantization blocks, config.json
byte for byte. mlx-lm runs in this process (skipped without it)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

mlx_lm = pytest.importorskip("mlx_lm")

import mlxq.errors  # noqa: E402
import mlxq.models  # noqa: E402
from mlxq import convert  # noqa: E402
from mlxq.testing import assert_checkpoints_equal  # noqa: E402

FIXTURES = Path(os.environ.get("MLXQ_HF_FIXTURES",
                               Path(__file__).resolve().parent / "fixtures" / "hf"))

FLAGS = {
    "q": {"quantize": True},
    "q8g32": {"quantize": True, "q_bits": 8, "q_group_size": 32},
    "mxfp4": {"quantize": True, "q_mode": "mxfp4"},
    "mixed_3_6": {"quantize": True, "quant_predicate": "mixed_3_6"},
    "f16": {"dtype": "float16"},
}

# What mlx-lm 0.32.2 itself cannot convert (found by running it on these fixtures): the
# reason, per (fixture, flags); mlxq's output for these is checked elsewhere.
MLX_LM_FAILS: dict[tuple[str, str], str] = {}


def fixtures() -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(d for d in FIXTURES.iterdir() if (d / "config.json").is_file()
                  and json.loads((d / "config.json").read_text()).get("model_type")
                  in mlxq.models.supported_model_types())


def mlx_lm_convert(src: Path, dst: Path, **flags) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        mlx_lm.convert(str(src), str(dst), **flags)


CASES = [pytest.param(d, name, id=f"{d.name}-{name}") for d in fixtures() for name in FLAGS]


@pytest.mark.parametrize("folder,flags", CASES)
def test_same_folder_as_mlx_lm_convert(folder, flags, tmp_path):
    if (folder.name, flags) in MLX_LM_FAILS:
        pytest.skip(MLX_LM_FAILS[(folder.name, flags)])
    kw = FLAGS[flags]
    try:
        mlx_lm_convert(folder, tmp_path / "ref", **kw)
    except Exception:  # mlx-lm refuses: so must mlxq, with a typed error, writing nothing
        with pytest.raises(mlxq.errors.MlxqError):
            convert(folder, tmp_path / "mlxq", quiet=True, **kw)
        assert not (tmp_path / "mlxq").exists()
        return
    convert(folder, tmp_path / "mlxq", quiet=True, **kw)
    a, b = tmp_path / "mlxq", tmp_path / "ref"
    assert_checkpoints_equal(a, b, check_config=True, check_index=False)
    ca, cb = json.loads((a / "config.json").read_text()), json.loads((b / "config.json").read_text())
    assert ca.get("quantization") == cb.get("quantization")
    assert ca.get("quantization_config") == cb.get("quantization_config")
    assert (a / "config.json").read_text() == (b / "config.json").read_text()
