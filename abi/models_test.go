package abi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestModelPatterns(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]bool{
		"text_classifier": true, "*": true, "classifier-*": true, "*classifier*": true, "a*b*c": true, "**": true,
		"": false, "*.onnx": false, "Classifier-*": false, "a/*": false, "-*": false, "* ": false, strings.Repeat("a", 129): false,
	} {
		require.Equal(t, want, ValidModelPattern(p), "%q", p)
	}
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"text_classifier", "text_classifier", true},
		{"text_classifier", "text_classifier2", false},
		{"*", "anything", true},
		{"*", "sdxl/unet", false}, // parts go through their pipeline's name
		{"classifier-*", "classifier-", true},
		{"classifier-*", "classifier-spam", true},
		{"classifier-*", "my-classifier-spam", false},
		{"*classifier*", "my-classifier", true},
		{"*classifier*", "classify", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"*ab", "aab", true},
		{"a*a*a*a*a*a*b", strings.Repeat("a", 120), false},
	} {
		require.Equal(t, c.want, MatchModel(c.pattern, c.name), "%q ~ %q", c.pattern, c.name)
	}
	for _, c := range []struct {
		wide, narrow string
		want         bool
	}{
		{"*", "classifier-*", true},
		{"*", "x", true},
		{"classifier-*", "classifier-spam-*", true},
		{"classifier-*", "classifier-spam", true},
		{"classifier-*", "*", false},
		{"classifier-*", "my-classifier", false},
		{"*classifier*", "*-classifier", true},
		{"text_classifier", "text_classifier", true},
		{"text_classifier", "text_*", false},
		{"a*b", "a*", false},
	} {
		require.Equal(t, c.want, ModelPatternCovers(c.wide, c.narrow), "%q ⊇ %q", c.wide, c.narrow)
	}
}

// FuzzModelPatterns checks that matching never panics, that a name
// matches only itself as a pattern, and that ModelPatternCovers is sound:
// when it says wide covers narrow, every name narrow matches (narrow with
// its '*'s filled in) matches wide.
func FuzzModelPatterns(f *testing.F) {
	f.Add("classifier-*", "classifier-spam-*", "x")
	f.Add("*", "*a*", "bc")
	f.Add("a*b*c", "a*bc", "")
	f.Fuzz(func(t *testing.T, wide, narrow, fill string) {
		MatchModel(wide, narrow)
		if !ValidModelPattern(wide) || !ValidModelPattern(narrow) {
			return
		}
		if !strings.Contains(wide, "*") {
			require.True(t, MatchModel(wide, wide))
		}
		fill = strings.Map(func(r rune) rune {
			if strings.ContainsRune("abcdefghijklmnopqrstuvwxyz0123456789._-", r) {
				return r
			}
			return -1
		}, fill)
		name := strings.ReplaceAll(narrow, "*", fill)
		if ModelPatternCovers(wide, narrow) && ValidModelName(name) {
			require.True(t, MatchModel(wide, name), "%q covers %q but not %q", wide, narrow, name)
		}
	})
}
