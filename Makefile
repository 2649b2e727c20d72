# crossrun build and test entry points. Most targets need root.
GO       ?= go
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/sbin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
# A static binary: pure-Go user and host lookups, no dynamic loader.
GOTAGS   ?= netgo osusergo
# The nsenter constructor (C) links against musl when musl-gcc is installed:
# glibc's static start-up identifies the CPU and its caches with cpuid
# instructions, each a trap to the hypervisor on a VM: 0.2-0.3 ms of each
# of the two crossrun processes of a start
# (docs/performance.md). gcc and glibc otherwise.
CGO_CC   ?= $(if $(shell command -v musl-gcc 2>/dev/null),musl-gcc,gcc)
GOFLAGS_BUILD ?= -trimpath -tags "$(GOTAGS)" \
	-ldflags "-s -w -X main.version=$(VERSION) -linkmode external -extldflags -static"

.PHONY: all build test unit integration conformance install uninstall clean demo fuzz bench generate

all: build

build:
	CC=$(CGO_CC) $(GO) build $(GOFLAGS_BUILD) -o crossrun .

# Unit tests: no root needed (tests that need it say so and skip).
unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

# End-to-end tests of the built binary; root.
integration: build
	CROSSRUN_BINARY=$(CURDIR)/crossrun $(GO) test -p 1 -count=1 -v -timeout 60m ./integration/...

# The OCI runtime-tools validation suite against the built binary.
conformance: build
	RUNTIME=$(CURDIR)/crossrun SUMMARY=$(CURDIR)/conformance-summary.txt \
		EXPECT=$(CURDIR)/integration/conformance/expected-pass.txt \
		bash integration/conformance/run.sh

# Everything, as CI runs it (installs its own dependencies).
test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

# Benchmarks (root): start time and peak memory next to runc and crun
# (results in bench/results/), seccomp filter length and syscall overhead,
# and the cost of the foreign-arch routing check crossrun adds to a start.
bench: build
	bash scripts/deps.sh time >/dev/null
	$(GO) run ./bench/startbench -crossrun $(CURDIR)/crossrun
	$(GO) run ./bench/seccompbench -crossrun $(CURDIR)/crossrun
	$(GO) test -run '^$$' -bench 'BenchmarkRoute' -benchtime 2000x ./binfmt/

# Each fuzz target for FUZZTIME (default 10m); the test command runs a
# short smoke of them.
FUZZTIME ?= 10m
fuzz:
	bash scripts/fuzz.sh long $(FUZZTIME)

generate:
	$(GO) generate ./...

install: build
	install -D -m 0755 crossrun $(DESTDIR)$(BINDIR)/crossrun

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/crossrun

clean:
	rm -f crossrun conformance-summary.txt
