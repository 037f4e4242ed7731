"""quantize_weights / dequantize_weights: one test per rule of docs/weights.md, its error
cases included. Parity with mlx-lm is in test_weights_mlx_lm.py."""

from __future__ import annotations

import types
from collections.abc import Mapping

import numpy as np
import pytest

import mlxq
from mlxq import SKIP, PerLayerQuantization, Quantization, dequantize_weights, quantize_weights
from mlxq.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    InvariantViolationError,
    KeyCollisionError,
    MissingKeyError,
    MlxqError,
    OutOfRangeError,
    RankMismatchError,
    ShapeMismatchError,
    UnsupportedDtypeError,
)

AFFINE = Quantization(64, 4)
FP_MODES = [Quantization(32, 4, "mxfp4"), Quantization(32, 8, "mxfp8"),
            Quantization(16, 4, "nvfp4")]


def dense(shape, dtype=np.float32, seed=0) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32).astype(dtype)
    a.flags.writeable = False  # any in-place write by mlxq would raise
    return a


def triple(path: str, q: Quantization, shape=(8, 64)) -> dict[str, np.ndarray]:
    """A valid quantized layer as MLX writes it."""
    parts = mlxq.quantize(dense(shape), q.group_size, q.bits, q.mode)
    names = [path + ".weight", path + ".scales", path + ".biases"]
    return dict(zip(names, parts))


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


# ---- quantize: what a quantized layer looks like -----------------------------------------


def test_affine_layer_becomes_weight_scales_biases_bit_identical_to_quantize():
    w = dense((8, 128), mlxq.bfloat16)
    out = quantize_weights({"p.weight": w}, AFFINE)
    wq, scales, biases = mlxq.quantize(w, 64, 4)
    assert list(out) == ["p.weight", "p.scales", "p.biases"]
    assert_same(out["p.weight"], wq)
    assert_same(out["p.scales"], scales)
    assert_same(out["p.biases"], biases)


@pytest.mark.parametrize("q", FP_MODES, ids=lambda q: q.mode.value)
def test_fp_modes_write_weight_and_scales_only(q):
    w = dense((4, 64))
    out = quantize_weights({"p.weight": w}, q)
    wq, scales = mlxq.quantize(w, q.group_size, q.bits, q.mode)
    assert list(out) == ["p.weight", "p.scales"]
    assert_same(out["p.weight"], wq)
    assert_same(out["p.scales"], scales)


def test_three_d_expert_weights_are_quantized_along_the_last_axis():
    w = dense((4, 16, 64))
    out = quantize_weights({"switch_mlp.up_proj.weight": w}, AFFINE)
    assert out["switch_mlp.up_proj.weight"].shape == (4, 16, 8)
    assert out["switch_mlp.up_proj.scales"].shape == (4, 16, 1)


def test_output_keeps_input_order_with_generated_names_after_their_weight():
    w = {"a.weight": dense((2, 64)), "a.bias": dense(2), "n.weight": dense(64),
         "b.weight": dense((2, 64))}
    out = quantize_weights(w, AFFINE)
    assert list(out) == ["a.weight", "a.scales", "a.biases", "a.bias", "n.weight",
                         "b.weight", "b.scales", "b.biases"]


def test_pass_through_tensors_are_the_same_objects():
    w = {"n.weight": dense(64), "x": object()}
    out = quantize_weights(w, AFFINE)
    assert out["n.weight"] is w["n.weight"] and out["x"] is w["x"]


# ---- quantize: the predicate chain -------------------------------------------------------


def test_only_keys_ending_in_weight_are_candidates():
    w = {"p.bias": dense((2, 64)), "p.weights": dense((2, 64)), "p.weight_g": dense((2, 64))}
    out = quantize_weights(w, AFFINE)
    assert out == w


def test_layer_path_is_the_key_without_weight_suffix():
    seen = []
    quantize_weights({"model.layers.0.mlp.up_proj.weight": dense((2, 64))}, AFFINE,
                     lambda p, a: seen.append(p) or True)
    assert seen == ["model.layers.0.mlp.up_proj"]


