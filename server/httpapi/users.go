package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/audit"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/store"
)

type userInfo struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	Role        string    `json:"role" enum:"viewer,operator,editor,admin"`
	Disabled    bool      `json:"disabled"`
	HasPassword bool      `json:"has_password" doc:"Whether the user can sign in with a password (the first start's admin has none until one is set)."`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toUserInfo(u store.User) userInfo {
	return userInfo{ID: u.ID, Username: u.Username, Role: u.Role, Disabled: u.Disabled, HasPassword: u.PasswordHash != "", CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

type userOutput struct {
	Body userInfo
}

type createUserInput struct {
	Body struct {
		Username string `json:"username" minLength:"1" maxLength:"64" pattern:"^[a-z0-9][a-z0-9._@-]{0,63}$" doc:"Lower-case letters, digits, and . _ @ - (not first)."`
		Password string `json:"password" minLength:"12" maxLength:"1024" doc:"At least 12 characters."`
		Role     string `json:"role" enum:"viewer,operator,editor,admin"`
	}
}

type updateUserInput struct {
	UserIDPath
	Body struct {
		Role     *string `json:"role,omitempty" enum:"viewer,operator,editor,admin" doc:"A new role; it applies at once to the user's sessions and tokens."`
		Password *string `json:"password,omitempty" minLength:"12" maxLength:"1024" doc:"A new password; it ends the user's sessions."`
		Disabled *bool   `json:"disabled,omitempty" doc:"true stops the user, their sessions and their tokens; false lets them in again."`
	}
}

// UserIDPath names a user.
type UserIDPath struct {
	ID string `path:"id" pattern:"^usr_[0-9a-f]{16}$" doc:"User id."`
}

type listUsersOutput struct {
	Body struct {
		Users []userInfo `json:"users"`
	}
}

func registerUsers(api huma.API, d *Deps) {
	self := map[string]any{auditSelf: true}
	huma.Register(api, secured(huma.Operation{
		OperationID: "create-user", Method: http.MethodPost, Path: "/v1/users", Tags: []string{"users"},
		Summary: "Create a console user", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict, http.StatusUnprocessableEntity},
		Description: "Roles: viewer reads; operator also runs workflows and invokes modules; editor also uploads modules and edits workflows and triggers; admin does everything. See the README's role table.",
		Metadata:    self,
	}, auth.ScopeUsersAdmin), func(ctx context.Context, in *createUserInput) (*userOutput, error) {
		u, err := d.Users.Create(ctx, in.Body.Username, in.Body.Password, in.Body.Role)
		if err != nil {
			d.Audit.Record(ctx, audit.Event{Action: "create-user", Target: in.Body.Username, Outcome: audit.Failure, Detail: err.Error()})
			return nil, userProblem(ctx, err)
		}
		d.Audit.Record(ctx, audit.Event{Action: "create-user", Target: u.ID, Detail: "username=" + u.Username + " role=" + u.Role})
		return &userOutput{Body: toUserInfo(u)}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-users", Method: http.MethodGet, Path: "/v1/users", Tags: []string{"users"},
		Summary: "List console users",
	}, auth.ScopeUsersAdmin), func(ctx context.Context, _ *struct{}) (*listUsersOutput, error) {
		list, err := d.Store.ListUsers(ctx)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listUsersOutput{}
		out.Body.Users = make([]userInfo, 0, len(list))
		for _, u := range list {
			out.Body.Users = append(out.Body.Users, toUserInfo(u))
		}
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "get-user", Method: http.MethodGet, Path: "/v1/users/{id}", Tags: []string{"users"},
		Summary: "Get a console user", Errors: []int{http.StatusNotFound},
	}, auth.ScopeUsersAdmin), func(ctx context.Context, in *UserIDPath) (*userOutput, error) {
		u, err := d.Store.User(ctx, in.ID)
		if err != nil {
			return nil, userProblem(ctx, err)
		}
		return &userOutput{Body: toUserInfo(u)}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "update-user", Method: http.MethodPatch, Path: "/v1/users/{id}", Tags: []string{"users"},
		Summary: "Change a user's role or password, or disable or enable them", Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity},
		Metadata: self,
	}, auth.ScopeUsersAdmin), func(ctx context.Context, in *updateUserInput) (*userOutput, error) {
		u, err := d.Store.User(ctx, in.ID)
		if err != nil {
			return nil, userProblem(ctx, err)
		}
		who, _ := callerFrom(ctx)
		var changes []string
		// Only the fields this request changes are written: writing back
		// the whole user as read would undo a racing change of another
		// field (a password reset re-enabling a user just disabled).
		var change store.UserChange
		if r := in.Body.Role; r != nil && *r != u.Role {
			if who.UserID == u.ID {
				return nil, huma.Error409Conflict("you cannot change your own role; ask another admin")
			}
			changes = append(changes, "role="+u.Role+"->"+*r)
			u.Role, change.Role = *r, r
		}
		if dis := in.Body.Disabled; dis != nil && *dis != u.Disabled {
			if who.UserID == u.ID {
				return nil, huma.Error409Conflict("you cannot disable yourself; ask another admin")
			}
			changes = append(changes, fmt.Sprintf("disabled=%t", *dis))
			u.Disabled, change.Disabled = *dis, dis
		}
		if change != (store.UserChange{}) {
			if err := d.Store.ChangeUser(ctx, u.ID, change); err != nil {
				return nil, userProblem(ctx, err)
			}
		}
		if u.Disabled {
			if err := d.Store.DeleteUserSessions(ctx, u.ID); err != nil {
				return nil, problem(ctx, err)
			}
		}
		if pw := in.Body.Password; pw != nil {
			if u, err = d.Users.SetPassword(ctx, u, *pw); err != nil {
				return nil, userProblem(ctx, err)
			}
			changes = append(changes, "password changed")
		}
		if len(changes) > 0 {
			d.Audit.Record(ctx, audit.Event{Action: "update-user", Target: u.ID, Detail: u.Username + ": " + strings.Join(changes, ", ")})
		}
		u, err = d.Store.User(ctx, u.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &userOutput{Body: toUserInfo(u)}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-user", Method: http.MethodDelete, Path: "/v1/users/{id}", Tags: []string{"users"},
		Summary: "Delete a user with their tokens and sessions", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound, http.StatusConflict},
		Metadata: self,
	}, auth.ScopeUsersAdmin), func(ctx context.Context, in *UserIDPath) (*struct{}, error) {
		if who, _ := callerFrom(ctx); who.UserID == in.ID {
			return nil, huma.Error409Conflict("you cannot delete yourself; ask another admin")
		}
		u, err := d.Store.User(ctx, in.ID)
		if err != nil {
			return nil, userProblem(ctx, err)
		}
		if err := d.Store.DeleteUser(ctx, in.ID); err != nil {
			return nil, userProblem(ctx, err)
		}
		d.Audit.Record(ctx, audit.Event{Action: "delete-user", Target: in.ID, Detail: "username=" + u.Username})
		return nil, nil
	})
}

