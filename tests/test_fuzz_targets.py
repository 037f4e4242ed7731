"""The Python fuzz targets (fuzz/py_targets.py) over their seeds and over inputs hypothesis
makes from them: only an MlxqError may come out of a parser of untrusted bytes. `make fuzz`
runs the same targets under libFuzzer (atheris) for longer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import py_targets  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _targets_write_under_pytests_folder(tmp_path_factory):
    py_targets.use_work_dir(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("target", sorted(py_targets.TARGETS))
def test_every_target_has_seeds_that_run(target):
    seeds = py_targets.seeds(target)
    assert seeds
    for s in seeds:
        py_targets.TARGETS[target](s)


def _mutations(target: str):
    seeds = py_targets.seeds(target)

    @st.composite
    def mutate(draw):
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 8))):
            op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
            if not data:
                break
            i = draw(st.integers(0, len(data) - 1))
            if op == "flip":
                data[i] ^= 1 << draw(st.integers(0, 7))
            elif op == "cut":
                del data[i:i + draw(st.integers(1, 16))]
            elif op == "insert":
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            else:
                data[i:i] = data[i:i + draw(st.integers(1, 32))]
        return bytes(data)
    return st.one_of(mutate(), st.binary(max_size=256))


@pytest.mark.parametrize("target", sorted(py_targets.TARGETS))
def test_mutated_inputs_raise_only_mlxq_errors(target):
    @given(_mutations(target))
    def run(data):
        py_targets.TARGETS[target](data)  # the target lets only non-mlxq exceptions escape
    run()
