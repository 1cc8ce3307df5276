# cmon: `make run` starts a controller on https://127.0.0.1:9501 with the
# embedded database; `make test` runs every test (unit, vet, race, integration
# against the real binary, MariaDB and OpenSSH, installed if missing).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.stampedVersion=$(VERSION)
RUN_DIR  ?= $(CURDIR)/.cmon-data
BIN      ?= bin/cmon
DEMO_BIN ?= bin/cmon-demo
TEST_TIMEOUT ?= 14m
STATICCHECK  ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run demo test vet staticcheck cover fmt-check tidy-check test-deps fuzz bench soak install clean

all: build

build:
	@echo "building $(BIN) (the first build downloads the Go modules: a few minutes)"
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmon

run: build
	@mkdir -p $(RUN_DIR)
	@echo "cmon: serving https://127.0.0.1:9501 (data in $(RUN_DIR)); stop with Ctrl-C."
	@echo "On first start the admin password is written to $(RUN_DIR)/initial-admin-password. Log in with:"
	@echo "  curl -k https://127.0.0.1:9501/v2/auth -c cookies.jar -d '{\"operation\":\"authenticateWithPassword\",\"user_name\":\"admin\",\"password\":\"'\"\$$(cat $(RUN_DIR)/initial-admin-password)\"'\"}'"
	@echo "  curl -k https://127.0.0.1:9501/v2/clusters -b cookies.jar -d '{\"operation\":\"getallclusterinfo\"}'"
	exec $(BIN) --data-dir $(RUN_DIR) $(RUN_ARGS)

# cmon plus two throwaway sshd nodes (installed if missing) and a registered
# demo cluster; prints the curl calls to try. Ctrl-C stops everything.
# The demo is built and exec'd, so that a signal to make reaches it.
demo: build
	$(GO) run ./integration/services/install sshd
	$(GO) build -o $(DEMO_BIN) ./integration/demo
	exec $(DEMO_BIN) -cmon $(BIN) -data $(CURDIR)/.cmon-demo $(DEMO_ARGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# Installs with apt-get the Debian packages of the programs the tests run
# (MariaDB, OpenSSH, sudo, chromium...; services.TestTools) when missing: the
# one step of `make test` that changes the system, so that `go test` never does.
test-deps:
	$(GO) run ./integration/services/install

# Integration tests start bin/cmon; services (MariaDB, sshd) are started by the
# tests themselves, which skip without them (fail under CI=true).
test: test-deps fmt-check tidy-check vet staticcheck build fuzz
	CMON_BIN=$(abspath $(BIN)) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Every fuzz target, briefly in `make test` (before the tests, whose summary
# closes the output), for FUZZTIME each in `make soak`. Budgets are counts of
# inputs, not durations: Go 1.26's fuzz coordinator can fail a run at the end
# of a duration with a spurious "context deadline exceeded" on a loaded
# machine (golang/go#75804, fixed in Go 1.27).
FUZZ_TARGETS := rpc:FuzzDispatch sql:FuzzParseMySQLDSN rbac:FuzzParseACL jobs:FuzzSchedule jobs/commands:FuzzJobData jobs/commands:FuzzOutputLog hosts/remote:FuzzStdout
FUZZTIME ?= 2000x
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg > .fuzz-$$fn.log 2>&1 || { cat .fuzz-$$fn.log; rm -f .fuzz-$$fn.log; exit 1; }; \
		rm -f .fuzz-$$fn.log; \
	done

# Longer fuzzing, then the hostile-input, connection-flood and output-storm
# drills against the real binary, and the Galera drills (jobs, logins,
# changes under load, a node killed) at a thousand and more each; one
# summary line per drill.
soak: build test-deps
	$(MAKE) --no-print-directory fuzz FUZZTIME=$${SOAK_FUZZTIME:-100000x}
	@CMON_BIN=$(abspath $(BIN)) $(GO) test -tags soak -count=1 -timeout 60m -run '^TestSoak' -v ./integration > .soak.log 2>&1; \
		rc=$$?; grep -E '^(hostile-input|connection-flood|output-storm):|^(ok|FAIL|--- FAIL)|_test.go:' .soak.log; rm -f .soak.log; exit $$rc

# Statement coverage of the unit tests, of the integration suite against a
# -cover build of the binary (each cmon it starts writes to GOCOVERDIR on
# exit), and of both merged; not part of `make test`.
COVER_DIR ?= $(CURDIR)/.cover
cover:
	rm -rf $(COVER_DIR) && mkdir -p $(COVER_DIR)/unit $(COVER_DIR)/integration
	$(GO) build -cover -coverpkg=./... -ldflags "$(LDFLAGS)" -o $(COVER_DIR)/cmon ./cmon
	$(GO) test -count=1 -cover -coverpkg=./... $$($(GO) list ./... | grep -v '/integration$$') -args -test.gocoverdir=$(COVER_DIR)/unit > $(COVER_DIR)/unit.log 2>&1 || { cat $(COVER_DIR)/unit.log; exit 1; }
	GOCOVERDIR=$(COVER_DIR)/integration CMON_BIN=$(COVER_DIR)/cmon $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./integration > $(COVER_DIR)/integration.log 2>&1 || { tail -50 $(COVER_DIR)/integration.log; exit 1; }
	@set -e; for set in unit integration unit,integration; do \
		$(GO) tool covdata textfmt -i=$$(echo $$set | sed 's#[^,]*#$(COVER_DIR)/&#g') -o $(COVER_DIR)/cover.out; \
		printf '%-17s %s\n' "$$(echo $$set | sed 's/,/+/'):" "$$($(GO) tool cover -func=$(COVER_DIR)/cover.out | tail -1 | awk '{print $$NF}')"; \
	done

# Speed targets are ratios against a baseline measured in the same run, never
# timed assertions in tests.
bench: build test-deps
	CMON_BIN=$(abspath $(BIN)) $(GO) test -run '^$$' -bench . -benchmem ./... | .ci/bench-ratios
	$(GO) run ./integration/services/install parallel-ssh ansible
	$(GO) build -o bin/bench ./integration/bench
	bin/bench $(BIN) bench/results.json

# Installs the binary, the systemd unit (ExecStart pointing at the binary)
# and, unless one is there already, the configuration file; DESTDIR stages
# it for a package.
PREFIX ?= /usr/local
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/cmon
	install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's#@BINDIR@#$(PREFIX)/bin#' etc/cmon.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/cmon.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/cmon.service
	@if [ -e $(DESTDIR)/etc/default/cmon ]; then echo "kept $(DESTDIR)/etc/default/cmon"; \
	else install -D -m 0640 etc/default/cmon $(DESTDIR)/etc/default/cmon; fi
	@echo "installed; as root: useradd --system --home-dir /var/lib/cmon --shell /usr/sbin/nologin cmon;" \
		"chgrp cmon /etc/default/cmon; systemctl daemon-reload; systemctl enable --now cmon"

clean:
	rm -rf bin $(RUN_DIR) .cmon-demo $(COVER_DIR)
