package spamcorpus_test

import (
	"strings"
	"testing"

	"github.com/millrace/millrace/server/datasets/spamcorpus"
	"github.com/stretchr/testify/require"
)

func TestText(t *testing.T) {
	t.Parallel()
	raw := "From someone@example.com  Thu Aug 22 13:17:22 2002\n" +
		"Subject: =?iso-8859-1?q?Caf=E9?= offer\n" +
		"Content-Type: multipart/alternative; boundary=\"XX\"\n\n" +
		"--XX\nContent-Type: text/html\n\n<p>ignored &amp; html</p>\n" +
		"--XX\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nna=EFve   body=\n here\n" +
		"--XX--\n"
	require.Equal(t, "Café offer\nnaïve body here", spamcorpus.Text([]byte(raw)))

	htmlOnly := "Subject: hi\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n" +
		"PGh0bWw+PHN0eWxlPnAge308L3N0eWxlPjxiPldpbjwvYj4gJmx0OzEwMCZndDsgZG9s\nbGFyczwvaHRtbD4=\n"
	require.Equal(t, "hi\nWin <100> dollars", spamcorpus.Text([]byte(htmlOnly)))

	require.Equal(t, "no headers at all", spamcorpus.Text([]byte("garbage line\n\nno headers at all")))
}

func TestLoadTheCorpus(t *testing.T) {
	t.Parallel()
	dir, err := spamcorpus.Dir()
	require.NoError(t, err)
	msgs, err := spamcorpus.Load(dir)
	require.NoError(t, err)
	require.Len(t, msgs, spamcorpus.Messages)
	counts := map[string]int{}
	for _, m := range msgs {
		counts[m.Label]++
		require.NotEmpty(t, strings.TrimSpace(m.Text), "message of %s", m.Group)
	}
	require.Equal(t, map[string]int{"spam": 1896, "ham": 4150}, counts)
}
