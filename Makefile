# pgbroker: `make run` runs the broker on a local stack; `make test` passes the tests.
# Both install what they need first (Debian packages, Nomad built from the Go module proxy, cached).
SHELL := /bin/bash
GO ?= go

.PHONY: all deps build run test unit acceptance bench vet fmt stack-up stack-down stack-status

all: build

deps:
	@bash scripts/install-deps.sh

build:
	$(GO) build -o bin/pgbroker ./cmd/pgbroker

## run: bring up the local stack if needed, then the broker on 127.0.0.1:8080 (Ctrl-C stops what it started)
run: deps build
	@bash scripts/run.sh

## test: unit, integration and acceptance tests on the real local stack
test: deps
	@bash scripts/test.sh

## unit: the fast tests that need no stack
unit:
	$(GO) test -count=1 ./catalog/ ./config/ ./credentials/ ./httpapi/ ./pgadmin/ ./worker/ ./broker/ ./provisioner/ ./patroni/ ./pki/ ./mgmtapi/ ./scheduler/ ./users/ ./extensions/ ./metrics/ ./dashboard/ ./deploy/ ./naming/ ./backup/ ./instances/ ./operation/ ./nomad/ ./gateway/ ./layering/ ./tiers/ ./pitr/ ./servercert/ ./adminconn/ ./instancejobs/ ./sealed/ ./sealedcopy/ ./reconcile/ ./stats/ ./sampler/ ./webauth/ ./backends/ ./pgversion/

## bench: pgbroker against its same-run references (prints medians and ratios)
bench: deps
	@bash scripts/bench.sh

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

stack-up:
	@bash scripts/stack.sh up
stack-down:
	@bash scripts/stack.sh down
stack-status:
	@bash scripts/stack.sh status

## assets: refresh the dashboard's vendored front-end files from the npm lock (maintainers only; the files are committed)
assets:
	@bash scripts/assets.sh
