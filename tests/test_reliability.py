"""mlxq never loses or invents data: every malformed folder of tests/corpus.py, run through
``mlxq convert`` (plain, ``-q``, ``-d``), ``mlxq inspect`` and ``mlxq compare``, fails with
exit 1 and one line naming the culprit, leaves nothing beside the destination and the
source byte for byte as it was; the valid oddities convert into folders ``mlx_lm.load``
accepts. Then the rules that need processes: OS failures, signals, killed runs, races.

One test per rule, named after it; each corpus case is a parameter.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import corpus
import mlxq
from mlxq import cli
from mlxq import convert

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def bases(tmp_path_factory) -> Path:
    return corpus.make_bases(tmp_path_factory.mktemp("corpus-bases"))


def tree_state(path: Path) -> dict[str, tuple]:
    """Every entry under ``path``: its type, mode and (files) content digest or (links)
    target — what "byte-identical afterwards" means."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[os.path.relpath(p, path)] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                out[os.path.relpath(p, path)] = ("file", st.st_mode, digest, st.st_mtime_ns)
            else:
                out[os.path.relpath(p, path)] = ("other", st.st_mode)
    return out


def api_kwargs(flags: tuple[str, ...]) -> dict:
    args = cli.build_parser().parse_args(["convert", "S", "D", *flags])
    return dict(quantize=args.quantize, dequantize=args.dequantize,
                quant_predicate=args.quant_predicate, quiet=True)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_clean_failure(code: int, err: str, match: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 1, err
    assert lines[0].startswith("mlxq ") and ": error: " in lines[0], err
    assert "Traceback" not in err and "internal error" not in err, err
    assert re.search(match, lines[0]), (match, lines[0])


def cases(rule: str) -> list:
    return [pytest.param(c, f, id=f"{c.name.split('/', 1)[1]}[{' '.join(f) or 'plain'}]")
            for c in corpus.CASES if c.rule in rule.split("|") and not c.ok
            and not c.name.startswith("os/fifo") for f in c.flags]


def check_case(case, flags, bases, tmp_path, capsys) -> None:
    src = case.build(bases, tmp_path)
    before_src, before_parent = tree_state(src), sorted(os.listdir(tmp_path))
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), *flags], capsys)
    assert_clean_failure(code, err, case.match)
    assert sorted(os.listdir(tmp_path)) == before_parent  # no DST, no staging sibling
    assert tree_state(src) == before_src
    if flags == case.flags[0]:
        with pytest.raises(case.error):
            convert(src, tmp_path / "out", **api_kwargs(flags))
        assert sorted(os.listdir(tmp_path)) == before_parent


# ---- 1. the index is the source of truth ----------------------------------------------------

@pytest.mark.parametrize("case,flags", cases("index|shard"))
def test_the_index_is_the_source_of_truth(case, flags, bases, tmp_path, capsys):
    check_case(case, flags, bases, tmp_path, capsys)


@pytest.mark.parametrize("case", [c for c in corpus.CASES if c.rule in ("index", "shard")
                                  and not c.name.startswith(("shard/no-weights",
                                                             "shard/pickles"))],
                         ids=lambda c: c.name)
def test_inspect_compare_and_load_checkpoint_share_the_index_rule(case, bases, tmp_path,
                                                                  capsys):
    src = case.build(bases, tmp_path)
    before = tree_state(src)
    code, out, err = run_cli(["inspect", str(src)], capsys)
    assert_clean_failure(code, err, case.match)
    code, out, err = run_cli(["compare", str(src), str(bases / "sharded")], capsys)
    assert code == 2 and re.search(case.match, err) and "Traceback" not in err, err
    with pytest.raises(mlxq.errors.MlxqError):
        mlxq.load_checkpoint(src)
    assert tree_state(src) == before


# ---- 2. already-quantized layers are verified, never guessed --------------------------------

@pytest.mark.parametrize("case,flags", cases("quantized"))
def test_already_quantized_layers_are_verified_never_guessed(case, flags, bases, tmp_path,
                                                              capsys):
    check_case(case, flags, bases, tmp_path, capsys)


