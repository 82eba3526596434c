package datasets

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Example is one labelled text, as train.jsonl and validation.jsonl hold
// it (one JSON object per line).
type Example struct {
	Text  string `json:"text"`
	Label string `json:"label"`
}

type example = Example

// Normalize is the form in which two texts count as duplicates: lower
// case, runs of white space made one space, trimmed.
func Normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// InValidation reports whether a text goes to the validation split. It
// hashes the seed with the normalised text, so the split depends on
// neither row order nor anything but the seed and the content: the same
// file with the same seed splits the same way, reordered or not, and
// duplicates (after normalisation) all land on one side, so validation
// accuracy is not inflated by examples also seen in training.
func InValidation(seed int64, fraction float64, text string) bool {
	return inValidation(seed, fraction, Normalize(text))
}

func inValidation(seed int64, fraction float64, normalized string) bool {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(normalized))
	sum := h.Sum(nil)
	// The top 53 bits as a uniform number in [0, 1).
	u := float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
	return u < fraction
}

// Stats describe a dataset version.
type Stats struct {
	// ClassBalance counts the rows of each label.
	ClassBalance map[string]int `json:"class_balance"`
	// Duplicates counts rows whose normalised text (Normalize) equals an
	// earlier row's.
	Duplicates int `json:"duplicates" doc:"Rows whose text, lower-cased with white space collapsed, repeats an earlier row's."`
	// ConflictingDuplicates counts those among them with another label
	// than the first occurrence.
	ConflictingDuplicates int `json:"conflicting_duplicates" doc:"Duplicates whose label differs from the first occurrence's."`
	// AverageLength is the mean text length in characters.
	AverageLength float64 `json:"average_length" doc:"Mean text length in characters (after redaction)."`
	// Redactions counts the replacements made at import, by kind.
	Redactions map[string]int `json:"redactions,omitempty"`
}

// statsOf computes the statistics of examples; normalized holds their
// texts' Normalize forms.
func statsOf(ex []Example, normalized []string) Stats {
	st := Stats{ClassBalance: map[string]int{}}
	first := map[string]string{}
	chars := 0
	for i, e := range ex {
		st.ClassBalance[e.Label]++
		chars += utf8.RuneCountInString(e.Text)
		n := normalized[i]
		if l, ok := first[n]; ok {
			st.Duplicates++
			if l != e.Label {
				st.ConflictingDuplicates++
			}
			continue
		}
		first[n] = e.Label
	}
	if len(ex) > 0 {
		st.AverageLength = float64(chars) / float64(len(ex))
	}
	return st
}
