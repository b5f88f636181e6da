package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A start that fails because the port is taken leaves no database behind: not
// the file, its WAL, nor the lock file.
func TestServePortBusyCreatesNoDatabase(t *testing.T) {
	dir := copyFlows(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	db := filepath.Join(dir, "dev.db")
	var out, errOut bytes.Buffer
	code := run([]string{"serve", "--dev", "--listen", busy.Addr().String(), "--db", db, filepath.Join(dir, "flows")}, &out, &errOut)
	if code != exitFailed || !strings.Contains(errOut.String(), "listen") {
		t.Fatalf("exit %d, want %d with the listen error; stderr:\n%s", code, exitFailed, errOut.String())
	}
	for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
		if _, err := os.Stat(db + suffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed start (%v)", filepath.Base(db+suffix), err)
		}
	}
}

// A clean stop (SIGTERM) removes the lock file; the database stays.
func TestServeCleanStopRemovesLockFile(t *testing.T) {
	dir := copyFlows(t)
	addr := freePort(t)
	db := filepath.Join(dir, "dev.db")
	cmd := funnelCmd(t, dir, nil, "serve", "--dev", "--listen", addr, "--db", db)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "readiness", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if _, err := os.Stat(db + ".lock"); err != nil {
		t.Fatalf("no lock file while serving: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := waitExit(cmd, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if _, err := os.Stat(db + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file left after a clean stop (%v)", err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("the database itself must stay: %v", err)
	}
}

func waitExit(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return errors.New("did not stop in time")
	}
}

// The files a database leaves beside it are never committed by accident.
func TestGitignoreCoversDatabaseFiles(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"funnel.db", "funnel.db-wal", "funnel.db-shm", "funnel.db.lock", "data/dev.db.lock"} {
		cmd := exec.Command("git", "-C", root, "check-ignore", "-q", "--no-index", name)
		if err := cmd.Run(); err != nil {
			t.Errorf("%s is not ignored by .gitignore (%v)", name, err)
		}
	}
}