def test_a_layer_group_size_follows_its_shapes_as_mlx_lm_load_reads_it(bases, tmp_path):
    """4-bit g128 layers under a block that says 4-bit g64: mlx-lm's load infers g128 from
    the shapes; mlxq reads them the same way, so -d gives mlx-lm's dense weights."""
    mlx_lm = pytest.importorskip("mlx_lm")
    import contextlib
    import io

    src = corpus.BY_NAME["quantized/group-size-from-shapes"].build(bases, tmp_path)
    convert(src, tmp_path / "mine", dequantize=True, quiet=True)
    with contextlib.redirect_stdout(io.StringIO()):
        mlx_lm.convert(str(src), str(tmp_path / "ref"), dequantize=True)
    mine, ref = mlxq.load_checkpoint(tmp_path / "mine"), mlxq.load_checkpoint(tmp_path / "ref")
    assert sorted(mine) == sorted(ref)
    for k in ref:
        assert mine[k].shape == ref[k].shape and mine[k].dtype == ref[k].dtype, k
        np.testing.assert_array_equal(mine[k].view(np.uint8), ref[k].view(np.uint8), err_msg=k)


# ---- 3. bad config values -------------------------------------------------------------------

@pytest.mark.parametrize("case,flags", cases("config"))
def test_bad_config_values_are_typed_errors_naming_the_key(case, flags, bases, tmp_path,
                                                            capsys):
    check_case(case, flags, bases, tmp_path, capsys)


# ---- 3b. counts a family loops over are bounded by the tensors -------------------------------

FIXTURES = ROOT / "tests" / "fixtures" / "hf"


def family_fixtures() -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(d for d in FIXTURES.iterdir() if (d / "config.json").is_file()
                  and json.loads((d / "config.json").read_text()).get("model_type")
                  in mlxq.models.supported_model_types())


class HostileConfig(dict):
    """A config that answers a billion for the count ``hostile`` (of layers, experts or
    heads) whenever a family asks for it, present in the file or not, nested configs too;
    every count key asked for is recorded in ``asked``."""

    def __init__(self, data, hostile: str | None = None, asked: set | None = None):
        super().__init__(data)
        self.hostile = hostile
        self.asked = asked if asked is not None else set()

    def _count(self, key) -> bool:
        from mlxq.models.base import is_count_key
        if isinstance(key, str) and is_count_key(key):
            self.asked.add(key)
            return key == self.hostile
        return False

    def __contains__(self, key) -> bool:
        return self._count(key) or dict.__contains__(self, key)

    def __getitem__(self, key):
        if self._count(key):
            return 10**9
        v = dict.__getitem__(self, key)
        return HostileConfig(v, self.hostile, self.asked) if isinstance(v, dict) else v

    def get(self, key, default=None):
        return self[key] if key in self else default


