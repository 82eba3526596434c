package sdxl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The CLIP special tokens' ids, as in the real vocabulary.
const (
	StartOfTextID = 49406
	EndOfTextID   = 49407
)

// Words are the whole words the tiny vocabulary holds, each one token
// (plus single letters, digits and punctuation, as in CLIP, where every
// byte is a token). The first ones carry their real CLIP ids, so that
// "a photo of a cat" encodes as with the real vocabulary:
// [49406, 320, 1125, 539, 320, 2368, 49407].
var Words = []string{
	"photo", "of", "cat", "dog", "hello", "world",
	"an", "the", "in", "on", "with", "and", "by", "red", "blue", "green",
	"house", "tree", "mountain", "river", "sky", "sunset", "portrait",
	"painting", "city", "night", "beach", "forest", "astronaut", "riding",
	"horse", "cute", "small", "big", "old", "man", "woman", "car",
	"flower", "garden", "snow", "water", "high", "quality", "detailed",
	"blurry", "ugly", "cinematic", "lighting", "style", "art", "digital",
}

// realIDs are the real CLIP ids of some of Words' tokens.
var realIDs = map[string]int{
	"photo</w>": 1125, "of</w>": 539, "cat</w>": 2368, "dog</w>": 1929,
	"hello</w>": 3306, "world</w>": 1002,
}

// firstMergeID is where the ids of the other merged tokens start: above
// every realIDs id and below the special tokens (the vocabulary is sparse
// in ids, as a tiny one may be).
const firstMergeID = 40000

// Vocabulary returns a tiny CLIP vocab.json and merges.txt. Its first 512
// ids are CLIP's own (each byte's symbol, then the same with </w>), the
// special tokens have their real ids, and each of Words is built by
// merging its letters left to right, so it becomes one token.
func Vocabulary() (vocabJSON, merges []byte) {
	vocab := map[string]int{}
	for i, s := range byteSymbols() {
		vocab[s] = i
		vocab[s+"</w>"] = 256 + i
	}
	var mergeLines []string
	ranks := map[string]int{}
	next := firstMergeID
	for _, w := range Words {
		// Apply the merges so far, then join what is left left to
		// right with new merges: ranked after every earlier merge, they
		// cannot break an earlier word, and this word ends as one token.
		syms := bpe(w, ranks)
		acc := syms[0]
		for _, s := range syms[1:] {
			line := acc + " " + s
			acc += s
			if _, ok := ranks[line]; ok {
				continue
			}
			ranks[line] = len(mergeLines)
			mergeLines = append(mergeLines, line)
			if _, ok := vocab[acc]; ok {
				continue
			}
			if id, ok := realIDs[acc]; ok {
				vocab[acc] = id
			} else {
				vocab[acc] = next
				next++
			}
		}
	}
	vocab["<|startoftext|>"] = StartOfTextID
	vocab["<|endoftext|>"] = EndOfTextID

	var v bytes.Buffer
	enc := json.NewEncoder(&v)
	enc.SetEscapeHTML(false) // as transformers writes it: "<|endoftext|>" in the clear
	if err := enc.Encode(vocab); err != nil {
		panic(fmt.Sprint("sdxl: vocabulary: ", err))
	}
	var m bytes.Buffer
	m.WriteString("#version: 0.2\n")
	for _, line := range mergeLines {
		m.WriteString(line)
		m.WriteByte('\n')
	}
	return v.Bytes(), m.Bytes()
}

// bpe is CLIP's merge loop for a lowercase ASCII word: letters, the last
// with </w>, merged by lowest rank until no merge applies.
func bpe(word string, ranks map[string]int) []string {
	syms := strings.Split(word, "")
	syms[len(syms)-1] += "</w>"
	for len(syms) > 1 {
		best := -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := ranks[syms[i]+" "+syms[i+1]]; ok && (best < 0 || r < ranks[syms[best]+" "+syms[best+1]]) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		first, second := syms[best], syms[best+1]
		var merged []string
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				merged = append(merged, first+second)
				i++
			} else {
				merged = append(merged, syms[i])
			}
		}
		syms = merged
	}
	return syms
}

// byteSymbols is GPT-2's byte-to-unicode table in CLIP's vocabulary
// order: the printable bytes '!'..'~', '¡'..'¬', '®'..'ÿ' as themselves,
// then the other bytes, in byte order, as runes 256, 257, ...
func byteSymbols() []string {
	var out []string
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	for b := 0; b < 256; b++ {
		if printable(b) {
			out = append(out, string(rune(b)))
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !printable(b) {
			out = append(out, string(rune(256+n)))
			n++
		}
	}
	return out
}
