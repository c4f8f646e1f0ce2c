# The two commands of README.md: `make demo` and `make test`. Both install what is missing
# (Debian packages), build with 2 jobs and run.
BUILD ?= build
# `make test` also builds what a packager builds (Release), so that build cannot break unseen.
RELEASE_BUILD ?= build-release
JOBS ?= 2
KESM := $(BUILD)/app/kesm

# `make test` runs scripts/prefetch.sh in the background (downloads, the Go builds, the image:
# scripts/prefetch.list) while it compiles; PREFETCH=0 leaves all of it to the ctest fixtures.
PREFETCH ?= 1

.PHONY: deps configure build release demo test prefetch unit integration e2e format format-check clean

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DKESM_WERROR=ON -DKESM_TESTS=ON -DKESM_BENCH=ON >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The product and the benchmarks at -O3, warnings as errors; no tests (they run in $(BUILD)).
release: deps
	@cmake -S . -B $(RELEASE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
		-DKESM_WERROR=ON -DKESM_TESTS=OFF -DKESM_BENCH=ON >/dev/null
	@cmake --build $(RELEASE_BUILD) -j $(JOBS)

demo: build
	$(KESM) demo --config examples/demo.yaml

# The fixtures wait for their prefetch step (a lock) and find its result; a failed step is
# done again by its fixture, and `prefetch.sh wait` prints it after ctest, whose verdict counts.
prefetch: deps
ifneq ($(PREFETCH),0)
	@./scripts/prefetch.sh start $(BUILD)
endif

test: prefetch build format-check release
	@rc=0; (cd $(BUILD) && ctest --output-on-failure --timeout 600) || rc=$$?; \
	if [ "$(PREFETCH)" != 0 ] && ! ./scripts/prefetch.sh wait $(BUILD); then \
		echo "make test: a prefetch step FAILED (above); its ctest fixture did it again"; fi; \
	exit $$rc

unit: build
	@cd $(BUILD) && ctest --output-on-failure -R '^unit/'

integration: build
	@cd $(BUILD) && ctest --output-on-failure -R '^integration'

# The real-Apache-Kafka suite alone (docs/reliability.md); ctest starts and stops the broker.
e2e: build
	@cd $(BUILD) && ctest --output-on-failure -R '^e2e'

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check: deps
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(RELEASE_BUILD)

# libFuzzer targets with clang, ASan and UBSan (docs/fuzzing.md): each for FUZZ_SECONDS.
FUZZ_SECONDS ?= 180
.PHONY: fuzz
fuzz:
	@./scripts/fuzz.sh $(FUZZ_SECONDS)
