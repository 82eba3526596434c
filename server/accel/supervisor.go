// Package accel connects the server to its accelerator service (DESIGN
// decision 5): it supervises a millrace-accel child process on a Unix
// socket, or points at a remote Open Inference Protocol server (another
// millrace-accel, NVIDIA Triton, KServe); it keeps the model registry
// that the accelerator serves; and it implements sandbox.Accel, through
// which the tensor ABI's host functions run models.
package accel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/server/sandbox"
)

// Mode says whether the server runs the accelerator as a child process.
type Mode string

// Modes, as -accel and MILLRACE_ACCEL spell them.
const (
	// ModeAuto starts the child when its binary and the ONNX Runtime
	// library are found, and otherwise reports the accelerator
	// unavailable, saying how to build them.
	ModeAuto Mode = "auto"
	// ModeOn requires the child: the server does not start without its
	// binary and library.
	ModeOn Mode = "on"
	// ModeOff runs no accelerator.
	ModeOff Mode = "off"
)

// ParseMode reads a mode; empty is ModeAuto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeOn, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("accel mode %q: want auto, on or off", s)
}

// LibraryRelPath is where `make accel-deps` puts the ONNX Runtime library
// (accel/sessions.DefaultLibraryPath, which this cgo-free package cannot
// import), relative to the working directory or to bin/..
const LibraryRelPath = "build/cache/onnxruntime/1.24.1/libonnxruntime.so.1"

// BinaryName is the accelerator's executable.
const BinaryName = "millrace-accel"

// buildHint is what to do when the child cannot be started.
const buildHint = "run `make accel accel-deps` (builds bin/millrace-accel and fetches the ONNX Runtime library), then restart the server; or point MILLRACE_ACCEL_URL at a running accelerator; MILLRACE_ACCEL=off hides this"

// Config says where the accelerator is.
type Config struct {
	Mode Mode
	// URL, when set, is a remote Open Inference Protocol server
	// ("http://host:port"); no child is started. Token is its bearer
	// token.
	URL   string
	Token string
	// Binary is millrace-accel; empty looks beside the server's
	// executable, then on PATH.
	Binary string
	// Library is the ONNX Runtime library; empty takes MILLRACE_ORT_LIB,
	// then LibraryRelPath in the working directory or beside bin/.
	Library string
	// Dir holds the child's socket and its model directory: the data
	// directory's accel/ folder.
	Dir string
	// Args are passed to the child after the server's own flags, such as
	// -provider cuda or -idle-unload 0 (accel/README.md lists them).
	Args []string
	// MinBackoff and MaxBackoff bound the wait before a restart; default
	// 200 ms and 30 s. The wait doubles with each crash and starts over
	// once a child ran for a minute.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the child's output and the supervisor's events.
	Logger *slog.Logger
}

// State is where the accelerator stands.
type State string

// States.
const (
	StateDisabled    State = "disabled"    // MILLRACE_ACCEL=off
	StateStarting    State = "starting"    // the child is starting (or restarting)
	StateReady       State = "ready"       // it answers and can run models
	StateUnavailable State = "unavailable" // it cannot run models now: Reason and Fix say why and what to do
)

// Status is the accelerator's state as /readyz and GET /v1/accel show it.
type Status struct {
	State State  `json:"state" enum:"disabled,starting,ready,unavailable" doc:"disabled (MILLRACE_ACCEL=off), starting, ready, or unavailable (reason and fix say why and what to do)."`
	Kind  string `json:"kind" enum:"child,remote,none" doc:"child: a millrace-accel process the server supervises; remote: MILLRACE_ACCEL_URL."`
	// Address is the child's socket or the remote URL.
	Address   string    `json:"address,omitempty" doc:"The child's Unix socket, or the remote server's URL."`
	Reason    string    `json:"reason,omitempty" doc:"Why it is not ready."`
	Fix       string    `json:"fix,omitempty" doc:"How to make it ready."`
	Restarts  int       `json:"restarts" doc:"How many times the child was restarted after it exited."`
	LastError string    `json:"last_error,omitempty" doc:"How the child last exited, with the last lines it wrote."`
	PID       int       `json:"pid,omitempty" doc:"The child's process id."`
	Since     time.Time `json:"since" doc:"When the state last changed."`
}

