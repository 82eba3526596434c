// Package migrations holds the SQL schema of every supported database, one
// folder per dialect, as numbered NNN_name.up.sql / NNN_name.down.sql files.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Migration is one numbered schema step.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// For returns the migrations of a dialect ("sqlite" or "postgres"), in
// version order.
func For(dialect string) ([]Migration, error) {
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, fmt.Errorf("no migrations for dialect %q: %w", dialect, err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		base, direction, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), ".")
		num, name, ok2 := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || !ok2 || err != nil || (direction != "up" && direction != "down") {
			return nil, fmt.Errorf("migration file %s/%s is not named NNN_name.up.sql or NNN_name.down.sql", dialect, e.Name())
		}
		body, err := fs.ReadFile(files, dialect+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		m := byVersion[version]
		if m == nil {
			m = &Migration{Version: version, Name: name}
			byVersion[version] = m
		}
		// Two branches may each add the next number; merged, one would
		// silently replace the other.
		if m.Name != name {
			return nil, fmt.Errorf("two migrations of %s are numbered %03d: %s and %s; renumber one", dialect, version, m.Name, name)
		}
		if direction == "up" {
			m.Up = string(body)
		} else {
			m.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migration %s/%03d_%s lacks its up or down file", dialect, m.Version, m.Name)
		}
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations of %s are not numbered 1, 2, 3…: found %03d at position %d", dialect, m.Version, i+1)
		}
	}
	return out, nil
}