func userProblem(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return huma.Error404NotFound("no such user")
	case errors.Is(err, store.ErrConflict):
		return huma.Error409Conflict("that username is taken", &huma.ErrorDetail{Location: "body.username", Message: "taken"})
	case errors.Is(err, auth.ErrPasswordPolicy):
		return huma.Error422UnprocessableEntity(err.Error(), &huma.ErrorDetail{Location: "body.password", Message: err.Error()})
	}
	return problem(ctx, err)
}

type auditEntry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	ActorID   string    `json:"actor_id" doc:"usr_… or tok_…; empty for a failed sign-in (see actor_name) or the server itself."`
	ActorName string    `json:"actor_name"`
	Action    string    `json:"action" doc:"The operation id (upload-module, put-grant, …), or login, logout."`
	Target    string    `json:"target"`
	Outcome   string    `json:"outcome" enum:"success,failure,denied"`
	ClientIP  string    `json:"client_ip"`
	Detail    string    `json:"detail,omitempty"`
}

type listAuditInput struct {
	Actor  string    `query:"actor" maxLength:"200" doc:"Only entries by this actor: a user or token id, or a name."`
	Action string    `query:"action" maxLength:"100" doc:"Only entries of this action."`
	Since  time.Time `query:"since" doc:"Only entries at or after this time (RFC 3339)."`
	Until  time.Time `query:"until" doc:"Only entries before this time (RFC 3339)."`
	Cursor string    `query:"cursor" pattern:"^[0-9]{0,19}$" doc:"The next_cursor of the previous page."`
	Limit  int       `query:"limit" minimum:"0" maximum:"500" doc:"Page size; default 50."`
}

type listAuditOutput struct {
	Body struct {
		Entries    []auditEntry `json:"entries"`
		NextCursor string       `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
	}
}

func registerAudit(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-audit", Method: http.MethodGet, Path: "/v1/audit", Tags: []string{"audit"},
		Summary:     "Read the audit log, newest first, with filters and cursor pagination",
		Description: "The log is append-only: no operation changes or deletes an entry. Entries older than the retention period (a year by default) are dropped.",
	}, auth.ScopeAuditRead), func(ctx context.Context, in *listAuditInput) (*listAuditOutput, error) {
		limit := in.Limit
		if limit == 0 {
			limit = 50
		}
		var before int64
		if in.Cursor != "" {
			if _, err := fmt.Sscan(in.Cursor, &before); err != nil {
				return nil, huma.Error422UnprocessableEntity("bad cursor", &huma.ErrorDetail{Location: "query.cursor", Message: "not a cursor this server returned", Value: in.Cursor})
			}
		}
		list, err := d.Store.ListAudit(ctx, store.AuditFilter{Actor: in.Actor, Action: in.Action, Since: in.Since, Until: in.Until, Before: before, Limit: limit + 1})
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listAuditOutput{}
		if len(list) > limit {
			list = list[:limit]
			out.Body.NextCursor = fmt.Sprint(list[limit-1].ID)
		}
		out.Body.Entries = make([]auditEntry, 0, len(list))
		for _, e := range list {
			out.Body.Entries = append(out.Body.Entries, auditEntry(e))
		}
		return out, nil
	})
}
