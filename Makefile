# Millrace build. Two commands matter (see README):
#   make run    build everything and serve on http://127.0.0.1:8080
#   make test   run every test
# Everything here is idempotent: run it again and it does only what changed.

GO       ?= go
BIN      := bin/millrace
DATA     ?= data
BUILTINS := echo json_transform http_request text_template kv_counter
WASM_DIR := server/builtin/wasm
# Built-in modules are stripped: they ship in the binary.
WASM_FLAGS := -trimpath -ldflags='-s -w'

.PHONY: all build run test bench bench-load fuzz web modules vet fmt-check openapi clean postgres

all: build

build: web modules
	$(GO) build -trimpath -o $(BIN) ./cmd/millrace

run: build
	./$(BIN) serve -data $(DATA)

# The API reference viewer comes from npm (swagger-ui-dist), embedded at
# build time so /docs works offline.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/dist/docs/swagger-ui-bundle.js: web/node_modules/.installed web/build.mjs
	cd web && node build.mjs

web: web/dist/docs/swagger-ui-bundle.js

# Built-in modules, compiled to WebAssembly and embedded in the server.
# go build's cache makes this cheap when nothing changed.
modules:
	@mkdir -p build/modules $(WASM_DIR)
	cd modules && GOOS=wasip1 GOARCH=wasm $(GO) build $(WASM_FLAGS) -o ../build/modules/ $(addprefix ./,$(BUILTINS))
	@for m in $(BUILTINS); do \
		cmp -s build/modules/$$m $(WASM_DIR)/$$m.wasm || cp build/modules/$$m $(WASM_DIR)/$$m.wasm; \
		cmp -s modules/$$m/manifest.json $(WASM_DIR)/$$m.json || cp modules/$$m/manifest.json $(WASM_DIR)/$$m.json; \
	done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags wasmtime ./server/sandbox/
	cd guest-sdk && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...
	cd modules && $(GO) vet ./...

# The store tests start a throwaway PostgreSQL from the installed server
# binaries when DATABASE_URL is unset; this installs them if missing.
postgres:
	@sh scripts/ensure-postgres.sh

test: postgres web modules fmt-check vet
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags wasmtime ./server/sandbox/
	cd guest-sdk && $(GO) test -count=1 ./...
	cd modules && $(GO) test -count=1 ./...

# Benchmarks (see BENCHMARKS.md). BENCH_COUNT runs of each, for medians.
# BenchmarkEngines compares wazero and wasmtime when run with -tags wasmtime.
BENCH_COUNT ?= 5
bench: modules
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -timeout 60m ./server/sandbox/ ./server/engine/ | tee build/bench.txt

# Load benchmark (BENCHMARKS.md): a sync webhook running a 3-node workflow
# of built-in modules, LOAD_CLIENTS clients for LOAD_DURATION, on SQLite and
# then on a throwaway PostgreSQL, against a real server started from $(BIN).
# Results (a table and a JSON line each) are appended to
# build/bench-load.txt. Not part of make test or make bench: run it on a
# quiet machine.
LOAD_CLIENTS  ?= 50
LOAD_DURATION ?= 30s
LOAD_FLAGS    ?=
bench-load: build postgres
	@mkdir -p build
	$(GO) build -o build/millrace-load ./cmd/millrace-load
	./build/millrace-load -server $(BIN) -db sqlite -clients $(LOAD_CLIENTS) -duration $(LOAD_DURATION) -append build/bench-load.txt $(LOAD_FLAGS)
	./build/millrace-load -server $(BIN) -db postgres -clients $(LOAD_CLIENTS) -duration $(LOAD_DURATION) -append build/bench-load.txt $(LOAD_FLAGS)

# Short runs of every fuzz target (the seed corpora also run in make test).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseManifest -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz FuzzManifestFromWasm -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz FuzzParseHostPattern -fuzztime $(FUZZTIME) ./abi/
	$(GO) test -run '^$$' -fuzz FuzzParseImports -fuzztime $(FUZZTIME) ./server/sandbox/
	$(GO) test -run '^$$' -fuzz FuzzHostFunctions -fuzztime $(FUZZTIME) ./server/sandbox/
	$(GO) test -run '^$$' -fuzz FuzzWASI -fuzztime $(FUZZTIME) ./server/sandbox/
	$(GO) test -run '^$$' -fuzz FuzzUpload -fuzztime $(FUZZTIME) ./server/registry/
	$(GO) test -run '^$$' -fuzz FuzzMatch -fuzztime $(FUZZTIME) ./server/egress/
	$(GO) test -run '^$$' -fuzz FuzzWebhookHeaders -fuzztime $(FUZZTIME) ./server/trigger/
	$(GO) test -run '^$$' -fuzz FuzzParseSchedule -fuzztime $(FUZZTIME) ./server/trigger/

# Regenerate the committed OpenAPI document after changing the API.
openapi:
	$(GO) test ./server/httpapi/ -run TestOpenAPIGolden -update

clean:
	rm -rf bin build web/dist/docs $(WASM_DIR)/*.wasm $(WASM_DIR)/*.json
