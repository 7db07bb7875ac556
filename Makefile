# koppel — the two commands that matter are `make run` and `make test`.
GO          ?= go
PKGS        := github.com/koppel/koppel/...
BUF         := $(GO) run github.com/bufbuild/buf/cmd/buf@v1.75.0
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK := $(GO) run golang.org/x/vuln/cmd/govulncheck@v1.10.0
# govulncheck's database; vulncheck is skipped, saying so, when it cannot be reached.
VULNDB_HOST ?= vuln.go.dev
GOFILES      = $(shell git ls-files '*.go' 2>/dev/null || find pkg services proto -name '*.go')

.PHONY: run test check fmt-check tidy-check vet staticcheck buf-lint generate generate-check lint bench build vulncheck

## run: start the whole system locally (embedded NATS, Redis, every service, the sandboxes)
run:
	$(GO) run ./services/devstack

## test: every check, then every test of every module; the race detector on all but the
## end-to-end tests, whose services run as separate binaries and whose test process holds only
## the embedded nats-server (which has races of its own under concurrent stream updates)
test: check vulncheck
	$(GO) test -race -count=1 -timeout 40m $$($(GO) list $(PKGS) | grep -v /services/devstack)
	$(GO) test -count=1 -timeout 40m github.com/koppel/koppel/services/devstack

## check: formatting, tidy go.mod files, vet, staticcheck, buf lint and the generated-code check
check: fmt-check tidy-check vet staticcheck buf-lint generate-check
lint: check

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## tidy-check: fail when a module's go.mod or go.sum is not what go mod tidy makes of it
tidy-check:
	@for m in $$($(GO) list -m -f '{{.Dir}}'); do \
	  (cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "$$m: run go mod tidy"; exit 1; }; \
	done

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(STATICCHECK) $(PKGS)

buf-lint:
	cd proto && $(BUF) lint

## vulncheck: known vulnerabilities in the code koppel calls (govulncheck), when its database
## can be reached; offline it says so and passes: only a finding fails it
## (govulncheck does not take a workspace, so each module is checked in its own directory)
vulncheck:
	@if timeout 10 bash -c 'exec 3<>/dev/tcp/$(VULNDB_HOST)/443' 2>/dev/null; then \
	  for m in $$($(GO) list -m -f '{{.Dir}}'); do \
	    echo "vulncheck: $$m"; (cd $$m && $(GOVULNCHECK) ./...) || exit 1; \
	  done; \
	else \
	  echo "vulncheck: SKIPPED, $(VULNDB_HOST) cannot be reached (offline?); run make vulncheck where it can"; \
	fi

## generate: regenerate the Go code of proto/
generate:
	cd proto && $(BUF) generate

## generate-check: fail when the committed generated code is stale
generate-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	cd proto && $(BUF) generate -o $$tmp && \
	for f in $$(cd $$tmp && find . -name '*.go'); do \
	  cmp -s $$tmp/$$f $$f || { echo "proto/$$f is stale: run make generate"; exit 1; }; \
	done

## build: compile every service binary into bin/
build:
	$(GO) build -o bin/ ./services/gateway ./services/scheduler ./services/relation ./services/product \
	  ./services/invoice ./services/payment ./services/mapping ./services/sandbox ./services/admin

## bench: the Go benchmarks of every module
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)