def test_eligible_false_passes_through():
    w = {"p.weight": dense((2, 64))}
    assert quantize_weights(w, AFFINE, lambda p, a: False) == w


def test_eligible_is_called_with_path_and_the_array_itself():
    w = {"p.weight": dense((2, 64))}
    calls = []
    quantize_weights(w, AFFINE, lambda p, a: calls.append((p, a)) or True)
    assert len(calls) == 1 and calls[0][0] == "p" and calls[0][1] is w["p.weight"]


def test_default_eligible_accepts_everything_that_passes_the_structural_gates():
    # A conv-like 3-D weight is quantized under default_eligible (linear_like refuses it).
    w = {"conv1d.weight": dense((4, 4, 64))}
    assert "conv1d.scales" in quantize_weights(w, AFFINE)
    assert "conv1d.scales" not in quantize_weights(w, AFFINE, mlxq.linear_like)


@pytest.mark.parametrize("shape", [(), (64,)], ids=["scalar", "1-D"])
def test_rank_below_two_passes_through(shape):
    w = {"p.weight": dense(shape)}
    assert quantize_weights(w, AFFINE) == w


def test_last_axis_not_divisible_by_group_size_passes_through():
    w = {"p.weight": dense((4, 96))}
    assert quantize_weights(w, AFFINE) == w


def test_divisibility_uses_the_layers_own_group_size():
    w = {"p.weight": dense((4, 96))}
    cfg = PerLayerQuantization(AFFINE, {"p": Quantization(32, 4)})
    assert quantize_weights(w, cfg)["p.scales"].shape == (4, 3)


def test_zero_group_size_passes_through():
    w = {"p.weight": dense((4, 64))}
    assert quantize_weights(w, Quantization(0, 4)) == w


def test_negative_group_size_is_out_of_range():
    with pytest.raises(OutOfRangeError) as e:
        quantize_weights({"p.weight": dense((4, 64))}, Quantization(-64, 4))
    assert e.value.layer == "p" and e.value.key == "p.weight"


def test_negative_group_size_on_a_1d_weight_is_not_reached():
    # Rank is checked before the group size: a 1-D weight is never a layer, whatever the
    # group size.
    w = {"norm.weight": dense(64)}
    assert quantize_weights(w, Quantization(-64, 4)) == w


def test_skip_passes_through():
    w = {"p.weight": dense((4, 64)), "q.weight": dense((4, 64))}
    out = quantize_weights(w, PerLayerQuantization(AFFINE, {"p": SKIP}))
    assert out["p.weight"] is w["p.weight"] and "q.scales" in out


def test_per_layer_override_wins_over_global():
    w = {"p.weight": dense((4, 64)), "q.weight": dense((4, 64))}
    cfg = PerLayerQuantization(AFFINE, {"p": Quantization(32, 8), "q": Quantization(32, 4,
                                                                                     "mxfp4")})
    out = quantize_weights(w, cfg)
    assert out["p.weight"].shape == (4, 16) and out["p.scales"].shape == (4, 2)
    assert out["q.scales"].dtype == np.uint8 and "q.biases" not in out
    assert_same(out["p.weight"], mlxq.quantize(w["p.weight"], 32, 8)[0])


def test_without_global_only_listed_layers_are_quantized():
    w = {"p.weight": dense((4, 64)), "q.weight": dense((4, 64))}
    out = quantize_weights(w, PerLayerQuantization(None, {"p": AFFINE}))
    assert "p.scales" in out and out["q.weight"] is w["q.weight"]


def test_quantization_is_accepted_as_a_global_config():
    w = {"p.weight": dense((4, 64))}
    a = quantize_weights(w, AFFINE)
    b = quantize_weights(w, PerLayerQuantization(AFFINE))
    for k in a:
        assert_same(a[k], b[k])


