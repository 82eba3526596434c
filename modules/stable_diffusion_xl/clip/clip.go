// Package clip is the CLIP byte-level BPE tokenizer as transformers'
// CLIPTokenizer defines it, reading a model folder's vocab.json and
// merges.txt (SDXL folders ship no tokenizer.json). It uses only the
// standard library, so it builds for GOOS=wasip1 and runs inside the
// sandboxed module.
//
// Text goes through: normalisation (Normalize), the CLIP split pattern
// (Split), the GPT-2 byte-to-unicode mapping, BPE merges with a `</w>`
// end-of-word marker on each piece's last symbol, vocabulary ids (unknown
// tokens become the unk token, <|endoftext|>), then BOS + at most
// MaxLength-2 ids + EOS, padded to MaxLength.
//
// One known gap: CLIPTokenizer runs ftfy.fix_text first when ftfy is
// installed (it repairs mojibake, unescapes some HTML entities and
// NFC-normalises). None of that exists in Go's standard library, so text
// that is already clean and composed (what people type) tokenizes the
// same, while mojibake or decomposed accents may not. Smaller ones: Go's
// strings.ToLower and Python's str.lower differ on a few letters (İ
// lowercases to "i̇" in Python, "i" in Go), and the Unicode versions
// behind \p{L} and \p{N} may differ for the newest characters.
package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The CLIP special tokens and the sequence length the SDXL text encoders take.
const (
	StartOfText      = "<|startoftext|>"
	EndOfText        = "<|endoftext|>"
	DefaultMaxLength = 77
	// endOfWord marks the last symbol of each split piece.
	endOfWord = "</w>"
	// maxMerges is how many merges.txt lines CLIPTokenizer reads
	// (49152-256-2): the real files hold exactly that many.
	maxMerges = 48894
)

// Options set what a folder's tokenizer_config.json and
// special_tokens_map.json set; zero values take CLIP's defaults.
type Options struct {
	// MaxLength is the padded sequence length (model_max_length), 77
	// when 0.
	MaxLength int
	// PadToken pads to MaxLength: <|endoftext|> (49407) for SDXL's
	// tokenizer, "!" (id 0) for tokenizer_2. <|endoftext|> when empty.
	PadToken string
	// UnkToken replaces tokens missing from the vocabulary;
	// <|endoftext|> when empty.
	UnkToken string
	// BOSToken and EOSToken frame every sequence; <|startoftext|> and
	// <|endoftext|> when empty.
	BOSToken string
	EOSToken string
}

// Tokenizer turns prompts into CLIP input ids. It is immutable and safe
// for concurrent use.
type Tokenizer struct {
	vocab   map[string]int64
	ranks   map[string]int // "first second" → merge rank
	byteEnc [256]string
	bos     int64
	eos     int64
	pad     int64
	unk     int64
	// special maps the special tokens, which pass through BPE whole.
	special map[string]int64
	maxLen  int
	// maxSymbols is the longest vocabulary entry in byte symbols: no
	// token covers more bytes of a piece.
	maxSymbols int
}

// Load builds a tokenizer from vocab.json (token → id) and merges.txt
// (one "first second" pair per line, after a "#version" header).
func Load(vocabJSON, merges []byte, opts Options) (*Tokenizer, error) {
	var vocab map[string]int64
	if err := json.Unmarshal(vocabJSON, &vocab); err != nil {
		return nil, fmt.Errorf("vocab.json: %w", err)
	}
	if len(vocab) == 0 {
		return nil, errors.New("vocab.json: the vocabulary is empty")
	}
	t := &Tokenizer{vocab: vocab, ranks: map[string]int{}, special: map[string]int64{}}
	if opts.MaxLength == 0 {
		opts.MaxLength = DefaultMaxLength
	}
	if opts.MaxLength < 2 || opts.MaxLength > 1<<16 {
		return nil, fmt.Errorf("tokenizer_config.json: model_max_length %d is outside [2, 65536]", opts.MaxLength)
	}
	t.maxLen = opts.MaxLength
	for _, tok := range []struct {
		name, value, fallback string
		id                    *int64
	}{
		{"bos_token", opts.BOSToken, StartOfText, &t.bos},
		{"eos_token", opts.EOSToken, EndOfText, &t.eos},
		{"pad_token", opts.PadToken, EndOfText, &t.pad},
		{"unk_token", opts.UnkToken, EndOfText, &t.unk},
	} {
		v := tok.value
		if v == "" {
			v = tok.fallback
		}
		id, ok := vocab[v]
		if !ok {
			return nil, fmt.Errorf("vocab.json: %s %q is not in the vocabulary", tok.name, v)
		}
		*tok.id = id
	}
	for tok := range vocab {
		t.maxSymbols = max(t.maxSymbols, utf8.RuneCountInString(tok))
	}
	for _, s := range []string{StartOfText, EndOfText} {
		if id, ok := vocab[s]; ok {
			t.special[s] = id
		}
	}
	for i, b := range byteToUnicode() {
		t.byteEnc[i] = string(b)
	}

	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(merges), "\r\n", "\n")), "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "#version") {
		lines = lines[1:]
	}
	for i, line := range lines {
		if i == maxMerges {
			break
		}
		first, second, ok := strings.Cut(line, " ")
		if !ok || first == "" || second == "" || strings.Contains(second, " ") {
			return nil, fmt.Errorf("merges.txt line %d: %q is not two symbols separated by one space", lineNumber(merges, i), line)
		}
		if _, dup := t.ranks[line]; !dup {
			t.ranks[line] = i
		}
	}
	return t, nil
}

