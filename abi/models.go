package abi

import "strings"

// Model-name patterns: an accel.models entry of a manifest or a grant is
// a model name (text_classifier) or a pattern in which '*' stands for any
// run of model-name characters, the empty run included (classifier-*,
// *classifier*, or * for every model). '*' is the only wildcard; a part
// of a pipeline (NAME/PART) is granted by what grants NAME, so '*' never
// has to match '/'. A pattern is valid when writing a letter for each
// '*' gives a valid model name: it cannot end in .onnx, and its other
// characters are a name's.

// ValidModelPattern reports whether p is a model name or a valid
// pattern.
func ValidModelPattern(p string) bool {
	return len(p) <= 128 && ValidModelName(strings.ReplaceAll(p, "*", "a"))
}

// MatchModel reports whether the model name is covered by the pattern
// (or is the name, for a pattern without '*').
func MatchModel(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	if strings.Contains(name, "/") {
		return false
	}
	return glob(pattern, name)
}

// glob matches s against pattern, '*' matching any run. Greedy with one
// backtrack point, so it is linear in practice and never exponential:
// each '*' only restarts the match of what follows it.
func glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ModelPatternCovers reports whether every model name narrow matches is
// also matched by wide: a grant entry is allowed only if an entry of the
// manifest covers it. It matches wide against narrow's text with narrow's
// '*' as a plain character: a '*' of narrow can then only fall inside a
// '*' of wide (wide's other characters are never '*'), and that '*' of
// wide matches whatever narrow's matches. It is exact for names and for
// the usual patterns; for odd pairs it may say no where the answer is yes
// (a stricter grant than needed, never a wider one).
func ModelPatternCovers(wide, narrow string) bool {
	if !strings.Contains(wide, "*") {
		return wide == narrow
	}
	return !strings.Contains(narrow, "/") && glob(wide, narrow)
}

// ModelGranted reports whether a list of granted names and patterns
// covers the model name: a name or pattern in the list matches it, or it
// is a part (PIPELINE/PART) of a pipeline the list covers.
func ModelGranted(granted []string, name string) bool {
	for _, g := range granted {
		if MatchModel(g, name) {
			return true
		}
	}
	base, part, nested := strings.Cut(name, "/")
	if !nested || part == "" || strings.Contains(part, "/") {
		return false
	}
	for _, g := range granted {
		if MatchModel(g, base) {
			return true
		}
	}
	return false
}
