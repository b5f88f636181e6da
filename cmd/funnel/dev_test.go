package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/funnel-dev/funnel/store"
)

// sandboxToken reads the per-start token from the sandbox page, as the page's
// script does.
func sandboxToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/sandbox")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`name="sandbox-token" content="([0-9a-f]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no token in the sandbox page:\n%s", b)
	}
	return string(m[1])
}

// TestDevRefusesProductionCredentials: --dev beside real secrets is refused,
// naming each one set, before anything listens or a database is made.
func TestDevRefusesProductionCredentials(t *testing.T) {
	dir := copyFlows(t)
	cmd := funnelCmd(t, dir, []string{"FUNNEL_ACCESS_TOKEN=EAAG-real", "FUNNEL_APP_SECRET=", "FUNNEL_VERIFY_TOKEN=", "FUNNEL_API_TOKEN=" + strings.Repeat("t", 40)},
		"serve", "--dev", "--listen", freePort(t), "--db", filepath.Join(dir, "dev.db"))
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage {
		t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, out)
	}
	if !strings.Contains(string(out), "FUNNEL_ACCESS_TOKEN, FUNNEL_API_TOKEN") || strings.Contains(string(out), "FUNNEL_APP_SECRET") {
		t.Fatalf("the refusal should name exactly the credentials set:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "dev.db")); !os.IsNotExist(err) {
		t.Fatalf("a refused start must not create the database: %v", err)
	}
}

// TestDevRefusesProductionDatabase: a database a production daemon used is
// never opened by --dev, nor a --dev database by production.
func TestDevRefusesProductionDatabase(t *testing.T) {
	dir := copyFlows(t)
	ctx := context.Background()
	for _, c := range []struct{ mode, args string }{{store.ModeProduction, "--dev"}, {store.ModeDev, ""}} {
		db := filepath.Join(dir, c.mode+".db")
		st, err := store.Open(ctx, db, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.ClaimMode(ctx, c.mode); err != nil {
			t.Fatal(err)
		}
		st.Close()
		args := []string{"serve", "--listen", freePort(t), "--db", db}
		env := []string{"FUNNEL_ACCESS_TOKEN=", "FUNNEL_APP_SECRET=", "FUNNEL_VERIFY_TOKEN=", "FUNNEL_API_TOKEN="}
		if c.args != "" {
			args = append(args, c.args)
		} else {
			env = []string{"FUNNEL_ACCESS_TOKEN=t", "FUNNEL_APP_SECRET=s", "FUNNEL_VERIFY_TOKEN=v", "FUNNEL_API_TOKEN="}
		}
		cmd := funnelCmd(t, dir, env, args...)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != exitFailed || !strings.Contains(string(out), "was used by a "+c.mode+" daemon") {
			t.Fatalf("%s database: exit %d:\n%s", c.mode, code, out)
		}
	}
}

// TestDevSettings: without --listen and --db, --dev listens on loopback and
// takes neither production's listen address nor its database from the
// environment or funnel.yaml.
func TestDevSettings(t *testing.T) {
	for _, c := range []struct {
		args               []string
		wantListen, wantDB string
	}{
		{nil, "127.0.0.1:8080", ""},
		{[]string{"--listen", "0.0.0.0:9000"}, "0.0.0.0:9000", ""},
		{[]string{"--db", "mine.db"}, "127.0.0.1:8080", "mine.db"},
	} {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		cf := addConfigFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"FUNNEL_LISTEN": ":8080", "FUNNEL_DB": "prod.db"}
		cfg, err := cf.load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if err := devSettings(fs, cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Listen != c.wantListen || cfg.DB != c.wantDB {
			t.Errorf("%v: listen %q db %q, want %q %q", c.args, cfg.Listen, cfg.DB, c.wantListen, c.wantDB)
		}
	}
}

// TestDevTemporaryDatabase: --dev without --db says where it listens and which
// database it uses, ignores production's FUNNEL_DB, and removes its fresh
// temporary database at a clean stop.
func TestDevTemporaryDatabase(t *testing.T) {
	dir := copyFlows(t)
	prod := filepath.Join(dir, "prod.db")
	addr := freePort(t)
	cmd := funnelCmd(t, dir, []string{"FUNNEL_DB=" + prod, "FUNNEL_ACCESS_TOKEN=", "FUNNEL_APP_SECRET=",
		"FUNNEL_VERIFY_TOKEN=", "FUNNEL_API_TOKEN="}, "serve", "--dev", "--listen", addr)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "the banner", func() bool { return strings.Contains(logs.String(), "database: ") })
	out := logs.String()
	if !strings.Contains(out, "sandbox: http://"+addr+"/sandbox") || !strings.Contains(out, `"listen":"`+addr+`"`) {
		t.Fatalf("--dev should say where it listens:\n%s", out)
	}
	m := regexp.MustCompile(`database: (\S+) \(temporary`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no temporary database named:\n%s", out)
	}
	tmp := m[1]
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("the temporary database: %v", err)
	}
	if _, err := os.Stat(prod); !os.IsNotExist(err) {
		t.Fatalf("--dev must not open FUNNEL_DB: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no stop")
	}
	if _, err := os.Stat(filepath.Dir(tmp)); !os.IsNotExist(err) {
		t.Fatalf("the temporary database should be removed at stop: %v", err)
	}
}