# ---- quantize: existing triples ---------------------------------------------------------


def test_valid_affine_triple_passes_through_verbatim():
    w = {**triple("p", AFFINE), "q.weight": dense((4, 64))}
    out = quantize_weights(w, AFFINE)
    for k in ("p.weight", "p.scales", "p.biases"):
        assert out[k] is w[k]
    assert "q.scales" in out


@pytest.mark.parametrize("q", FP_MODES, ids=lambda q: q.mode.value)
def test_valid_fp_triple_passes_through_verbatim(q):
    w = triple("p", q)
    out = quantize_weights(w, q)
    assert list(out) == ["p.weight", "p.scales"] and out["p.weight"] is w["p.weight"]


def test_valid_triple_is_judged_by_its_layers_override():
    w = triple("p", Quantization(32, 4, "mxfp4"))
    cfg = PerLayerQuantization(AFFINE, {"p": Quantization(32, 4, "mxfp4")})
    assert quantize_weights(w, cfg)["p.weight"] is w["p.weight"]


def test_eligible_is_not_consulted_for_a_valid_triple():
    calls = []
    quantize_weights(triple("p", AFFINE), AFFINE, lambda p, a: calls.append(p) or True)
    assert calls == []


def test_triple_classification_precedes_eligibility():
    # A stale .scales next to a dense weight is an error even if the predicate says no.
    w = {"p.weight": dense((4, 64)), "p.scales": dense((4, 1)), "p.biases": dense((4, 1))}
    with pytest.raises(UnsupportedDtypeError):
        quantize_weights(w, AFFINE, lambda p, a: False)


def test_orphan_biases_is_a_missing_scales():
    w = {"p.weight": dense((4, 64)), "p.biases": dense((4, 1))}
    with pytest.raises(MissingKeyError) as e:
        quantize_weights(w, AFFINE)
    assert e.value.layer == "p" and e.value.key == "p.scales"


def test_scales_on_a_skipped_layer_is_a_collision():
    w = triple("p", AFFINE)
    with pytest.raises(KeyCollisionError) as e:
        quantize_weights(w, PerLayerQuantization(AFFINE, {"p": SKIP}))
    assert e.value.layer == "p" and e.value.key == "p.scales"


def test_scales_without_resolvable_parameters_is_an_invariant_violation():
    w = triple("p", AFFINE)
    with pytest.raises(InvariantViolationError) as e:
        quantize_weights(w, PerLayerQuantization(None, {"other": AFFINE}))
    assert e.value.layer == "p"


def test_affine_triple_without_biases_is_missing_biases():
    w = triple("p", AFFINE)
    del w["p.biases"]
    with pytest.raises(MissingKeyError) as e:
        quantize_weights(w, AFFINE)
    assert e.value.key == "p.biases"


@pytest.mark.parametrize("q", FP_MODES, ids=lambda q: q.mode.value)
def test_fp_triple_with_biases_is_a_collision(q):
    w = {**triple("p", q), "p.biases": dense((8, 4))}
    with pytest.raises(KeyCollisionError) as e:
        quantize_weights(w, q)
    assert e.value.key == "p.biases"


def test_mode_arity_is_checked_before_shapes():
    # Float weight (a dtype error) and no biases under affine: the arity error wins.
    w = {"p.weight": dense((4, 64)), "p.scales": dense((4, 1))}
    with pytest.raises(MissingKeyError):
        quantize_weights(w, AFFINE)


def test_dense_weight_next_to_scales_is_an_unsupported_dtype():
    w = {**triple("p", AFFINE), "p.weight": dense((8, 64))}
    with pytest.raises(UnsupportedDtypeError) as e:
        quantize_weights(w, AFFINE)
    assert e.value.key == "p.weight"


def test_quantized_weight_of_rank_below_two_is_a_rank_mismatch():
    w = {**triple("p", AFFINE), "p.weight": np.zeros(8, np.uint32)}
    with pytest.raises(RankMismatchError) as e:
        quantize_weights(w, AFFINE)
    assert e.value.key == "p.weight"


