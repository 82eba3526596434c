package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tally is what one phase of load produced.
type tally struct {
	ok        int
	latencies []time.Duration // of successful calls
	errors    map[string]int  // by kind
	examples  []string        // a few error messages, for diagnosis
	elapsed   time.Duration   // from the first call to the last answer
}

func (t *tally) errorCount() int {
	n := 0
	for _, c := range t.errors {
		n += c
	}
	return n
}

// maxExamples bounds the error messages kept.
const maxExamples = 5

// newClient returns an HTTP client that keeps one connection per load
// client alive, as real webhook senders with keep-alive do; the default
// transport keeps only two idle connections per host, and the rest would
// pay a new TCP connection per call (and fill the port range with
// TIME_WAIT).
func newClient(clients int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever HTTP_PROXY says
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        clients,
		MaxIdleConnsPerHost: clients,
		MaxConnsPerHost:     clients,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// drive runs clients concurrent callers against url for d: each posts its
// body, waits for the answer and posts again. No call starts after d;
// calls in flight then finish (each is bounded by the client's timeout),
// so drive returns by d plus one timeout.
func drive(ctx context.Context, hc *http.Client, url, secret string, clients int, d time.Duration) *tally {
	var mu sync.Mutex
	total := &tally{errors: map[string]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Go(func() {
			body, want := requestBody(c), wantText(c)
			var lat []time.Duration
			errs := map[string]int{}
			var examples []string
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				kind, msg := callOnce(ctx, hc, url, secret, body, want)
				if kind == "" {
					lat = append(lat, time.Since(t0))
					continue
				}
				if ctx.Err() != nil {
					break // interrupted: not the server's error
				}
				errs[kind]++
				if len(examples) < maxExamples {
					examples = append(examples, msg)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			total.ok += len(lat)
			total.latencies = append(total.latencies, lat...)
			for k, n := range errs {
				total.errors[k] += n
			}
			for _, m := range examples {
				if len(total.examples) < maxExamples {
					total.examples = append(total.examples, m)
				}
			}
		})
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	return total
}

// callOnce makes one webhook call and checks the answer. It returns ""
// for a success, or the kind of error and a message.
func callOnce(ctx context.Context, hc *http.Client, url, secret string, body []byte, want string) (kind, msg string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "request", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Millrace-Secret", secret)
	res, err := hc.Do(req)
	if err != nil {
		return transportKind(err), err.Error()
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return transportKind(err), err.Error()
	}
	raw = bytes.TrimSpace(raw)
	if res.StatusCode != http.StatusOK {
		// 202: the run was still going at the trigger's timeout; 422:
		// it failed; 503: the sandbox's memory budget was exhausted.
		return fmt.Sprintf("http %d", res.StatusCode), fmt.Sprintf("%s: %.300s", res.Status, raw)
	}
	var a webhookAnswer
	if err := json.Unmarshal(raw, &a); err != nil || a.Status != "succeeded" || a.Output.Reply.Text != want {
		return "wrong answer", fmt.Sprintf("200 with %.300s", raw)
	}
	return "", ""
}

// transportKind names a failed call without its details (addresses,
// ports), so that errors of one kind count together.
func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "client timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	}
	return "transport: " + strings.SplitN(err.Error(), ":", 2)[0]
}

// percentile is the nearest-rank percentile (q in 0..1) of sorted
// durations: the smallest value with at least q of the values at or
// below it.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencyStats are the percentiles of a tally's successful calls.
type latencyStats struct {
	p50, p90, p99, max time.Duration
}

func latencies(t *tally) latencyStats {
	s := slices.Clone(t.latencies)
	slices.Sort(s)
	var l latencyStats
	if len(s) > 0 {
		l = latencyStats{percentile(s, 0.50), percentile(s, 0.90), percentile(s, 0.99), s[len(s)-1]}
	}
	return l
}
