#!/bin/sh
# Fetches the ONNX Runtime shared library that millrace-accel loads
# (through github.com/yalue/onnxruntime_go) from the onnxruntime-node npm
# package, into build/cache/onnxruntime/VERSION/. `make accel-deps` runs it.
#
# The version must match onnxruntime_go's C API version: onnxruntime_go
# v1.27.0 is built against ORT 1.24.1's headers (ORT_API_VERSION 24). A
# newer library also works (ORT keeps older API versions), an older one
# does not. The sha256 below was computed once from the registry's tarball.
#
# Override the destination root with ACCEL_CACHE (default build/cache).
set -eu
cd "$(dirname "$0")/.."

ORT_VERSION=1.24.1
ORT_SHA256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4

case "$(uname -s)/$(uname -m)" in
Linux/x86_64) arch=x64 ;;
*)
	echo "$0: only linux/x86_64 is pinned; set MILLRACE_ORT_LIB to an ONNX Runtime $ORT_VERSION (or newer) libonnxruntime" >&2
	exit 1
	;;
esac

exec sh scripts/fetch-npm-files.sh onnxruntime-node "$ORT_VERSION" \
	"${ACCEL_CACHE:-build/cache}/onnxruntime/$ORT_VERSION" \
	"bin/napi-v6/linux/$arch/libonnxruntime.so.1=$ORT_SHA256"
