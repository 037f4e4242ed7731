"""Validation of untrusted safetensors files: one test per rule (docs/io.md, "Validation").

Every malformed file must raise mlxq.SafetensorsError (a FormatError, so a ValueError)
naming the file, and the tensor when one is at fault. A final battery checks that mlxq
accepts and rejects exactly what the reference parser (the `safetensors` package) does,
except for the documented cases where mlxq is stricter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlxq
from mlxq import _core
from mlxq.errors import MlxqError, SafetensorsError
from st_util import entry, st_bytes

CORPUS = Path(__file__).resolve().parent.parent / "fuzz" / "corpus" / "st_header"


def one(dtype="U8", shape=(4,), offsets=(0, 4), name="t", **extra):
    e = entry(dtype, list(shape), *offsets)
    e.update(extra)
    return {name: e}


def reject(tmp_path, image: bytes, match: str, name: str | None = None) -> SafetensorsError:
    """Writes image, checks that both the file reader and st_validate reject it."""
    p = tmp_path / "bad.safetensors"
    p.write_bytes(image)
    with pytest.raises(SafetensorsError, match=match) as info:
        mlxq.load_safetensors(p)
    assert str(p) in str(info.value)
    if name is not None:
        assert repr(name) in str(info.value)
    with pytest.raises(SafetensorsError, match=match):
        _core.st_validate(image)
    assert isinstance(info.value, MlxqError) and isinstance(info.value, ValueError)
    return info.value


def accept(image: bytes):
    return _core.st_validate(image)


# ---- the length prefix -------------------------------------------------------------------


def test_file_shorter_than_length_prefix_is_rejected(tmp_path):
    for n in range(8):
        reject(tmp_path, b"\x05" * n, "too short")


def test_header_length_over_100MB_is_rejected(tmp_path):
    reject(tmp_path, st_bytes("{}", length=100_000_001), "over the 100000000-byte limit")
    reject(tmp_path, st_bytes("{}", length=2**64 - 1), "over the 100000000-byte limit")


def test_header_length_beyond_file_end_is_truncation(tmp_path):
    reject(tmp_path, st_bytes("{}", length=3), r"truncated")  # "{}" is 2 bytes, 3 claimed


# ---- the header text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b'{"\xff":1}', b'{"a\xc0\x80":1}', b'{"\xed\xa0\x80":1}', b'{"\xf4\x90\x80\x80":1}',
     b'{"a":"\xe2\x82"}'],
    ids=["invalid-byte", "overlong", "surrogate", "above-10FFFF", "cut-sequence"],
)
def test_header_must_be_valid_utf8(tmp_path, raw):
    reject(tmp_path, st_bytes(raw), "not valid UTF-8")


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_header_is_rejected(tmp_path, text):
    reject(tmp_path, st_bytes(text), "empty")


@pytest.mark.parametrize("text", ["[]", '"x"', "1", "null", "true"])
def test_header_must_be_a_json_object(tmp_path, text):
    reject(tmp_path, st_bytes(text), "not a JSON object")


@pytest.mark.parametrize(
    "text, what",
    [
        ("{", "expected a string key"),
        ('{"a":1,}', "expected a string key"),
        ('{"a":[1,2,]}', "unexpected character"),
        ('{"a":NaN}', "unexpected character"),
        ('{"a":Infinity}', "unexpected character"),
        ("{'a':1}", "expected a string key"),
        ('{"a":"\x01"}', "control character"),
        ('{"a":"\\x"}', "invalid escape"),
        ('{"a":"\\ud800"}', "lone leading surrogate"),
        ('{"a":"\\udc00"}', "lone trailing surrogate"),
        ('{"a":01}', "leading zero"),
        ('{"a":1.}', "invalid number"),
        ('{"a":-}', "invalid number"),
        ('{"a":tru}', "unexpected character"),
        ("{} x", "trailing characters"),
        ("{}\x00", "trailing characters"),
        ("\ufeff{}", "not a JSON object"),
        ("/*c*/{}", "not a JSON object"),
    ],
)
def test_header_must_be_strict_json(tmp_path, text, what):
    reject(tmp_path, st_bytes(text), what)


def test_nesting_deeper_than_128_is_rejected(tmp_path):
    deep = '{"__metadata__":null,"x":' + "[" * 200 + "]" * 200 + "}"
    reject(tmp_path, st_bytes(deep), "nesting deeper than 128")
    ok = '{"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":' + "[" * 126 + "]" * 126 + "}}"
    assert accept(st_bytes(ok))[0][0][0] == "t"


def test_whitespace_around_the_object_is_allowed():
    for text in ["\t\n {} \r\n", "{}" + " " * 6, " {} "]:
        assert accept(st_bytes(text)) == ([], None, 8 + len(text), 0)


# ---- names and keys -----------------------------------------------------------------------


def test_duplicate_tensor_names_are_rejected(tmp_path):
    text = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
    reject(tmp_path, st_bytes(text, b"x"), "repeats the key 'a'")


def test_duplicate_names_are_found_through_escapes(tmp_path):
    text = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'
    reject(tmp_path, st_bytes(text, b"xy"), "repeats the key 'a'")


def test_duplicate_metadata_keys_are_rejected(tmp_path):
    reject(tmp_path, st_bytes('{"__metadata__":{"k":"1","k":"2"}}'), "repeats the key 'k'")
    reject(tmp_path, st_bytes('{"__metadata__":{},"__metadata__":{}}'), "repeats the key '__metadata__'")


def test_duplicate_fields_in_an_entry_are_rejected(tmp_path):
    text = '{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
    reject(tmp_path, st_bytes(text, b"x"), "repeats the key 'dtype'")


def test_names_with_nul_are_rejected(tmp_path):
    text = '{"a\\u0000b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
    reject(tmp_path, st_bytes(text, b"x"), "U\\+0000")


def test_unicode_names_and_escapes_decode_exactly(tmp_path):
    names = ["é", "a/b", 'q"uote', "back\\slash", "tab\there", "\u2603", "\U0001f600", ""]
    header = {n: entry("U8", [1], i, i + 1) for i, n in enumerate(names)}
    p = tmp_path / "u.safetensors"
    p.write_bytes(st_bytes(json.dumps(header), bytes(range(len(names)))))
    loaded = mlxq.load_safetensors(p)
    assert sorted(loaded) == sorted(names, key=lambda s: s.encode())
    assert all(loaded[n][0] == i for i, n in enumerate(names))


# ---- __metadata__ -------------------------------------------------------------------------


def test_metadata_must_be_an_object_of_strings(tmp_path):
    reject(tmp_path, st_bytes('{"__metadata__":[]}'), "must be an object of strings")
    reject(tmp_path, st_bytes('{"__metadata__":"x"}'), "must be an object of strings")
    reject(tmp_path, st_bytes('{"__metadata__":{"a":1}}'), "value of 'a' must be a string")
    reject(tmp_path, st_bytes('{"__metadata__":{"a":null}}'), "value of 'a' must be a string")


def test_null_metadata_means_none():
    assert accept(st_bytes('{"__metadata__":null}'))[1] is None
    assert accept(st_bytes('{"__metadata__":{}}'))[1] == {}


def test_metadata_values_keep_nul_and_unicode():
    assert accept(st_bytes('{"__metadata__":{"k":"a\\u0000b","\u00e9":"\\u2603"}}'))[1] == {
        "k": "a\0b", "é": "\u2603"}


# ---- tensor entries -----------------------------------------------------------------------


def test_entry_must_be_an_object(tmp_path):
    reject(tmp_path, st_bytes('{"t":["U8",[1],[0,1]]}', b"x"), "expected an object", "t")
    reject(tmp_path, st_bytes('{"t":1}', b"x"), "expected an object", "t")


@pytest.mark.parametrize("field", ["dtype", "shape", "data_offsets"])
def test_entry_fields_are_required(tmp_path, field):
    h = one()
    del h["t"][field]
    reject(tmp_path, st_bytes(h, b"xxxx"), f"missing field '{field}'", "t")


def test_unknown_entry_fields_are_ignored():
    tensors, *_ = accept(st_bytes(one(extra={"deep": [1, {"x": None}]}, note=-1.5), b"xxxx"))
    assert tensors == [("t", "U8", (4,), 0, 4)]


@pytest.mark.parametrize("dtype", ["u8", "F17", "FLOAT32", "", "bfloat16"])
def test_unknown_dtypes_are_rejected(tmp_path, dtype):
    reject(tmp_path, st_bytes(one(dtype=dtype), b"xxxx"), "unknown dtype", "t")


def test_dtype_must_be_a_string(tmp_path):
    reject(tmp_path, st_bytes(one(dtype=8), b"xxxx"), "dtype must be a string", "t")


@pytest.mark.parametrize(
    "shape, what",
    [
        ("null", "shape must be a list"),
        ("4", "shape must be a list"),
        ("[-1]", "negative integer"),
        ("[4.0]", "non-integer number"),
        ("[4e0]", "non-integer number"),
        ('["4"]', "a string"),
        ("[9223372036854775808]", "too large"),
        ("[18446744073709551616]", "too large"),
    ],
)
def test_shape_must_be_non_negative_integers(tmp_path, shape, what):
    text = '{"t":{"dtype":"U8","shape":%s,"data_offsets":[0,4]}}' % shape
    reject(tmp_path, st_bytes(text, b"xxxx"), what, "t")


def test_rank_above_64_is_rejected(tmp_path):
    reject(tmp_path, st_bytes(one(shape=[1] * 65, offsets=(0, 1)), b"x"), "more than 64 dimensions", "t")
    assert accept(st_bytes(one(shape=[1] * 64, offsets=(0, 1)), b"x"))[0][0][2] == (1,) * 64


@pytest.mark.parametrize(
    "offsets, what",
    [("[0]", "two integers"), ("[0,4,4]", "two integers"), ('"0,4"', "two integers"),
     ("[-1,4]", "negative"), ("[0,4.0]", "non-integer")],
)
def test_data_offsets_must_be_two_non_negative_integers(tmp_path, offsets, what):
    text = '{"t":{"dtype":"U8","shape":[4],"data_offsets":%s}}' % offsets
    reject(tmp_path, st_bytes(text, b"xxxx"), what, "t")


# ---- sizes and the data section ---------------------------------------------------------


def test_offsets_must_not_end_before_they_begin(tmp_path):
    reject(tmp_path, st_bytes(one(shape=[0], offsets=(4, 0)), b"xxxx"), "end before they begin", "t")


def test_first_tensor_must_start_at_zero(tmp_path):
    reject(tmp_path, st_bytes(one(offsets=(1, 5)), b"xxxxx"), "leave a gap", "t")


def test_gaps_between_tensors_are_rejected(tmp_path):
    h = {"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 3, 5)}
    reject(tmp_path, st_bytes(h, b"x" * 5), "leave a gap", "b")


def test_overlapping_tensors_are_rejected(tmp_path):
    h = {"a": entry("U8", [4], 0, 4), "b": entry("U8", [2], 2, 4)}
    reject(tmp_path, st_bytes(h, b"x" * 4), "overlap", "b")
    h = {"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 0, 4)}
    reject(tmp_path, st_bytes(h, b"x" * 8), "overlap")


def test_byte_size_must_match_dtype_and_shape(tmp_path):
    reject(tmp_path, st_bytes(one(dtype="F32", shape=[2, 2], offsets=(0, 4)), b"x" * 4), "span 4 bytes .* need 16", "t")
    reject(tmp_path, st_bytes(one(dtype="F16", shape=[3], offsets=(0, 5)), b"x" * 5), "need 6", "t")


def test_element_count_overflow_is_rejected(tmp_path):
    h = one(dtype="I32", shape=[2, 2**62, 2**62], offsets=(0, 16))
    reject(tmp_path, st_bytes(h, b"x" * 16), "overflows 64 bits", "t")
    h = one(dtype="I64", shape=[2**62], offsets=(0, 16))
    reject(tmp_path, st_bytes(h, b"x" * 16), "overflows 64 bits", "t")


def test_sub_byte_tensors_must_fill_whole_bytes(tmp_path):
    reject(tmp_path, st_bytes(one(dtype="F4", shape=[3], offsets=(0, 2)), b"xx"), "whole number of bytes", "t")
    assert accept(st_bytes(one(dtype="F4", shape=[4], offsets=(0, 2)), b"xx"))[0][0][1] == "F4"
    assert accept(st_bytes(one(dtype="F6_E2M3", shape=[4], offsets=(0, 3)), b"xxx"))[0][0][1] == "F6_E2M3"


def test_truncated_data_is_rejected(tmp_path):
    h = {"a": entry("U8", [4], 0, 4), "b": entry("F32", [4], 4, 20)}
    reject(tmp_path, st_bytes(h, b"x" * 19), "truncated: tensor 'b' ends at byte 20", "b")


def test_trailing_bytes_are_rejected(tmp_path):
    reject(tmp_path, st_bytes(one(), b"x" * 5), "1 bytes after the last tensor")
    reject(tmp_path, st_bytes("{}", b"x"), "1 bytes after the last tensor")


def test_zero_size_tensors_may_sit_at_any_boundary():
    h = {"a": entry("U8", [2], 0, 2), "e0": entry("F32", [0, 5], 0, 0),
         "e1": entry("I64", [3, 0], 2, 2), "b": entry("U8", [1], 2, 3), "e2": entry("BOOL", [0], 3, 3)}
    tensors, *_ = accept(st_bytes(h, b"xyz"))
    assert [t[0] for t in tensors] == ["a", "b", "e0", "e1", "e2"]


def test_offsets_need_not_be_in_name_order():
    h = {"z": entry("U8", [1], 0, 1), "a": entry("U8", [2], 1, 3)}
    assert accept(st_bytes(h, b"xyz"))[0] == [("a", "U8", (2,), 1, 3), ("z", "U8", (1,), 0, 1)]


def test_every_reference_dtype_parses():
    sizes = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
             "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
             "I32": 4, "U32": 4, "F32": 4, "C64": 8, "F64": 8, "I64": 8, "U64": 8,
             "F4": 1, "F6_E2M3": 3, "F6_E3M2": 3}
    shapes = {"F4": [2], "F6_E2M3": [4], "F6_E3M2": [4]}
    h, off = {}, 0
    for name, size in sizes.items():
        h[name] = entry(name, shapes.get(name, [1]), off, off + size)
        off += size
    tensors, *_ = accept(st_bytes(h, b"\0" * off))
    assert {t[0]: t[1] for t in tensors} == {n: n for n in sizes}
    assert set(_core.st_dtypes()) == set(sizes)


# ---- corpus and reference agreement -------------------------------------------------------


def corpus_files():
    return sorted(CORPUS.iterdir()) if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_fuzz_corpus_files_behave_as_named(path):
    """Corpus files start with 'F' (a whole file image follows) or are bare header JSON.
    Names starting with ok- must parse, bad- must raise SafetensorsError."""
    raw = path.read_bytes()
    image, header_only = (raw[1:], False) if raw[:1] == b"F" else (raw, True)
    if path.name.startswith("ok-"):
        _core.st_validate(image, header_only)
    elif path.name.startswith("bad-"):
        with pytest.raises(SafetensorsError):
            _core.st_validate(image, header_only)


CASES = {
    # name: (image, mlxq accepts?, reference accepts?) -- a mismatch must be documented.
    "empty-object": (st_bytes("{}"), True, True),
    "padded": (st_bytes("{}      "), True, True),
    "leading-ws": (st_bytes("\n {}"), True, True),
    "one-tensor": (st_bytes(one(), b"xxxx"), True, True),
    "extra-field": (st_bytes(one(x=1), b"xxxx"), True, True),
    "meta-null": (st_bytes('{"__metadata__":null}'), True, True),
    "meta-int": (st_bytes('{"__metadata__":{"a":1}}'), False, False),
    "dup-field": (st_bytes('{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"), False, False),
    "gap": (st_bytes(one(offsets=(1, 5)), b"xxxxx"), False, False),
    "size": (st_bytes(one(offsets=(0, 3)), b"xxx"), False, False),
    "trailing-data": (st_bytes(one(), b"xxxxx"), False, False),
    "truncated": (st_bytes(one(), b"xxx"), False, False),
    "float-dim": (st_bytes('{"t":{"dtype":"U8","shape":[4.0],"data_offsets":[0,4]}}', b"xxxx"), False, False),
    "unknown-dtype": (st_bytes(one(dtype="X"), b"xxxx"), False, False),
    "not-utf8": (st_bytes(b'{"\xff":1}'), False, False),
    "trailing-comma": (st_bytes('{"a":1,}'), False, False),
    "too-long": (st_bytes("{}", length=10**8 + 1), False, False),
    "c64": (st_bytes(one(dtype="C64", shape=[1], offsets=(0, 8)), b"x" * 8), True, True),
    "f4-misaligned": (st_bytes(one(dtype="F4", shape=[3], offsets=(0, 2)), b"xx"), False, False),
    # Documented divergences: mlxq is stricter.
    "dup-tensor": (st_bytes('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"), False, True),
    "dup-meta-key": (st_bytes('{"__metadata__":{"a":"b","a":"c"}}'), False, True),
    "nul-in-name": (st_bytes('{"a\\u0000":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"), False, True),
    "entry-as-array": (st_bytes('{"t":["U8",[1],[0,1]]}', b"x"), False, True),
    "rank-65": (st_bytes(one(shape=[1] * 65, offsets=(0, 1)), b"x"), False, True),
    "huge-zero-size-dim": (st_bytes(one(shape=[0, 2**63], offsets=(0, 0))), False, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_agrees_with_the_reference_parser_except_where_documented(case):
    safetensors = pytest.importorskip("safetensors")
    image, mlxq_ok, ref_ok = CASES[case]
    try:
        safetensors.deserialize(image)
        ref = True
    except Exception:
        ref = False
    assert ref == ref_ok, "the reference parser changed its mind: update docs/io.md"
    try:
        _core.st_validate(image)
        ours = True
    except SafetensorsError:
        ours = False
    assert ours == mlxq_ok
