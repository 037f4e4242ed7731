"""mlxq.hub: repository ids, the Hub source (pinned commit, small files, ranged header reads,
downloads and deletes with byte counts, typed errors) against the stand-in Hub and the real
huggingface_hub client, and the download planner."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mlxq import errors
from mlxq.hub import (
    MLX_LM_ALLOW_PATTERNS,
    DownloadPlan,
    HubSource,
    download_order,
    is_small_file,
    is_weight_file,
    looks_like_repo_id,
)
from mlxq.io import SafetensorsReader, save_safetensors
from mlxq.synthetic import make_checkpoint

REPO = "org/tiny"
SIZES = dict(layers=2, hidden=64, intermediate=128, vocab=128)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = Path(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m", shard_size=60_000,
                                **SIZES))
    (path / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    (path / "chat_template.jinja").write_text("{{ messages }}")
    (path / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    (path / "original").mkdir()
    (path / "original" / "params.json").write_text("{}")
    (path / "original" / "consolidated.safetensors").write_bytes(b"\0" * 64)
    return path


def shards(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("model-*.safetensors"))


def local_header(path: Path) -> tuple[int, dict]:
    """The header of a local safetensors file, parsed as plain JSON (the oracle)."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return 8 + n, json.loads(raw[8:8 + n])


def source(hub, tmp_path, **kw) -> HubSource:
    return HubSource(REPO, staging_dir=tmp_path / "staging", **kw)


def staged_bytes(folder: Path) -> int:
    """Bytes of source files in a staging folder, partial downloads included, the client's
    few-byte bookkeeping files (.metadata, .lock, .gitignore, CACHEDIR.TAG) left out."""
    total = 0
    for root, _, names in os.walk(folder):
        for n in names:
            if n.endswith((".metadata", ".lock")) or n in (".gitignore", "CACHEDIR.TAG"):
                continue
            try:
                total += os.path.getsize(os.path.join(root, n))
            except FileNotFoundError:
                pass
    return total


# ---- repository ids --------------------------------------------------------------------------

def test_an_existing_path_is_never_a_repo_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert looks_like_repo_id("org/name")
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not looks_like_repo_id("org/name")
    assert not looks_like_repo_id(Path("org/name2"))  # a Path object is a path


_CHARS = st.sampled_from(list("aZ09_-./") + ["~", " ", "--", "..", ".git"])


@given(st.lists(_CHARS, max_size=12).map("".join) | st.from_regex(
    r"[a-z0-9][a-z0-9_.\-]{0,98}(/[a-z0-9_.\-]{1,99})?", fullmatch=True))
def test_repo_ids_follow_huggingface_hub_s_rule(s):
    validators = pytest.importorskip("huggingface_hub.utils._validators")
    assume(not os.path.exists(s))
    try:
        validators.validate_repo_id(s)
        valid = True
    except validators.HFValidationError:
        valid = False
    assert looks_like_repo_id(s) == valid


def test_repo_ids_are_ascii_as_on_the_hub():
    assert not looks_like_repo_id("org/café") and not looks_like_repo_id("文件夹")


# ---- which files ------------------------------------------------------------------------------

def test_the_allow_patterns_are_mlx_lm_s():
    utils = pytest.importorskip("mlx_lm.utils")
    assert tuple(utils.DEFAULT_ALLOW_PATTERNS) == MLX_LM_ALLOW_PATTERNS


def test_small_and_weight_files_split_what_snapshot_download_would_fetch():
    filter_repo_objects = pytest.importorskip("huggingface_hub.utils").filter_repo_objects
    paths = ["config.json", "generation_config.json", "model.safetensors.index.json",
             "model.safetensors", "model-00001-of-00002.safetensors", "tokenizer.json",
             "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
             "chat_template.jinja", "merges.txt", "vocab.txt", "modeling_x.py", "qwen.tiktoken",
             "README.md", ".gitattributes", "consolidated.safetensors", "pytorch_model.bin",
             "original/params.json", "original/consolidated.00.pth", "sub/model-1.safetensors",
             "data.jsonl", "LICENSE", "image.png"]
    fetched = set(filter_repo_objects(paths, allow_patterns=list(MLX_LM_ALLOW_PATTERNS)))
    weights = {p for p in fetched if p.startswith("model") and p.endswith(".safetensors")}
    assert {p for p in paths if is_weight_file(p)} == weights - {"sub/model-1.safetensors"}
    assert {p for p in paths if is_small_file(p)} == (fetched - weights) | {"README.md"}


