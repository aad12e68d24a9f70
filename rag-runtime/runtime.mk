# rag-runtime targets; the root Makefile includes this file.
#   make run-runtime     serve on the embedded defaults (./data, local embedder, extractive answers)
#   make ingest-sample   ingest the sample corpus into ./data first
#   make bench           release build, then query throughput/latency, ingest rate and memory
#                        (BENCH_ARGS="--sizes 10000 --seconds 5" to shorten)
#   make qdrant-test     the Qdrant server tests (part of `make test`) against a real Qdrant started
#                        for them by e2e/hack/qdrant.sh; QDRANT_URL=http://host:6334 uses yours instead
.PHONY: run-runtime ingest-sample bench

RUNTIME_SAMPLE_DOCS ?= rag-runtime/testdata/docs
BENCH_ARGS ?=

run-runtime:
	$(CARGO) run --bin rag-runtime -- serve

ingest-sample:
	$(CARGO) run --bin rag-runtime -- ingest $(RUNTIME_SAMPLE_DOCS)

bench:
	$(CARGO) bench -p rag-runtime --bench serve -- $(BENCH_ARGS)

# The tests needing a Qdrant server are ignored by `cargo test`; here they run (--include-ignored)
# against a server on loopback started for the run and removed after it (`qdrant.sh install`
# caches the pinned binary first), or against the one QDRANT_URL names (its gRPC port).
QDRANT_SH := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../e2e/hack/qdrant.sh)
QDRANT_TEST := $(CARGO) test --workspace --exclude e2e --test qdrant_server --test qdrant_job -- --include-ignored --show-output
.PHONY: qdrant-test
qdrant-test:
ifneq ($(QDRANT_URL),)
	$(QDRANT_TEST)
else
	$(QDRANT_SH) install
	$(QDRANT_SH) run -- $(QDRANT_TEST)
endif

test: qdrant-test
