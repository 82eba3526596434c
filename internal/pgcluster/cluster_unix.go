//go:build unix

// Package pgcluster starts a throwaway PostgreSQL server from the
// installed server binaries: a fresh cluster in a temporary directory, on
// a free loopback port, stopped and deleted by Stop, and shut down by the
// kernel if the process that started it dies first (Linux). The tests'
// databases (server/internal/pgtest) and the load driver
// (cmd/millrace-load) use it; it lives outside server/internal so that
// both may import it.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const dirPrefix = "millrace-pgtest-"

// Cluster is a throwaway PostgreSQL server owned by this process.
type Cluster struct {
	// URL connects to its "postgres" database as the superuser.
	URL  string
	dir  string // temporary: data directory, socket and log
	cmd  *exec.Cmd
	done chan struct{} // closed when the server has exited
}

// Start runs initdb into a new temporary directory and starts the server
// on a free loopback port. The server is tuned for speed, not durability
// (no fsync); settings ("name=value", passed as -c) come after those and
// override them.
//
// The server is this process's child, started directly rather than
// through pg_ctl (which detaches it), so that it can be told to shut down
// immediately when this process dies, even by SIGKILL or a test timeout's
// panic: no cluster outlives its process. Stopping it is what pg_ctl stop
// -m immediate does: SIGQUIT to the postmaster.
func Start(ctx context.Context, settings ...string) (*Cluster, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	removeStale()

	// initdb and postgres refuse to run as root: run them as the postgres
	// user, in a directory it owns.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, the throwaway cluster needs the postgres user (scripts/ensure-postgres.sh installs it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}

	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir // the caller's working directory may be closed to the postgres user
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb (%s) in %s: %w\n%s\n(the postgres user must be able to reach %s: set TMPDIR elsewhere if not)",
			bin, dir, err, out, os.TempDir()))
	}

	// A port found free may be taken before the server binds it.
	for attempt := 1; ; attempt++ {
		err := c.serve(ctx, bin, data, cred, settings)
		if err == nil {
			return c, nil
		}
		if attempt == 3 || !strings.Contains(c.logTail(), "could not bind") {
			return fail(err)
		}
	}
}

// serve starts the server and waits until it accepts connections.
func (c *Cluster) serve(ctx context.Context, bin, data string, cred *syscall.Credential, settings []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	args := []string{"-D", data,
		"-p", strconv.Itoa(port),
		"-k", c.dir, // its own socket directory, not the system's
		"-c", "listen_addresses=127.0.0.1",
		// Durability buys nothing in a cluster deleted after use.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		// Room for the pools of many parallel tests (100 by default).
		"-c", "max_connections=300",
	}
	for _, s := range settings {
		args = append(args, "-c", s) // a later -c wins
	}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	c.cmd.Dir = c.dir
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	setParentDeathSignal(c.cmd.SysProcAttr)
	c.done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits, not the process: pin this goroutine to its thread
		// for as long as the server runs.
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			close(c.done)
			return
		}
		started <- nil
		c.cmd.Wait()
		close(c.done)
		// Returning while locked ends the thread, which is what we want.
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}

	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(pingCtx, c.URL)
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("postgres exited at start: %s", c.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.kill()
			return fmt.Errorf("postgres did not accept connections within a minute: %v\n%s", err, c.logTail())
		}
	}
}

// Pid is the process id of the server's postmaster; its backends are its
// children.
func (c *Cluster) Pid() int { return c.cmd.Process.Pid }

// Stop shuts the server down at once (no checkpoint: the files are
// deleted next) and removes its directory.
func (c *Cluster) Stop() error {
	c.kill()
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("removing the throwaway cluster: %w", err)
	}
	return nil
}

func (c *Cluster) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	// SIGQUIT is the postmaster's immediate shutdown.
	c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// findBinaries returns the directory holding initdb and postgres: the one
// of initdb on PATH, else the newest /usr/lib/postgresql/N/bin (Debian and
// Ubuntu keep the server binaries off PATH).
func findBinaries() (string, error) {
	return findBinariesIn(os.Getenv("PATH"), "/usr/lib/postgresql/*/bin")
}

func findBinariesIn(path, versionedGlob string) (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, "initdb")
		if _, err := os.Stat(p); err != nil || dir == "" {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real // /usr/local/bin/initdb may link into the real bin directory
		}
		if dir := filepath.Dir(p); has(dir) {
			return dir, nil
		}
	}
	found, _ := filepath.Glob(versionedGlob)
	slices.SortFunc(found, func(a, b string) int { return majorVersion(b) - majorVersion(a) })
	for _, dir := range found {
		if has(dir) {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) are not on PATH nor in /usr/lib/postgresql/*/bin: " +
		"run scripts/ensure-postgres.sh (make test does), or set DATABASE_URL to a server where this user may create schemas")
}

func majorVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// removeStale deletes the directories of throwaway clusters whose
// process died without cleaning up. Their servers are gone already (the
// parent-death signal); one still running is stopped if it is really the
// server of that directory.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), dirPrefix), "-")
		owner, err := strconv.Atoi(pidText)
		if err != nil || owner == os.Getpid() || alive(owner) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && alive(pid) {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if !bytes.Contains(cmdline, []byte(dir)) {
					continue // not ours, or not provably: leave it
				}
				syscall.Kill(pid, syscall.SIGQUIT)
				time.Sleep(time.Second)
			}
		}
		os.RemoveAll(dir)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freePort asks the kernel for an unused loopback port. Another process
// may take it before the server binds it; Start then tries again.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
