package datasets

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// Formats an upload may have. A zip holds files of the other formats.
const (
	FormatCSV   = "csv"
	FormatTSV   = "tsv"
	FormatJSONL = "jsonl"
	FormatText  = "txt"
	FormatZip   = "zip"
)

// Formats lists the accepted formats, for messages and the API's enum.
var Formats = []string{FormatCSV, FormatTSV, FormatJSONL, FormatText, FormatZip}

// record is one parsed example before column choice: its values by
// column index (missing trailing values are empty) and where it came from.
type record struct {
	fields []string
	file   string // the file inside a zip; "" for the upload itself
	line   int
}

// table is what the parsers produce: named columns and records.
type table struct {
	columns []string
	index   map[string]int
	records []record
}

func newTable() *table { return &table{index: map[string]int{}} }

// col returns a column's index, adding the column when it is new.
func (t *table) col(name string) int {
	if i, ok := t.index[name]; ok {
		return i
	}
	t.index[name] = len(t.columns)
	t.columns = append(t.columns, name)
	return len(t.columns) - 1
}

func (r record) value(i int) string {
	if i < len(r.fields) {
		return r.fields[i]
	}
	return ""
}

// limits bound what one import may hold.
type limits struct {
	maxRows           int
	maxZipEntries     int
	maxExtractedBytes int64
}

// detectFormat picks the format from the file name, else from the first
// bytes.
func detectFormat(name string, head []byte) (string, error) {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return FormatCSV, nil
	case ".tsv", ".tab":
		return FormatTSV, nil
	case ".jsonl", ".ndjson":
		return FormatJSONL, nil
	case ".txt", ".text":
		return FormatText, nil
	case ".zip":
		return FormatZip, nil
	}
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		return FormatZip, nil
	}
	if trimmed := bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		return FormatJSONL, nil
	}
	return "", invalid("query.format", "cannot tell the format of %q: name it .csv, .tsv, .jsonl, .txt or .zip, or pass format (one of %s)", name, strings.Join(Formats, ", "))
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// checkUTF8 reports the first invalid UTF-8 byte by line and column.
func checkUTF8(data []byte) *Error {
	if utf8.Valid(data) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return at(line, col, "invalid UTF-8 (byte 0x%02x); save the file as UTF-8", data[i])
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// runeColumn turns a 1-based byte column on a 1-based line into a
// 1-based character column.
func runeColumn(data []byte, line, byteCol int) int {
	rest := fromLine(data, line)
	return utf8.RuneCount(rest[:min(max(byteCol-1, 0), len(rest))]) + 1
}

// fromLine returns data from the start of a 1-based line.
func fromLine(data []byte, line int) []byte {
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil
		}
		data = data[i+1:]
	}
	return data
}

// parseFile parses one file of a known format into t. label, when not
// empty, is the label that plain-text lines get (their folder in a zip).
func parseFile(t *table, format, file string, data []byte, label string, lim limits) error {
	if err := checkUTF8(data); err != nil {
		err.File = file
		return err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	var err error
	switch format {
	case FormatCSV:
		err = parseCSV(t, file, data, ',', lim)
	case FormatTSV:
		err = parseCSV(t, file, data, '\t', lim)
	case FormatJSONL:
		err = parseJSONL(t, file, data, lim)
	case FormatText:
		err = parseText(t, file, data, label, lim)
	default:
		err = invalid("query.format", "unknown format %q; formats are %s", format, strings.Join(Formats, ", "))
	}
	var e *Error
	if errors.As(err, &e) && e.File == "" {
		e.File = file
	}
	return err
}

func tooManyRows(lim limits) error {
	return &Error{Kind: KindTooLarge, Field: "body.file", Msg: fmt.Sprintf("more than %d rows; split the dataset", lim.maxRows)}
}

// parseCSV reads a CSV (or TSV) file whose first row names the columns.
// Every row must have as many fields as the header.
func parseCSV(t *table, file string, data []byte, comma rune, lim limits) error {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = comma
	header, err := r.Read()
	if err == io.EOF {
		return at(0, 0, "the file is empty; the first row must name the columns")
	}
	if err != nil {
		return csvError(data, err)
	}
	cols := make([]int, len(header))
	seen := map[string]bool{}
	for i, name := range header {
		name = strings.TrimSpace(name)
		if name == "" {
			return at(1, 0, "column %d of the header row has no name", i+1)
		}
		if seen[name] {
			return at(1, 0, "the header row names column %q twice", name)
		}
		seen[name] = true
		cols[i] = t.col(name)
	}
	for {
		row, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(data, err)
		}
		line, _ := r.FieldPos(0)
		if len(t.records) >= lim.maxRows {
			return tooManyRows(lim)
		}
		rec := record{fields: make([]string, len(t.columns)), file: file, line: line}
		for i, v := range row {
			rec.fields[cols[i]] = v
		}
		t.records = append(t.records, rec)
	}
}

