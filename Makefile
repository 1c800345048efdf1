# eventstore: run `make` to list the targets.

SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 60s
PKGS        := ./...

.DEFAULT_GOAL := help

## help: list the targets
.PHONY: help
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## demo: run examples/quickstart (append, read back, close, reopen) and examples/projection (a subscription that resumes from its checkpoint)
.PHONY: demo
demo:
	$(GO) run ./examples/quickstart
	$(GO) run ./examples/projection

## fmt: fail if gofmt would change any file
.PHONY: fmt
fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## vet: go vet
.PHONY: vet
vet:
	$(GO) vet $(PKGS)

## lint: fmt, vet and staticcheck (pinned, run through go run so it is not a module dependency), also over bench/; the library builds for macOS, Windows and 32 bits
.PHONY: lint
lint: fmt vet
	$(GO) run $(STATICCHECK) $(PKGS)
	GOOS=darwin GOARCH=arm64 $(GO) build $(PKGS)
	GOOS=windows $(GO) build $(PKGS)
	GOARCH=386 $(GO) build $(PKGS)
	cd bench && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

## test: all tests with the race detector, in random order; then the slow single-threaded ones at full size without it
.PHONY: test
test:
	$(GO) test -race -count=1 -shuffle=on -timeout=30m $(PKGS)
	$(GO) test -count=1 -run='^(TestStore_Model|TestStore_Open_TruncatedAtEveryByte)$$' .

## test-cpu: the tests with GOMAXPROCS 1 and 4
.PHONY: test-cpu
test-cpu:
	$(GO) test -race -count=1 -shuffle=on -cpu=1,4 $(PKGS)

## fuzz: fuzz the frame, segment header and index file decoders and Open for FUZZTIME each (default 60s); .ci/fuzz passes the Go 1.26 end-of-run flake that writes no input (golang/go#75804)
.PHONY: fuzz
fuzz:
	bash .ci/fuzz ./internal/record FuzzDecodeFrame $(FUZZTIME)
	bash .ci/fuzz ./internal/record FuzzDecodeSegmentHeader $(FUZZTIME)
	bash .ci/fuzz ./internal/record FuzzDecodeSegmentIndex $(FUZZTIME)
	bash .ci/fuzz . FuzzOpen $(FUZZTIME)

## stress: the crash, power-loss, model, soak and fuzz tests at nightly sizes, each part bounded by STRESS_TIME (default 10m; fuzzing FUZZTIME per target)
STRESS_TIME ?= 10m
.PHONY: stress
stress:
	EVENTSTORE_STRESS=1 EVENTSTORE_STRESS_TIME=$(STRESS_TIME) $(GO) test -count=1 -timeout=2h -v -run='^TestStore_Crash_SIGKILLLosesNothingAcknowledged$$' . | grep -E '^(---|ok|FAIL)|kills|bound'
	EVENTSTORE_STRESS=1 EVENTSTORE_STRESS_TIME=$(STRESS_TIME) $(GO) test -count=1 -timeout=2h -v -run='^TestStore_PowerLoss_AtEverySyncPoint$$' . | grep -E '^(---|ok|FAIL)|sync points|bound'
	EVENTSTORE_STRESS=1 EVENTSTORE_STRESS_TIME=$(STRESS_TIME) $(GO) test -count=1 -timeout=2h -v -run='^TestStore_Model$$' . | grep -E '^(--- FAIL|ok|FAIL)|seeds of|replay'
	EVENTSTORE_STRESS=1 $(GO) test -count=1 -timeout=2h -v -run='^(TestEventLog_Recover_RandomBitFlipsAreCorruption|TestWriter_Context_CancelAtEveryPhase)$$' . | grep -E '^(---|ok|FAIL)|iterations'
	EVENTSTORE_STRESS=1 EVENTSTORE_STRESS_TIME=$(STRESS_TIME) $(GO) test -count=1 -timeout=2h -v -run='^TestStore_Soak_HeapAndGoroutinesFlat$$' . | grep -E '^(---|ok|FAIL)|appends'
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

## bench: the benchmarks, 10 runs each, into bench.txt (compare runs with benchstat)
.PHONY: bench
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=10 $(PKGS) | tee bench.txt

## compare: the comparison harness (bench/, its own module) at 100,000 events: a table on stdout, bench/results.md and bench/chart.svg; starts PostgreSQL with .ci/postgres unless EVENTSTORE_BENCH_PG is set
COMPARE_FLAGS ?=
PG = $${EVENTSTORE_BENCH_PG:-$$(bash .ci/postgres || true)}
.PHONY: compare
compare:
	pg=$(PG); cd bench && EVENTSTORE_BENCH_PG=$$pg $(GO) run . -events 100000 -md results.md -svg chart.svg $(COMPARE_FLAGS)

## compare-full: the harness at 100,000, 1,000,000 and 10,000,000 events, the two larger also timing a reopen after a crash (hours)
.PHONY: compare-full
compare-full:
	pg=$(PG); cd bench && \
	EVENTSTORE_BENCH_PG=$$pg $(GO) run . -events 100000 -md results-100k.md -svg chart-100k.svg $(COMPARE_FLAGS) && \
	EVENTSTORE_BENCH_PG=$$pg $(GO) run . -events 1000000 -crash -md results-1m.md -svg chart-1m.svg $(COMPARE_FLAGS) && \
	EVENTSTORE_BENCH_PG=$$pg $(GO) run . -events 10000000 -writers 64,256 -crash -md results-10m.md -svg chart-10m.svg $(COMPARE_FLAGS)

## cover: coverage profile and HTML report (cover.out, cover.html)
.PHONY: cover
cover:
	$(GO) test -race -count=1 -coverprofile=cover.out -coverpkg=./... $(PKGS)
	$(GO) tool cover -func=cover.out | tail -1
	$(GO) tool cover -html=cover.out -o cover.html

## check: what CI runs: lint and test
.PHONY: check
check: lint test
