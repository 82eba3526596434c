package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// serverProcess is a real `millrace serve` started for one measurement, on
// a fresh data directory and a free loopback port.
type serverProcess struct {
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has exited
	base      string        // http://127.0.0.1:PORT
	pprofBase string        // http://127.0.0.1:PORT of its profiler; empty without
	token     string        // the admin token it printed at first start
	logPath   string        // its stderr (slog), for errors
}

var tokenPattern = regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`)

// readyWait bounds the server's start: the first start of a data
// directory compiles the built-in modules (seconds on a busy machine).
const readyWait = 3 * time.Minute

// startServer runs bin serve in dir and waits until /readyz says the
// built-in modules are installed. databaseURL empty means SQLite in dir.
func startServer(ctx context.Context, bin, dir, databaseURL string, profile bool) (*serverProcess, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	p := &serverProcess{base: "http://" + addr, logPath: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "serve", "-data", data, "-addr", addr)
	// The caller's environment must not choose the database or address
	// behind the flags' back (a DATABASE_URL left exported would turn
	// the SQLite measurement into a PostgreSQL one).
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "DATABASE_URL", "MILLRACE_ADDR", "MILLRACE_DATA", "MILLRACE_PPROF_ADDR", "MILLRACE_RUN_LEASE":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	if databaseURL != "" {
		cmd.Env = append(cmd.Env, "DATABASE_URL="+databaseURL)
	}
	if profile {
		pa, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "MILLRACE_PPROF_ADDR="+pa)
		p.pprofBase = "http://" + pa
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	setParentDeathSignal(cmd.SysProcAttr)
	p.cmd = cmd

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits: pin this goroutine to its thread while the server
		// runs, so that it fires only when this process dies.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.done)
			return
		}
		started <- nil
		cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w (build it with make build, or name it with -server)", bin, err)
	}

	// Drain stdout for as long as the server runs (a full pipe would
	// block it), keeping the first admin token.
	tokens := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if tok := tokenPattern.FindString(sc.Text()); tok != "" {
				select {
				case tokens <- tok:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()

	deadline := time.Now().Add(readyWait)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/readyz", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("the server exited at start: %s", p.logTail())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the server was not ready within %s: %s", readyWait, p.logTail())
		}
	}
	select {
	case p.token = <-tokens:
	case <-time.After(5 * time.Second):
		p.stop()
		return nil, errors.New("the server printed no admin token (is its data directory fresh?)")
	}
	return p, nil
}

func (p *serverProcess) pid() int { return p.cmd.Process.Pid }

// stop asks the server to shut down gracefully, and kills it if it has
// not within 30 s.
func (p *serverProcess) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *serverProcess) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// freeLoopbackAddr asks the kernel for an unused loopback port. Another
// process may take it before the server binds it; the server then fails
// to start, and saying so is enough for a measurement tool.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
