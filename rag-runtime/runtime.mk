# rag-runtime targets; the root Makefile includes this file.
#   make run-runtime     serve on the embedded defaults (./data, local embedder, extractive answers)
#   make ingest-sample   ingest the sample corpus into ./data first
#   make bench           release build, then query throughput/latency, ingest rate and memory
#                        (BENCH_ARGS="--sizes 10000 --seconds 5" to shorten)
#   make qdrant-test     the Qdrant server tests; QDRANT_URL=http://localhost:6334 to run them all
.PHONY: run-runtime ingest-sample bench

RUNTIME_SAMPLE_DOCS ?= rag-runtime/testdata/docs
BENCH_ARGS ?=

run-runtime:
	$(CARGO) run --bin rag-runtime -- serve

ingest-sample:
	$(CARGO) run --bin rag-runtime -- ingest $(RUNTIME_SAMPLE_DOCS)

bench:
	$(CARGO) bench -p rag-runtime --bench serve -- $(BENCH_ARGS)

# The tests needing a Qdrant server are ignored unless asked for: with QDRANT_URL set they run, and
# `make unit-test` runs them too.
.PHONY: qdrant-test
qdrant-test:
	$(CARGO) test --workspace --exclude e2e --test qdrant_server -- $(if $(QDRANT_URL),--include-ignored)

ifneq ($(QDRANT_URL),)
unit-test: qdrant-test
endif
