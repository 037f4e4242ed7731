"""A Hub that cannot be trusted, against the stand-in server (tests/hub_server.py) and its
misbehaviours: a ranged request answered with the whole file, bytes that are not the ones
the listing announced, listings naming paths outside a repository, an index that maps into
a subfolder, a model card whose front matter does not parse, error answers that quote the
token back. Each ends in a typed error (or, for the card, a warning) before any expensive
work, with nothing left behind; the answers never cost more memory than what was asked
for; no token is ever printed.

Then the tokens themselves, without a Hub: the command line never echoes one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("huggingface_hub")

import mlxq
from mlxq import cli
from mlxq.errors import HubAccessError, HubIntegrityError, SafetensorsError
from mlxq.synthetic import make_checkpoint
from mlxq.testing import assert_checkpoints_equal

REPO = "org/hostile"
SIZES = dict(layers=2, hidden=64, intermediate=128, vocab=256)
#: token-shaped (hf_ and 34 letters and digits, as a user access token)
TOKEN = "hf_" + "Q" * 10 + "w" * 12 + "7" * 12
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = Path(make_checkpoint(tmp_path_factory.mktemp("hostile") / "m", shard_size=30_000,
                                **SIZES))
    (path / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    return path


def shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("model-*.safetensors"))


def downloads(hub) -> list:
    """Whole-file GETs of shards (header reads are ranged)."""
    return [r for r in hub.log if r.is_content and r.range_header is None
            and (r.filename or "").endswith(".safetensors")]


def no_leftovers(dst: Path) -> None:
    assert not os.path.lexists(dst)
    assert [p.name for p in dst.parent.iterdir() if p.name.startswith(".")] == []


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def chain(e: BaseException) -> list[BaseException]:
    out, seen = [], set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


# ---- ranges ---------------------------------------------------------------------------------

def test_a_range_answered_with_the_whole_file_costs_only_the_range(hub, tmp_path):
    """A server (or proxy) that ignores Range sends 200 and the whole file: the header read
    takes what it asked for from the stream and stops, whatever the file's size."""
    from mlxq.hub import HubSource

    big = tmp_path / "big"
    big.mkdir()
    mlxq.save_safetensors(big / "model.safetensors",
                          {"w": np.zeros((4096, 2048), np.float32)})  # 32 MiB
    (big / "config.json").write_text('{"model_type": "llama"}')
    hub.add_repo(REPO, big)
    hub.ignore_ranges(REPO)
    src = HubSource(REPO, staging_dir=tmp_path / "staging")
    tracemalloc.start()
    try:
        header = src.read_header("model.safetensors")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert list(header.tensors) == ["w"]
    assert [r.status for r in hub.content_requests("model.safetensors")] == [200]
    assert peak < 4 << 20, peak  # the 100 kB probe and a chunk, not 32 MiB


def test_a_hub_that_ignores_ranges_still_converts_like_mlx_lm(hub, ckpt, tmp_path):
    from support import mlx_lm_convert

    hub.add_repo(REPO, ckpt)
    hub.ignore_ranges(REPO)
    mlxq.convert(REPO, tmp_path / "q", quantize=True, quiet=True)
    mlx_lm_convert(ckpt, tmp_path / "ref", quantize=True)
    assert_checkpoints_equal(tmp_path / "q", tmp_path / "ref", check_config=True,
                             check_index=True)


# ---- bytes that are not the announced ones ----------------------------------------------------

@pytest.mark.parametrize("keep", [False, True], ids=["staging", "keep-source"])
def test_a_tampered_shard_is_refused_before_its_tensors_are_written(hub, ckpt, tmp_path, keep):
    hub.add_repo(REPO, ckpt)
    victim = shards(ckpt)[1].name
    hub.tamper(REPO, victim, offset=-3)  # a byte of the last tensor: the header is intact
    with pytest.raises(HubIntegrityError, match=rf"{REPO}@[0-9a-f]{{12}}: {victim}: the "
                       r"downloaded file's sha256 is [0-9a-f]{64}, not the [0-9a-f]{64} the "
                       "Hub announced") as e:
        mlxq.convert(REPO, tmp_path / "q", quiet=True, keep_source=keep)
    assert isinstance(e.value, ValueError) and e.value.filename == victim
    assert e.value.kind == mlxq.errors.HubErrorKind.INTEGRITY
    no_leftovers(tmp_path / "q")
    cache = Path(os.environ["HF_HOME"]) / "hub"
    sha = hub.files(REPO)[victim].lfs_sha256
    # not kept anywhere (the client's empty lock file for the blob may stay, as it does)
    assert not [p for p in cache.rglob("*") if p.name.startswith(sha)
                and not p.name.endswith(".lock")]
    assert not [p for p in cache.rglob(victim)]


def test_a_tampered_small_file_is_refused(hub, ckpt, tmp_path, capsys):
    """Small files are checked too, against their git blob id."""
    hub.add_repo(REPO, ckpt)
    hub.tamper(REPO, "config.json", offset=2)
    code, _, err = run_cli(["convert", REPO, str(tmp_path / "q")], capsys)
    assert code == 1, err
    assert re.fullmatch(rf"mlxq convert: error: {REPO}@[0-9a-f]{{12}}: config\.json: the "
                        r"downloaded file's git blob id is [0-9a-f]{40}, not the [0-9a-f]{40} "
                        r"the Hub announced .*\n", err), err
    assert downloads(hub) == []
    no_leftovers(tmp_path / "q")


