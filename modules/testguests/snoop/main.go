// Command snoop tries what a hostile module would to read the host: its
// environment, well-known files and folders, and the working directory.
// It reports what it got; the sandbox must leave every probe empty-handed
// (no environment, no preopened directory).
package main

import (
	"context"
	"os"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type report struct {
	Env   []string          `json:"env"`
	Files map[string]string `json:"files"` // path → what reading it gave: content, or the error
	Dirs  map[string]string `json:"dirs"`
	Cwd   string            `json:"cwd"`
}

func init() {
	millrace.Handle(func(_ context.Context, _ any) (report, error) {
		r := report{Env: os.Environ(), Files: map[string]string{}, Dirs: map[string]string{}}
		for _, p := range []string{"/etc/passwd", "/proc/self/environ", "secret.key", "../secret.key", "/data/secret.key", "millrace.db"} {
			if b, err := os.ReadFile(p); err != nil {
				r.Files[p] = "error: " + err.Error()
			} else {
				r.Files[p] = string(b)
			}
		}
		for _, d := range []string{"/", ".", "/etc", "/tmp"} {
			if entries, err := os.ReadDir(d); err != nil {
				r.Dirs[d] = "error: " + err.Error()
			} else {
				names := ""
				for _, e := range entries {
					names += e.Name() + " "
				}
				r.Dirs[d] = names
			}
		}
		if wd, err := os.Getwd(); err == nil {
			r.Cwd = wd
		}
		return r, nil
	})
}

func main() {}
