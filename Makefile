# caddy-access-auth — build, run and test. See README.md.
GO       ?= go
BIN      := bin/caddy
# JD Cloud's SDK (interop tests only) is not in the public checksum database.
export GONOSUMDB := github.com/jdcloud-api
export GOFLAGS   := -buildvcs=false

.PHONY: build run test test-unit test-interop bench scale fuzz tools clean

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
	# Without the race detector, which keeps the nonce tables on the heap:
	# their mapping outside it is what a built Caddy runs.
	$(GO) test -count=1 ./replay/

test-interop: build
	cd interop && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m .

# The benchmarks of docs/operations.md (micro-benchmarks, then real Caddy and
# redis-server under signed load) and its table of ratios measured in one run,
# also saved in bench/results/, one file per run named by its UTC time (keep them: trends show).
bench:
	$(GO) run ./bench/table

# The scale-and-faults campaign of docs/operations.md: a Redis Cluster of 3
# masters + 3 replicas, SCALE_KEYS keys imported in bulk, SCALE_NODES Caddy
# nodes under signed Zipf load, faults, and the table of figures beside their
# targets. SCALE_PHASE is the load between faults, SCALE_SOAK holds the load
# at the end and prints slopes. `make test` runs a small campaign (20,000 keys).
SCALE_KEYS ?= 1000000
scale:
	SCALE_KEYS=$(SCALE_KEYS) SCALE_NODES=$(SCALE_NODES) SCALE_PHASE=$(SCALE_PHASE) SCALE_SOAK=$(SCALE_SOAK) \
		$(GO) test -count=1 -v -timeout 90m -run TestScaleCampaign ./scale/

fuzz:
	./scripts/fuzz.sh

clean:
	rm -rf bin