// Supervisor runs the accelerator child, restarting it when it exits, or
// stands for a remote accelerator. Start once; Stop is safe twice and
// before Start.
type Supervisor struct {
	cfg    Config
	log    *slog.Logger
	token  string
	socket string

	mu        sync.Mutex
	status    Status
	gen       uint64 // counts the children started; 1 for a remote accelerator
	cl        *client.Client
	transport *http.Transport
	checked   time.Time // when a remote's status was last asked
	started   bool
	stop      chan struct{}
	done      chan struct{}
	cleanup   func()
}

// New returns a supervisor; nothing starts until Start.
func New(cfg Config) *Supervisor {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Supervisor{cfg: cfg, log: cfg.Logger.With("component", "accel"), stop: make(chan struct{}), done: make(chan struct{})}
	s.status = Status{State: StateDisabled, Kind: "none", Since: time.Now().UTC(),
		Reason: "local AI is off on this server (MILLRACE_ACCEL=off)", Fix: "start the server with MILLRACE_ACCEL=auto (the default) or on, or set MILLRACE_ACCEL_URL"}
	switch {
	case cfg.URL != "":
		s.status = Status{State: StateStarting, Kind: "remote", Address: cfg.URL, Since: time.Now().UTC()}
	case cfg.Mode != ModeOff:
		s.status = Status{State: StateStarting, Kind: "child", Since: time.Now().UTC()}
	}
	return s
}

// Remote reports whether the accelerator is a remote server, which holds
// its own models.
func (s *Supervisor) Remote() bool { return s.cfg.URL != "" }

// ModelsDir is the child's model directory, which the model registry
// writes; empty for a remote or disabled accelerator.
func (s *Supervisor) ModelsDir() string {
	if s.cfg.URL != "" || s.cfg.Mode == ModeOff {
		return ""
	}
	return filepath.Join(s.cfg.Dir, "models")
}

// Start starts the child (or connects the remote accelerator) and
// returns at once; the child becomes ready in the background. It fails
// only in ModeOn when the binary or the library is missing, or when the
// remote URL is malformed.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("accel: supervisor already started")
	}
	s.started = true
	s.mu.Unlock()
	switch {
	case s.cfg.URL != "":
		cl, err := client.New(s.cfg.URL, client.WithToken(s.cfg.Token))
		if err != nil {
			return fmt.Errorf("MILLRACE_ACCEL_URL: %w", err)
		}
		s.mu.Lock()
		s.cl, s.gen = cl, 1
		s.mu.Unlock()
		close(s.done)
		s.log.Info("using a remote accelerator", "url", s.cfg.URL)
		return nil
	case s.cfg.Mode == ModeOff:
		close(s.done)
		return nil
	}
	bin, lib, err := s.locate()
	if err != nil {
		if s.cfg.Mode == ModeOn {
			close(s.done)
			return fmt.Errorf("accel: %w: %s", err, buildHint)
		}
		s.set(func(st *Status) { st.State, st.Reason, st.Fix = StateUnavailable, err.Error(), buildHint })
		s.log.Warn("local AI is unavailable", "reason", err, "fix", buildHint)
		close(s.done)
		return nil
	}
	if err := s.prepare(); err != nil {
		close(s.done)
		return err
	}
	go s.loop(bin, lib)
	return nil
}

// locate finds the binary and the library.
func (s *Supervisor) locate() (bin, lib string, err error) {
	bin = s.cfg.Binary
	if bin == "" {
		if exe, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(exe), BinaryName); isFile(p) {
				bin = p
			}
		}
	}
	if bin == "" {
		bin, _ = exec.LookPath(BinaryName)
	}
	if bin == "" || !isFile(bin) {
		return "", "", fmt.Errorf("%s is not built (looked beside the server's executable and on PATH)", BinaryName)
	}
	lib = s.cfg.Library
	if lib == "" {
		lib = os.Getenv("MILLRACE_ORT_LIB")
	}
	var looked []string
	if lib == "" {
		candidates := []string{LibraryRelPath}
		if exe, err := os.Executable(); err == nil {
			candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", LibraryRelPath))
		}
		for _, c := range candidates {
			looked = append(looked, c)
			if isFile(c) {
				lib = c
				break
			}
		}
	}
	if lib == "" || !isFile(lib) {
		if lib != "" {
			looked = []string{lib}
		}
		return "", "", fmt.Errorf("the ONNX Runtime library is missing (looked for %s)", strings.Join(looked, ", "))
	}
	if abs, err := filepath.Abs(lib); err == nil {
		lib = abs
	}
	return bin, lib, nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// prepare makes the child's directories, socket path and token.
