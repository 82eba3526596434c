package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/millrace/millrace/server/store"
)

// ErrBadCredentials means a sign-in failed: unknown user, wrong password,
// disabled user or no password set. Which of these is not said.
var ErrBadCredentials = errors.New("wrong username or password")

// usernamePattern: lower case, so that "Admin" and "admin" cannot be two
// users (sign-in lowercases what is typed).
var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// UsernameRule describes usernamePattern to people.
const UsernameRule = "1 to 64 characters: lower-case letters, digits, and . _ @ - (not first)"

// NormalizeUsername is how a typed username is looked up.
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ValidUsername reports whether a username may be created.
func ValidUsername(s string) bool { return usernamePattern.MatchString(s) }

// Users manages console users and checks their passwords.
type Users struct {
	store  store.Store
	Params PasswordParams
}

// NewUsers returns a user service hashing with DefaultPasswordParams.
func NewUsers(s store.Store) *Users { return &Users{store: s, Params: DefaultPasswordParams} }

// Create makes a user after checking the username, role and password.
func (u *Users) Create(ctx context.Context, username, password, role string) (store.User, error) {
	if !ValidUsername(username) {
		return store.User{}, fmt.Errorf("username %q: want %s", username, UsernameRule)
	}
	if !ValidRole(role) {
		return store.User{}, fmt.Errorf("unknown role %q; roles are %v", role, Roles)
	}
	if err := CheckPasswordPolicy(password); err != nil {
		return store.User{}, err
	}
	hash, err := HashPassword(password, u.Params)
	if err != nil {
		return store.User{}, err
	}
	rec := store.User{ID: NewUserID(), Username: username, Role: role, PasswordHash: hash, CreatedAt: time.Now().UTC()}
	rec.UpdatedAt = rec.CreatedAt
	if err := u.store.CreateUser(ctx, rec); err != nil {
		return store.User{}, err
	}
	return rec, nil
}

// Authenticate checks a username and password. It does the same argon2id
// work whether or not the user exists, so timing does not tell.
func (u *Users) Authenticate(ctx context.Context, username, password string) (store.User, error) {
	rec, err := u.store.UserByName(ctx, NormalizeUsername(username))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	ok := VerifyPassword(rec.PasswordHash, password)
	if err != nil || !ok || rec.Disabled {
		return store.User{}, ErrBadCredentials
	}
	return rec, nil
}

// SetPassword replaces a user's password and ends their sessions.
func (u *Users) SetPassword(ctx context.Context, rec store.User, password string) (store.User, error) {
	if err := CheckPasswordPolicy(password); err != nil {
		return rec, err
	}
	hash, err := HashPassword(password, u.Params)
	if err != nil {
		return rec, err
	}
	rec.PasswordHash = hash
	// Only the hash is written: the rest of rec may be stale by now (the
	// hashing is slow), and writing it back would undo a racing change,
	// such as the user being disabled.
	if err := u.store.ChangeUser(ctx, rec.ID, store.UserChange{PasswordHash: &hash}); err != nil {
		return rec, err
	}
	return rec, u.store.DeleteUserSessions(ctx, rec.ID)
}