# ---- the source -------------------------------------------------------------------------------

def test_the_source_pins_the_commit_it_resolved(hub, ckpt, tmp_path):
    old = hub.add_repo(REPO, ckpt)
    src = source(hub, tmp_path)
    assert src.commit == old
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "config.json").write_text('{"v": 2}')
    hub.add_repo(REPO, v2)  # main moves on
    shard = shards(ckpt)[0]
    p = src.download(shard)
    assert p.read_bytes() == (ckpt / shard).read_bytes()
    files = [r for r in hub.log if r.kind in ("resolve", "tree")]
    assert files and all(old in r.url for r in files)
    assert [r.kind for r in hub.log].count("model_info") == 1


def test_the_source_lists_weights_and_small_files(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    src = source(hub, tmp_path)
    assert src.weight_files == shards(ckpt)
    assert src.small_files == sorted(
        ["README.md", "chat_template.jinja", "config.json", "generation_config.json",
         "model.safetensors.index.json", "original/params.json", "special_tokens_map.json",
         "tokenizer.json", "tokenizer_config.json"])
    assert src.files[shards(ckpt)[0]].lfs and not src.files["config.json"].lfs


def test_small_files_are_mlx_lm_s_download_minus_the_weights(hub, ckpt, tmp_path):
    hh = pytest.importorskip("huggingface_hub")
    hub.add_repo(REPO, ckpt)
    want = Path(hh.snapshot_download(REPO, cache_dir=tmp_path / "oracle",
                                     allow_patterns=list(MLX_LM_ALLOW_PATTERNS)))
    want_files = {p.relative_to(want).as_posix() for p in want.rglob("*") if p.is_file()}
    hub.clear_log()
    src = source(hub, tmp_path)
    got = src.fetch_small_files(tmp_path / "small")
    assert set(got) == {p for p in want_files if not is_weight_file(p)} | {"README.md"}
    for name, path in got.items():
        assert path.read_bytes() == (ckpt / name).read_bytes(), name
    assert not any(is_weight_file(r.filename or "") for r in hub.content_requests())
    assert src.small_bytes == sum((ckpt / n).stat().st_size for n in got)
    assert src.bytes_on_disk == 0


def test_headers_come_from_ranged_reads_and_match_the_files(hub, tmp_path):
    src_dir = Path(make_checkpoint(tmp_path / "big", shard_size=400_000, layers=2, hidden=256,
                                   intermediate=512, vocab=256))
    hub.add_repo(REPO, src_dir)
    src = source(hub, tmp_path)
    headers = src.safetensors_headers()
    assert list(headers) == shards(src_dir)
    for name, h in headers.items():
        data_start, raw = local_header(src_dir / name)
        assert h.data_start == data_start and h.size == (src_dir / name).stat().st_size
        assert dict(h.metadata) == raw.pop("__metadata__")
        assert {k: (t.dtype, list(t.shape), list(t.data_offsets))
                for k, t in h.tensors.items()} == {
            k: (v["dtype"], v["shape"], v["data_offsets"]) for k, v in raw.items()}
        (read,) = hub.content_requests(name)
        assert read.range_header == "bytes=0-99999" and read.bytes_sent == 100_000 < h.size
    assert src.bytes_on_disk == 0 and not list((tmp_path / "staging").glob("*.safetensors"))


def test_a_header_longer_than_the_first_read_takes_one_more_range(hub, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    tensors = {f"model.layers.{i}.some.rather.long.tensor.name.weight": np.zeros(2, np.float32)
               for i in range(3000)}
    save_safetensors(d / "model.safetensors", tensors)
    (d / "config.json").write_text("{}")
    hub.add_repo(REPO, d)
    h = source(hub, tmp_path).read_header("model.safetensors")
    data_start, _ = local_header(d / "model.safetensors")
    assert data_start > 100_000 and h.data_start == data_start
    assert set(h.tensors) == set(tensors)
    assert [r.range_header for r in hub.content_requests()] == [
        "bytes=0-99999", f"bytes=100000-{data_start - 1}"]


@pytest.mark.parametrize("damage", ["length", "json", "truncated"])
def test_a_bad_header_is_a_safetensors_error_naming_repo_and_file(hub, tmp_path, damage):
    d = tmp_path / "bad"
    d.mkdir()
    save_safetensors(d / "model.safetensors", {"w": np.zeros((4, 4), np.float32)})
    raw = (d / "model.safetensors").read_bytes()
    raw = {"length": (10**9).to_bytes(8, "little") + raw[8:],
           "json": raw[:8] + b"[" + raw[9:],
           "truncated": raw[:-4]}[damage]
    (d / "model.safetensors").write_bytes(raw)
    hub.add_repo(REPO, d)
    with pytest.raises(errors.SafetensorsError, match=f"{REPO}@.*model.safetensors"):
        source(hub, tmp_path).safetensors_headers()


def test_download_puts_the_file_in_staging_and_counts_it_until_deleted(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    src = source(hub, tmp_path)
    a, b = shards(ckpt)[:2]
    size_a, size_b = (ckpt / a).stat().st_size, (ckpt / b).stat().st_size
    pa = src.download(a)
    assert pa == tmp_path / "staging" / a and pa.read_bytes() == (ckpt / a).read_bytes()
    src.download(b)
    assert src.bytes_on_disk == size_a + size_b == staged_bytes(tmp_path / "staging")
    assert src.held == [a, b]
    src.delete(a)
    assert not pa.exists() and src.bytes_on_disk == size_b
    assert not list((tmp_path / "staging" / ".cache").rglob(a + "*"))
    src.delete(a)  # again: nothing
    assert src.peak_bytes_on_disk == size_a + size_b


def test_a_file_left_complete_by_an_earlier_run_is_not_downloaded_again(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[0]
    source(hub, tmp_path).download(shard)
    hub.clear_log()
    src = source(hub, tmp_path)
    src.download(shard)
    assert hub.content_requests() == [] and src.bytes_on_disk == (ckpt / shard).stat().st_size


def test_a_damaged_copy_in_staging_is_downloaded_again(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[0]
    p = source(hub, tmp_path).download(shard)
    p.write_bytes(p.read_bytes()[:100])
    assert source(hub, tmp_path).download(shard).read_bytes() == (ckpt / shard).read_bytes()


def test_partial_files_of_a_killed_run_are_removed_when_the_folder_is_opened(hub, ckpt,
                                                                              tmp_path):
    from huggingface_hub._local_folder import get_local_download_paths

    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[0]
    etag = hub.files(REPO)[shard].etag
    # where hf_hub_download(local_dir=...) writes while downloading (its name + 8 hex + suffix)
    incomplete = get_local_download_paths(tmp_path / "staging", shard).incomplete_path(etag)
    partial = incomplete.with_name(f"{incomplete.stem}.0123abcd.incomplete")
    partial.write_bytes(b"\0" * 5000)
    src = source(hub, tmp_path)
    assert not partial.exists()
    assert staged_bytes(tmp_path / "staging") == 0 and src.bytes_on_disk == 0


def test_a_connection_cut_mid_shard_is_resumed_by_the_client(hub, ckpt, tmp_path,
                                                             no_retry_sleep):
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[1]
    hub.drop_connection(REPO, shard, after=20_000)
    p = source(hub, tmp_path).download(shard)
    assert p.read_bytes() == (ckpt / shard).read_bytes()
    assert [r.dropped for r in hub.content_requests(shard)] == [True, False]


def test_a_connection_cut_for_good_is_a_network_error_and_leaves_nothing(hub, ckpt, tmp_path,
                                                                         no_retry_sleep):
    hub.add_repo(REPO, ckpt)
    src = source(hub, tmp_path)
    shard = shards(ckpt)[1]
    hub.drop_connection(REPO, shard, after=20_000, times=None)
    with pytest.raises(errors.HubNetworkError, match=f"{REPO}@.*{shard}") as info:
        src.download(shard)
    assert isinstance(info.value, ConnectionError) and info.value.filename == shard
    assert info.value.kind == errors.HubErrorKind.NETWORK
    assert staged_bytes(tmp_path / "staging") == 0 and src.bytes_on_disk == 0
    calls = [r for r in hub.log if r.method == "HEAD" and r.filename == shard]
    assert len(calls) == 1 + src.retries  # the client's call, then the retries


def test_a_file_over_the_client_s_http_limit_is_a_hub_error_naming_it(hub, ckpt, tmp_path,
                                                                       monkeypatch):
    from huggingface_hub import constants

    hub.add_repo(REPO, ckpt)
    monkeypatch.setattr(constants, "MAX_HTTP_DOWNLOAD_SIZE", 1000)  # 50 GB, in truth
    shard = shards(ckpt)[0]
    with pytest.raises(errors.HubError, match=f"{shard}: cannot download: .*too large"):
        source(hub, tmp_path).download(shard)


def test_an_unreachable_hub_is_a_network_error(tmp_path):
    pytest.importorskip("huggingface_hub")
    from hub_server import HubServer

    with HubServer() as dead:
        endpoint = dead.endpoint  # closed when the block ends
    with pytest.raises(errors.HubNetworkError, match=REPO):
        HubSource(REPO, staging_dir=tmp_path, endpoint=endpoint)


@pytest.mark.parametrize("listed", [False, True], ids=["absent", "listed-but-404"])
def test_a_missing_shard_is_a_file_not_found_error_naming_it(hub, ckpt, tmp_path, listed):
    hub.add_repo(REPO, ckpt)
    shard = shards(ckpt)[2]
    hub.missing(REPO, shard, listed=listed)
    src = source(hub, tmp_path)
    with pytest.raises(errors.HubFileNotFoundError, match=f"{REPO}@.*{shard}") as info:
        src.download(shard)
    assert isinstance(info.value, FileNotFoundError) and info.value.filename == shard
    with pytest.raises(errors.HubFileNotFoundError, match=shard):
        src.read_header(shard)
    assert src.bytes_on_disk == 0


def test_a_gated_repo_is_an_access_error_until_the_token_is_granted(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    hub.gate(REPO, token="hf_granted")
    src = source(hub, tmp_path)  # the listing is public
    with pytest.raises(errors.HubAccessError, match=f"{REPO}.*gated") as info:
        src.fetch_small_files(tmp_path / "small")
    assert isinstance(info.value, PermissionError) and info.value.filename
    with pytest.raises(errors.HubAccessError, match=shards(ckpt)[0]):
        src.safetensors_headers()
    with pytest.raises(errors.HubAccessError):
        src.download(shards(ckpt)[0])
    ok = source(hub, tmp_path, token="hf_granted")
    assert ok.download(shards(ckpt)[0]).read_bytes() == (ckpt / shards(ckpt)[0]).read_bytes()
    assert ok.safetensors_headers()


@pytest.mark.parametrize("hidden", [True, False], ids=["private", "unknown"])
def test_a_private_or_unknown_repo_is_repo_not_found(hub, ckpt, tmp_path, hidden):
    hub.add_repo(REPO, ckpt)
    repo = REPO if hidden else "org/absent"
    if hidden:
        hub.hide(REPO)
    with pytest.raises(errors.HubRepoNotFoundError, match=f"^{repo}: repository not found"):
        HubSource(repo, staging_dir=tmp_path)


def test_an_unknown_revision_is_revision_not_found(hub, ckpt, tmp_path):
    hub.add_repo(REPO, ckpt)
    with pytest.raises(errors.HubRevisionNotFoundError, match="'v9'"):
        source(hub, tmp_path, revision="v9")


def test_a_revision_can_be_a_commit_sha(hub, ckpt, tmp_path):
    sha = hub.add_repo(REPO, ckpt)
    assert source(hub, tmp_path, revision=sha).commit == sha


def test_without_huggingface_hub_the_error_says_what_to_install(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m.split(".")[0] == "huggingface_hub"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(errors.MissingDependencyError, match=r"pip install 'mlxq\[hub\]' \(from "
                       r"a checkout of mlxq: pip install '\.\[hub\]'\), or pip install "
                       r"huggingface_hub") as info:
        HubSource(REPO, staging_dir=tmp_path)
    assert isinstance(info.value, ImportError)


# ---- the planner ------------------------------------------------------------------------------

def check_plan(plan: DownloadPlan, needs: list[set[str]], sizes: dict[str, int]) -> None:
    """Replays a plan: every output ready once, after all its sources and before any of them
    is deleted; each shard downloaded once and deleted once nothing pending needs it; the
    byte counts are the replay's."""
    on_disk: dict[str, int] = {}
    downloaded: list[str] = []
    seen = list(plan.ready_at_start)
    assert all(not needs[i] for i in plan.ready_at_start)
    for step in plan.steps:
        assert step.download not in downloaded
        downloaded.append(step.download)
        on_disk[step.download] = sizes[step.download]
        assert step.held_bytes == sum(on_disk.values())
        for i in step.ready:
            assert needs[i] <= on_disk.keys(), (i, needs[i], on_disk)
        seen += step.ready
        later = set(range(len(needs))) - set(seen)
        for t in step.delete:
            assert t in on_disk and not any(t in needs[i] for i in later)
            del on_disk[t]
        assert list(step.ready) == sorted(step.ready)
    assert sorted(seen) == list(range(len(needs)))
    assert on_disk == {}
    assert set(downloaded) == set().union(*needs) if needs else not downloaded
    assert plan.peak_bytes == max((s.held_bytes for s in plan.steps), default=0)
    assert set(plan.unused) == sizes.keys() - set(downloaded)


@st.composite
def layouts(draw, max_shards: int = 8):
    n = draw(st.integers(1, max_shards))
    names = [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    sizes = {s: draw(st.integers(1, 1000)) for s in names}
    needs = draw(st.lists(st.sets(st.sampled_from(names), min_size=0, max_size=3), max_size=20))
    return needs, sizes


@given(layouts())
def test_every_output_is_scheduled_once_after_its_sources(layout):
    needs, sizes = layout
    check_plan(download_order(needs, sizes), needs, sizes)


@given(layouts(), st.integers(1, 4000))
def test_a_budget_is_honoured_or_refused_up_front(layout, budget):
    needs, sizes = layout
    try:
        plan = download_order(needs, sizes, budget=budget)
    except errors.DiskBudgetError as e:
        assert e.required > budget
        plan = download_order(needs, sizes, budget=e.required)  # the budget it names works
        check_plan(plan, needs, sizes)
        assert plan.peak_bytes <= e.required
    else:
        check_plan(plan, needs, sizes)
        assert plan.peak_bytes <= budget


@given(layouts())
def test_a_budget_at_the_unbounded_peak_is_met(layout):
    needs, sizes = layout
    free = download_order(needs, sizes)
    if free.steps:
        plan = download_order(needs, sizes, budget=free.peak_bytes)
        check_plan(plan, needs, sizes)
        assert plan.peak_bytes <= free.peak_bytes


@st.composite
def interval_layouts(draw):
    """Outputs that each need a run of 1 to 4 adjacent shards (overlapping freely), as the
    tensors of a checkpoint saved in order do, stacked experts included."""
    n = draw(st.integers(1, 12))
    names = [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    sizes = {s: draw(st.integers(100, 10_000)) for s in names}
    needs = []
    for _ in range(draw(st.integers(1, 30))):
        a = draw(st.integers(0, n - 1))
        needs.append(set(names[a:a + draw(st.integers(1, 4))]))
    return needs, sizes


def in_order_peak(needs: list[set[str]], sizes: dict[str, int], names: list[str]) -> int:
    """The most bytes on disk when the shards are fetched in the order given (the oracle)."""
    peak, on_disk, pending = 0, set(), list(range(len(needs)))
    for s in names:
        if not any(s in n for n in needs):
            continue
        on_disk.add(s)
        peak = max(peak, sum(sizes[x] for x in on_disk))
        pending = [i for i in pending if not needs[i] <= on_disk]
        on_disk = {x for x in on_disk if any(x in needs[i] for i in pending)}
    return peak


@given(interval_layouts())
def test_the_plan_never_holds_more_than_fetching_in_order(layout):
    needs, sizes = layout
    plan = download_order(needs, sizes)
    check_plan(plan, needs, sizes)
    names = list(sizes)
    assert plan.peak_bytes <= min(in_order_peak(needs, sizes, names),
                                  in_order_peak(needs, sizes, names[::-1]))


@st.composite
def sharded_layouts(draw):
    """Outputs that need one shard or two adjacent ones, as a transformer's tensors saved in
    order do, written in any order."""
    n = draw(st.integers(2, 12))
    names = [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    sizes = {s: draw(st.integers(100, 10_000)) for s in names}
    needs = []
    for i, s in enumerate(names):
        needs += [{s}] * draw(st.integers(0, 4))
        if i + 1 < n:
            needs += [{s, names[i + 1]}] * draw(st.integers(0, 2))
    order = draw(st.permutations(range(len(needs))))
    return [needs[k] for k in order], sizes


@given(sharded_layouts())
def test_outputs_of_one_or_two_adjacent_shards_hold_at_most_two_shards(layout):
    needs, sizes = layout
    plan = download_order(needs, sizes)
    check_plan(plan, needs, sizes)
    assert plan.peak_bytes <= sum(sorted(sizes.values())[-2:])


@st.composite
def layouts_with_stacks(draw):
    """The same, plus outputs that need a run of 3 or 4 adjacent shards (experts stacked into
    one tensor when their weights span shards), the runs not overlapping."""
    needs, sizes = draw(sharded_layouts())
    names = list(sizes)
    runs, i = [], 0
    while i < len(names):
        k = draw(st.integers(0, 4))
        if k >= 3 and i + k <= len(names):
            runs.append(set(names[i:i + k]))
            i += k
        else:
            i += 1
    extra = [r for r in runs for _ in range(draw(st.integers(1, 3)))]
    order = draw(st.permutations(range(len(needs) + len(extra))))
    both = needs + extra
    return [both[k] for k in order], sizes, runs


@given(layouts_with_stacks())
def test_outputs_spanning_a_run_of_shards_hold_that_run_at_most(layout):
    needs, sizes, runs = layout
    plan = download_order(needs, sizes)
    check_plan(plan, needs, sizes)
    run_bytes = max((sum(sizes[x] for x in r) for r in runs), default=0)
    assert plan.peak_bytes <= max(run_bytes, sum(sorted(sizes.values())[-2:]))


def test_an_output_needing_more_than_the_budget_is_refused_naming_it():
    sizes = {"a": 10, "b": 10, "c": 10, "d": 10}
    with pytest.raises(errors.DiskBudgetError,
                       match=r"^output 2 needs 30 bytes .* \(a, b, c\), more than the disk "
                             r"budget of 25 bytes") as info:
        download_order([{"a"}, {"d"}, {"a", "b", "c"}], sizes, budget=25)
    assert info.value.required == 30
    assert isinstance(info.value, ValueError)


def test_a_budget_the_order_cannot_meet_is_refused_with_one_that_works():
    # a triangle: whatever comes first stays until the third shard arrives
    sizes = {"a": 10, "b": 10, "c": 10}
    needs = [{"a", "b"}, {"b", "c"}, {"a", "c"}]
    with pytest.raises(errors.DiskBudgetError, match="disk_budget=30 is enough") as info:
        download_order(needs, sizes, budget=20)
    assert info.value.required == 30
    assert download_order(needs, sizes, budget=30).peak_bytes == 30


def test_outputs_without_sources_are_ready_at_start_and_unused_shards_are_skipped():
    plan = download_order([set(), {"b"}, set()], {"a": 5, "b": 7})
    assert plan.ready_at_start == (0, 2) and plan.unused == ("a",)
    assert [s.download for s in plan.steps] == ["b"]


def test_a_run_of_spanning_shards_is_entered_at_an_end():
    names = [f"s{i}" for i in range(6)]
    sizes = dict.fromkeys(names, 10)
    needs = [{names[i], names[i + 1]} for i in range(5)]
    random.Random(0).shuffle(needs)  # the write order gives no hint
    plan = download_order(needs, sizes)
    assert [s.download for s in plan.steps] in (names, names[::-1])
    assert plan.peak_bytes == 20


@pytest.mark.parametrize("args, match", [
    (([{"a"}], {}, None), r"outputs_needs\[0\]: 'a' is not in shard_sizes"),
    ((["ab"], {"a": 1}, None), r"outputs_needs\[0\]: expected a set"),
    (([{"a"}], {"a": -1}, None), r"shard_sizes\['a'\]"),
    (([{"a"}], {"a": 1}, 0), "budget"),
    (([{"a"}], {"a": 1}, 1.5), "budget"),
])
def test_bad_plan_arguments_are_invalid_argument_errors(args, match):
    with pytest.raises(errors.InvalidArgumentError, match=match):
        download_order(*args)


# ---- the whole loop: a 10-shard model through the stand-in ------------------------------------

def test_a_ten_shard_model_converts_holding_at_most_two_shards_at_once(hub, tmp_path):
    """Downloads by the plan, reads each output's tensors from the staged shards when it is
    ready, deletes by the plan; the staging folder is measured after every download (its
    peak: partial files only grow to the full size, deletes come after) and by a watcher
    thread."""
    src_dir = Path(make_checkpoint(tmp_path / "ten", layers=7, hidden=128, intermediate=256,
                                   vocab=256, shard_size=260_000))
    names = shards(src_dir)
    assert len(names) == 10
    hub.add_repo(REPO, src_dir)
    src = source(hub, tmp_path)
    small = src.fetch_small_files(tmp_path / "small")
    headers = src.safetensors_headers()
    # outputs: every tensor on its own, plus per layer a fused q/k/v and a fused gate/up
    # (as stacked experts or fused projections are made), some of which span two shards
    where = {t: f for f, h in headers.items() for t in h.tensors}
    outputs = [[t] for t in sorted(where)]
    for i in range(7):
        p = f"model.layers.{i}."
        outputs.append([p + f"self_attn.{x}_proj.weight" for x in "qkv"])
        outputs.append([p + f"mlp.{x}_proj.weight" for x in ("gate", "up")])
    needs = [{where[t] for t in out} for out in outputs]
    assert max(len(n) for n in needs) == 2
    sizes = {f: h.size for f, h in headers.items()}
    plan = download_order(needs, sizes)

    staging = tmp_path / "staging"
    watched = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            watched[0] = max(watched[0], staged_bytes(staging))
            stop.wait(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    measured, written = 0, 0
    try:
        for step in plan.steps:
            src.download(step.download)
            measured = max(measured, staged_bytes(staging))
            for i in step.ready:
                for t in outputs[i]:
                    with SafetensorsReader(staging / where[t]) as r, \
                            SafetensorsReader(src_dir / where[t]) as ref:
                        assert r.read(t).tobytes() == ref.read(t).tobytes()
                written += 1
            for f in step.delete:
                src.delete(f)
    finally:
        stop.set()
        watcher.join()
    two_largest = sum(sorted(sizes.values())[-2:])
    small_bytes = sum(p.stat().st_size for p in small.values())
    print(f"\n10 shards, {sum(sizes.values())} bytes in all, largest two {two_largest}: "
          f"peak in staging {measured} (watcher {watched[0]}), counted "
          f"{src.peak_bytes_on_disk}, planned {plan.peak_bytes}; small files {small_bytes}")
    assert written == len(outputs)
    assert measured == plan.peak_bytes == src.peak_bytes_on_disk <= two_largest
    assert watched[0] <= two_largest
    assert staged_bytes(staging) == 0 and src.bytes_on_disk == 0
    assert hub.bytes_served() - sum(r.bytes_sent for r in hub.content_requests()
                                    if r.range_header) == sum(sizes.values()) + small_bytes
