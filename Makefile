# The two commands the README opens with: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
CONFIG ?= plugins.json

.PHONY: build release run test unit integration check clean

build:
	swift build

release:
	swift build -c release

## Serve the default manifest with a release build.
run: release
	./.build/release/sluice serve --config $(CONFIG)

## The whole test suite: Swift unit tests, then the real binary through the integration suite.
test: build unit integration

unit:
	swift test

integration: $(VENV)/.installed build
	SLUICE_BIN="$$(swift build --show-bin-path)/sluice" $(PYTHON) -m pytest Tests/Integration -q -p no:cacheprovider

$(VENV)/.installed: Tests/Integration/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r Tests/Integration/requirements.txt
	touch $@

## Check the default manifest.
check: build
	"$$(swift build --show-bin-path)/sluice" check $(CONFIG)

clean:
	rm -rf .build $(VENV)