// lineNumber is the 1-based line of merge i in the file, counting the
// header when there is one.
func lineNumber(merges []byte, i int) int {
	if strings.HasPrefix(strings.TrimSpace(string(merges)), "#version") {
		return i + 2
	}
	return i + 1
}

// LoadFS loads the tokenizer in folder dir of fsys (tokenizer/ or
// tokenizer_2/ of an SDXL folder): vocab.json and merges.txt, with the
// options of special_tokens_map.json and tokenizer_config.json when they
// are there.
func LoadFS(fsys fs.FS, dir string) (*Tokenizer, error) {
	read := func(name string, optional bool) ([]byte, error) {
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(dir, name), err)
		}
		return b, nil
	}
	vocab, err := read("vocab.json", false)
	if err != nil {
		return nil, err
	}
	merges, err := read("merges.txt", false)
	if err != nil {
		return nil, err
	}
	special, err := read("special_tokens_map.json", true)
	if err != nil {
		return nil, err
	}
	config, err := read("tokenizer_config.json", true)
	if err != nil {
		return nil, err
	}
	opts, err := ReadOptions(special, config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	t, err := Load(vocab, merges, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return t, nil
}

// ReadOptions reads the special tokens and model_max_length from a
// folder's special_tokens_map.json and tokenizer_config.json (either may
// be nil). special_tokens_map.json wins where both set a token, as in
// transformers. A token may be a string or an AddedToken object
// ({"content": "!", ...}).
func ReadOptions(specialTokensMap, tokenizerConfig []byte) (Options, error) {
	var opts Options
	for _, f := range []struct {
		name string
		data []byte
	}{{"tokenizer_config.json", tokenizerConfig}, {"special_tokens_map.json", specialTokensMap}} {
		if len(f.data) == 0 {
			continue
		}
		var doc struct {
			MaxLength *float64        `json:"model_max_length"`
			Pad       json.RawMessage `json:"pad_token"`
			Unk       json.RawMessage `json:"unk_token"`
			BOS       json.RawMessage `json:"bos_token"`
			EOS       json.RawMessage `json:"eos_token"`
		}
		if err := json.Unmarshal(f.data, &doc); err != nil {
			return Options{}, fmt.Errorf("%s: %w", f.name, err)
		}
		if doc.MaxLength != nil {
			// Tokenizers without a limit write a huge sentinel
			// (1e30); CLIP's is 77. Only a sensible value counts.
			if m := *doc.MaxLength; m >= 2 && m <= 1<<16 && m == float64(int(m)) {
				opts.MaxLength = int(m)
			}
		}
		for _, tok := range []struct {
			field string
			raw   json.RawMessage
			dst   *string
		}{{"pad_token", doc.Pad, &opts.PadToken}, {"unk_token", doc.Unk, &opts.UnkToken}, {"bos_token", doc.BOS, &opts.BOSToken}, {"eos_token", doc.EOS, &opts.EOSToken}} {
			s, err := tokenText(tok.raw)
			if err != nil {
				return Options{}, fmt.Errorf("%s: %s: %w", f.name, tok.field, err)
			}
			if s != "" {
				*tok.dst = s
			}
		}
	}
	return opts, nil
}

// tokenText reads a special token written as a string or an AddedToken.
func tokenText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var added struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &added); err != nil || added.Content == nil {
		return "", errors.New(`want a string or an object with "content"`)
	}
	return *added.Content, nil
}

// MaxLength is the length of every Encode result.
func (t *Tokenizer) MaxLength() int { return t.maxLen }

// BOS, EOS and Pad are the ids that start, end and pad every sequence.
func (t *Tokenizer) BOS() int64 { return t.bos }

// EOS is the id that ends every sequence.
func (t *Tokenizer) EOS() int64 { return t.eos }

// Pad is the id that fills a sequence up to MaxLength.
func (t *Tokenizer) Pad() int64 { return t.pad }

// Encode returns text's MaxLength input ids: BOS, the first
// MaxLength-2 token ids, EOS, then Pad. Any string is accepted (invalid
// UTF-8 is read as U+FFFD).
func (t *Tokenizer) Encode(text string) []int64 {
	ids, _ := t.EncodeTruncated(text)
	return ids
}

