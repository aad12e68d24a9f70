# rag-runtime targets; the root Makefile includes this file.
#   make run-runtime     serve on the embedded defaults (./data, local embedder, extractive answers)
#   make ingest-sample   ingest the sample corpus into ./data first
#   make bench           release build, then query throughput/latency, ingest rate and memory
#                        (BENCH_ARGS="--sizes 10000 --seconds 5" to shorten)
.PHONY: run-runtime ingest-sample bench

RUNTIME_SAMPLE_DOCS ?= rag-runtime/testdata/docs
BENCH_ARGS ?=

run-runtime:
	$(CARGO) run --bin rag-runtime -- serve

ingest-sample:
	$(CARGO) run --bin rag-runtime -- ingest $(RUNTIME_SAMPLE_DOCS)

bench:
	$(CARGO) bench -p rag-runtime --bench serve -- $(BENCH_ARGS)
