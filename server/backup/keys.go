package backup

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"filippo.io/age"
)

// readPassphrase reads a passphrase file: its first line, which must not
// be empty. A file keeps the passphrase out of the process list and the
// shell history.
func readPassphrase(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the passphrase file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", &Error{Msg: "the passphrase file " + path + " is empty", Hint: "write the passphrase on its first line"}
	}
	return line, nil
}

// Recipients gathers who a backup is encrypted to: a passphrase (from a
// file), or age public keys given one by one and in a recipients file
// (one per line, # comments). age allows a passphrase only alone.
func Recipients(passphraseFile string, recipients []string, recipientsFile string) ([]age.Recipient, error) {
	if passphraseFile != "" {
		if len(recipients) > 0 || recipientsFile != "" {
			return nil, &Error{Msg: "a passphrase cannot be combined with recipients", Hint: "choose -passphrase-file or -recipient/-recipients-file"}
		}
		pass, err := readPassphrase(passphraseFile)
		if err != nil {
			return nil, err
		}
		r, err := age.NewScryptRecipient(pass)
		if err != nil {
			return nil, err
		}
		return []age.Recipient{r}, nil
	}
	var out []age.Recipient
	for _, s := range recipients {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(s))
		if err != nil {
			return nil, &Error{Msg: fmt.Sprintf("recipient %q is not an age public key", s), Hint: "an age public key starts with age1; make one with age-keygen", Err: err}
		}
		out = append(out, r)
	}
	if recipientsFile != "" {
		b, err := os.ReadFile(recipientsFile)
		if err != nil {
			return nil, fmt.Errorf("reading the recipients file: %w", err)
		}
		rs, err := age.ParseRecipients(bytes.NewReader(b))
		if err != nil {
			return nil, &Error{Msg: "the recipients file " + recipientsFile + " is not a list of age public keys", Err: err}
		}
		out = append(out, rs...)
	}
	if len(out) == 0 {
		return nil, &Error{Msg: "a backup needs a passphrase or at least one recipient", Hint: "pass -passphrase-file, -recipient or -recipients-file"}
	}
	return out, nil
}

// Identities gathers what can open a backup: its passphrase (from a file)
// and age identity files (AGE-SECRET-KEY-1… lines).
func Identities(passphraseFile string, identityFiles []string) ([]age.Identity, error) {
	var out []age.Identity
	if passphraseFile != "" {
		pass, err := readPassphrase(passphraseFile)
		if err != nil {
			return nil, err
		}
		id, err := age.NewScryptIdentity(pass)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	for _, f := range identityFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading the identity file: %w", err)
		}
		ids, err := age.ParseIdentities(bytes.NewReader(b))
		if err != nil {
			return nil, &Error{Msg: "the identity file " + f + " holds no age identity", Hint: "an identity file holds AGE-SECRET-KEY-1… lines, as age-keygen writes", Err: err}
		}
		out = append(out, ids...)
	}
	if len(out) == 0 {
		return nil, &Error{Msg: "a restore needs the backup's passphrase or an identity", Hint: "pass -passphrase-file or -identity"}
	}
	return out, nil
}
