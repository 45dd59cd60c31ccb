# The two commands the README opens with: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
CONFIG ?= plugins.json

.PHONY: build release run model test unit example integration check bench clean

build:
	swift build

## The release binary, with the Swift runtime linked in (the container image and `make run` use it).
release:
	swift build -c release --static-swift-stdlib

## Build a release binary, prepare the local model, and serve the default manifest with it
## (sluice on 127.0.0.1:8080, SmolLM2-135M on llama-cpp-python at 127.0.0.1:8081). Ctrl-C stops both.
run:
	CONFIG=$(CONFIG) ./scripts/run.sh

## The local model for `make run` and the real-model test: .venv-model/ (llama-cpp-python[server],
## compiled once, ~12 min on 2 cores) and models/SmolLM2-135M-Instruct.Q4_1.gguf. Seconds when done.
model:
	./scripts/setup-local-model.sh

## The whole test suite: Swift unit tests, then the real binary through the integration suite.
test: build unit integration

unit:
	swift test

## The plugin-authoring example, Examples/CustomGateway: a package of its own that depends on this one.
## Its Swift tests, then its `acme-gateway` binary for the integration suite. It builds in this
## package's .build, so Sluice and its dependencies are not compiled a second time.
## (`cd`, not --package-path: with a shared --scratch-path, `swift test --package-path` runs this package's tests.)
example:
	cd Examples/CustomGateway && swift test --scratch-path "$(CURDIR)/.build"
	cd Examples/CustomGateway && swift build --scratch-path "$(CURDIR)/.build" --product acme-gateway

integration: $(VENV)/.installed model build release example
	SLUICE_BIN="$(CURDIR)/.build/debug/sluice" SLUICE_RELEASE_BIN="$(CURDIR)/.build/release/sluice" \
		ACME_GATEWAY_BIN="$(CURDIR)/.build/debug/acme-gateway" \
		$(PYTHON) -m pytest Tests/Integration -q -p no:cacheprovider

$(VENV)/.installed: Tests/Integration/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r Tests/Integration/requirements.txt
	touch $@

## Check the default manifest.
check: build
	"$$(swift build --show-bin-path)/sluice" check $(CONFIG)

## Benchmarks on 127.0.0.1: sluice against nginx (and LiteLLM with BENCH_ARGS=--with-litellm); ~10 minutes,
## writes bench/RESULTS.md and bench/out/. Measures .build/release/sluice (`make release` first); BENCH_SECONDS
## shortens each run, BENCH_ARGS=--quick is a one-minute smoke test.
bench:
	./bench/run $(BENCH_ARGS)

clean:
	rm -rf .build $(VENV) .venv-model
