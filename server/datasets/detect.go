package datasets

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Column names that say what a column holds, in order of preference.
var (
	textNames  = []string{"text", "body", "message", "content", "email", "sentence", "document", "review", "msg"}
	labelNames = []string{"label", "class", "category", "target", "spam", "labels", "sentiment", "y"}
)

// maxLabels bounds the distinct labels a dataset may have: more means the
// wrong column was taken for the label.
const maxLabels = 1000

// chooseColumns picks the text and the label column: the requested ones,
// else a column whose name says so, else the column with the longest
// values (text) and the one with the fewest distinct values (label).
func chooseColumns(t *table, textCol, labelCol string) (int, int, error) {
	find := func(field, name string) (int, error) {
		if i, ok := t.index[name]; ok {
			return i, nil
		}
		return 0, invalid(field, "no column named %q; the columns are %s", name, quoted(t.columns))
	}
	byName := func(names []string, skip int) int {
		for _, want := range names {
			for i, c := range t.columns {
				if i != skip && strings.EqualFold(strings.TrimSpace(c), want) {
					return i
				}
			}
		}
		return -1
	}
	if len(t.columns) < 2 {
		return 0, 0, invalid("body.file", "the file has %d column(s) (%s); a dataset needs a text and a label column", len(t.columns), quoted(t.columns))
	}
	ti, li := -1, -1
	var err error
	if textCol != "" {
		if ti, err = find("query.text_column", textCol); err != nil {
			return 0, 0, err
		}
	}
	if labelCol != "" {
		if li, err = find("query.label_column", labelCol); err != nil {
			return 0, 0, err
		}
	}
	if ti < 0 {
		ti = byName(textNames, li)
	}
	if li < 0 {
		li = byName(labelNames, ti)
	}
	if ti < 0 {
		ti = longestColumn(t, li)
	}
	if li < 0 {
		li = fewestValuesColumn(t, ti)
	}
	if ti == li {
		return 0, 0, invalid("query.label_column", "the text and the label column are both %q; choose two columns", t.columns[ti])
	}
	return ti, li, nil
}

func longestColumn(t *table, skip int) int {
	best, bestLen := -1, -1
	for i := range t.columns {
		if i == skip {
			continue
		}
		n := 0
		for _, r := range t.records {
			n += utf8.RuneCountInString(r.value(i))
		}
		if n > bestLen {
			best, bestLen = i, n
		}
	}
	return best
}

func fewestValuesColumn(t *table, skip int) int {
	best, bestN := -1, 0
	for i := range t.columns {
		if i == skip {
			continue
		}
		seen := map[string]struct{}{}
		for _, r := range t.records {
			seen[strings.TrimSpace(r.value(i))] = struct{}{}
			if len(seen) > maxLabels {
				break
			}
		}
		if best < 0 || len(seen) < bestN {
			best, bestN = i, len(seen)
		}
	}
	return best
}

func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// labelsOf lists the distinct labels, sorted.
func labelsOf(ex []example) []string {
	seen := map[string]struct{}{}
	for _, e := range ex {
		seen[e.Label] = struct{}{}
	}
	out := make([]string, 0, len(seen))
	for l := range seen {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}
