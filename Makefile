# goca-bench — the two commands a newcomer needs:
#   make test        install deps if missing, configure, build, run every test suite
#   make quickstart  the same, then the embedded quickstart experiment (synthetic data, no downloads)
# GPU build: make test CMAKE_ARGS="-DCMAKE_PREFIX_PATH=$$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')"
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")

.PHONY: all deps configure build test bench quickstart clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	@$(MAKE) --no-print-directory deps
	cmake -S . -B $(BUILD) -G "$(GENERATOR)" $(CMAKE_ARGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The embedded quickstart: synthetic VOC-layout data + the synthetic attention backbone (docs/runner.md);
# runs Vanilla, Baseline, GoCA and a small ablation, writes runs/quickstart/ (results.json, tables/,
# profile.md, report.html). A couple of minutes on 2 CPU cores, no downloads. The numbers are synthetic.
quickstart: test
	$(BUILD)/bin/goca-bench run configs/quickstart.yaml
	@echo "tables: runs/quickstart/tables/table1.md   report: runs/quickstart/report.html"

bench: build
	$(BUILD)/tests/goca-bench-benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(BUILD)