# ---- listings and indexes -----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["../escape.json", "/etc/escape.json", "a/../../escape.json",
                                  "sub//x.json", "./config.json", "back\\slash.json"])
def test_a_listing_naming_a_path_outside_the_repository_is_refused(hub, ckpt, tmp_path, path):
    hub.add_repo(REPO, ckpt)
    hub.list_extra(REPO, path)
    with pytest.raises(HubIntegrityError, match=re.escape(repr(path))):
        mlxq.convert(REPO, tmp_path / "out" / "q", quiet=True)
    assert hub.content_requests() == []  # refused on the listing: nothing fetched
    assert not (tmp_path / "escape.json").exists() and not (tmp_path / "out").exists()


def test_an_index_that_maps_into_a_subfolder_is_refused_before_any_download(hub, ckpt,
                                                                            tmp_path):
    repo = tmp_path / "repo"
    import shutil

    shutil.copytree(ckpt, repo)
    first = shards(repo)[0].name
    (repo / "sub").mkdir()
    shutil.move(repo / first, repo / "sub" / first)
    index = json.loads((repo / "model.safetensors.index.json").read_text())
    index["weight_map"] = {k: (f"sub/{v}" if v == first else v)
                           for k, v in index["weight_map"].items()}
    (repo / "model.safetensors.index.json").write_text(json.dumps(index))
    hub.add_repo(REPO, repo)
    with pytest.raises(SafetensorsError, match=rf"sub/{first}.*subfolder"):
        mlxq.convert(REPO, tmp_path / "q", quiet=True)
    assert downloads(hub) == []
    no_leftovers(tmp_path / "q")


# ---- the model card ------------------------------------------------------------------------------

@pytest.mark.parametrize("front", ["license: [unclosed\n  bad: : :", "- a\n- b", "tags: 5"])
def test_a_card_whose_front_matter_does_not_parse_is_a_warning_before_the_downloads(
        hub, ckpt, tmp_path, front):
    repo = tmp_path / "repo"
    import shutil

    shutil.copytree(ckpt, repo)
    (repo / "README.md").write_text(f"---\n{front}\n---\n# secret body\n")
    hub.add_repo(REPO, repo)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        show = warnings.showwarning
        warnings.showwarning = lambda m, *a, **k: seen.append((str(m), len(downloads(hub))))
        try:
            mlxq.convert(REPO, tmp_path / "q", quiet=True)
        finally:
            warnings.showwarning = show
    card = [(m, n) for m, n in seen if "model card" in m]
    assert card == [(f"{REPO}: the model card's metadata (README.md's YAML front matter) "
                     f"cannot be read ({card[0][0].split('(')[2].split(')')[0]}); the card is "
                     "written without it", 0)], seen
    assert "unclosed" not in card[0][0] and "bad" not in card[0][0]
    text = (tmp_path / "q" / "README.md").read_text()
    assert text.startswith("---\n") and f"base_model: {REPO}" in text
    assert "secret body" not in text and "unclosed" not in text and "tags: 5" not in text


# ---- tokens --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["--token", "--hf-token"])
def test_the_token_option_opens_a_gated_repository(hub, ckpt, tmp_path, capsys, spelling):
    hub.add_repo(REPO, ckpt)
    hub.gate(REPO, token=TOKEN)
    code, out, err = run_cli(["convert", REPO, str(tmp_path / "q"), spelling, TOKEN], capsys)
    assert code == 0, err
    assert TOKEN not in out + err
    assert any(r.authorized for r in hub.log if r.kind == "resolve")


@pytest.mark.parametrize("wrong", ["hf_" + "x" * 34, "not-token-shaped-but-secret"])
def test_a_server_that_echoes_the_token_never_gets_it_printed(hub, ckpt, tmp_path, capsys,
                                                              wrong):
    hub.add_repo(REPO, ckpt)
    hub.gate(REPO, token=TOKEN)
    hub.echo_token(REPO)
    with pytest.raises(HubAccessError) as e:
        mlxq.convert(REPO, tmp_path / "q", quiet=True, token=wrong)
    assert any("you sent Authorization" in str(x) or "***" in str(x) for x in chain(e.value))
    for x in chain(e.value):  # the message and every exception it was raised from
        assert wrong not in str(x) and wrong not in repr(x.args), x
    code, _, err = run_cli(["convert", REPO, str(tmp_path / "q2"), "--token", wrong], capsys)
    assert code == 1 and wrong not in err and "***" in err, err
    no_leftovers(tmp_path / "q")


def test_a_mistyped_token_option_is_never_echoed(tmp_path, capsys):
    for argv in (["convert", "a", "b", "--tokn", TOKEN],
                 ["convert", "a", "b", "--tokn", "plain-secret-value"],
                 ["convert", "a", "b", "--tokn=plain-secret-value"],
                 ["convert", "a", "b", "--q-bits", TOKEN],
                 ["inspect", "a", "--hf_token", TOKEN]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2, err
        assert "unrecognized arguments" in err or "invalid int value" in err, err
        assert TOKEN not in out + err and "plain-secret-value" not in out + err, err


def test_the_command_line_prints_no_token_even_in_a_subprocess(tmp_path):
    """The usage error of a real process (argparse writes it, then exits 2)."""
    p = subprocess.run([sys.executable, "-m", "mlxq", "convert", "a", "b", "--toke", "n",
                        "--tokne", TOKEN], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2 and TOKEN not in p.stderr + p.stdout, p.stderr
