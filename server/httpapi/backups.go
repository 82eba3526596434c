package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/millrace/millrace/server/auth"
)

type createBackupInput struct {
	Body struct {
		Recipients []string `json:"recipients,omitempty" maxItems:"64" doc:"age public keys (age1…) the backup is encrypted to; anyone holding one of the matching identities can restore it."`
		Passphrase string   `json:"passphrase,omitempty" maxLength:"1024" writeOnly:"true" doc:"Encrypt to this passphrase instead (age scrypt); cannot be combined with recipients. Send it over HTTPS only."`
	}
}

type storedBackup struct {
	Name      string    `json:"name" example:"millrace-20261124T020000.000Z.age"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
}

type listBackupsOutput struct {
	Body struct {
		Backups []storedBackup `json:"backups" doc:"The scheduled backups in the server's backup folder, newest first; empty when no schedule is configured."`
	}
}

type backupNamePath struct {
	Name string `path:"name" pattern:"^millrace-[0-9]{8}T[0-9]{6}(\\.[0-9]{3})?Z\\.age$" doc:"A scheduled backup's file name, as GET /v1/backups lists it."`
}

var ageFile = map[string]*huma.MediaType{"application/octet-stream": {Schema: &huma.Schema{Type: "string", Format: "binary",
	Description: "An age-encrypted Millrace backup; restore it with millrace backup restore."}}}

// backupRecipients turns the request into age recipients, naming the
// field at fault.
func backupRecipients(in *createBackupInput) ([]age.Recipient, error) {
	if in.Body.Passphrase != "" {
		if len(in.Body.Recipients) > 0 {
			return nil, huma.Error422UnprocessableEntity("give a passphrase or recipients, not both", &huma.ErrorDetail{Location: "body.passphrase", Message: "a passphrase cannot be combined with recipients (age allows a passphrase only alone)"})
		}
		r, err := age.NewScryptRecipient(in.Body.Passphrase)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error(), &huma.ErrorDetail{Location: "body.passphrase", Message: err.Error()})
		}
		return []age.Recipient{r}, nil
	}
	if len(in.Body.Recipients) == 0 {
		return nil, huma.Error422UnprocessableEntity("a backup needs a passphrase or at least one recipient", &huma.ErrorDetail{Location: "body.recipients", Message: "give age public keys (age1…) or a passphrase"})
	}
	out := make([]age.Recipient, 0, len(in.Body.Recipients))
	for i, s := range in.Body.Recipients {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(s))
		if err != nil {
			return nil, huma.Error422UnprocessableEntity("recipient is not an age public key", &huma.ErrorDetail{Location: fmt.Sprintf("body.recipients[%d]", i), Message: "not an age public key (age1…): " + err.Error(), Value: s})
		}
		out = append(out, r)
	}
	return out, nil
}

func registerBackups(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "create-backup", Method: http.MethodPost, Path: "/v1/backups", Tags: []string{"backups"},
		Summary: "Stream an end-to-end-encrypted backup",
		Description: "Snapshots the database consistently while the server runs and streams it with the data directory's files (secret key, datasets, trained models), encrypted with age to the given public keys or passphrase: the server keeps no copy and cannot read the result without an identity. " +
			"Restore it with `millrace backup restore -data NEWDIR -i FILE`. An error after the first bytes cuts the stream short, which a restore detects (the manifest closes the archive).",
		Errors:    []int{http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
		Responses: map[string]*huma.Response{"200": {Description: "The encrypted backup.", Content: ageFile}},
	}, auth.ScopeBackupsAdmin), func(ctx context.Context, in *createBackupInput) (*huma.StreamResponse, error) {
		if d.Backups == nil {
			return nil, huma.Error503ServiceUnavailable("backups are not available on this server")
		}
		rs, err := backupRecipients(in)
		if err != nil {
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			name := "millrace-" + time.Now().UTC().Format("20060102T150405Z") + ".age"
			hctx.SetHeader("Content-Type", "application/octet-stream")
			hctx.SetHeader("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
			hctx.SetHeader("X-Content-Type-Options", "nosniff")
			// A large backup outlasts the server's write timeout, which
			// is sized for API calls.
			if _, w := humago.Unwrap(hctx); w != nil {
				_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
			}
			hctx.SetStatus(http.StatusOK)
			if _, err := d.Backups.Write(hctx.Context(), hctx.BodyWriter(), rs...); err != nil {
				slog.ErrorContext(ctx, "streaming a backup failed; the client got a cut archive, which a restore refuses", "err", err)
			}
		}}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-backups", Method: http.MethodGet, Path: "/v1/backups", Tags: []string{"backups"},
		Summary: "List the scheduled backups",
	}, auth.ScopeBackupsAdmin), func(ctx context.Context, _ *struct{}) (*listBackupsOutput, error) {
		out := &listBackupsOutput{}
		out.Body.Backups = []storedBackup{}
		if d.Backups == nil {
			return out, nil
		}
		list, err := d.Backups.List()
		if err != nil {
			return nil, problem(ctx, err)
		}
		for _, b := range list {
			out.Body.Backups = append(out.Body.Backups, storedBackup{Name: b.Name, Size: b.Size, CreatedAt: b.CreatedAt})
		}
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "get-backup", Method: http.MethodGet, Path: "/v1/backups/{name}", Tags: []string{"backups"},
		Summary:   "Download a scheduled backup",
		Errors:    []int{http.StatusNotFound},
		Responses: map[string]*huma.Response{"200": {Description: "The encrypted backup, as written by the schedule.", Content: ageFile}},
	}, auth.ScopeBackupsAdmin), func(ctx context.Context, in *backupNamePath) (*huma.StreamResponse, error) {
		if d.Backups == nil {
			return nil, huma.Error404NotFound("no backup " + in.Name)
		}
		f, err := d.Backups.Open(in.Name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, huma.Error404NotFound("no backup " + in.Name)
		}
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			defer f.Close()
			hctx.SetHeader("Content-Type", "application/octet-stream")
			hctx.SetHeader("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": in.Name}))
			if fi, err := f.Stat(); err == nil {
				hctx.SetHeader("Content-Length", fmt.Sprint(fi.Size()))
			}
			if _, w := humago.Unwrap(hctx); w != nil {
				_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
			}
			hctx.SetStatus(http.StatusOK)
			io.Copy(hctx.BodyWriter(), f)
		}}, nil
	})
}
