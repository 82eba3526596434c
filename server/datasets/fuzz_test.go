package datasets

import (
	"archive/zip"
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

var fuzzLimits = limits{maxRows: 10_000, maxZipEntries: 50, maxExtractedBytes: 1 << 20}

// checkParse is what every importer promises on any input: no panic, and
// either records that each say where they came from, or an *Error that
// names the field at fault.
func checkParse(t *testing.T, tab *table, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("not an *Error: %T %v", err, err)
		}
		if e.Field == "" || e.Msg == "" {
			t.Fatalf("an error without a field or a message: %+v", e)
		}
		return
	}
	for _, r := range tab.records {
		if r.line < 1 {
			t.Fatalf("a record without its line: %+v", r)
		}
		for _, f := range r.fields {
			if !utf8.ValidString(f) {
				t.Fatalf("invalid UTF-8 got through: %q", f)
			}
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"text,label\nhello,spam\n", "text,label\n\"a\nb\",ham\n", "a,b\n\"x,y\n", "a,b\nc\n", "a,a\n1,2\n",
		"\xef\xbb\xbftext,label\nx,y\n", "a,b\nsay \"hi\",x\n", "a,b\n\xff,x\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := newTable()
		checkParse(t, tab, parseFile(tab, FormatCSV, "", data, "", fuzzLimits))
	})
}

func FuzzParseJSONL(f *testing.F) {
	for _, s := range []string{
		`{"text":"a","label":"b"}` + "\n", "{\"a\":1,\"b\":true,\"c\":null}\r\n\n{\"a\":\"x\"}", "[1]\n", `{"a":{"b":1}}`,
		`{"a":"b"} {}`, "{\"a\":\"\xff\"}", `{"a":"b"`, "spam\tham\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := newTable()
		checkParse(t, tab, parseFile(tab, FormatJSONL, "", data, "", fuzzLimits))
	})
}

func FuzzParseText(f *testing.F) {
	for _, s := range []string{"spam\twin\nham\tsee you\n", "no tab\n", "\n\n\t\n"} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "spam")
	}
	f.Fuzz(func(t *testing.T, data []byte, label string) {
		if !utf8.ValidString(label) {
			return // labels come from zip folder names, which checkZipName holds to UTF-8
		}
		tab := newTable()
		checkParse(t, tab, parseFile(tab, FormatText, "", data, label, fuzzLimits))
	})
}

func FuzzParseZip(f *testing.F) {
	add := func(entries ...string) {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for i := 0; i < len(entries); i += 2 {
			w, _ := zw.Create(entries[i])
			w.Write([]byte(entries[i+1]))
		}
		zw.Close()
		f.Add(b.Bytes())
	}
	add("spam/a.txt", "win\n", "ham/b.txt", "hi\n")
	add("d.csv", "text,label\na,b\n", "e.jsonl", `{"text":"x","label":"y"}`)
	add("../x.txt", "a\tb\n")
	add("inner.zip", "PK\x03\x04")
	add("a.exe", "MZ")
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := newTable()
		checkParse(t, tab, parseZip(tab, bytes.NewReader(data), int64(len(data)), fuzzLimits))
	})
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"a@b.com 10.0.0.1:80 +1 (555) 123-4567", "::1 fe80::1%eth0 [2001:db8::1]", "1.2.3.4.5 2002-08-22", "é@é.é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, _ := newRedactor(RedactKinds)
		out := r.apply(s)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("redaction broke UTF-8: %q → %q", s, out)
		}
	})
}
