package trigger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/store"
)

// Limits of a webhook call.
const (
	// MaxBodyBytes caps a webhook body, which becomes the run input.
	MaxBodyBytes = 1 << 20
	// MaxClockSkew is how far X-Millrace-Timestamp may be from the
	// server's clock: a captured signed call cannot be replayed later.
	MaxClockSkew = 5 * time.Minute
	// MaxIdempotencyKeyBytes caps an Idempotency-Key.
	MaxIdempotencyKeyBytes = 255
)

// Delivery is one call of a webhook, as it arrived.
type Delivery struct {
	TriggerID      string
	Secret         string // X-Millrace-Secret
	Signature      string // X-Millrace-Signature
	Timestamp      string // X-Millrace-Timestamp
	IdempotencyKey string // empty for none
	Body           []byte // JSON, the run input; empty means null
}

// Delivered is the run a webhook call started (or, for a repeated
// Idempotency-Key, had started).
type Delivered struct {
	Run *engine.RunView
	// Sync says the caller waits for the run: then Run is finished unless
	// the trigger's timeout passed first.
	Sync bool
}

// ErrUnauthorized refuses a webhook call without valid credentials. An
// unknown trigger gets the same answer, so the endpoint does not tell
// strangers which trigger ids exist.
var ErrUnauthorized = errors.New("unknown trigger, or missing or wrong credentials: send the trigger's secret in X-Millrace-Secret, " +
	"or for an hmac trigger X-Millrace-Timestamp (Unix seconds, within 5 minutes of the server's clock) and X-Millrace-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + \".\" + body)>")

// ErrInProgress means another call with the same Idempotency-Key is still
// starting its run; retrying shortly returns that run.
var ErrInProgress = errors.New("a call with this Idempotency-Key is still starting its run; retry in a moment")

// PayloadError refuses a body that is not JSON.
type PayloadError struct{ Msg string }

func (e *PayloadError) Error() string { return e.Msg }

// Deliver authenticates a webhook call and starts a run with its body as
// input; a sync webhook also waits for the run. A call repeating an
// Idempotency-Key gets the run of the first call instead of a new one.
func (s *Service) Deliver(ctx context.Context, d Delivery) (*Delivered, error) {
	t, cfg, err := s.authenticate(ctx, d)
	if err != nil {
		return nil, err
	}
	input := json.RawMessage("null")
	if len(bytes.TrimSpace(d.Body)) > 0 {
		if !json.Valid(d.Body) {
			return nil, &PayloadError{"the body is not valid JSON; it becomes the run's input"}
		}
		input = d.Body
	}
	// A sync call waits for its run: it executes here at once when it can
	// (engine.Runs.StartNow), rather than round-tripping through the queue.
	start := s.startRun
	if cfg.Mode == ModeSync {
		start = s.startRunNow
	}
	var run *engine.RunView
	if d.IdempotencyKey == "" {
		run, err = start(ctx, t, input)
	} else {
		run, err = s.startOnce(ctx, t, d.IdempotencyKey, input, start)
	}
	if err != nil {
		return nil, err
	}
	out := &Delivered{Run: run, Sync: cfg.Mode == ModeSync}
	if out.Sync && !slices.Contains(followable, run.Status) {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.TimeoutMS)*time.Millisecond)
		defer cancel()
		v, err := s.runs.Wait(wctx, run.ID)
		if v != nil {
			out.Run = v
		}
		// Past the timeout the caller gets the run id to follow up on.
		if err != nil && !(errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
			return nil, err
		}
	}
	return out, nil
}

// authenticate finds the webhook trigger and checks the call's
// credentials. Every refusal is ErrUnauthorized; the log says why.
func (s *Service) authenticate(ctx context.Context, d Delivery) (store.Trigger, WebhookConfig, error) {
	var cfg WebhookConfig
	t, err := s.store.Trigger(ctx, d.TriggerID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Kind != KindWebhook) {
		s.logger.InfoContext(ctx, "webhook call refused: no such webhook trigger", "trigger", d.TriggerID)
		return t, cfg, ErrUnauthorized
	}
	if err != nil {
		return t, cfg, err
	}
	if err := json.Unmarshal(t.Config, &cfg); err != nil {
		return t, cfg, fmt.Errorf("stored config of trigger %s is malformed: %w", t.ID, err)
	}
	secret, err := s.vault.Open(secretAD(t.ID), t.Secret)
	if err != nil {
		return t, cfg, err
	}
	switch cfg.Auth {
	case AuthHMAC:
		err = verifySignature(secret, d.Timestamp, d.Signature, d.Body, s.now())
	default:
		// Comparing digests keeps the comparison constant-time whatever
		// the lengths.
		given, want := sha256.Sum256([]byte(d.Secret)), sha256.Sum256(secret)
		if d.Secret == "" || subtle.ConstantTimeCompare(given[:], want[:]) != 1 {
			err = errors.New("missing or wrong X-Millrace-Secret")
		}
	}
	if err != nil {
		s.logger.InfoContext(ctx, "webhook call refused", "trigger", t.ID, "reason", err)
		return t, cfg, ErrUnauthorized
	}
	return t, cfg, nil
}

