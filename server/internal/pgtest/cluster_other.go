//go:build !unix

package pgtest

import (
	"context"
	"errors"
)

type cluster struct{ url string }

func startCluster(context.Context) (*cluster, error) {
	return nil, errors.New("the throwaway PostgreSQL cluster needs a Unix system: set DATABASE_URL to a server where this user may create databases")
}

func (*cluster) stop() error { return nil }