func (s *Supervisor) prepare() error {
	if err := os.MkdirAll(s.ModelsDir(), 0o700); err != nil {
		return fmt.Errorf("accel: %w", err)
	}
	s.socket = filepath.Join(s.cfg.Dir, "accel.sock")
	// A Unix socket's path has a small limit (108 bytes on Linux): deep
	// data directories get a private temporary folder instead.
	if len(s.socket) > 100 {
		dir, err := os.MkdirTemp("", "millrace-accel-")
		if err != nil {
			return fmt.Errorf("accel: %w", err)
		}
		s.socket = filepath.Join(dir, "accel.sock")
		s.cleanup = func() { os.RemoveAll(dir) }
	}
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	s.token = hex.EncodeToString(token)
	s.set(func(st *Status) { st.Address = "unix:" + s.socket })
	return nil
}

func (s *Supervisor) set(f func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.status.State
	f(&s.status)
	if s.status.State != old {
		s.status.Since = time.Now().UTC()
	}
}

// loop runs children until Stop, waiting longer after each quick crash.
func (s *Supervisor) loop(bin, lib string) {
	defer close(s.done)
	backoff := s.cfg.MinBackoff
	for {
		began := time.Now()
		err := s.runChild(bin, lib)
		select {
		case <-s.stop:
			return
		default:
		}
		if time.Since(began) > time.Minute {
			backoff = s.cfg.MinBackoff
		}
		s.set(func(st *Status) {
			st.State, st.PID, st.Restarts = StateUnavailable, 0, st.Restarts+1
			st.LastError = err.Error()
			st.Reason = fmt.Sprintf("%s exited; restarting it in %s", BinaryName, backoff.Round(time.Millisecond))
			st.Fix = "wait: the server restarts it; if it keeps exiting, see last_error and the server log"
		})
		s.log.Warn("the accelerator exited; restarting it", "err", err, "in", backoff)
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

var errStopped = errors.New("stopped")

// runChild starts one child and returns when it exits (or on Stop, after
// stopping it).
func (s *Supervisor) runChild(bin, lib string) error {
	args := append([]string{"-listen", "unix:" + s.socket, "-models", s.ModelsDir(), "-ort-lib", lib}, s.cfg.Args...)
	cmd := exec.Command(bin, args...)
	// The token travels in the environment, not on the command line that
	// every local user can read in ps.
	cmd.Env = append(os.Environ(), "MILLRACE_ACCEL_TOKEN="+s.token)
	out := &lineLog{log: s.log}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	setParentDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.socket)
		},
		MaxIdleConnsPerHost: 64,
	}
	cl, err := client.New("unix:"+s.socket, client.WithToken(s.token), client.WithHTTPClient(&http.Client{Transport: transport}))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	s.mu.Lock()
	// Connections to the previous child are dead: a new client, and
	// models loaded on the old child are stale (generation).
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	s.gen++
	s.cl, s.transport = cl, transport
	s.mu.Unlock()
	s.set(func(st *Status) { st.State, st.PID, st.Reason, st.Fix = StateStarting, cmd.Process.Pid, "", "" })
	s.log.Info("started the accelerator", "pid", cmd.Process.Pid, "socket", s.socket)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready, interval := false, 10*time.Millisecond
	for {
		var tick <-chan time.Time
		if !ready {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := cl.Ready(ctx)
			cancel()
			switch {
			case err == nil:
				ready = true
				s.set(func(st *Status) { st.State, st.Reason, st.Fix = StateReady, "", "" })
				s.log.Info("the accelerator is ready", "pid", cmd.Process.Pid)
			case client.StatusOf(err) != 0:
				// It serves but cannot run models (library, provider):
				// its message says why; it becomes ready once fixed.
				s.set(func(st *Status) {
					st.State, st.Reason = StateUnavailable, err.Error()
					st.Fix = "fix what the reason names (MILLRACE_ORT_LIB, MILLRACE_ACCEL_PROVIDER); the accelerator notices without a restart"
				})
				interval = time.Second
			default:
				interval = min(2*interval, 250*time.Millisecond) // not listening yet
			}
			if !ready {
				tick = time.After(interval)
			}
		}
		select {
		case err := <-exited:
			return exitError(err, out.tail())
		case <-s.stop:
			terminate(cmd, exited)
			return errStopped
		case <-tick:
		}
	}
}

