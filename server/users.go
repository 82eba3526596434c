package server

import (
	"context"
	"fmt"
	"os"

	"github.com/millrace/millrace/server/audit"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/store"
)

// CreateUser creates a console user in the database cfg selects, without
// the API: how the first console user comes to exist on a server that is
// reached only through the console. It is recorded in the audit log as
// done by "cli".
func CreateUser(ctx context.Context, cfg Config, username, password, role string) (store.User, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return store.User{}, fmt.Errorf("creating data directory: %w", err)
	}
	db, _, _, err := openDatabase(ctx, cfg)
	if err != nil {
		return store.User{}, err
	}
	defer db.Close()
	u, err := auth.NewUsers(db).Create(ctx, username, password, role)
	if err != nil {
		return store.User{}, err
	}
	actx := audit.WithActor(ctx, audit.Actor{Name: "cli"})
	audit.New(db).Record(actx, audit.Event{Action: "create-user", Target: u.ID, Detail: "username=" + u.Username + " role=" + u.Role})
	return u, nil
}
