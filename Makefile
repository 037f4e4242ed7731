# mlxq: everything a fresh machine needs is installed by `make deps`, which `make test` and
# `make demo` run first. Debian packages come from apt-get, Python packages from pip.
PY ?= python3
# pip 23 only takes --root-user-action after `install`; the environment variable works everywhere.
export PIP_ROOT_USER_ACTION := ignore
PIP = $(PY) -m pip --disable-pip-version-check -q
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES = libjson-c-dev pkg-config

.PHONY: all deps build test demo bench clean

all: build

# System packages only when missing (apt-get needs the network and root, so skip when present).
deps:
	@if ! pkg-config --exists json-c 2>/dev/null; then \
		echo "installing $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@$(PIP) install "setuptools>=77" wheel "numpy>=1.24"
	@$(PIP) install --no-build-isolation -e ".[test]"

build:
	@$(PY) setup.py -q build_ext --inplace -j 2

test: deps build
	$(PY) -m pytest -q

demo: deps build
	$(PY) -m mlxq demo

bench: deps build
	$(PY) benchmarks/bench_kernels.py

clean:
	rm -rf build mlxq/*.so *.egg-info .pytest_cache