def test_scales_rank_differing_from_weight_rank_is_a_rank_mismatch():
    w = triple("p", AFFINE)
    w["p.scales"] = w["p.scales"].reshape(1, 8, 1)
    w["p.biases"] = w["p.biases"].reshape(1, 8, 1)
    with pytest.raises(RankMismatchError) as e:
        quantize_weights(w, AFFINE)
    assert e.value.key == "p.scales"


def test_scales_leading_dims_must_match_weight():
    w = triple("p", AFFINE)
    w["p.scales"] = np.zeros((4, 2), np.float32)
    w["p.biases"] = np.zeros((4, 2), np.float32)
    with pytest.raises(ShapeMismatchError) as e:
        quantize_weights(w, AFFINE)
    assert e.value.key == "p.scales"


def test_biases_shape_must_match_scales():
    w = triple("p", AFFINE)
    w["p.biases"] = np.zeros((8, 2), np.float32)
    with pytest.raises(ShapeMismatchError) as e:
        quantize_weights(w, AFFINE)
    assert e.value.key == "p.biases"


def test_biases_dtype_must_match_scales():
    w = triple("p", AFFINE)
    w["p.biases"] = w["p.biases"].astype(np.float16)
    with pytest.raises(UnsupportedDtypeError) as e:
        quantize_weights(w, AFFINE)
    assert e.value.key == "p.biases"


def test_generated_names_are_reserved():
    # A layer is only quantized when neither P.scales nor P.biases exists, so a generated
    # tensor never overwrites an input one: any existing sibling is either a valid triple
    # (kept verbatim) or an error.
    stale = np.full((8, 1), 7, np.float32)
    w = {"p.weight": dense((8, 64)), "p.scales": stale, "p.biases": stale}
    with pytest.raises(MlxqError):
        quantize_weights(w, AFFINE)
    assert w["p.scales"] is stale


# ---- quantize: kernel errors, atomicity, arguments --------------------------------------


def test_kernel_errors_carry_the_layer_and_key():
    with pytest.raises(OutOfRangeError) as e:
        quantize_weights({"model.lm_head.weight": dense((4, 64))}, Quantization(64, 7))
    assert e.value.layer == "model.lm_head" and e.value.key == "model.lm_head.weight"
    assert str(e.value).startswith("model.lm_head: ")
    assert isinstance(e.value.__cause__, OutOfRangeError)


def test_integer_weight_is_the_kernels_unsupported_dtype():
    with pytest.raises(UnsupportedDtypeError) as e:
        quantize_weights({"p.weight": np.zeros((4, 64), np.int32)}, AFFINE)
    assert e.value.layer == "p"


@pytest.mark.parametrize(
    "make, cls, builtin",
    [
        (lambda: {"p.weight": dense((4, 64)), "p.biases": dense((4, 1))}, MissingKeyError,
         KeyError),
        (lambda: {**triple("p", AFFINE), "p.weight": dense((8, 64))}, UnsupportedDtypeError,
         TypeError),
        (lambda: {**triple("p", AFFINE), "p.scales": np.zeros((2, 1), np.float32),
                  "p.biases": np.zeros((2, 1), np.float32)}, ShapeMismatchError, ValueError),
    ],
)
def test_errors_name_the_layer_first_and_derive_from_builtins(make, cls, builtin):
    with pytest.raises(cls) as e:
        quantize_weights(make(), AFFINE)
    assert isinstance(e.value, builtin) and isinstance(e.value, MlxqError)
    assert str(e.value).startswith("p: ")


def test_structural_error_after_valid_layers_gives_no_output_and_calls_no_kernel():
    calls = []
    w = {"a.weight": dense((4, 64)), "b.weight": dense((4, 64)), "b.biases": dense((4, 1))}
    before = dict(w)
    with pytest.raises(MissingKeyError):
        quantize_weights(w, AFFINE, lambda p, a: calls.append(p) or True)
    assert calls == ["a"]  # pass 1 only
    assert w == before