// exitError words how a child ended, with the last lines it wrote.
func exitError(err error, tail []string) error {
	msg := "exited with status 0"
	if err != nil {
		msg = err.Error()
	}
	if len(tail) > 0 {
		msg += "; its last output: " + strings.Join(tail, " | ")
	}
	return fmt.Errorf("%s %s", BinaryName, msg)
}

// terminate asks the child to stop (SIGTERM: it finishes requests in
// flight), and kills it after 10 s.
func terminate(cmd *exec.Cmd, exited <-chan error) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Stop stops the child and waits for it. Safe twice and before Start.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	started := s.started
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	if started {
		<-s.done
	}
	s.mu.Lock()
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	cleanup := s.cleanup
	s.cleanup = nil
	s.mu.Unlock()
	if cleanup != nil {
		cleanup()
	}
}

// Status returns the accelerator's state. For a remote accelerator it
// asks the server (at most once a second).
func (s *Supervisor) Status(ctx context.Context) Status {
	s.mu.Lock()
	cl, remote, fresh := s.cl, s.cfg.URL != "", time.Since(s.checked) < time.Second
	s.mu.Unlock()
	if remote && cl != nil && !fresh {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cl.Ready(ctx)
		cancel()
		s.set(func(st *Status) {
			st.State, st.Reason, st.Fix = StateReady, "", ""
			if err != nil {
				st.State, st.Reason = StateUnavailable, err.Error()
				st.Fix = "check that the server at MILLRACE_ACCEL_URL runs and that MILLRACE_ACCEL_TOKEN is its token"
			}
		})
		s.mu.Lock()
		s.checked = time.Now()
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// current returns the client and the child's generation when the
// accelerator can take requests, else an error wrapping
// sandbox.ErrAccelBusy that says why.
func (s *Supervisor) current() (*client.Client, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.URL != "" && s.cl != nil {
		return s.cl, s.gen, nil
	}
	if s.status.State != StateReady {
		msg := string(s.status.State)
		if s.status.Reason != "" {
			msg += ": " + s.status.Reason
		}
		return nil, 0, fmt.Errorf("%w (%s)", sandbox.ErrAccelBusy, msg)
	}
	return s.cl, s.gen, nil
}

// Client returns a client of the accelerator when it can take requests,
// else an error that says why (training jobs use it beside inference).
func (s *Supervisor) Client() (*client.Client, error) {
	cl, _, err := s.current()
	return cl, err
}

// generation is the current child's number.
func (s *Supervisor) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// lineLog sends a child's output to the log, a line at a time, and keeps
// the last lines for the status.
type lineLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	buf  []byte
	last []string
}

const maxLineBytes = 4 << 10

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range p {
		if c == '\n' || len(l.buf) >= maxLineBytes {
			l.flush()
			if c == '\n' {
				continue
			}
		}
		l.buf = append(l.buf, c)
	}
	return len(p), nil
}

func (l *lineLog) flush() {
	line := strings.TrimSpace(string(l.buf))
	l.buf = l.buf[:0]
	if line == "" {
		return
	}
	l.log.Info(BinaryName, "out", line)
	l.last = append(l.last, line)
	if len(l.last) > 5 {
		l.last = l.last[1:]
	}
}

func (l *lineLog) tail() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flush()
	return append([]string(nil), l.last...)
}