// csvError words encoding/csv's errors with the position a person needs.
func csvError(data []byte, err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return at(0, 0, "%v", err)
	}
	col := runeColumn(data, pe.Line, pe.Column)
	switch {
	case errors.Is(pe.Err, csv.ErrQuote) && bytes.Count(fromLine(data, pe.StartLine), []byte{'"'})%2 == 1:
		// An odd number of quotes from the field's line to the end: one
		// is never closed, and the whole rest of the file was read as
		// its value.
		return at(pe.StartLine, 0, "unterminated quoted field (a quote opened on this line is never closed)")
	case errors.Is(pe.Err, csv.ErrQuote):
		return at(pe.Line, col, "a quoted field goes on after its closing quote, or holds a stray \" (write a quote inside quotes as \"\")")
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return at(pe.Line, col, "a \" in an unquoted field (quote the field and double the quote: \"a \"\"b\"\"\")")
	case errors.Is(pe.Err, csv.ErrFieldCount):
		return at(pe.StartLine, 0, "this row has a different number of fields than the header row")
	}
	return at(pe.Line, col, "%v", pe.Err)
}

// parseJSONL reads one JSON object per line; blank lines are skipped.
// Values must be strings, numbers, booleans or null (read as "").
func parseJSONL(t *table, file string, data []byte, lim limits) error {
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return jsonError(line, lineNo, err)
		}
		if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) > 0 {
			off := int(dec.InputOffset()) + bytes.Index(line[dec.InputOffset():], rest[:1])
			return at(lineNo, utf8.RuneCount(line[:off])+1, "more than one JSON value on the line; JSONL holds one object per line")
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return at(lineNo, 1, "expected a JSON object such as {\"text\": \"...\", \"label\": \"...\"}")
		}
		if len(t.records) >= lim.maxRows {
			return tooManyRows(lim)
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys) // new columns appear in a stable order
		rec := record{file: file, line: lineNo}
		for _, k := range keys {
			s, err := scalar(obj[k])
			if err != nil {
				return at(lineNo, 0, "field %q is %s; values must be strings, numbers, booleans or null", k, err.Error())
			}
			i := t.col(k)
			if i >= len(rec.fields) {
				rec.fields = append(rec.fields, make([]string, i+1-len(rec.fields))...)
			}
			rec.fields[i] = s
		}
		t.records = append(t.records, rec)
	}
	return nil
}

func scalar(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	case []any:
		return "", errors.New("an array")
	}
	return "", errors.New("an object")
}

func jsonError(line []byte, lineNo int, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := min(max(int(se.Offset)-1, 0), len(line))
		return at(lineNo, utf8.RuneCount(line[:off])+1, "invalid JSON: %v", se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return at(lineNo, utf8.RuneCount(line)+1, "invalid JSON: the object is not closed on this line (JSONL holds one object per line)")
	}
	return at(lineNo, 0, "invalid JSON: %v", err)
}

// parseText reads a plain-text file, one example per line; blank lines
// are skipped. Inside a zip folder every line is a text and the folder
// names its label; elsewhere each line is "label<TAB>text".
func parseText(t *table, file string, data []byte, label string, lim limits) error {
	textCol, labelCol := t.col("text"), t.col("label")
	width := max(textCol, labelCol) + 1
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		s := strings.TrimSuffix(string(line), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		text, lab := s, label
		if label == "" {
			var ok bool
			lab, text, ok = strings.Cut(s, "\t")
			if !ok {
				return at(lineNo, 0, "expected label<TAB>text: a plain-text file outside a zip folder gives each line's label before a tab (inside a zip, a folder's name labels the lines of its files)")
			}
		}
		if len(t.records) >= lim.maxRows {
			return tooManyRows(lim)
		}
		rec := record{fields: make([]string, width), file: file, line: lineNo}
		rec.fields[textCol], rec.fields[labelCol] = text, lab
		t.records = append(t.records, rec)
	}
	return nil
}

