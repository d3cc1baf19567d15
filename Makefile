# goca-bench — the two commands a newcomer needs:
#   make test        install deps if missing, configure, build, run every test suite
#   make quickstart  the same, then the embedded quickstart experiment (synthetic data, no downloads)
# LibTorch is PyTorch 2.11.0's, pip-installed into .venv/ (scripts/setup-venv.sh); with nvcc on the machine the
# build compiles CUDA in (it runs on CPU-only machines too).
BUILD ?= build
VENV ?= .venv
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")

.PHONY: all deps venv configure build test bench quickstart parity-full clean fuzz fuzz-configure test-asan test-asan-fast test-cluster ci-extra format

all: build

deps:
	@bash scripts/install-deps.sh

venv: deps
	@bash scripts/setup-venv.sh $(VENV)

$(BUILD)/CMakeCache.txt:
	@$(MAKE) --no-print-directory venv
	cmake -S . -B $(BUILD) -G "$(GENERATOR)" -DGB_PYTHON=$(abspath $(VENV))/bin/python $(CMAKE_ARGS)

configure: $(BUILD)/CMakeCache.txt
	@bash scripts/setup-venv.sh $(VENV) >/dev/null

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE long

# The long end-to-end tests (CTest label `long`, tests/e2e suites named *Long): configs/experiments/table1.yaml over
# the four paper backbones and five dataset layouts in both protocols, every method preset through `run` and
# `capture` + `segment`, the README's "Real experiments" recipe as written, shard/resume/batch invariance with a
# checkpoint backbone.
test-long: build
	cd $(BUILD) && ctest --output-on-failure -L long

# The embedded quickstart: synthetic VOC-layout data + the synthetic attention backbone (docs/runner.md);
# runs Vanilla, Baseline, GoCA and a small ablation, writes runs/quickstart/ (results.json, tables/,
# profile.md, report.html). A couple of minutes on 2 CPU cores, no downloads. The numbers are synthetic.
quickstart: test
	$(BUILD)/bin/goca-bench run configs/quickstart.yaml
	@echo "tables: runs/quickstart/tables/table1.md   report: runs/quickstart/report.html"

bench: build
	$(BUILD)/tests/goca-bench-benchmarks $(BENCH_ARGS)

# Full-size parity with diffusers 0.32.2 / transformers 4.47.1 (not in CI; CPU-heavy, ~10 GB of memory, tens of
# minutes on 2 cores): SD1.5 at 512² and PixArt-Sigma at 1024² with random weights at the published sizes,
# every captured tensor compared in fp32 (docs/parity.md). PARITY_ARGS, e.g. --only sd15, --keep --workdir DIR.
PARITY_PYTHON ?= $(VENV)/bin/python
parity-full: build
	nice -n 10 $(PARITY_PYTHON) tools/parity/parity_full.py --goca-bench $(BUILD)/bin/goca-bench $(PARITY_ARGS)

# Fuzzing (docs/robustness.md): clang + libFuzzer + ASan/UBSan in its own build folder; every target in fuzz/
# runs FUZZ_SECONDS from its committed seeds. Findings are left in $(FUZZ_BUILD)/fuzz-work/<target>/.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?=
fuzz-configure:
	@$(MAKE) --no-print-directory venv
	cmake -S . -B $(FUZZ_BUILD) -G "$(GENERATOR)" -DGB_PYTHON=$(abspath $(VENV))/bin/python \
	  -DCMAKE_CXX_COMPILER=clang++ -DGB_FUZZ=ON -DGB_BUILD_TESTS=ON -DGB_BUILD_BENCHMARKS=OFF $(CMAKE_ARGS)

fuzz: fuzz-configure
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz-all
	fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The test suites under AddressSanitizer + UndefinedBehaviorSanitizer, in the fuzz build folder (clang; its
# instrumented libraries are shared with `make fuzz`). `make test-asan` builds everything there and runs every suite
# but the long end-to-end ones (ASAN_CTEST_ARGS picks others, e.g. ASAN_CTEST_ARGS='-R "test_(core|runner)"' or
# ASAN_CTEST_ARGS='-L long'); `make test-asan-fast` only the suites without backbones, sampling or the CLI (CI).
# Run-time options: tools/sanitizers/env.sh.
ASAN_CTEST_ARGS ?= -LE long
test-asan: fuzz-configure
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash -c '. tools/sanitizers/env.sh && cd $(FUZZ_BUILD) && ctest --output-on-failure -j $(JOBS) $(ASAN_CTEST_ARGS)'

ASAN_FAST_SUITES := test_core test_io test_config test_datasets test_eval test_text test_reports test_goca test_baselines
test-asan-fast: fuzz-configure
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(ASAN_FAST_SUITES)
	bash -c '. tools/sanitizers/env.sh && cd $(FUZZ_BUILD) && ctest --output-on-failure -j $(JOBS) -R "^($(shell echo $(ASAN_FAST_SUITES) | tr " " "|"))$$"'

# The Slurm recipe (scripts/cluster/) on a real single-node Slurm started on loopback (docs/runner.md): a 3-task
# array, one task requeued mid-run, the merge equal to a single run. Installs slurm-wlm and munge if missing (root).
test-cluster: build
	tests/cluster/test_slurm.sh $(BUILD)

# What .ci/run adds after `make test`: the long end-to-end tests, every fuzz target for FUZZ_SECONDS, the fast suites under ASan + UBSan,
# the real-Slurm test (skipped, not failed, where Slurm cannot be installed).
ci-extra: test-long fuzz test-asan-fast
	tests/cluster/test_slurm.sh $(BUILD); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 77 ]

# Rewrites every tracked C++/CUDA file to the tree's .clang-format (clang-format-14; CTest's lint_format checks it).
format:
	python3 tools/lint/format_check.py --fix

clean:
	rm -rf $(BUILD)
