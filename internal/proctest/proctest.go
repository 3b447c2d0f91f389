// Package proctest helps tests that run real child processes, such as
// exporter plugins: it builds Go programs and finds processes left behind,
// by reading /proc (Linux).
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Proc is one running process.
type Proc struct {
	PID, PPID int
	State     string // R, S, Z, ...
	Exe       string // the executable's path; empty when unreadable
}

func (p Proc) String() string {
	return fmt.Sprintf("pid %d (ppid %d, state %s, exe %s)", p.PID, p.PPID, p.State, p.Exe)
}

// List returns every process whose /proc entry could be read.
func List() ([]Proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("proctest: %w (processes are read from Linux's /proc)", err)
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		out = append(out, Proc{PID: pid, PPID: ppid, State: fields[0], Exe: exe})
	}
	return out, nil
}

// Leftovers returns the processes, other than this one, that are its
// children or run an executable under one of dirs (compared as path
// prefixes): what a test that stopped every process it started must not
// find. Zombies count: an unreaped child is a leak too.
func Leftovers(dirs ...string) ([]Proc, error) {
	all, err := List()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []Proc
	for _, p := range all {
		if p.PID == self {
			continue
		}
		match := p.PPID == self
		for _, d := range dirs {
			if d != "" && strings.HasPrefix(p.Exe, d) {
				match = true
			}
		}
		if match {
			out = append(out, p)
		}
	}
	return out, nil
}

// Build compiles the Go package pkg (an import path or a directory
// relative to the working directory) into dir/name and returns its path.
// The compiler's output is part of the error.
func Build(dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, buf.Bytes())
	}
	return out, nil
}
