"""``mlxq.convert`` straight from the Hub, against the stand-in server (tests/hub_server.py):
the output equals ``mlx_lm.convert --hf-path``'s, source shards come and go so that disk
stays bounded (watched from outside, in the staging folder), and a repository that cannot
be read — cut connections, missing files, gates, budgets too small — ends in a typed error
with nothing left behind."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")
from hub_server import MLX_LM_CLI

import mlxq
from mlxq.errors import (
    DiskBudgetError,
    HubAccessError,
    HubFileNotFoundError,
    HubNetworkError,
    HubRepoNotFoundError,
    HubRevisionNotFoundError,
    InvalidArgumentError,
    MissingKeyError,
    SafetensorsError,
)
from mlxq.synthetic import make_checkpoint
from mlxq.testing import assert_checkpoints_equal

REPO = "org/tiny"
SIZES = dict(layers=3, hidden=64, intermediate=192, vocab=256)


def shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("model-*.safetensors"))


@pytest.fixture(scope="module")
def ten_shards(tmp_path_factory) -> Path:
    """A llama checkpoint in a dozen shards, with a model card."""
    root = tmp_path_factory.mktemp("hubsrc")
    path = Path(make_checkpoint(root / "m", shard_size=40_000, **SIZES))
    assert len(shards(path)) >= 10, len(shards(path))
    (path / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """Shards larger than the header probe (100 kB), so that faults past it hit the
    download, not the header read."""
    root = tmp_path_factory.mktemp("big")
    return Path(make_checkpoint(root / "m", layers=2, hidden=256, intermediate=1024,
                                vocab=1024, shard_size=600_000))


@pytest.fixture(scope="module")
def reference(ten_shards, tmp_path_factory) -> Path:
    """``mlx_lm.convert -q`` of the local folder (the stand-in tests show it equals the same
    command with ``--hf-path``)."""
    mlx_lm = pytest.importorskip("mlx_lm")
    out = tmp_path_factory.mktemp("ref") / "q"
    with contextlib.redirect_stdout(io.StringIO()):
        mlx_lm.convert(str(ten_shards), str(out), quantize=True)
    return out


class DiskWatcher:
    """Polls every staging folder next to ``dst`` and records the most bytes its source
    area (``.mlxq-source/shards``, partial downloads included) held at once."""

    def __init__(self, dst: Path):
        self.parent, self.peak, self.samples = dst.parent, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def measure(self) -> int:
        # os.walk, not Path.rglob: the converter removes folders while this walks them,
        # and os.walk skips a vanished folder (onerror unset) where rglob raises
        total = 0
        for staging in self.parent.glob("*.tmp"):
            for root, _, files in os.walk(staging / ".mlxq-source" / "shards"):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.stat(os.path.join(root, name)).st_size
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.measure())
            self.samples += 1
            self._stop.wait(0.001)

    def __enter__(self) -> DiskWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def no_leftovers(dst: Path) -> None:
    assert not os.path.lexists(dst)
    assert [p.name for p in dst.parent.iterdir() if p.name.startswith(".")] == []


def same_files(ours: Path, theirs: Path) -> bool:
    """The same file names, but for the tokenizer files mlx-lm re-saves through
    transformers (which writes no ``special_tokens_map.json``) and mlxq copies as they are."""
    a = {p.name for p in ours.iterdir()}
    b = {p.name for p in theirs.iterdir()}
    return b <= a and a - b <= {"special_tokens_map.json"}


def only_headers_fetched(hub, src: Path) -> bool:
    """No shard was downloaded: what the server sent of them were ranged reads (headers)."""
    names = {p.name for p in shards(src)}
    return all(r.range_header for r in hub.log if r.is_content and r.filename in names)


def convert(src: str, dst: Path, **kw) -> mlxq.conversion.ConvertResult:
    return mlxq.convert(src, dst, quiet=True, **kw)


# ---- the output ------------------------------------------------------------------------------

def test_from_the_hub_equals_mlx_lm_hf_path_with_bounded_disk(hub, ten_shards, reference,
                                                              tmp_path, monkeypatch):
    from mlxq.hub import HubSource

    hub.add_repo(REPO, ten_shards)
    dst = tmp_path / "out" / "q"
    (tmp_path / "out").mkdir()
    sizes = sorted(p.stat().st_size for p in shards(ten_shards))
    watcher = DiskWatcher(dst)
    # The folder is fullest just before a shard is deleted (between deletions it only
    # grows): measured there, and by the watcher's polling and at each request the server
    # answers in between.
    before_delete: list[int] = []
    delete = HubSource.delete

    def measured_delete(self, filename):
        before_delete.append(watcher.measure())
        delete(self, filename)

    monkeypatch.setattr(HubSource, "delete", measured_delete)
    seen_at_request: list[int] = []
    record = hub._record

    def recording(entry):
        seen_at_request.append(watcher.measure())
        record(entry)

    hub._record = recording
    with watcher:
        result = convert(REPO, dst, quantize=True)
    assert_checkpoints_equal(dst, reference, check_config=True, check_index=True)
    assert (dst / "config.json").read_text() == (reference / "config.json").read_text()

    # never more than the two largest shards on disk
    assert len(before_delete) == len(sizes)
    peak = max(watcher.peak, *seen_at_request, *before_delete)
    assert sizes[-1] <= max(before_delete) and peak <= sizes[-1] + sizes[-2], (peak, sizes)
    assert result.source_peak_bytes is not None and result.source_peak_bytes <= sizes[-1] + \
        sizes[-2]
    # every shard was downloaded in full; nothing of the source is left
    for p in shards(ten_shards):
        assert hub.bytes_served(p.name) >= p.stat().st_size
    assert not (dst / ".mlxq-source").exists()
    assert same_files(dst, reference)
    cache = Path(os.environ["HF_HOME"]) / "hub"
    assert not list(cache.rglob("*.safetensors"))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["q"]


def test_mlx_lm_hf_path_gives_the_same_folder_and_card(hub, ten_shards, tmp_path):
    pytest.importorskip("mlx_lm")
    hub.add_repo(REPO, ten_shards)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    convert(REPO, ours, quantize=True, q_bits=8)
    proc = subprocess.run(
        [sys.executable, "-c", MLX_LM_CLI, os.path.dirname(__file__), "convert",
         "--hf-path", REPO, "--mlx-path", str(theirs), "-q", "--q-bits", "8"],
        capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_checkpoints_equal(ours, theirs, check_config=True, check_index=True)
    assert (ours / "README.md").read_text() == (theirs / "README.md").read_text()
    assert same_files(ours, theirs)


def test_a_revision_converts_that_commit(hub, ten_shards, tmp_path):
    old = hub.add_repo(REPO, ten_shards)
    other = Path(make_checkpoint(tmp_path / "other", seed=1, **SIZES))
    hub.add_repo(REPO, other)  # main moves on
    a, b = tmp_path / "a", tmp_path / "b"
    convert(REPO, a, revision=old)
    convert(str(ten_shards), b)
    assert_checkpoints_equal(a, b, check_config=True)
    with pytest.raises(HubRevisionNotFoundError):
        convert(REPO, tmp_path / "c", revision="no-such-branch")
    no_leftovers(tmp_path / "c")


def test_keep_source_leaves_a_usable_copy_in_the_cache(hub, ten_shards, tmp_path):
    from huggingface_hub import snapshot_download

    sha = hub.add_repo(REPO, ten_shards)
    convert(REPO, tmp_path / "q", quantize=True, keep_source=True)
    snap = Path(snapshot_download(REPO, revision=sha, local_files_only=True))
    for p in [*shards(ten_shards), ten_shards / "config.json",
              ten_shards / "model.safetensors.index.json"]:
        assert (snap / p.name).read_bytes() == p.read_bytes(), p.name
    hub.clear_log()
    convert(str(snap), tmp_path / "again", quantize=True)  # the copy converts on its own
    assert_checkpoints_equal(tmp_path / "again", tmp_path / "q", check_config=True)
    assert hub.log == []


# ---- what goes wrong ---------------------------------------------------------------------

def test_a_cut_connection_is_resumed(hub, ten_shards, tmp_path, no_retry_sleep):
    hub.add_repo(REPO, ten_shards)
    name = shards(ten_shards)[4].name
    hub.drop_connection(REPO, name, after=20_000)
    convert(REPO, tmp_path / "q")
    convert(str(ten_shards), tmp_path / "local")
    assert_checkpoints_equal(tmp_path / "q", tmp_path / "local", check_config=True)


def test_a_connection_that_keeps_failing_is_a_network_error(hub, ten_shards, tmp_path,
                                                           no_retry_sleep):
    hub.add_repo(REPO, ten_shards)
    name = shards(ten_shards)[4].name
    hub.drop_connection(REPO, name, after=20_000, times=None)
    with pytest.raises(HubNetworkError, match=name):
        convert(REPO, tmp_path / "q")
    no_leftovers(tmp_path / "q")


def test_a_shard_the_index_names_but_the_repository_lacks(hub, ten_shards, tmp_path):
    hub.add_repo(REPO, ten_shards)
    name = shards(ten_shards)[7].name
    hub.missing(REPO, name)
    with pytest.raises(SafetensorsError, match=name):
        convert(REPO, tmp_path / "q")
    no_leftovers(tmp_path / "q")
    assert only_headers_fetched(hub, ten_shards)  # refused before downloading


def test_a_listed_shard_that_answers_404(hub, ten_shards, tmp_path):
    hub.add_repo(REPO, ten_shards)
    name = shards(ten_shards)[7].name
    hub.missing(REPO, name, listed=True)
    with pytest.raises(HubFileNotFoundError, match=name):
        convert(REPO, tmp_path / "q")
    no_leftovers(tmp_path / "q")


def test_a_gated_repository_needs_its_token(hub, ten_shards, tmp_path):
    hub.add_repo(REPO, ten_shards)
    hub.gate(REPO, token="hf_right")
    with pytest.raises(HubAccessError):
        convert(REPO, tmp_path / "q")
    with pytest.raises(HubAccessError):
        convert(REPO, tmp_path / "q", token="hf_wrong")
    no_leftovers(tmp_path / "q")
    convert(REPO, tmp_path / "q", token="hf_right")
    assert (tmp_path / "q" / "config.json").is_file()


def test_an_unknown_or_private_repository(hub, ten_shards, tmp_path):
    with pytest.raises(HubRepoNotFoundError, match="org/none"):
        convert("org/none", tmp_path / "q")
    hub.add_repo(REPO, ten_shards)
    hub.hide(REPO)
    with pytest.raises(HubRepoNotFoundError):
        convert(REPO, tmp_path / "q")
    no_leftovers(tmp_path / "q")


def test_a_disk_budget_below_the_largest_shard_is_refused_before_downloading(
        hub, ten_shards, tmp_path):
    hub.add_repo(REPO, ten_shards)
    largest = max(p.stat().st_size for p in shards(ten_shards))
    with pytest.raises(DiskBudgetError) as e:
        convert(REPO, tmp_path / "q", disk_budget=largest - 1)
    assert e.value.required >= largest
    assert only_headers_fetched(hub, ten_shards)
    no_leftovers(tmp_path / "q")
    # the budget it names is enough, and is kept to
    result = convert(REPO, tmp_path / "q", disk_budget=e.value.required)
    assert result.source_peak_bytes <= e.value.required


def test_a_local_folder_wins_over_a_repository_of_the_same_name(hub, ten_shards, tmp_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("org")
    os.symlink(ten_shards, "org/tiny")
    convert("org/tiny", tmp_path / "q")  # no repository org/tiny on the stand-in
    assert hub.log == []


def test_what_is_not_a_repository_id_is_a_missing_folder(hub, tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        convert(str(tmp_path / "no" / "such" / "folder"), tmp_path / "q")
    assert hub.log == []


def test_a_repository_without_weights_is_a_checkpoint_error(hub, tmp_path):
    src = tmp_path / "cfg-only"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "llama"}))
    hub.add_repo(REPO, src)
    with pytest.raises(MissingKeyError, match="safetensors"):
        convert(REPO, tmp_path / "q")
    no_leftovers(tmp_path / "q")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_says_what_is_downloading(hub, ten_shards, tmp_path):
    hub.add_repo(REPO, ten_shards)
    n = len(shards(ten_shards))
    term = Terminal()
    mlxq.convert(REPO, tmp_path / "q", quantize=True, stream=term)
    frames = term.getvalue().split("\r")
    for k in range(1, n + 1):  # every shard's start and end is drawn
        assert any(f"downloading shard {k}/{n} 0%" in f for f in frames), k
        assert any(f"downloading shard {k}/{n} 100%" in f for f in frames), k
    assert f"{n}/{n} shards downloaded" in "".join(frames)
    assert frames[-1].strip() == ""  # erased before the summary


def test_a_download_reports_its_bytes(hub, ten_shards, tmp_path, no_retry_sleep):
    from mlxq.hub import HubSource

    sha = hub.add_repo(REPO, ten_shards)
    name = shards(ten_shards)[2].name
    size = (ten_shards / name).stat().st_size
    hub.drop_connection(REPO, name, after=size // 2, times=1)
    seen: list[int] = []
    src = HubSource(REPO, sha, staging_dir=tmp_path / "s")
    path = src.download(name, on_bytes=seen.append)
    assert path.read_bytes() == (ten_shards / name).read_bytes()
    assert seen[0] == 0 and seen[-1] == size and max(seen) == size


# ---- the command line ------------------------------------------------------------------------

def mlxq_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # the hub fixture's HF_ENDPOINT and HF_HOME are in the environment the child inherits
    return subprocess.run([sys.executable, "-m", "mlxq", *args], capture_output=True,
                          text=True, cwd=cwd, check=False)


def test_mlxq_convert_takes_a_repository_and_its_flags(hub, ten_shards, tmp_path):
    old = hub.add_repo(REPO, ten_shards)
    hub.add_repo(REPO, Path(make_checkpoint(tmp_path / "newer", seed=3, **SIZES)))
    p = mlxq_cli("convert", "--hf-path", REPO, "--mlx-path", "q", "-q", "--revision", old,
                 "--disk-budget", "1MB", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "source shards on disk at most" in p.stdout
    mine = tmp_path / "local"
    convert(str(ten_shards), mine, quantize=True)
    assert_checkpoints_equal(tmp_path / "q", mine, check_config=True)


@pytest.mark.parametrize("fault,message", [
    ("unknown", "org/none: "),
    ("gated", "the repository is gated"),
    ("missing", "the repository has no such file"),
    ("budget", "more than the disk budget of 9.8 KiB (10000 bytes); --disk-budget 37672 is "
               "enough"),
])
def test_mlxq_convert_from_the_hub_fails_in_one_line(hub, ten_shards, tmp_path, fault, message):
    hub.add_repo(REPO, ten_shards)
    repo, extra = REPO, []
    if fault == "unknown":
        repo = "org/none"
    elif fault == "gated":
        hub.gate(REPO, token="hf_right")
    elif fault == "missing":
        hub.missing(REPO, shards(ten_shards)[3].name, listed=True)
    else:
        extra = ["--disk-budget", "10kB"]
    p = mlxq_cli("convert", repo, "q", *extra, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxq convert: error: "), p.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in p.stderr
    no_leftovers(tmp_path / "q")


def test_a_repository_without_a_config_names_the_repository(hub, tmp_path):
    src = tmp_path / "no-config"
    src.mkdir()
    (src / "README.md").write_text("# nothing here\n")
    hub.add_repo(REPO, src)
    with pytest.raises(MissingKeyError, match=r"^org/tiny@[0-9a-f]{12}: no config.json in the "
                       "repository"):
        convert(REPO, tmp_path / "q")
    no_leftovers(tmp_path / "q")


def test_keep_source_cleans_what_a_killed_download_left_in_the_cache(hub, ten_shards, tmp_path):
    from filelock import FileLock
    from huggingface_hub import constants

    hub.add_repo(REPO, ten_shards)
    blobs = Path(constants.HF_HUB_CACHE) / "models--org--tiny" / "blobs"
    locks = Path(constants.HF_HUB_CACHE) / ".locks" / "models--org--tiny"
    blobs.mkdir(parents=True)
    locks.mkdir(parents=True)
    orphan = blobs / "aaaa.1234abcd.incomplete"   # its download was killed
    busy = blobs / "bbbb.5678abcd.incomplete"     # another process is downloading it
    orphan.write_bytes(b"x" * 1000)
    busy.write_bytes(b"y" * 1000)
    other = FileLock(str(locks / "bbbb.lock"))
    other.acquire()
    try:
        convert(REPO, tmp_path / "q", keep_source=True)
    finally:
        other.release()
    assert not orphan.exists() and busy.exists()


def test_an_interrupt_during_a_download_stops_it_and_leaves_nothing(hub, big, tmp_path):
    import signal

    src = big
    hub.add_repo(REPO, src)
    name = shards(src)[1].name
    stall = hub.stall(REPO, name, after=300_000)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "mlxq", "convert", REPO, "q"], cwd=out,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert stall.reached.wait(60), "the download never reached the stall"
        partial = list((out).rglob("*.incomplete"))
        assert partial, "no partial download on disk"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        stall.release()
        _, err = proc.communicate(timeout=60)
    finally:
        stall.release()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == "mlxq convert: interrupted; nothing was written", err
    no_leftovers(out / "q")
    assert list(out.iterdir()) == []
    # it stopped at the shard it was downloading: the next was never asked for
    later = {p.name for p in shards(src)[2:]}
    assert not any(r.filename in later and r.is_content and not r.range_header
                   for r in hub.log)


def test_a_retried_download_is_one_line_on_the_command_line(hub, big, tmp_path):
    hub.add_repo(REPO, big)
    name = shards(big)[1].name
    # past the header probe; cut six times: huggingface_hub's five resumes within its call
    # fail (a second apart), mlxq's second call gets the file
    hub.drop_connection(REPO, name, after=300_000, times=6)
    p = mlxq_cli("convert", REPO, "q", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"mlxq convert: {REPO}@") and name in lines[0]
    assert lines[0].endswith("trying again (1 of 2)"), lines[0]
    mine = tmp_path / "local"
    convert(str(big), mine)
    assert_checkpoints_equal(tmp_path / "q", mine, check_config=True)


@pytest.mark.parametrize("kw,key", [({"target_bpw": 4.0}, "target_bpw"),
                                    ({"q_method": "mse"}, "q_method")])
def test_options_that_read_every_weight_while_planning_are_refused_before_downloading(
        hub, ten_shards, tmp_path, kw, key):
    """target_bpw measures, and the data-free mse estimate reads, every weight before the
    conversion starts; a Hub source's shards arrive only while converting."""
    hub.add_repo(REPO, ten_shards)
    with pytest.raises(InvalidArgumentError, match="download the repository first") as e:
        convert(REPO, tmp_path / "q", quantize=True, **kw)
    assert e.value.key == key
    assert only_headers_fetched(hub, ten_shards)
    no_leftovers(tmp_path / "q")
