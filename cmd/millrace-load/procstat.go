package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat.
// It is part of Linux's user ABI (100 on every architecture Go supports),
// so it needs no sysconf(_SC_CLK_TCK), which would need cgo.
const clockTicks = 100

// memory reads a process's resident set size and its peak (VmRSS and
// VmHWM in /proc/PID/status), in bytes.
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (rss, peak int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	found := 0
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), "kB")), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc status %s: %q", key, val)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("/proc status has no VmRSS and VmHWM")
	}
	return rss, peak, nil
}

// resetPeak sets a process's VmHWM back to its current RSS (Linux 4.0+),
// so that the peak read after the measurement is the window's, not the
// first start's compilation of the built-in modules.
func resetPeak(pid int) error {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/clear_refs", pid), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString("5")
	return err
}

// procStat is what the driver needs from /proc/PID/stat.
type procStat struct {
	ppid int
	// cpu is user + system time of the process itself; children is that
	// of its children that have exited and been waited for.
	cpu, children time.Duration
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat reads /proc/PID/stat. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself, so the fields
// are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, errors.New("/proc stat: too few fields")
	}
	n := make([]int64, 5)
	for j, field := range []int{4, 14, 15, 16, 17} { // ppid, utime, stime, cutime, cstime
		v, err := strconv.ParseInt(f[field-3], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("/proc stat field %d: %w", field, err)
		}
		n[j] = v
	}
	tick := time.Second / clockTicks
	return procStat{ppid: int(n[0]), cpu: time.Duration(n[1]+n[2]) * tick, children: time.Duration(n[3]+n[4]) * tick}, nil
}

// cpuTime is the CPU time of a process (user + system). With tree, it
// also counts its live children and those it has reaped: what a
// PostgreSQL postmaster and its backends spent together.
func cpuTime(pid int, tree bool) (time.Duration, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	total := st.cpu
	if !tree {
		return total, nil
	}
	total += st.children
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		child, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil || child == pid {
			continue
		}
		if cs, err := readStat(child); err == nil && cs.ppid == pid {
			total += cs.cpu // a backend gone meanwhile is simply missed
		}
	}
	return total, nil
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
