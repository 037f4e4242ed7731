"""The stand-in Hub (tests/hub_server.py) against the real huggingface_hub client: what the
client asks for, what it gets, and how it fails. These also pin down the client behaviour
mlxq.hub relies on (resume within a call, no resume across calls, the error types)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

hh = pytest.importorskip("huggingface_hub")
from hub_server import MLX_LM_CLI, iter_files
from huggingface_hub import constants, errors, hf_api  # (submodules load lazily)

from mlxq.synthetic import make_checkpoint

REPO = "org/tiny"
SIZES = dict(layers=2, hidden=64, intermediate=128, vocab=128)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A 4-shard llama checkpoint with a model card and a nested file."""
    root = tmp_path_factory.mktemp("ckpt")
    path = Path(make_checkpoint(root / "m", shard_size=60_000, **SIZES))
    (path / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    (path / "extra").mkdir()
    (path / "extra" / "notes.txt").write_text("nested\n")
    return path


def shards(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("model-*.safetensors"))


def same_bytes(a: Path | str, b: Path | str) -> bool:
    return Path(a).read_bytes() == Path(b).read_bytes()


# ---- the API ---------------------------------------------------------------------------------

def test_model_info_names_the_commit_and_the_files(hub, ckpt):
    sha = hub.add_repo(REPO, ckpt)
    info = hh.HfApi().model_info(REPO)
    assert info.sha == sha
    assert sorted(s.rfilename for s in info.siblings) == sorted(
        p.relative_to(ckpt).as_posix() for p in iter_files(ckpt))
    assert hh.HfApi().model_info(REPO, revision=sha).sha == sha


def test_files_metadata_gives_sizes_and_lfs_hashes(hub, ckpt):
    hub.add_repo(REPO, ckpt)
    info = hh.HfApi().model_info(REPO, files_metadata=True)
    by_name = {s.rfilename: s for s in info.siblings}
    shard = shards(ckpt)[0]
    assert by_name[shard].size == (ckpt / shard).stat().st_size
    assert by_name[shard].lfs.sha256 == __import__("hashlib").sha256(
        (ckpt / shard).read_bytes()).hexdigest()
    assert by_name["config.json"].lfs is None


def test_a_new_commit_moves_main_and_keeps_the_old_one(hub, ckpt, tmp_path):
    old = hub.add_repo(REPO, ckpt)
    other = tmp_path / "v2"
    other.mkdir()
    (other / "config.json").write_text('{"v": 2}')
    new = hub.add_repo(REPO, other)
    assert new != old
    assert hh.HfApi().model_info(REPO).sha == new
    p = hh.hf_hub_download(REPO, "config.json", revision=old, cache_dir=tmp_path / "c")
    assert same_bytes(p, ckpt / "config.json")


def test_the_recursive_tree_lists_every_file_and_folder_across_pages(hub, ckpt):
    hub.add_repo(REPO, ckpt)
    hub.page_size = 3
    entries = list(hh.HfApi().list_repo_tree(REPO, recursive=True))
    files = sorted(e.path for e in entries if isinstance(e, hf_api.RepoFile))
    assert files == sorted(p.relative_to(ckpt).as_posix() for p in iter_files(ckpt))
    assert [e.path for e in entries if isinstance(e, hf_api.RepoFolder)] == ["extra"]
    tree_requests = [r for r in hub.log if r.kind == "tree"]
    assert len(tree_requests) == -(-len(entries) // 3) > 1  # it followed the Link header


def test_the_flat_tree_lists_one_folder(hub, ckpt):
    hub.add_repo(REPO, ckpt)
    top = {e.path for e in hh.HfApi().list_repo_tree(REPO)}
    assert "extra" in top and "extra/notes.txt" not in top
    assert [e.path for e in hh.HfApi().list_repo_tree(REPO, path_in_repo="extra")] == [
        "extra/notes.txt"]


def test_paths_info_answers_for_the_paths_asked(hub, ckpt):
    hub.add_repo(REPO, ckpt)
    got = hh.HfApi().get_paths_info(REPO, ["config.json", "extra", "absent.bin"])
    assert [(type(e).__name__, e.path) for e in got] == [
        ("RepoFile", "config.json"), ("RepoFolder", "extra")]


# ---- downloads -------------------------------------------------------------------------------

def test_snapshot_download_fetches_every_file_byte_for_byte(hub, ckpt, tmp_path):
    sha = hub.add_repo(REPO, ckpt)
    out = Path(hh.snapshot_download(REPO, cache_dir=tmp_path / "cache"))
    assert out.name == sha
    for p in iter_files(ckpt):
        assert same_bytes(out / p.relative_to(ckpt), p), p
    kinds = [r.kind for r in hub.log]
    # huggingface_hub 2.x lists the tree (1.x took the siblings of the model info), then
    # makes one HEAD and one GET per file
    assert kinds[:2] == ["model_info", "tree"]


def test_snapshot_download_with_mlx_lm_patterns_skips_the_rest(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    out = Path(hh.snapshot_download(REPO, cache_dir=tmp_path / "cache",
                                    allow_patterns=["*.json", "model*.safetensors"]))
    assert not (out / "README.md").exists() and not (out / "extra").exists()
    assert {r.filename for r in hub.content_requests()} == {
        p.name for p in ckpt.iterdir() if p.suffix in (".json", ".safetensors")}


def test_hf_hub_download_into_a_local_dir(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[1]
    p = Path(hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld"))
    assert p == tmp_path / "ld" / shard and same_bytes(p, ckpt / shard)
    hub.clear_log()
    hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld")  # present: no second GET
    assert hub.content_requests() == []


def test_hf_hub_download_into_a_cache_dir_names_blobs_by_sha256(hub, ckpt, tmp_path):
    sha = hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[0]
    p = Path(hh.hf_hub_download(REPO, shard, cache_dir=tmp_path / "c"))
    assert p.parent.name == sha and same_bytes(p, ckpt / shard)
    assert os.path.basename(os.path.realpath(p)) == hub.files(REPO)[shard].lfs_sha256


def test_lfs_files_come_from_the_cdn_without_the_token(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[0]
    hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld", token="hf_secret")
    (head,) = [r for r in hub.log if r.kind == "resolve"]
    (get,) = [r for r in hub.log if r.kind == "cdn"]
    assert (head.method, head.status, head.authorized) == ("HEAD", 302, True)
    assert (get.method, get.status, get.authorized) == ("GET", 200, False)


def test_without_the_redirect_lfs_files_are_served_directly(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    hub.lfs_redirect = False
    shard = shards(ckpt)[0]
    p = hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld")
    assert same_bytes(p, ckpt / shard)
    assert {r.kind for r in hub.log} == {"resolve"}


def test_get_safetensors_metadata_reads_only_the_headers(hub, tmp_path):
    safetensors = pytest.importorskip("safetensors")
    src = Path(make_checkpoint(tmp_path / "big", shard_size=400_000, layers=2, hidden=256,
                               intermediate=512, vocab=256))
    hub.add_repo(REPO, src)
    meta = hh.get_safetensors_metadata(REPO)
    assert meta.sharded and sorted(meta.files_metadata) == shards(src)
    for name in shards(src):
        with safetensors.safe_open(src / name, "np") as f:
            want = {k: (f.get_slice(k).get_dtype(), f.get_slice(k).get_shape())
                    for k in f.keys()}
        got = {k: (t.dtype, t.shape) for k, t in meta.files_metadata[name].tensors.items()}
        assert got == want
        size = (src / name).stat().st_size
        reads = hub.content_requests(name)
        assert reads and all(r.range_header == "bytes=0-100000" for r in reads)
        assert hub.bytes_served(name) == 100_001 < size


# ---- ranges and resume -----------------------------------------------------------------------

def test_ranges_are_answered_with_206_and_content_range(hub, ckpt):
    hub.add_repo(REPO, ckpt)
    url = f"{hub.endpoint}/{REPO}/resolve/main/config.json"
    data = (ckpt / "config.json").read_bytes()
    for header, want in [("bytes=5-9", data[5:10]), ("bytes=-4", data[-4:]),
                         (f"bytes=10-{len(data) + 50}", data[10:])]:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": header})) as r:
            assert r.status == 206 and r.read() == want
            start = len(data) - 4 if header == "bytes=-4" else int(header[6:].split("-")[0])
            assert r.headers["Content-Range"] == f"bytes {start}-{start + len(want) - 1}/{len(data)}"


@pytest.mark.parametrize("header", [f"bytes={10**9}-", "bytes=9-5", "lines=1-2", "bytes=0-1,5-6"])
def test_unsatisfiable_ranges_are_416(hub, ckpt, header):
    hub.add_repo(REPO, ckpt)
    url = f"{hub.endpoint}/{REPO}/resolve/main/config.json"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Range": header}))
    size = (ckpt / "config.json").stat().st_size
    assert info.value.code == 416 and info.value.headers["Content-Range"] == f"bytes */{size}"


def test_a_cut_connection_resumes_within_the_call_from_the_last_whole_chunk(
        hub, ckpt, tmp_path, monkeypatch, no_retry_sleep):
    # the client writes (and counts as received) whole DOWNLOAD_CHUNK_SIZE chunks only
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[0]
    hub.drop_connection(REPO, shard, after=10_000)
    p = hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld")
    assert same_bytes(p, ckpt / shard)
    first, second = hub.content_requests(shard)
    assert first.dropped and first.bytes_sent == 10_000
    assert (second.status, second.range_header) == (206, "bytes=8192-")
    assert second.bytes_sent == (ckpt / shard).stat().st_size - 8192


def test_below_one_chunk_a_cut_download_starts_again_from_zero(hub, ckpt, tmp_path,
                                                                no_retry_sleep):
    hub.add_repo(REPO, ckpt)  # shards of ~60 kB, far below the 10 MiB chunk
    shard = shards(ckpt)[0]
    hub.drop_connection(REPO, shard, after=30_000)
    hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld")
    first, second = hub.content_requests(shard)
    assert first.dropped and second.range_header is None and not second.dropped


def test_a_connection_cut_every_time_fails_after_five_resumes_and_leaves_nothing(
        hub, ckpt, tmp_path, no_retry_sleep):
    httpx2 = pytest.importorskip("httpx2")
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[0]
    hub.drop_connection(REPO, shard, after=1000, times=None)
    with pytest.raises(httpx2.RemoteProtocolError):
        hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld")
    assert len(hub.content_requests(shard)) == 6
    left = [p for p in iter_files(tmp_path / "ld")
            if p.suffix != ".lock" and p.name not in (".gitignore", "CACHEDIR.TAG")]
    assert left == []  # neither the file nor a partial copy


def test_the_next_call_does_not_resume_a_failed_download(hub, ckpt, tmp_path,
                                                         monkeypatch, no_retry_sleep):
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[0]
    hub.drop_connection(REPO, shard, after=20_000, times=6)
    with pytest.raises(pytest.importorskip("httpx2").RemoteProtocolError):
        hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld")
    hub.clear_log()
    p = hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld")
    assert same_bytes(p, ckpt / shard)
    assert [r.range_header for r in hub.content_requests(shard)] == [None]


# ---- errors ----------------------------------------------------------------------------------

def test_a_missing_file_is_entry_not_found(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[2]
    hub.missing(REPO, shard)
    with pytest.raises(errors.EntryNotFoundError):
        hh.hf_hub_download(REPO, shard, local_dir=tmp_path / "ld")
    assert shard not in {s.rfilename for s in hh.HfApi().model_info(REPO).siblings}
    out = Path(hh.snapshot_download(REPO, cache_dir=tmp_path / "c"))  # not listed: skipped
    assert not (out / shard).exists() and (out / "config.json").exists()


def test_a_listed_file_that_404s_fails_snapshot_download(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[2]
    hub.missing(REPO, shard, listed=True)
    with pytest.raises(errors.EntryNotFoundError, match=shard):
        hh.snapshot_download(REPO, cache_dir=tmp_path / "c")


def test_a_gated_repo_is_gated_repo_error_until_the_token_is_granted(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    hub.gate(REPO, token="hf_granted")
    assert hh.HfApi().model_info(REPO).gated == "manual"  # listing stays public
    with pytest.raises(errors.GatedRepoError, match="restricted"):
        hh.hf_hub_download(REPO, "config.json", local_dir=tmp_path / "a")
    with pytest.raises(errors.GatedRepoError, match="not in the authorized list"):
        hh.hf_hub_download(REPO, "config.json", local_dir=tmp_path / "a", token="hf_other")
    with pytest.raises(errors.GatedRepoError):
        hh.snapshot_download(REPO, cache_dir=tmp_path / "c")
    p = hh.hf_hub_download(REPO, "config.json", local_dir=tmp_path / "a", token="hf_granted")
    assert same_bytes(p, ckpt / "config.json")


@pytest.mark.parametrize("hidden", [True, False], ids=["private", "unknown"])
def test_a_private_or_unknown_repo_is_repository_not_found(hub, ckpt, tmp_path, hidden):
    hub.add_repo(REPO, ckpt)
    repo = REPO if hidden else "org/absent"
    if hidden:
        hub.hide(REPO)
    with pytest.raises(errors.RepositoryNotFoundError) as info:
        hh.snapshot_download(repo, cache_dir=tmp_path / "c")
    assert not isinstance(info.value, errors.GatedRepoError)
    assert info.value.response.status_code == 401
    with pytest.raises(errors.RepositoryNotFoundError):
        hh.hf_hub_download(repo, "config.json", local_dir=tmp_path / "a")


def test_an_unknown_revision_is_revision_not_found(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    with pytest.raises(errors.RevisionNotFoundError):
        hh.snapshot_download(REPO, revision="v9", cache_dir=tmp_path / "c")


# ---- the endpoint ----------------------------------------------------------------------------

def test_the_client_talks_to_the_stand_in_and_nowhere_else(hub):
    assert constants.ENDPOINT == hub.endpoint
    assert hub.endpoint.startswith("http://127.0.0.1:")
    assert hh.hf_hub_url(REPO, "x.json").startswith(hub.endpoint + "/")
    with pytest.raises(RuntimeError, match="only the stand-in Hub"):
        hh.get_session().get("https://huggingface.co/api/models/gpt2")


def test_hf_endpoint_is_read_when_huggingface_hub_is_imported():
    code = ("import os; from huggingface_hub import constants, hf_hub_url;"
            "os.environ['HF_ENDPOINT'] = 'http://127.0.0.1:9';"
            "print(constants.ENDPOINT, hf_hub_url('a/b', 'c'))")
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["https://huggingface.co", "https://huggingface.co/a/b/resolve/main/c"]


# ---- mlx-lm against the stand-in -------------------------------------------------------------

def test_mlx_lm_convert_hf_path_downloads_from_the_stand_in(hub, tmp_path):
    mlx_lm = pytest.importorskip("mlx_lm")
    from mlxq.testing import assert_checkpoints_equal

    src = Path(make_checkpoint(tmp_path / "src", shard_size=60_000, **SIZES))
    (src / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")  # mlx-lm reads the card
    hub.add_repo(REPO, src)
    dst = tmp_path / "from-hub"
    proc = subprocess.run(
        [sys.executable, "-c", MLX_LM_CLI, os.path.dirname(__file__), "convert",
         "--hf-path", REPO, "--mlx-path", str(dst), "-q"],
        capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.environ["HF_ENDPOINT"] == hub.endpoint  # what the subprocess inherited

    local = tmp_path / "from-folder"
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        mlx_lm.convert(str(src), str(local), quantize=True)
    assert_checkpoints_equal(str(dst), str(local), check_config=True, check_index=True)
    assert (dst / "config.json").read_text() == (local / "config.json").read_text()
    assert f"base_model: {REPO}" in (dst / "README.md").read_text()
    # every weight came through the server, in full
    for name in shards(src):
        assert hub.bytes_served(name) == (src / name).stat().st_size
    assert any(r.filename == "README.md" and r.kind == "resolve" for r in hub.log)
    # and the download went to the cache under the test's HF_HOME
    snapshots = Path(os.environ["HF_HOME"]) / "hub" / "models--org--tiny" / "snapshots"
    assert json.loads((next(snapshots.iterdir()) / "config.json").read_text()) == json.loads(
        (src / "config.json").read_text())
