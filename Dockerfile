# syntax=docker/dockerfile:1
# Millrace images (docs/deploy.md):
#   docker build --target server -t millrace .        API, console, runs (serve) or runs only (worker)
#   docker build --target accel  -t millrace-accel .  the accelerator service (ONNX Runtime)
# The build commands are the Makefile's; a test (cmd/millrace
# dockerfile_test.go) checks that they stay so, and that ports, health
# checks and environment names match the server's.

ARG GO_VERSION=1.26
ARG NODE_VERSION=22

# The console and the API reference viewer (web/dist, embedded in the
# server).
FROM node:${NODE_VERSION}-bookworm-slim AS console
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
# The console's API client is generated from the committed OpenAPI document.
COPY openapi.json /src/openapi.json
RUN npm run --silent build

# The ONNX Runtime library, from the onnxruntime-node npm package, checked
# against the sha256 pinned in the script.
FROM node:${NODE_VERSION}-bookworm-slim AS onnxruntime
WORKDIR /src
COPY scripts/ scripts/
RUN sh scripts/fetch-onnxruntime.sh && cp build/cache/onnxruntime/*/libonnxruntime.so.1 /libonnxruntime.so.1

# Go sources, with the module downloads cached in their own layer. Each
# module builds on its own go.mod (their replace directives tie them
# together): the workspace also holds the engine benchmarks, whose
# runtimes the images do not need.
FROM golang:${GO_VERSION}-bookworm AS source
ENV GOWORK=off
WORKDIR /src
COPY go.mod go.sum ./
COPY guest-sdk/go.mod guest-sdk/go.sum guest-sdk/
COPY modules/go.mod modules/go.sum modules/
COPY accel/go.mod accel/go.sum accel/
RUN go mod download && (cd accel && go mod download) && (cd modules && go mod download)
COPY . .

# The server: the built-in modules (WebAssembly), then a static binary.
FROM source AS server-build
COPY --from=console /src/web/dist/ web/dist/
RUN make modules
RUN CGO_ENABLED=0 go build -trimpath -o bin/millrace ./cmd/millrace

# The accelerator: cgo, linked against nothing at build time (ONNX Runtime
# is loaded at run time from MILLRACE_ORT_LIB).
FROM source AS accel-build
RUN cd accel && CGO_ENABLED=1 go build -trimpath -o ../bin/millrace-accel ./cmd/millrace-accel

# The server image: `serve` (default) or `worker`. Static binary, no shell,
# a non-root user; data in /data.
FROM gcr.io/distroless/static-debian12:nonroot AS server
COPY --from=server-build /src/bin/millrace /usr/local/bin/millrace
ENV MILLRACE_ADDR=0.0.0.0:8080 \
    MILLRACE_WORKER_ADDR=0.0.0.0:9090 \
    MILLRACE_DATA=/data \
    MILLRACE_ACCEL=off \
    MILLRACE_LOG_FORMAT=json
USER nonroot
WORKDIR /data
VOLUME /data
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=2m CMD ["/usr/local/bin/millrace", "healthcheck", "-url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/millrace"]
CMD ["serve"]

# The accelerator image: millrace-accel with the ONNX Runtime library, for
# GPU hosts (add the CUDA provider libraries to use -provider cuda). Its
# health check uses the millrace binary, since the image has no curl.
FROM debian:bookworm-slim AS accel
RUN useradd --system --uid 10001 --home-dir /models --no-create-home millrace && mkdir -p /models && chown millrace /models
COPY --from=onnxruntime /libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so.1
COPY --from=accel-build /src/bin/millrace-accel /usr/local/bin/millrace-accel
COPY --from=server-build /src/bin/millrace /usr/local/bin/millrace
ENV MILLRACE_ORT_LIB=/usr/local/lib/libonnxruntime.so.1 \
    MILLRACE_ACCEL_LISTEN=0.0.0.0:8089 \
    MILLRACE_ACCEL_MODELS=/models
USER millrace
VOLUME /models
EXPOSE 8089
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s CMD ["/usr/local/bin/millrace", "healthcheck", "-url", "http://127.0.0.1:8089/v2/health/ready"]
ENTRYPOINT ["/usr/local/bin/millrace-accel"]