def test_kernel_error_midway_leaves_the_input_untouched():
    w = {"a.weight": dense((4, 64)), "b.weight": dense((4, 64)), "c.weight": dense((4, 64))}
    before = dict(w)
    cfg = PerLayerQuantization(AFFINE, {"b": Quantization(64, 7)})
    with pytest.raises(OutOfRangeError):
        quantize_weights(w, cfg)
    assert w == before and list(w) == list(before)


def test_predicate_exceptions_propagate():
    def boom(p, a):
        raise RuntimeError("predicate failed")

    with pytest.raises(RuntimeError, match="predicate failed"):
        quantize_weights({"p.weight": dense((4, 64))}, AFFINE, boom)


class CountingMapping(Mapping):
    """A read-only mapping that counts how often each value is fetched."""

    def __init__(self, data):
        self.data, self.reads = dict(data), {}

    def __getitem__(self, key):
        self.reads[key] = self.reads.get(key, 0) + 1
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_any_mapping_is_accepted_and_read_once_per_value():
    m = CountingMapping({**triple("p", AFFINE), "q.weight": dense((4, 64)), "n": dense(3)})
    out = quantize_weights(m, AFFINE)
    assert "q.scales" in out and all(n == 1 for n in m.reads.values())
    out = quantize_weights(types.MappingProxyType({"q.weight": dense((4, 64))}), AFFINE)
    assert "q.scales" in out


@pytest.mark.parametrize(
    "weights, cfg, eligible",
    [
        ([("p.weight", dense((4, 64)))], AFFINE, mlxq.default_eligible),
        ({1: dense((4, 64))}, AFFINE, mlxq.default_eligible),
        ({"p.weight": [[1.0] * 64]}, AFFINE, mlxq.default_eligible),
        ({"p.weight": dense((4, 64))}, {"group_size": 64, "bits": 4}, mlxq.default_eligible),
        ({"p.weight": dense((4, 64))}, None, mlxq.default_eligible),
        ({"p.weight": dense((4, 64))}, AFFINE, "linear_like"),
    ],
    ids=["not-a-mapping", "non-str-key", "non-array-weight", "dict-cfg", "none-cfg",
         "eligible-not-callable"],
)
def test_bad_arguments_are_argument_type_errors(weights, cfg, eligible):
    with pytest.raises(ArgumentTypeError):
        quantize_weights(weights, cfg, eligible)


# ---- dequantize --------------------------------------------------------------------------


def test_dequantize_replaces_a_triple_with_the_dense_weight_in_place():
    w = {"n.weight": dense(64), **triple("p", AFFINE), "p.bias": dense(8)}
    out = dequantize_weights(w, AFFINE)
    assert list(out) == ["n.weight", "p.weight", "p.bias"]
    expected = mlxq.dequantize(w["p.weight"], w["p.scales"], w["p.biases"], 64, 4)
    assert_same(out["p.weight"], expected)
    assert out["p.bias"] is w["p.bias"]


@pytest.mark.parametrize("q", FP_MODES, ids=lambda q: q.mode.value)
def test_dequantize_fp_modes_default_to_bfloat16_like_mlx(q):
    w = triple("p", q)
    out = dequantize_weights(w, q)
    assert_same(out["p.weight"], mlxq.dequantize(w["p.weight"], w["p.scales"], None,
                                                 q.group_size, q.bits, q.mode))
    assert out["p.weight"].dtype == mlxq.bfloat16


def test_dequantize_uses_the_per_layer_override():
    low = Quantization(32, 2)
    w = {**triple("a", AFFINE), **triple("b", low)}
    out = dequantize_weights(w, PerLayerQuantization(AFFINE, {"b": low}))
    assert_same(out["b.weight"], mlxq.dequantize(w["b.weight"], w["b.scales"], w["b.biases"],
                                                 32, 2))


