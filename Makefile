# Every target sets itself up first: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.edgeport-installed
# torch/torchvision versions that install from the machine's wheel cache (DESIGN.md §8).
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench lint typecheck pytest browser clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[export,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgeport demo --out demo-bundle

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck browser pytest

# Headless Chromium for the report.html test (Debian's package; needs root, as in CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    >/dev/null 2>&1 || echo "chromium not installed: the report.html browser test will skip"; }

# Performance targets are checked here, never in timed unit tests.
BENCHES := session_overhead quantization_speed build_vs_hand stability

# Every benchmark runs; the target fails if any missed its target (each prints PASS/FAIL lines).
bench: $(STAMP)
	@status=0; for b in $(BENCHES); do echo "== bench/$$b.py"; \
	  $(PY) bench/$$b.py || status=1; done; exit $$status

clean:
	rm -rf $(VENV) build demo-bundle bench-results .pytest_cache .mypy_cache .ruff_cache
