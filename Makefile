# Every target sets itself up first: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.edgeport-installed
# torch/torchvision versions that install from the machine's wheel cache (docs/design.md §8).
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo check test bench lint typecheck pytest browser cpp-deps cpp cpp-asan fuzz fuzz-long fuzz-py clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[export,hub,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgeport demo --out demo-bundle

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench cpp/tests
	$(VENV)/bin/ruff format --check src tests bench cpp/tests
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	EDGEPORT_CPP_BUILD=$(CURDIR)/build/cpp $(PY) -m pytest -q

test: lint typecheck browser cpp cpp-asan fuzz pytest

# The edit loop: lint, types and the fast tests (no root, no C++ build; about 2.5 minutes here).
check: lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not cpp"

# Headless Chromium for the report.html test (Debian's package; needs root, as in CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    >/dev/null 2>&1 || echo "chromium not installed: the report.html browser test will skip"; }

# libedgeport (C/C++): compilers, GoogleTest and nlohmann-json from Debian (needs root, as in
# CI), ONNX Runtime's headers via scripts/fetch_onnxruntime.sh, its library from the wheel.
CPP_PACKAGES := cmake ninja-build g++ nlohmann-json3-dev libgtest-dev libssl-dev clang-14 libclang-rt-14-dev
ORT_ROOT := build/onnxruntime

cpp-deps: $(STAMP)
	@dpkg -s $(CPP_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CPP_PACKAGES) >/dev/null; }
	PYTHON=$(PY) scripts/fetch_onnxruntime.sh $(ORT_ROOT) >/dev/null

cpp: cpp-deps
	cmake -S . -B build/cpp -G Ninja -DCMAKE_BUILD_TYPE=Release -DONNXRUNTIME_ROOT=$(CURDIR)/$(ORT_ROOT) >/dev/null
	cmake --build build/cpp
	ctest --test-dir build/cpp --output-on-failure

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
cpp-asan: cpp-deps
	cmake -S . -B build/cpp-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DEDGEPORT_SANITIZE=ON -DONNXRUNTIME_ROOT=$(CURDIR)/$(ORT_ROOT) >/dev/null
	cmake --build build/cpp-asan
	ctest --test-dir build/cpp-asan --output-on-failure

# libFuzzer over the .npy, manifest and ONNX readers: briefly here, 60 s with fuzz-long.
FUZZ_SECONDS ?= 20
fuzz: cpp
	cmake -S . -B build/fuzz -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DEDGEPORT_FUZZ=ON -DONNXRUNTIME_ROOT=$(CURDIR)/$(ORT_ROOT) >/dev/null
	cmake --build build/fuzz
	mkdir -p build/fuzz/corpus
	build/fuzz/fuzz_readers -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build/fuzz/corpus \
	  build/cpp/fixtures/seeds > build/fuzz/fuzz.log 2>&1; status=$$?; tail -6 build/fuzz/fuzz.log; exit $$status

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=60

# Hypothesis over the Python manifest, .npy/.npz, data readers and the path rule: pytest runs
# 150 examples per property; this runs many more (about a minute here) and prints the counts.
FUZZ_PY_EXAMPLES ?= 6000
fuzz-py: $(STAMP)
	EDGEPORT_FUZZ_EXAMPLES=$(FUZZ_PY_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider -W ignore \
	  tests/test_fuzz_readers.py --hypothesis-show-statistics

# Performance targets are checked here, never in timed unit tests.
BENCHES := session_overhead quantization_speed build_vs_hand stability cpp_overhead pruning_speed compare_cli recommend_agreement

# Every benchmark runs; the target fails if any missed its target (each prints PASS/FAIL lines).
bench: $(STAMP)
	@status=0; for b in $(BENCHES); do echo "== bench/$$b.py"; \
	  $(PY) bench/$$b.py || status=1; done; exit $$status

clean:
	rm -rf $(VENV) build demo-bundle bench-results .pytest_cache .mypy_cache .ruff_cache