def test_dequantize_inverts_quantize_weights():
    w = {"a.weight": dense((8, 64)), "n.weight": dense(64), "b.weight": dense((4, 96))}
    cfg = PerLayerQuantization(AFFINE, {"b": Quantization(32, 8)})
    out = dequantize_weights(quantize_weights(w, cfg), cfg)
    assert list(out) == list(w)
    assert np.abs(out["a.weight"] - w["a.weight"]).max() < 0.5


def test_dequantize_without_parameters_is_an_invariant_violation():
    with pytest.raises(InvariantViolationError) as e:
        dequantize_weights(triple("p", AFFINE), PerLayerQuantization(None, {}))
    assert e.value.layer == "p"


def test_dequantize_skipped_triple_is_an_invariant_violation():
    with pytest.raises(InvariantViolationError):
        dequantize_weights(triple("p", AFFINE), PerLayerQuantization(AFFINE, {"p": SKIP}))


def test_dequantize_affine_without_biases_is_missing_biases():
    w = triple("p", AFFINE)
    del w["p.biases"]
    with pytest.raises(MissingKeyError) as e:
        dequantize_weights(w, AFFINE)
    assert e.value.key == "p.biases" and e.value.layer == "p"


@pytest.mark.parametrize("q", FP_MODES, ids=lambda q: q.mode.value)
def test_dequantize_fp_with_biases_is_a_collision(q):
    w = {**triple("p", q), "p.biases": dense((8, 4))}
    with pytest.raises(KeyCollisionError) as e:
        dequantize_weights(w, q)
    assert e.value.key == "p.biases"


def test_dequantize_passes_dense_weights_and_stray_siblings_through():
    w = {"d.weight": dense((4, 64)), "s.scales": dense((4, 1)), "b.biases": dense((4, 1))}
    out = dequantize_weights(w, AFFINE)
    assert list(out) == list(w) and all(out[k] is w[k] for k in w)


def test_dequantize_packed_weight_with_biases_but_no_scales_is_missing_scales():
    w = triple("p", AFFINE)
    del w["p.scales"]
    with pytest.raises(MissingKeyError) as e:
        dequantize_weights(w, AFFINE)
    assert e.value.key == "p.scales" and e.value.layer == "p"


def test_dequantize_dense_weight_with_biases_passes_through():
    w = {"p.weight": dense((4, 64)), "p.biases": dense(4)}
    out = dequantize_weights(w, AFFINE)
    assert out["p.weight"] is w["p.weight"] and out["p.biases"] is w["p.biases"]


def test_dequantize_1d_uint32_weight_with_biases_passes_through():
    w = {"p.weight": np.zeros(8, np.uint32), "p.biases": dense(4)}
    assert dequantize_weights(w, AFFINE) == w


def test_dequantize_kernel_errors_carry_the_layer():
    w = triple("p", AFFINE)  # made with group size 64
    with pytest.raises(MlxqError) as e:
        dequantize_weights(w, Quantization(32, 4))
    assert e.value.layer == "p" and str(e.value).startswith("p: ")


def test_dequantize_refuses_nvfp4_global_scale():
    q = Quantization(16, 4, "nvfp4")
    w = {**triple("p", q), "p.global_scale": np.ones(1, np.float32)}
    with pytest.raises(InvalidArgumentError) as e:
        dequantize_weights(w, q)
    assert e.value.key == "p.global_scale"


def test_dequantize_error_after_valid_layers_gives_no_output_and_keeps_input():
    w = {**triple("a", AFFINE), **triple("b", AFFINE)}
    del w["b.biases"]
    before = dict(w)
    with pytest.raises(MissingKeyError):
        dequantize_weights(w, AFFINE)
    assert w == before and list(w) == list(before)


def test_dequantize_bad_arguments():
    with pytest.raises(ArgumentTypeError):
        dequantize_weights(triple("p", AFFINE), None)
    with pytest.raises(ArgumentTypeError):
        dequantize_weights([("p.weight", 1)], AFFINE)
