package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/auth"
	"golang.org/x/term"
)

// stdin is where `millrace user create` reads the password; tests replace it.
var stdin io.Reader = os.Stdin

// user runs `millrace user create -username NAME -role ROLE`: the password
// comes from standard input (prompted for, unechoed, on a terminal), never
// from a flag, which would leave it in the shell's history and in ps.
func user(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: millrace user create -username NAME -role admin|editor|operator|viewer [-data DIR] [-database-url URL] (password on stdin)")
	}
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	username := fs.String("username", "", "the new user's name ("+auth.UsernameRule+")")
	role := fs.String("role", auth.RoleAdmin, "admin, editor, operator or viewer")
	data := fs.String("data", envOr("MILLRACE_DATA", "data"), "data directory (as for serve)")
	databaseURL := fs.String("database-url", "", "PostgreSQL URL (default $DATABASE_URL; empty uses SQLite in the data directory)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *databaseURL == "" {
		*databaseURL = os.Getenv("DATABASE_URL")
	}
	if *username == "" {
		return errors.New("user create needs -username")
	}
	password, err := readPassword(stdout)
	if err != nil {
		return err
	}
	u, err := server.CreateUser(ctx, server.Config{DataDir: *data, DatabaseURL: *databaseURL}, *username, password, *role)
	if err != nil {
		return fmt.Errorf("creating user %s: %w", *username, err)
	}
	fmt.Fprintf(stdout, "created %s user %s (%s); sign in to the console with its password\n", u.Role, u.Username, u.ID)
	return nil
}

// readPassword prompts twice on a terminal, or reads one line otherwise.
func readPassword(stdout io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stdout, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stdout, "Again: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", err
		}
		if string(first) != string(second) {
			return "", errors.New("the passwords differ")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, auth.MaxPasswordLength+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}
