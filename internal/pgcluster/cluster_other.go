//go:build !unix

// Package pgcluster starts a throwaway PostgreSQL server; it needs a Unix
// system.
package pgcluster

import (
	"context"
	"errors"
)

// Cluster is a throwaway PostgreSQL server; none can start here.
type Cluster struct{ URL string }

// Start fails: the throwaway cluster needs a Unix system.
func Start(context.Context, ...string) (*Cluster, error) {
	return nil, errors.New("the throwaway PostgreSQL cluster needs a Unix system: set DATABASE_URL to a server where this user may create databases")
}

// Pid is 0: there is no server.
func (*Cluster) Pid() int { return 0 }

// Stop does nothing.
func (*Cluster) Stop() error { return nil }
