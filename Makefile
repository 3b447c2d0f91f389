# Sextant — see README.md. `make run` runs the demo; `make test` runs every test.
GO        ?= go
PKGS      := ./...
BIN       := bin/sextant
STATICCHECK_VERSION := v0.8.2

.PHONY: all build run test test-short test-fuzz bench lint fmt-check vet staticcheck tidy check-tools clean docs jaeger e2e proto plugins node-deps

all: fmt-check vet lint test

build:
	$(GO) build -o $(BIN) ./cmd/sextant

## run: the demo on the embedded default; serves http://127.0.0.1:9464/metrics until Ctrl-C.
run: build
	./$(BIN) demo $(ARGS)

## test: every test with the race detector. Fails, saying how to fix it, when a needed tool is missing.
test: check-tools
	$(GO) test -race -timeout 20m $(PKGS)

## proto: regenerates plugins/proto from exporter.proto. Needs protoc (Debian's
## protobuf-compiler) and the Go plugins it installs at the versions below; the
## OTLP descriptors come from the go.opentelemetry.io/proto/otlp in go.mod.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTO_TOOLS := $(CURDIR)/bin/proto-tools
proto:
	@command -v protoc >/dev/null || { echo "make proto needs protoc: sudo apt-get install protobuf-compiler" >&2; exit 1; }
	GOBIN=$(PROTO_TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(PROTO_TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	$(GO) run ./plugins/proto/internal/otlpdesc bin/otlp-descriptors.binpb
	protoc --descriptor_set_in=bin/otlp-descriptors.binpb -I plugins/proto \
		--plugin=protoc-gen-go=$(PROTO_TOOLS)/protoc-gen-go --plugin=protoc-gen-go-grpc=$(PROTO_TOOLS)/protoc-gen-go-grpc \
		--go_out=. --go_opt=module=github.com/sextant-telemetry/sextant \
		--go-grpc_out=. --go-grpc_opt=module=github.com/sextant-telemetry/sextant \
		--include_imports --descriptor_set_out=plugins/proto/sextant-plugin-v1.binpb \
		sextant/plugin/v1/exporter.proto

## plugins: builds the example plugins into bin/plugins (config/examples/plugins.yaml uses them).
PLUGIN_DIRS := $(wildcard plugins/examples/*/main.go)
plugins:
	@mkdir -p bin/plugins
	@for m in $(PLUGIN_DIRS); do d=$$(dirname $$m); n=$$(basename $$d); \
		echo "$(GO) build -o bin/plugins/sextant-$$n ./$$d"; $(GO) build -o bin/plugins/sextant-$$n ./$$d || exit 1; done

test-short:
	$(GO) test -race -short -timeout 10m $(PKGS)

test-fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=10s ./config/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeEvent -fuzztime=10s ./events/
	$(GO) test -run='^$$' -fuzz=FuzzRegisterName -fuzztime=10s ./events/
	$(GO) test -run='^$$' -fuzz=FuzzRouteMatch -fuzztime=10s ./router/
	$(GO) test -run='^$$' -fuzz=FuzzParseTraceParent -fuzztime=10s ./events/
	$(GO) test -run='^$$' -fuzz=FuzzApplyFlag -fuzztime=10s ./exporters/traces/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeJSON -fuzztime=10s ./exporters/json/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeCSV -fuzztime=10s ./exporters/csv/
	$(GO) test -run='^$$' -fuzz=FuzzParseMatcher -fuzztime=10s ./exporters/
	$(GO) test -run='^$$' -fuzz=FuzzBearerAuth -fuzztime=10s ./cmd/sextant/
	$(GO) test -run='^$$' -fuzz=FuzzExportQuery -fuzztime=10s ./cmd/sextant/
	$(GO) test -run='^$$' -fuzz=FuzzSnapshot -fuzztime=10s ./plugins/wire/
	$(GO) test -run='^$$' -fuzz=FuzzUnmarshalExportRequest -fuzztime=10s ./plugins/wire/
	$(GO) test -run='^$$' -fuzz=FuzzMarshalExportRequest -fuzztime=10s ./plugins/wire/
	$(GO) test -run='^$$' -fuzz=FuzzConfigDecode -fuzztime=10s ./plugins/sdk/
	$(GO) test -run='^$$' -fuzz=FuzzParseHCLogLine -fuzztime=10s ./plugins/host/
	$(GO) test -run='^$$' -fuzz=FuzzLineWriter -fuzztime=10s ./plugins/host/
	$(GO) test -run='^$$' -fuzz=FuzzTagEscaping -fuzztime=10s ./plugins/examples/influx/
	$(GO) test -run='^$$' -fuzz=FuzzExpand -fuzztime=10s ./plugins/examples/webhook/
	$(GO) test -run='^$$' -fuzz=FuzzText -fuzztime=10s ./internal/redact/
	$(GO) test -run='^$$' -fuzz=FuzzStatusUnmarshalText -fuzztime=10s ./internal/health/
	$(GO) test -run='^$$' -fuzz=FuzzParseByteSize -fuzztime=10s ./lifecycle/
	$(GO) test -run='^$$' -fuzz=FuzzExplain -fuzztime=10s ./router/

## bench: the benchmarks recorded in docs/benchmarks.md.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=3 ./events/... ./router/ ./lifecycle/ ./exporters/...
	$(GO) test -run='^$$' -bench=. -benchmem -count=3 ./plugins/wire/ ./plugins/host/
	$(GO) test -run='^$$' -bench='PostgresInstances|PgxInsertReadBaseline' -benchtime=200000x -count=3 ./cmd/sextant/

check-tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "make test: promtool not found. It checks our Prometheus exposition."; \
	  echo "  Install Debian's prometheus package: sudo apt-get update && sudo apt-get install -y prometheus"; \
	  exit 1; }
	@command -v prometheus-pushgateway >/dev/null 2>&1 || { \
	  echo "make test: prometheus-pushgateway not found. Export targets push to a real one in the tests."; \
	  echo "  Install Debian's package: sudo apt-get update && sudo apt-get install -y prometheus-pushgateway"; \
	  exit 1; }
	@{ python3 -c "import pandas" || /usr/bin/python3 -c "import pandas"; } >/dev/null 2>&1 || { \
	  echo "make test: python3 with pandas not found. The CSV export is checked by reading it with pandas."; \
	  echo "  Install Debian's package: sudo apt-get update && sudo apt-get install -y python3-pandas"; \
	  exit 1; }
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  echo "make test: node and npm not found. The Node.js example plugin (plugins/examples/graphite-node) runs in the tests."; \
	  echo "  Install Debian's packages: sudo apt-get update && sudo apt-get install -y nodejs npm"; \
	  exit 1; }
	@$(MAKE) --no-print-directory node-deps

## node-deps: installs the Node.js example plugin's pinned packages (package-lock.json) when missing.
NODE_PLUGIN := plugins/examples/graphite-node
node-deps: $(NODE_PLUGIN)/node_modules/.package-lock.json
$(NODE_PLUGIN)/node_modules/.package-lock.json: $(NODE_PLUGIN)/package-lock.json
	cd $(NODE_PLUGIN) && npm ci --no-audit --no-fund --loglevel=error

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	@if $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -version >/dev/null 2>&1; then \
	  $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS); \
	else echo "staticcheck $(STATICCHECK_VERSION) did not install; skipped (gofmt and go vet ran)"; fi

tidy:
	$(GO) mod tidy

## docs: regenerate docs/events.md (event catalog) and the metrics table of docs/metrics.md (default config).
docs:
	$(GO) generate ./events
	$(GO) test ./cmd/sextant -run '^TestMetricsDocIsGenerated$$' -update

clean:
	rm -rf bin

## jaeger: bin/jaeger, the Jaeger v1.76 all-in-one, built from its own module in tools/jaeger
## so that its hundreds of modules stay out of the main go.mod. Several minutes on 2 cores.
JAEGER := bin/jaeger

jaeger: $(JAEGER)

$(JAEGER): tools/jaeger/go.mod
	$(GO) build -C tools/jaeger -o "$(CURDIR)/$(JAEGER)" github.com/jaegertracing/jaeger/cmd/jaeger

## e2e: the optional end-to-end test against a real Jaeger (docs/e2e-jaeger.md); not part of `make test`.
e2e: jaeger
	SEXTANT_JAEGER=$(CURDIR)/$(JAEGER) $(GO) test -race -tags e2e -run 'Jaeger' -count=1 -timeout 15m ./cmd/sextant/
