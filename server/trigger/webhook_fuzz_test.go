package trigger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/millrace/millrace/server/trigger"
)

// FuzzWebhookBody delivers arbitrary bodies (and Idempotency-Keys) to a
// real webhook trigger on a real store: a body that is JSON becomes the
// run's input unchanged, anything else is refused with a PayloadError and
// starts nothing; nothing panics.
func FuzzWebhookBody(f *testing.F) {
	fx := setup(f, false)
	fx.publish(f, "hooked")
	svc := fx.service(nil)
	hook, err := svc.Create(context.Background(), "hooked", trigger.Spec{Kind: trigger.KindWebhook})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{`{"a":1}`, `[1,2,3]`, `"x"`, ``, `   `, `{"a":`, "\xff\xfe", `{"files":{"f":{"filepath":"/etc/passwd"}}}`, `null`, "1e999999", `{"a":"\u0000"}`} {
		f.Add([]byte(seed), "")
	}
	f.Add([]byte(`{}`), "key-1")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		ctx := context.Background()
		before := len(fx.runsOf(t, "hooked"))
		got, err := svc.Deliver(ctx, trigger.Delivery{TriggerID: hook.ID, Secret: hook.Secret, Body: body, IdempotencyKey: key})
		var pe *trigger.PayloadError
		if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
			if !errors.As(err, &pe) {
				t.Fatalf("a body that is not JSON was not refused as such: %v", err)
			}
			if n := len(fx.runsOf(t, "hooked")); n != before {
				t.Fatalf("a refused body started a run")
			}
			return
		}
		if err != nil {
			// An Idempotency-Key the service refuses is a clear error,
			// not a payload problem.
			if errors.As(err, &pe) {
				t.Fatalf("valid JSON refused: %v", err)
			}
			return
		}
		want := json.RawMessage("null")
		if len(bytes.TrimSpace(body)) > 0 {
			want = body
		}
		if key == "" && !jsonEqual(got.Run.Input, want) {
			t.Fatalf("the run's input %s is not the body %s", got.Run.Input, want)
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