// Sign returns the X-Millrace-Signature of a body sent with the given
// X-Millrace-Timestamp, as a caller of an hmac webhook computes it.
func Sign(secret, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac([]byte(secret), timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// verifySignature checks an hmac webhook's headers: a fresh timestamp and
// a signature over timestamp and body.
func verifySignature(secret []byte, timestamp, signature string, body []byte, now time.Time) error {
	at, err := parseTimestamp(timestamp)
	if err != nil {
		return err
	}
	if skew := now.Sub(at); skew > MaxClockSkew || skew < -MaxClockSkew {
		return fmt.Errorf("X-Millrace-Timestamp is %s away from the server's clock, more than %s", skew.Round(time.Second), MaxClockSkew)
	}
	sig, err := parseSignature(signature)
	if err != nil {
		return err
	}
	if !hmac.Equal(sig, mac(secret, timestamp, body)) {
		return errors.New("X-Millrace-Signature does not match the body")
	}
	return nil
}

// parseTimestamp reads X-Millrace-Timestamp: Unix seconds, decimal digits
// only (no sign, no fraction), so that one instant has few spellings.
func parseTimestamp(h string) (time.Time, error) {
	if h == "" {
		return time.Time{}, errors.New("missing X-Millrace-Timestamp")
	}
	if len(h) > 12 || strings.TrimLeft(h, "0123456789") != "" {
		return time.Time{}, errors.New("X-Millrace-Timestamp is not Unix seconds")
	}
	n, err := strconv.ParseInt(h, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("X-Millrace-Timestamp is not Unix seconds")
	}
	return time.Unix(n, 0), nil
}

// parseSignature reads X-Millrace-Signature: "sha256=" and 64 hex digits.
func parseSignature(h string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(h), "sha256=")
	if !ok {
		if h == "" {
			return nil, errors.New("missing X-Millrace-Signature")
		}
		return nil, errors.New(`X-Millrace-Signature does not start with "sha256="`)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil || len(sig) != sha256.Size {
		return nil, errors.New("X-Millrace-Signature is not 64 hex digits after sha256=")
	}
	return sig, nil
}

// Idempotency keys whose run is still being started after this long
// belong to a call that died: a later call with the key takes over.
const reservationTTL = time.Minute

// inProgressWait bounds how long a call waits for another call with the
// same key to start its run.
const inProgressWait = 10 * time.Second

// startOnce starts a run for the first call with an Idempotency-Key and
// returns that run to later calls with the key. The key is reserved in
// the store before the run starts, so that concurrent calls, in this or
// another process, start one run between them.
func (s *Service) startOnce(ctx context.Context, t store.Trigger, key string, input json.RawMessage,
	start func(context.Context, store.Trigger, any) (*engine.RunView, error)) (*engine.RunView, error) {
	// Keys are stored hashed: bounded in size, and a client's own
	// strings do not sit in the database.
	sum := sha256.Sum256([]byte(key))
	key = hex.EncodeToString(sum[:])
	deadline := time.Now().Add(inProgressWait)
	for {
		existing, created, err := s.store.RecordDelivery(ctx, t.ID, key, "")
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, ErrUnauthorized // deleted since authentication
		case err != nil:
			return nil, err
		case created:
			bg := context.WithoutCancel(ctx)
			run, err := start(ctx, t, input)
			if err != nil {
				// Free the key, so that a retry can start the run.
				if _, ferr := s.store.ForgetDelivery(bg, t.ID, key, time.Now().Add(time.Hour)); ferr != nil {
					s.logger.Warn("freeing an idempotency key", "trigger", t.ID, "err", ferr)
				}
				return nil, err
			}
			if err := s.store.SetDeliveryRun(bg, t.ID, key, run.ID); err != nil {
				// The run started; a repeat of this call after the
				// reservation expires may start another.
				s.logger.Warn("recording a webhook delivery", "trigger", t.ID, "run", run.ID, "err", err)
			}
			return run, nil
		case existing != "":
			return s.runs.Get(ctx, existing)
		}
		// Another call holds the key and is starting the run.
		if gone, err := s.store.ForgetDelivery(ctx, t.ID, key, time.Now().Add(-reservationTTL)); err != nil {
			return nil, err
		} else if gone {
			continue
		}
		if time.Now().After(deadline) {
			return nil, ErrInProgress
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