// EncodeTruncated is Encode, also saying whether tokens were cut off (the
// pipeline warns about it, as diffusers does).
func (t *Tokenizer) EncodeTruncated(text string) (ids []int64, truncated bool) {
	tokens := t.tokenize(text, t.maxLen-2)
	if room := t.maxLen - 2; len(tokens) > room {
		tokens, truncated = tokens[:room], true
	}
	ids = make([]int64, 0, t.maxLen)
	ids = append(ids, t.bos)
	ids = append(ids, tokens...)
	ids = append(ids, t.eos)
	for len(ids) < t.maxLen {
		ids = append(ids, t.pad)
	}
	return ids, truncated
}

// Tokenize returns the token ids of text with no BOS/EOS, padding or
// truncation.
func (t *Tokenizer) Tokenize(text string) []int64 { return t.tokenize(text, -1) }

// tokenize stops once it has more than limit ids (limit < 0: never), so
// that a huge prompt costs no more than the ids Encode keeps. BPE is
// quadratic in a piece's length, so a piece is also cut to the bytes that
// limit+1 tokens can cover at most: it yields more than limit ids anyway,
// and only its first ids, which the cut may change, are kept (a prompt
// with a "word" of thousands of letters is truncated either way).
func (t *Tokenizer) tokenize(text string, limit int) []int64 {
	var ids []int64
	for _, piece := range Split(Normalize(text)) {
		if limit >= 0 && len(ids) > limit {
			break
		}
		if limit >= 0 && len(piece) > (limit+1)*t.maxSymbols {
			piece = piece[:(limit+1)*t.maxSymbols]
		}
		if id, ok := t.special[piece]; ok {
			ids = append(ids, id)
			continue
		}
		var sym strings.Builder
		for i := 0; i < len(piece); i++ {
			sym.WriteString(t.byteEnc[piece[i]])
		}
		for _, tok := range t.bpe(sym.String()) {
			id, ok := t.vocab[tok]
			if !ok {
				id = t.unk
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// bpe splits a byte-encoded piece into symbols, marks the last with </w>,
// and applies the lowest-ranked merge until none applies.
func (t *Tokenizer) bpe(piece string) []string {
	word := make([]string, 0, utf8.RuneCountInString(piece))
	for _, r := range piece {
		word = append(word, string(r))
	}
	if len(word) == 0 {
		return nil
	}
	word[len(word)-1] += endOfWord
	for len(word) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(word); i++ {
			if r, ok := t.ranks[word[i]+" "+word[i+1]]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := word[best], word[best+1]
		// Merge every occurrence of the pair, left to right, as
		// CLIPTokenizer.bpe does.
		merged := word[:0:0]
		for i := 0; i < len(word); i++ {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				merged = append(merged, first+second)
				i++
			} else {
				merged = append(merged, word[i])
			}
		}
		word = merged
	}
	return word
}

// Normalize is CLIPTokenizer's text clean-up without ftfy: invalid UTF-8
// becomes U+FFFD, every run of whitespace (Python's str.isspace set)
// becomes one space, the ends are trimmed, and the text is lowercased.
func Normalize(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	var b strings.Builder
	b.Grow(len(text))
	space := false
	for _, r := range text {
		if isSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

// isSpace is Python's str.isspace: Unicode White_Space plus the ASCII
// information separators 0x1c–0x1f, which Python's \s also matches.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// splitPattern is CLIP's pre-tokenizer pattern. Go's \s is ASCII-only,
// which is enough after Normalize has turned all whitespace into spaces.
var splitPattern = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`)

// Split cuts normalized text into the pieces BPE encodes one by one: the
// special tokens, English contractions, letter runs, single digits and
// runs of other non-space characters.
func Split(normalized string) []string {
	return splitPattern.FindAllString(normalized, -1)
}

// byteToUnicode is GPT-2's reversible byte → printable rune mapping:
// printable Latin-1 bytes map to themselves, the rest to 256+n in byte
// order, so that no symbol is whitespace or a control character.
func byteToUnicode() [256]rune {
	var m [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// ByteSymbols returns the 256 byte symbols in CLIP's vocabulary order
// (printable bytes first): a real vocab.json gives symbol i id i and
// symbol i + "</w>" id 256+i. Tiny test vocabularies are built from it.
func ByteSymbols() []string {
	m := byteToUnicode()
	out := make([]string, 0, 256)
	for _, r := range []struct{ lo, hi int }{{'!', '~'}, {0xA1, 0xAC}, {0xAE, 0xFF}} {
		for b := r.lo; b <= r.hi; b++ {
			out = append(out, string(m[b]))
		}
	}
	for b := 0; b < 256; b++ {
		if m[b] >= 256 {
			out = append(out, string(m[b]))
		}
	}
	return out
}
