# Anchorage — the two commands a user needs:
#   make run    install what is missing, build, start the server (with the
#               demo corpus loaded on first start when it is at hand)
#   make test   install what is missing, build, run every test (also under
#               AddressSanitizer + UBSan), and fuzz each parser briefly
# Everything else here is a building block of those two.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_LONG_SECONDS ?= 600
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# -Werror in CI only; said explicitly either way, since CMake caches it.
ifeq ($(CI),true)
WERROR := ON
else
WERROR := OFF
endif
CMAKE_FLAGS ?=
CMAKE_FLAGS += -DANCHORAGE_WERROR=$(WERROR)

.PHONY: all deps deps-run build build-run run test test-fast test-asan test-fuzz fuzz bench clean help

all: build

help:
	@echo "make run   - build and start anchorage-server on tcp://127.0.0.1:7700"
	@echo "make test  - build and run all tests (normal and ASan/UBSan builds)"
	@echo "make fuzz  - run every fuzz target for FUZZ_LONG_SECONDS (default 600) each"
	@echo "make bench - build and run the benchmarks (JSON lines on stdout)"
	@echo "make clean - remove build directories (keeps ./var)"

deps:
	@scripts/install-deps.sh

# make run needs the libraries only, not the test tools (Prometheus,
# Chromium, clang), and builds the server and the CLI only.
deps-run:
	@scripts/install-deps.sh --run

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-run: deps-run
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS) --target anchorage anchorage-server

run: build-run
	@scripts/run.sh

test-fast: build
	ctest --test-dir $(BUILD) --output-on-failure

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DANCHORAGE_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure

# The fuzz targets (tests/fuzz) under clang with ASan+UBSan: make test runs
# each for FUZZ_SECONDS, replaying every committed corpus file first.
test-fuzz: deps
	scripts/fuzz.sh --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS)

fuzz: deps
	scripts/fuzz.sh --build $(FUZZ_BUILD) --seconds $(FUZZ_LONG_SECONDS)

test: test-fast test-asan test-fuzz

bench: build
	@scripts/bench.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