// parseZip reads the CSV, TSV, JSONL and text files of a zip archive. A
// text file's folder (its immediate parent) labels its lines. It refuses
// unsafe or odd archives outright rather than skipping parts: names that
// climb out (.., absolute, backslashes), links, nested archives, more than
// maxZipEntries entries, and more than maxExtractedBytes once
// decompressed, counted as it inflates (the sizes in the archive's
// directory are not trusted). Folders, and the __MACOSX/ and dot files
// that archivers add, are skipped.
func parseZip(t *table, r io.ReaderAt, size int64, lim limits) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return at(0, 0, "not a readable zip archive: %v", err)
	}
	if len(zr.File) > lim.maxZipEntries {
		return &Error{Kind: KindTooLarge, Field: "body.file", Msg: fmt.Sprintf("the zip has %d entries, more than the %d allowed", len(zr.File), lim.maxZipEntries)}
	}
	budget := lim.maxExtractedBytes
	files := 0
	for _, f := range zr.File {
		name := f.Name
		if err := checkZipName(name); err != nil {
			return err
		}
		if m := f.Mode(); m&fs.ModeType != 0 && !m.IsDir() {
			return &Error{Kind: KindInvalid, Field: "body.file", File: name, Msg: "not a regular file (a link or device); the zip may hold only files and folders"}
		}
		if f.Mode().IsDir() || strings.HasSuffix(name, "/") {
			continue
		}
		base := path.Base(name)
		if strings.HasPrefix(name, "__MACOSX/") || strings.HasPrefix(base, ".") {
			continue
		}
		if f.Flags&0x1 != 0 {
			return &Error{Kind: KindInvalid, Field: "body.file", File: name, Msg: "encrypted entries are not supported"}
		}
		ext := strings.ToLower(path.Ext(base))
		if ext == ".zip" || ext == ".gz" || ext == ".tar" || ext == ".tgz" || ext == ".7z" || ext == ".rar" {
			return &Error{Kind: KindInvalid, Field: "body.file", File: name, Msg: "nested archives are refused; unpack it into the zip's folders"}
		}
		rc, err := f.Open()
		if err != nil {
			return &Error{Kind: KindInvalid, Field: "body.file", File: name, Msg: fmt.Sprintf("cannot read this entry: %v", err)}
		}
		data, err := io.ReadAll(io.LimitReader(rc, budget+1))
		rc.Close()
		if err != nil {
			return &Error{Kind: KindInvalid, Field: "body.file", File: name, Msg: fmt.Sprintf("cannot decompress this entry: %v", err)}
		}
		if int64(len(data)) > budget {
			return &Error{Kind: KindTooLarge, Field: "body.file", File: name,
				Msg: fmt.Sprintf("the zip expands to more than %d bytes; refused (a decompression bomb?)", lim.maxExtractedBytes)}
		}
		budget -= int64(len(data))
		if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
			return &Error{Kind: KindInvalid, Field: "body.file", File: name, Msg: "nested archives are refused; unpack it into the zip's folders"}
		}
		format, err := detectFormat(base, data[:min(len(data), 512)])
		if err != nil {
			return &Error{Kind: KindInvalid, Field: "body.file", File: name, Msg: "unknown file type: a zip may hold .csv, .tsv, .jsonl and .txt files"}
		}
		label := ""
		if format == FormatText {
			if dir := path.Dir(name); dir != "." {
				label = path.Base(dir)
			}
		}
		if err := parseFile(t, format, name, data, label, lim); err != nil {
			return err
		}
		files++
	}
	if files == 0 {
		return at(0, 0, "the zip holds no .csv, .tsv, .jsonl or .txt file")
	}
	return nil
}

// checkZipName refuses entry names that could point outside a folder the
// archive is unpacked into (we unpack nothing, but such an archive is
// hostile or broken either way).
func checkZipName(name string) error {
	bad := func(why string) error {
		return &Error{Kind: KindInvalid, Field: "body.file", File: name, Msg: "refused entry name: " + why}
	}
	switch {
	case name == "":
		return bad("empty")
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case strings.ContainsRune(name, '\\'):
		return bad("it contains a backslash")
	case strings.HasPrefix(name, "/") || (len(name) > 1 && name[1] == ':'):
		return bad("it is an absolute path")
	case strings.ContainsRune(name, 0):
		return bad("it contains a NUL byte")
	}
	for _, part := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if part == ".." || part == "." || part == "" {
			return bad("it climbs out of the archive or has an empty segment (" + strings.TrimSpace(part) + ")")
		}
	}
	return nil
}
