# caddy-access-auth — build, run and test. See README.md.
GO       ?= go
BIN      := bin/caddy
# JD Cloud's SDK (interop tests only) is not in the public checksum database.
export GONOSUMDB := github.com/jdcloud-api
export GOFLAGS   := -buildvcs=false

.PHONY: build run test test-unit test-interop bench fuzz tools clean

build:
	$(GO) build -o $(BIN) ./cmd/caddy

# The console's URL and sign-in token are printed first (scripts/run.sh).
run: build
	CADDY=$(BIN) ./scripts/run.sh

tools:
	./scripts/ensure-test-tools.sh

test: tools build test-unit test-interop

test-unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-interop: build
	cd interop && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m .

# The benchmarks of docs/operations.md (micro-benchmarks, then real Caddy and
# redis-server under signed load) and its table of ratios measured in one run,
# also saved in bench/results/, one file per run named by its UTC time (keep them: trends show).
bench:
	$(GO) run ./bench/table

fuzz:
	./scripts/fuzz.sh

clean:
	rm -rf bin