class Deadline(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: float):
    def fire(*_):
        raise Deadline(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("folder", family_fixtures(), ids=lambda d: d.name)
def test_no_family_loops_over_a_count_its_tensors_cannot_hold(folder):
    """Every family's sanitize, run as the planner runs it, on its own checkpoint (made by
    transformers) but with every count it reads set to a billion: the guard each family
    inherits from Args refuses the count, naming it, before any loop runs (or the family
    reads none and returns). Bypasses the planner's up-front check of the config's
    counts, so a port that loops over a count it read any other way hangs here."""
    from mlxq.conversion.plan import _sanitize
    from mlxq.conversion.source import SourceCheckpoint
    from mlxq.models.base import is_count_key

    with SourceCheckpoint(folder) as src:
        family = mlxq.models.family_for(src.config)
        asked: set = set()
        try:
            _sanitize(family, dict(src.tensors), HostileConfig(src.config, None, asked))
        except mlxq.errors.MlxqError as e:  # a layout mlx-lm cannot load either (xfail ones)
            pytest.skip(f"mlxq refuses this checkpoint as it is: {e}")
        for key in sorted(asked):  # one count at a time: the others stay real
            with deadline(20):
                try:
                    _sanitize(family, dict(src.tensors), HostileConfig(src.config, key))
                except mlxq.errors.FormatError as e:
                    if e.key == key:
                        assert "1000000000, more than" in str(e), e
                except mlxq.errors.MlxqError:
                    pass  # refused for another reason first: also no loop


@pytest.mark.parametrize("folder", family_fixtures(), ids=lambda d: d.name)
def test_a_billion_in_any_count_of_any_family_is_refused_before_planning(folder, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(folder, src)
    cfg = json.loads((src / "config.json").read_text())
    from mlxq.models.base import is_count_key

    hit = []

    def inflate(c: dict, prefix: str = "") -> None:
        for k, v in c.items():
            if isinstance(v, dict):
                inflate(v, f"{prefix}{k}.")
            elif isinstance(v, int) and not isinstance(v, bool) and is_count_key(k):
                c[k] = 10**9
                hit.append(prefix + k)
    inflate(cfg)
    if not hit:
        pytest.skip("no count in this config")
    (src / "config.json").write_text(json.dumps(cfg))
    with deadline(20), pytest.raises(mlxq.errors.FormatError,
                                     match="is 1000000000, more than this checkpoint") as e:
        convert(src, tmp_path / "out", quiet=True)
    assert e.value.key in hit
    assert not (tmp_path / "out").exists()


# ---- 3c. a claimed format the tensors do not have ------------------------------------------

FALSE_CLAIMS = {
    "awq": {"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm",
            "zero_point": True},
    "gptq": {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False,
             "sym": True},
    "mxfp4": {"quant_method": "mxfp4"},
    "compressed-tensors": {"quant_method": "compressed-tensors", "format": "pack-quantized",
                           "config_groups": {"group_0": {
                               "targets": ["Linear"],
                               "weights": {"num_bits": 4, "type": "int", "symmetric": True,
                                           "strategy": "group", "group_size": 128}}}},
}


@pytest.mark.parametrize("flags", [(), ("-q",)], ids=["plain", "q"])
@pytest.mark.parametrize("method", list(FALSE_CLAIMS))
@pytest.mark.parametrize("where", ["top", "text_config"])
def test_a_quantization_claim_the_tensors_contradict_is_dropped(method, flags, where, bases,
                                                                 tmp_path, capsys):
    """A dense checkpoint whose config claims AWQ/GPTQ/MXFP4/compressed-tensors: converted
    as the dense checkpoint it is, exactly what mlx_lm.convert makes of it without the
    claim, and a warning says the claim was dropped; the output's config.json never
    declares a quantization its tensors do not have."""
    from support import assert_same_folder, mlx_lm_convert

    honest = corpus.copy(bases, "single", tmp_path)
    claimed = tmp_path / "claimed"
    shutil.copytree(honest, claimed)

    def claim(c: dict) -> None:
        (c if where == "top" else c.setdefault("text_config", {}))["quantization_config"] = \
            FALSE_CLAIMS[method]
    corpus.edit_config(claimed, claim)
    code, _, err = run_cli(["convert", str(claimed), str(tmp_path / "out"), *flags], capsys)
    assert code == 0, err
    assert re.fullmatch(rf"mlxq convert: warning: config\.json's quantization_config says "
                        rf"'{re.escape(method)}', but no tensor is in that format \(none ends "
                        r"in [^)]+\): converted as the dense checkpoint it is, and the claim "
                        r"is left out of the output's config\.json\n", err), err
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert "quantization_config" not in json.dumps(cfg) or "-q" in flags
    if "-q" not in flags:
        assert "quantization" not in cfg
    kw = {"quantize": True} if "-q" in flags else {}
    mlx_lm_convert(honest, tmp_path / "ref", **kw)
    if where == "text_config":  # the oracle's config keeps the empty text_config we added
        ref_cfg = json.loads((tmp_path / "ref" / "config.json").read_text())
        assert {k: v for k, v in cfg.items() if k != "text_config"} == ref_cfg
        assert cfg["text_config"] == {}
        from mlxq.testing import assert_checkpoints_equal
        assert_checkpoints_equal(tmp_path / "out", tmp_path / "ref", check_config=False)
    else:
        assert_same_folder(tmp_path / "out", tmp_path / "ref")


def test_a_claim_some_tensors_support_is_kept(tmp_path):
    """The check is for claims no tensor supports: one AWQ layer among dense ones is an AWQ
    checkpoint, converted as such (its block kept)."""
    from mlxq.conversion.source import SourceCheckpoint

    src = tmp_path / "src"
    mlxq.synthetic.make_checkpoint(src, layers=1, hidden=128, intermediate=256, vocab=64)
    cfg = json.loads((src / "config.json").read_text())
    cfg["quantization_config"] = FALSE_CLAIMS["awq"]
    (src / "config.json").write_text(json.dumps(cfg))
    tensors = dict(mlxq.load_checkpoint(src))
    w = tensors.pop("model.layers.0.mlp.down_proj.weight")
    tensors.update({"model.layers.0.mlp.down_proj.qweight": np.zeros((256, 16), np.int32),
                    "model.layers.0.mlp.down_proj.qzeros": np.zeros((2, 16), np.int32),
                    "model.layers.0.mlp.down_proj.scales": np.ones((2, 128), w.dtype)})
    for f in os.listdir(src):
        if f.endswith(".safetensors") or f.endswith(".index.json"):
            os.remove(src / f)
    mlxq.save_safetensors(src / "model.safetensors", tensors)
    with SourceCheckpoint(src) as s:
        assert s.notes == [] and s.external is not None and s.external.name == "awq"


# ---- valid oddities convert, and mlx-lm loads the result ------------------------------------

@pytest.mark.parametrize("case,flags", [pytest.param(c, f, id=f"{c.name}[{' '.join(f) or 'plain'}]")
                                        for c in corpus.CASES if c.ok for f in c.flags])
def test_unusual_but_valid_inputs_convert_into_folders_mlx_lm_loads(case, flags, bases,
                                                                    tmp_path, capsys):
    src = case.build(bases, tmp_path)
    before = tree_state(src)
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), *flags], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert tree_state(src) == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    utils = pytest.importorskip("mlx_lm.utils")
    utils.load_model(tmp_path / "out")  # strict: every parameter, no extra


