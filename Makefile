# The two commands the README opens with: `make run` and `make test`. Each first installs the Debian
# packages it needs that are missing (scripts/system-packages.sh: apt-get as root, or the `sudo` line).
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
CONFIG ?= plugins.json
## pytest-xdist workers for the integration suite, whole files each; 0 runs it in one process. Four on
## 2 cores: the suite mostly waits (timeouts, drains, reloads), so they overlap well.
PYTEST_WORKERS ?= 4

.PHONY: build release run model test unit example integration system-packages check bench clean

## Build a release binary, prepare the local model, and serve the default manifest with it
## (sluice on 127.0.0.1:8080, SmolLM2-135M on llama-cpp-python at 127.0.0.1:8081). Ctrl-C stops both.
run:
	./scripts/system-packages.sh
	CONFIG=$(CONFIG) ./scripts/run.sh

## The whole test suite: Swift unit tests, then the real binary through the integration suite.
## Each configuration is built once: debug by `swift test` (the package, its tests, the debug `sluice`,
## then the example on the same build), release by `make release` (the integration suite's and the
## container test's binary).
test:
	./scripts/system-packages.sh
	$(MAKE) --no-print-directory unit integration

## The Debian packages `make run` and `make test` need (they run this themselves).
system-packages:
	./scripts/system-packages.sh

build:
	swift build

## The release binary, with the Swift runtime linked in (the container image and `make run` use it).
release:
	swift build -c release --static-swift-stdlib

## The local model for `make run` and the real-model test: .venv-model/ (llama-cpp-python[server],
## compiled once, 2–5 min on 2 cores) and models/SmolLM2-135M-Instruct.Q4_1.gguf. Seconds when done.
model:
	./scripts/setup-local-model.sh

## The Swift tests, in debug; this builds every target, the debug `sluice` too.
unit:
	swift test

## The plugin-authoring example, Examples/CustomGateway: a package of its own that depends on this one.
## Its Swift tests, which also link its `acme-gateway` binary for the integration suite. It builds in
## this package's .build, so Sluice and its dependencies are not compiled a second time.
## (`cd`, not --package-path: with a shared --scratch-path, `swift test --package-path` runs this package's tests.)
example:
	cd Examples/CustomGateway && swift test --scratch-path "$(CURDIR)/.build"

integration: $(VENV)/.installed model build release example
	SLUICE_BIN="$(CURDIR)/.build/debug/sluice" SLUICE_RELEASE_BIN="$(CURDIR)/.build/release/sluice" \
		ACME_GATEWAY_BIN="$(CURDIR)/.build/debug/acme-gateway" \
		$(PYTHON) -m pytest Tests/Integration -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile

$(VENV)/.installed: Tests/Integration/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r Tests/Integration/requirements.txt
	touch $@

## Check the default manifest.
check: build
	"$$(swift build --show-bin-path)/sluice" check $(CONFIG)

## Benchmarks on 127.0.0.1: sluice against nginx (and LiteLLM with BENCH_ARGS=--with-litellm); ~10 minutes,
## writes bench/RESULTS.md and bench/out/. Measures .build/release/sluice (`make release` first); BENCH_SECONDS
## shortens each run, BENCH_ARGS=--quick is a short smoke test, BENCH_ARGS="--baseline-bin PATH" measures an
## older sluice binary beside the current one (before/after in one run).
bench:
	./bench/run $(BENCH_ARGS)

clean:
	rm -rf .build $(VENV) .venv-model
