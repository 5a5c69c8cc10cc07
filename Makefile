# The two commands a newcomer needs (see README.md):
#   make test   installs missing packages, builds, runs every test (also an ASan/UBSan build)
#   make demo   runs Siphon on the sample legacy ERP into Avro files and prints the events
# Both run scripts/install-deps.sh first, which is quiet when everything is installed.

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build build-asan test unit it demo bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSIPHON_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Integration tests that also run under AddressSanitizer/UndefinedBehaviorSanitizer: one per
# code path (Postgres types and stream, crash/restart, dead letters and transforms, file sink,
# tail, MySQL, ODBC, Schema Registry framing, transaction metadata, the Kafka sink's thread), so
# the sanitizer pass stays a few minutes.
ASAN_IT ?= it_0001|it_0002|it_0010|it_0021|it_0030|it_0032|it_0046|it_0100|it_0101|it_0201|it_0300|it_0301|it_0303

# Every test: unit and integration tests on the normal build, then the unit tests and the
# ASAN_IT integration tests again under AddressSanitizer/UndefinedBehaviorSanitizer.
test: build build-asan
	@cd $(BUILD) && ctest --output-on-failure -L 'unit|it'
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
		ctest --output-on-failure -L unit
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
		ctest --output-on-failure -R '$(ASAN_IT)'

unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit

it: build
	@cd $(BUILD) && ctest --output-on-failure -L it

demo: build
	@scripts/demo.sh $(BUILD)/siphon

bench: build
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