# ---- 4. every OS failure is one line, exit 1 ------------------------------------------------

def run_mlxq(args: list[str], timeout: float = 60, prefix: tuple[str, ...] = (),
             **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLXQ_NUM_THREADS="1")
    return subprocess.run([*prefix, sys.executable, "-m", "mlxq", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


# Root ignores permission bits; without these two capabilities it obeys them like anyone.
UNPRIVILEGED = (("setpriv", "--bounding-set=-dac_override,-dac_read_search",
                 "--inh-caps=-dac_override,-dac_read_search")
                if os.geteuid() == 0 and shutil.which("setpriv") else ())
obeys_permissions = pytest.mark.skipif(os.geteuid() == 0 and not UNPRIVILEGED,
                                       reason="root without setpriv ignores permission bits")


@pytest.mark.parametrize("name", [c.name for c in corpus.CASES if c.name.startswith("os/fifo")])
def test_a_fifo_named_like_a_checkpoint_file_is_refused_without_hanging(name, bases,
                                                                        tmp_path):
    case = corpus.BY_NAME[name]
    src = case.build(bases, tmp_path)
    before = tree_state(src)
    for cmd in (["convert", str(src), str(tmp_path / "out")], ["inspect", str(src)]):
        r = run_mlxq(cmd, timeout=30)
        assert_clean_failure(r.returncode, r.stderr, case.match)
    assert tree_state(src) == before and not os.path.exists(tmp_path / "out")


@pytest.fixture
def open_src(bases, tmp_path):
    return corpus.copy(bases, "single", tmp_path)


@obeys_permissions
def test_an_unwritable_destination_parent_is_one_line(open_src, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    r = run_mlxq(["convert", str(open_src), str(locked / "out")], prefix=UNPRIVILEGED)
    assert_clean_failure(r.returncode, r.stderr, rf"{locked}.*Permission denied")
    assert os.listdir(locked) == []


@obeys_permissions
def test_an_unreadable_shard_is_one_line(open_src, tmp_path):
    os.chmod(open_src / "model.safetensors", 0o000)
    try:
        for cmd in (["convert", str(open_src), str(tmp_path / "out")], ["inspect", str(open_src)]):
            r = run_mlxq(cmd, prefix=UNPRIVILEGED)
            assert_clean_failure(r.returncode, r.stderr, r"model\.safetensors.*Permission denied")
    finally:
        os.chmod(open_src / "model.safetensors", 0o644)
    assert sorted(os.listdir(tmp_path)) == ["src"]


@pytest.mark.parametrize("parent,reason", [("/proc/mlxq-test", "No such file|not permitted|denied"),
                                           ("/sys/mlxq-test", "denied|Read-only|not permitted")])
def test_a_destination_under_proc_or_sys_is_one_line(open_src, parent, reason):
    r = run_mlxq(["convert", str(open_src), f"{parent}/out"])
    assert_clean_failure(r.returncode, r.stderr, rf"{parent}.*({reason})")
    assert not os.path.exists(parent)


def test_a_read_only_file_system_is_one_line(open_src, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    script = (f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} -m mlxq convert "
              f"{open_src} {ro}/out")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if "mount" in r.stderr and "error:" not in r.stderr:
        pytest.skip(f"no read-only mount available here: {r.stderr.strip()}")
    assert_clean_failure(r.returncode, r.stderr, rf"{ro}.*Read-only file system")


def test_a_destination_parent_that_is_a_file_is_one_line(open_src, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(["convert", str(open_src), str(tmp_path / "afile" / "out")], capsys)
    assert_clean_failure(code, err, r"afile: not a folder")
    code, _, err = run_cli(["convert", str(open_src), str(tmp_path / "afile" / "a" / "out")],
                           capsys)
    assert_clean_failure(code, err, r"afile: not a folder")


def test_a_full_disk_is_one_line_and_leaves_nothing(open_src, tmp_path):
    """RLIMIT_FSIZE makes the first large write fail with EFBIG, as a full disk fails."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))

    r = run_mlxq(["convert", str(open_src), str(tmp_path / "out")], preexec_fn=limit)
    assert_clean_failure(r.returncode, r.stderr, r"(too large|No space)")
    assert sorted(os.listdir(tmp_path)) == ["src"]


@pytest.mark.parametrize("cmd", [["inspect", "{src}"], ["compare", "{src}", "{src}", "--all"]])
def test_a_closed_stdout_exits_quietly(cmd, bases, tmp_path):
    src = corpus.copy(bases, "sharded", tmp_path)
    args = [a.format(src=src) for a in cmd]
    p = subprocess.Popen([sys.executable, "-m", "mlxq", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    p.stdout.readline()
    p.stdout.close()  # like `| head -1`
    err = p.stderr.read().decode()
    p.wait(timeout=30)
    assert err == "", err
    assert p.returncode in (0, 141)


# ---- 5. signals and stale temporaries -------------------------------------------------------

SLOW = """
import sys, time, mlxq.io as mio
real = mio.SafetensorsWriter.put_part
def slow(self, *a, **k):
    print("writing", flush=True)
    time.sleep(0.2)
    return real(self, *a, **k)
mio.SafetensorsWriter.put_part = slow
from mlxq.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start_slow_convert(src: Path, dst: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", SLOW, "convert", str(src), str(dst), "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.stdout.readline().strip() == "writing"
    return p


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                      (signal.SIGINT, 130)])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(sig, code, bases, tmp_path):
    src = corpus.copy(bases, "sharded", tmp_path)
    p = start_slow_convert(src, tmp_path / "out")
    assert [n for n in os.listdir(tmp_path) if n.startswith(".out.mlxq-")]  # staging exists
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "nothing was written" in lines[0], err
    assert sorted(os.listdir(tmp_path)) == ["src"]


# A sanitize stuck in a pure-Python loop (what a hostile count did before counts were
# checked): the planning phase, where no lock is held and no safe point is ever reached.
STUCK_PLANNING = """
import sys, mlxq.conversion.plan as plan
def stuck(*a, **k):
    print("planning", flush=True)
    n = 0
    while True:
        n += 1
plan._sanitize = stuck
from mlxq.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                      (signal.SIGINT, 130)])
def test_a_signal_stops_the_planning_phase_at_once(sig, code, bases, tmp_path):
    """Planning (headers, JSON, the family's sanitize) holds no lock: a signal stops it
    wherever it is, not at the next safe point (there is none in a sanitize loop)."""
    src = corpus.copy(bases, "sharded", tmp_path)
    p = subprocess.Popen([sys.executable, "-c", STUCK_PLANNING, "convert", str(src),
                          str(tmp_path / "out"), "-q"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert p.stdout.readline().strip() == "planning"
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "nothing was written" in lines[0], err
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_a_killed_run_leaves_a_staging_folder_the_next_run_removes(bases, tmp_path, capsys):
    src = corpus.copy(bases, "sharded", tmp_path)
    p = start_slow_convert(src, tmp_path / "out")
    p.kill()
    p.wait(timeout=30)
    left = [n for n in os.listdir(tmp_path) if n.startswith(".out.mlxq-")]
    assert len(left) == 1
    owner = json.loads((tmp_path / left[0] / ".mlxq-owner.json").read_text())
    assert owner["pid"] == p.pid and owner["host"]
    code, out, err = run_cli(["convert", str(src), str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert re.fullmatch(rf"mlxq convert: warning: removed \S*{re.escape(left[0])}, left by an "
                        r"earlier run that was killed\n", err), err
    assert sorted(os.listdir(tmp_path)) == ["out", "src"]
    assert not (tmp_path / "out" / ".mlxq-owner.json").exists()


def test_a_live_runs_staging_folder_is_left_alone(bases, tmp_path, capsys):
    src = corpus.copy(bases, "sharded", tmp_path)
    p = start_slow_convert(src, tmp_path / "out")
    try:
        from mlxq.staging import stale_siblings
        stale, kept = stale_siblings(tmp_path / "out")
        assert stale == [] and len(kept) == 1 and "still running" in kept[0]
    finally:
        p.kill()
        p.wait(timeout=30)
    stale, _ = stale_siblings(tmp_path / "out")
    assert len(stale) == 1  # now that its owner is gone


def test_two_converts_racing_to_one_destination(bases, tmp_path, monkeypatch):
    """The loser of the final rename gets a typed error and its work is discarded; the
    winner's folder is complete and untouched (no ENOTEMPTY, no merge)."""
    from mlxq import staging

    src = corpus.copy(bases, "single", tmp_path)
    real = staging._rename_noreplace

    def rival_wins_first(a, b):
        # the other run finishes while we were converting
        monkeypatch.setattr(staging, "_rename_noreplace", real)
        convert(src, b, quiet=True)
        winner = tree_state(b)
        try:
            real(a, b)
        finally:
            assert tree_state(b) == winner
    monkeypatch.setattr(staging, "_rename_noreplace", rival_wins_first)
    with pytest.raises(mlxq.errors.InvalidArgumentError, match="appeared while converting"):
        convert(src, tmp_path / "out", quantize=True, quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["out", "src"]
    assert "quantization" not in json.loads((tmp_path / "out" / "config.json").read_text())


def test_the_no_replace_rename_without_renameat2(tmp_path, monkeypatch):
    """Where the file system lacks RENAME_NOREPLACE the fallback claims DST with mkdir."""
    import ctypes

    from mlxq import staging

    class NoRenameat2:
        def __init__(self, *a, **k):
            pass
    monkeypatch.setattr(ctypes, "CDLL", NoRenameat2)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("1")
    staging._rename_noreplace(tmp_path / "a", tmp_path / "b")
    assert os.listdir(tmp_path / "b") == ["f"]
    (tmp_path / "c").mkdir()
    with pytest.raises(FileExistsError):
        staging._rename_noreplace(tmp_path / "c", tmp_path / "b")
    assert os.listdir(tmp_path / "b") == ["f"] and os.path.isdir(tmp_path / "c")


# ---- 5b. files that change while they are read ----------------------------------------------

def rewrite_in_place(path: Path) -> None:
    """New bytes in the data section, same size, same inode (as an editor's in-place save or
    a second download into the same file would)."""
    data = bytearray(path.read_bytes())
    data[-64:] = bytes(64)
    with open(path, "r+b") as f:
        f.write(data)


def replace_under_its_name(path: Path) -> None:
    """Another file with the same bytes renamed over it (a new inode)."""
    tmp = path.with_name(path.name + ".new")
    shutil.copyfile(path, tmp)
    os.replace(tmp, path)


@pytest.mark.parametrize("change", [rewrite_in_place, replace_under_its_name])
@pytest.mark.parametrize("flags", [(), ("-q",)], ids=["plain", "q"])
def test_a_shard_that_changes_while_read_fails_with_nothing_written(change, flags, bases,
                                                                   tmp_path, monkeypatch,
                                                                   capsys):
    """The shards' size, times and inode at open are checked again after the last read:
    a shard changed meanwhile fails the run (exit 1, the shard named), nothing is written.
    (Without the check the output mixes tensors read before and after the change.)"""
    from mlxq.io import SafetensorsReader

    src = corpus.copy(bases, "sharded", tmp_path)
    victim = src / corpus.shard_files(src)[0]
    os.utime(victim, (1e9, 1e9))  # a time no rewrite now can land on
    real = SafetensorsReader.read_rows
    done = []

    def read_rows(self, *a, **k):
        out = real(self, *a, **k)
        if not done:  # once the conversion has started reading: change the file under it
            done.append(True)
            change(victim)
        return out
    monkeypatch.setattr(SafetensorsReader, "read_rows", read_rows)
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out"), *flags], capsys)
    assert done
    assert_clean_failure(code, err, rf"{re.escape(victim.name)}: changed while it was being "
                         r"read \((it was modified|another file replaced it)\); nothing was "
                         r"written")
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_a_side_file_that_changes_before_it_is_copied_fails(bases, tmp_path, monkeypatch,
                                                            capsys):
    """Side files are opened while planning and copied at the end: one rewritten between
    is refused like a shard, not copied half old, half new."""
    from mlxq.conversion import execute

    src = corpus.copy(bases, "single", tmp_path)
    tok = src / "tokenizer.json"
    os.utime(tok, (1e9, 1e9))
    real = execute.Executor.run_all

    def run_all(self, *a, **k):
        tok.write_text(tok.read_text().replace("{", "{ ", 1))
        return real(self, *a, **k)
    monkeypatch.setattr(execute.Executor, "run_all", run_all)
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")], capsys)
    assert_clean_failure(code, err, r"tokenizer\.json: changed while it was being read")
    assert sorted(os.listdir(tmp_path)) == ["src"]


# ---- 6. symlinks: one rule for every file --------------------------------------------------

@pytest.mark.parametrize("case,flags", cases("link"))
def test_a_symlink_leaving_the_source_is_refused_whatever_file_it_stands_for(
        case, flags, bases, tmp_path, capsys):
    check_case(case, flags, bases, tmp_path, capsys)


@pytest.mark.parametrize("name", [c.name for c in corpus.CASES
                                  if c.rule == "link" and not c.ok])
def test_nothing_is_read_through_a_link_that_leaves_the_source(name, bases, tmp_path,
                                                               monkeypatch, capsys):
    """The link is refused before it is opened: no file outside SRC is ever opened, and
    no byte of one reaches a message."""
    src = corpus.BY_NAME[name].build(bases, tmp_path)
    inside = os.path.realpath(src)
    opened = []
    real_open = os.open

    def spy(path, *a, **k):
        opened.append(os.path.realpath(path))
        return real_open(path, *a, **k)
    monkeypatch.setattr(os, "open", spy)
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")], capsys)
    monkeypatch.undo()
    assert code == 1, err
    outside = [p for p in opened if not p.startswith(inside + os.sep)
               and p.startswith(str(tmp_path))]
    assert outside == [], outside
    assert b"secret-token" not in err.encode() and b"root:x" not in err.encode(), err


@pytest.mark.parametrize("name", ["shard/text-file", "shard/text-file-small-length",
                                  "link/config-to-a-text-file"])
def test_no_message_quotes_a_file_that_is_not_what_it_claims(name, bases, tmp_path, capsys):
    """A text file named like a shard or a config: the message names it and says what it is
    not; it never shows its bytes, raw or read as a number (the "header length")."""
    src = corpus.BY_NAME[name].build(bases, tmp_path)
    for argv in (["convert", str(src), str(tmp_path / "out")], ["inspect", str(src)]):
        code, _, err = run_cli(argv, capsys)
        assert code == 1, err
        for fragment in (b"secret", b"root:x", b"/bin/sh",
                         str(int.from_bytes(corpus.SECRET[:8], "little")).encode(),
                         str(int.from_bytes(b"\x30" + b"\0" * 7, "little") + 8).encode()):
            assert fragment not in err.encode(), (fragment, err)


def test_symlinks_inside_the_source_and_into_a_hub_cache_are_followed(bases, tmp_path, capsys):
    """A Hugging Face cache snapshot links every file into the repo's blobs folder."""
    repo = tmp_path / "models--org--name"
    snap = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    shutil.copytree(bases / "sharded", snap)
    for name in sorted(os.listdir(snap)):
        blob = repo / "blobs" / hashlib.sha256(name.encode()).hexdigest()
        shutil.move(snap / name, blob)
        os.symlink(os.path.relpath(blob, snap), snap / name)
    os.symlink("tokenizer.json", snap / "tokenizer.model")  # inside SRC
    code, _, err = run_cli(["convert", str(snap), str(tmp_path / "out")], capsys)
    assert code == 0 and "warning" not in err, err
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == \
        (bases / "sharded" / "tokenizer.json").read_bytes()
    assert (tmp_path / "out" / "tokenizer.model").exists()
    # the same through huggingface_hub's own layout as snapshot_download makes it
    assert mlxq.load_checkpoint(snap).keys() == mlxq.load_checkpoint(bases / "sharded").keys()


def test_a_link_out_of_one_snapshot_into_another_repos_blobs_is_refused(bases, tmp_path,
                                                                         capsys):
    """Only the snapshot's own repository's blobs/ count, not any folder named blobs."""
    cache = tmp_path / "hub"
    snap = cache / "models--org--a" / "snapshots" / "rev"
    other = cache / "models--org--b" / "blobs"
    other.mkdir(parents=True)
    shutil.copytree(bases / "single", snap)
    shutil.move(snap / "model.safetensors", other / "x")
    os.symlink(other / "x", snap / "model.safetensors")
    code, _, err = run_cli(["convert", str(snap), str(tmp_path / "out")], capsys)
    assert_clean_failure(code, err, r"model\.safetensors is a symlink to \S*models--org--b")


def test_a_side_file_that_is_not_a_regular_file_is_skipped(bases, tmp_path, capsys):
    src = corpus.BY_NAME["side/fifo-side-file"].build(bases, tmp_path)
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")], capsys)
    assert code == 0
    assert re.fullmatch(r"mlxq convert: warning: \S*chat_template\.jinja: not a regular "
                        r"file \(a FIFO\): not copied\n", err), err
    assert not (tmp_path / "out" / "chat_template.jinja").exists()


# ---- the corpus itself ----------------------------------------------------------------------

def test_the_corpus_covers_every_class():
    rules = {c.rule for c in corpus.CASES}
    assert {"index", "quantized", "config", "shard", "os", "side", "link"} <= rules
    assert len(corpus.CASES) >= 79


def test_the_bases_are_well_formed(bases, tmp_path):
    """Every case breaks a base that is itself valid: each converts and mlx-lm loads it."""
    for name in ("sharded", "single", "moe", "mlx4", "mlx4g128"):
        convert(bases / name, tmp_path / name, quiet=True)
    utils = pytest.importorskip("mlx_lm.utils")
    for name in ("sharded", "moe", "mlx4"):
        utils.load_model(tmp_path / name)


@pytest.mark.parametrize("case", [c for c in corpus.CASES if not c.name.startswith("os/fifo")],
                         ids=lambda c: c.name)
def test_no_corpus_folder_makes_inspect_or_compare_fail_uncleanly(case, bases, tmp_path, capsys):
    """inspect reads headers and verifies stored layers like convert; compare reads tensors.
    Either succeeds or fails with one line; neither ever crashes."""
    src = case.build(bases, tmp_path)
    before = tree_state(src)
    for argv, codes in ((["inspect", str(src)], (0, 1)),
                        (["compare", str(src), str(bases / "single")], (0, 1, 2))):
        code, _, err = run_cli(argv, capsys)
        assert code in codes, err
        assert "Traceback" not in err and "internal error" not in err, err
        assert len(err.strip().splitlines()) <= 1, err
    assert tree_state(src) == before
