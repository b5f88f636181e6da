package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
	"github.com/funnel-dev/funnel/store"
)

// The test binary doubles as the funnel binary: FUNNEL_TEST_MAIN=1 runs main, so
// the daemon is tested as a real process (signals, exit codes) without a build.
func TestMain(m *testing.M) {
	if os.Getenv("FUNNEL_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func funnelCmd(t *testing.T, dir string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "FUNNEL_TEST_MAIN=1"), env...)
	return cmd
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// copyFlows puts the example flows in a fresh folder.
func copyFlows(t *testing.T) string {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "flows"), 0o755)
	for _, name := range []string{"menu.yaml", "summer_club.flow.json", "summer_sale.yaml", "templates.json"} {
		b, err := os.ReadFile(filepath.Join("../../flows", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "flows", name), b, 0o644)
	}
	return dir
}

func TestServeRefusesFlowsWithErrors(t *testing.T) {
	dir := copyFlows(t)
	os.WriteFile(filepath.Join(dir, "flows", "bad.yaml"), []byte("flow: bad\ntrigger: {message: {keywords: [x]}}\nsteps:\n  - id: a\n    wait: 2d\n  - id: b\n    send: {text: late}\n"), 0o644)
	cmd := funnelCmd(t, dir, nil, "serve", "--dev", "--listen", freePort(t))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitFailed {
		t.Fatalf("exit %d (%v), want %d; output:\n%s", code, err, exitFailed, stderr.String())
	}
	if !strings.Contains(stderr.String(), "bad.yaml:7:18: error: free-form text outside the 24h window") {
		t.Fatalf("the validator's output should explain the refusal:\n%s", stderr.String())
	}
}

func TestServeNeedsCredentialsOutsideDev(t *testing.T) {
	dir := copyFlows(t)
	cmd := funnelCmd(t, dir, []string{"FUNNEL_ACCESS_TOKEN=", "FUNNEL_APP_SECRET=", "FUNNEL_VERIFY_TOKEN="}, "serve", "--listen", freePort(t))
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage || !strings.Contains(string(out), "FUNNEL_APP_SECRET") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

// TestServeReloadsAndDrains runs the daemon, chats through the sandbox, breaks a
// flow (the running version stays), fixes it (the new version runs), and stops it
// with SIGTERM.
func TestServeReloadsAndDrains(t *testing.T) {
	dir := copyFlows(t)
	addr := freePort(t)
	cmd := funnelCmd(t, dir, nil, "serve", "--dev", "--listen", addr, "--db", filepath.Join(dir, "dev.db"))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + addr
	waitFor(t, "readiness", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	token := sandboxToken(t, base)
	say := func(waID, text string) string {
		body, _ := json.Marshal(map[string]string{"wa_id": waID, "name": "Ana", "text": text})
		req, _ := http.NewRequest("POST", base+"/sandbox/api/inbound", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Funnel-Sandbox-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if out := say("15550000001", "menu"); !strings.Contains(out, "What can we help you with?") {
		t.Fatalf("menu reply missing:\n%s", out)
	}
	// A user with a username who hides their number: played with a BSUID.
	if out := say("US.13491208655302741918", "menu"); !strings.Contains(out, "What can we help you with?") {
		t.Fatalf("menu reply to a BSUID-only contact missing:\n%s", out)
	}
	menu := filepath.Join(dir, "flows", "menu.yaml")
	orig, _ := os.ReadFile(menu)
	os.WriteFile(menu, bytes.Replace(orig, []byte("wait_for_reply: {timeout: 1h}"), []byte("wait_for_reply: {timeout: 1h, on_timeout: nowhere}"), 1), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the refused reload in the log", func() bool { return strings.Contains(logs.String(), "reload refused") })
	if out := say("15550000002", "menu"); !strings.Contains(out, "What can we help you with?") {
		t.Fatalf("after a refused reload the running flows must stay:\n%s", out)
	}
	os.WriteFile(menu, bytes.Replace(orig, []byte("What can we help you with?"), []byte("How can we help today?"), 1), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the new version", func() bool {
		return strings.Contains(say(fmt.Sprint(15550000100+time.Now().UnixNano()%1000), "menu"), "How can we help today?")
	})
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("did not stop after SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer the child process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTemplatesPull(t *testing.T) {
	p, _, err := dsl.Load([]string{"../../flows"}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ts []whatsapptest.Template
	for _, tpl := range p.Catalog(p.Flows[0]).All() {
		ts = append(ts, whatsapptest.Template{Name: tpl.Name, Language: tpl.Language, Category: tpl.Category, Status: tpl.Status,
			Params: len(tpl.BodyParams), Body: tpl.Body})
	}
	fake := whatsapptest.New(t, whatsapptest.Options{Templates: ts, TemplatePageSize: 2})
	dir := t.TempDir()
	out := filepath.Join(dir, "templates.json")
	os.WriteFile(out, []byte(`{"data": []}`), 0o644)
	before, _ := os.Stat(out)
	t.Setenv("FUNNEL_GRAPH_URL", fake.URL())
	t.Setenv("FUNNEL_ACCESS_TOKEN", fake.Token())
	var stdout, stderr bytes.Buffer
	if code := run([]string{"templates", "pull", "--waba", fake.WABAID(), "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	// The old file was replaced by a rename, not rewritten in place, and no
	// temporary file is left beside it.
	after, _ := os.Stat(out)
	if os.SameFile(before, after) {
		t.Errorf("-o rewrote the file in place; want a new file renamed over it")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left beside the output: %v", entries)
	}
	cat, err := dsl.LoadCatalog(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(cat.All()); got != len(ts) {
		t.Fatalf("pulled %d templates over pages of 2, want %d", got, len(ts))
	}
	pulled, _ := os.ReadFile(out)
	t.Setenv("FUNNEL_ACCESS_TOKEN", "wrong")
	if code := run([]string{"templates", "pull", "--waba", fake.WABAID(), "-o", out}, &stdout, &stderr); code != exitFailed {
		t.Fatalf("a wrong token: exit %d", code)
	}
	if now, _ := os.ReadFile(out); !bytes.Equal(now, pulled) {
		t.Errorf("a failed pull changed the output file")
	}
}

// TestTemplatesPullTimesOut: a Graph API that never answers makes the pull
// fail (after --timeout) instead of hanging.
func TestTemplatesPullTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	t.Setenv("FUNNEL_GRAPH_URL", srv.URL)
	t.Setenv("FUNNEL_ACCESS_TOKEN", "token")
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"templates", "pull", "--waba", "1", "--timeout", "50ms"}, &stdout, &stderr)
	}()
	select {
	case code := <-done:
		if code != exitFailed || !strings.Contains(stderr.String(), "Timeout") {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("templates pull hangs on a Graph API that does not answer")
	}
}

func TestInspectCommands(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f.db")
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	err = st.Write(ctx, func(tx store.Tx) error {
		if err := tx.SaveContacts([]*store.Contact{{WaID: "16505551234", Name: "Ana", LastInboundAt: now, Consent: store.ConsentIn, CreatedAt: now, UpdatedAt: now},
			{WaID: "US.13491208655302741918", UserID: "US.13491208655302741918", Username: "@sam", Name: "Sam", CreatedAt: now, UpdatedAt: now}}); err != nil {
			return err
		}
		if err := tx.LinkContactIDs(map[string]string{"US.13491208655302741918": "US.13491208655302741918"}); err != nil {
			return err
		}
		v := &store.FlowVersion{FlowID: "menu", Hash: "h", Source: []byte("flow: menu"), CreatedAt: now}
		if err := tx.InsertFlowVersion(v); err != nil {
			return err
		}
		r := &store.Run{ID: tx.NewID("runs"), Contact: "16505551234", FlowID: "menu", VersionID: v.ID, Step: "choice", Status: store.RunWaitingReply, StartedAt: now, UpdatedAt: now}
		if err := tx.SaveRuns([]*store.Run{r}); err != nil {
			return err
		}
		return tx.InsertOutbox([]*store.OutboxItem{{Key: "1/1", RunID: r.ID, FlowID: "menu", Step: "show-menu", Contact: "16505551234",
			Kind: store.KindFreeForm, Payload: []byte(`{"type":"interactive"}`), Status: store.OutFailed, ErrorCode: 131026, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The daemon holds the database while the support tools read it.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"contacts", "--db", path}, []string{"16505551234", "Ana", "in"}},
		{[]string{"contacts", "16505551234", "--db", path}, []string{"window:   open, closes in ", "waiting_reply", "131026"}},
		{[]string{"runs", "--db", path, "--status", "waiting_reply"}, []string{"menu", "choice"}},
		{[]string{"outbox", "--db", path, "--status", "failed"}, []string{"menu/show-menu", "131026"}},
		{[]string{"contacts", "16505551234", "--db", path, "--format", "json"}, []string{`"wa_id": "16505551234"`, `"state": "in"`}},
		// A contact known only by its BSUID, found by it or by its username.
		{[]string{"contacts", "--db", path}, []string{"US.13491208655302741918", "@sam"}},
		{[]string{"contacts", "US.13491208655302741918", "--db", path}, []string{"user_id:  US.13491208655302741918", "username: @sam", "phone:    -"}},
		{[]string{"contacts", "@sam", "--db", path, "--format", "json"}, []string{`"key": "US.13491208655302741918"`, `"wa_id": ""`, `"has_phone": false`}},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 0 {
			t.Fatalf("funnel %v: exit %d %s", c.args, code, errOut.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("funnel %v: missing %q in:\n%s", c.args, w, out.String())
			}
		}
	}
	st.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"contacts", "--db", filepath.Join(t.TempDir(), "none.db")}, &out, &errOut); code != exitNoInput {
		t.Fatalf("missing database: exit %d", code)
	}
}

// TestFilesStampNoticesOnlyEdits: with flows and catalogs in several folders,
// reading the stamp again finds nothing changed (the daemon reloaded every few
// seconds when the stamp depended on map order), and an edit, a new file and a
// removed one are each reported by name.
func TestFilesStampNoticesOnlyEdits(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, sub := range []string{"a", "b", "c", "d"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o755)
		for _, name := range []string{"flow.yaml", "more.yml", "templates.json"} {
			p := filepath.Join(dir, sub, name)
			os.WriteFile(p, []byte("x"), 0o644)
			files = append(files, p)
		}
	}
	d := &daemon{cfg: &serveConfig{}, paths: []string{dir}}
	first := d.filesStamp()
	if len(first) != len(files) {
		t.Fatalf("stamp covers %d files, want %d: %v", len(first), len(files), first)
	}
	for i := 0; i < 20; i++ {
		if changed := changedFiles(first, d.filesStamp()); len(changed) != 0 {
			t.Fatalf("nothing was edited, yet changed: %v", changed)
		}
	}
	edited := filepath.Join(dir, "b", "templates.json")
	os.WriteFile(edited, []byte("longer"), 0o644)
	added := filepath.Join(dir, "c", "new.yaml")
	os.WriteFile(added, []byte("x"), 0o644)
	removed := filepath.Join(dir, "d", "more.yml")
	os.Remove(removed)
	got := strings.Join(changedFiles(first, d.filesStamp()), " ")
	if want := strings.Join([]string{edited, added, removed}, " "); got != want {
		t.Fatalf("changed:\n%s\nwant:\n%s", got, want)
	}
}

func TestLogAlertsOnChangeOnly(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	steps := [][]string{
		{"sender stopped: error 190"},
		{"sender stopped: error 190", "inbox backlog: 10000 or more events not processed"},
		{"sender stopped: error 190", "inbox backlog: 10000 or more events not processed"},
		{"inbox backlog: 10000 or more events not processed"},
		{},
	}
	var prev []string
	for _, now := range steps {
		logAlerts(log, prev, now)
		prev = now
	}
	want := `level=WARN msg=alert alert="sender stopped: error 190"
level=WARN msg=alert alert="inbox backlog: 10000 or more events not processed"
level=INFO msg="alert cleared" alert="sender stopped"
level=INFO msg="alert cleared" alert="inbox backlog"
`
	if buf.String() != want {
		t.Fatalf("logged:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestTemplatesPullRecordsStatusChanges: a pull stamps each template whose
// status changed since the last one with status_changed_at and keeps the
// stamp of those that did not; the quality rating comes through; validate
// then names the date a template was paused.
func TestTemplatesPullRecordsStatusChanges(t *testing.T) {
	fake := whatsapptest.New(t, whatsapptest.Options{Templates: []whatsapptest.Template{
		{Name: "summer_reminder", Language: "en_US", Category: "MARKETING", Params: 1, Quality: "GREEN"},
		{Name: "black_friday", Language: "en_US", Category: "MARKETING", Status: "PENDING"},
	}})
	dir := t.TempDir()
	out := filepath.Join(dir, "templates.json")
	t.Setenv("FUNNEL_GRAPH_URL", fake.URL())
	t.Setenv("FUNNEL_ACCESS_TOKEN", fake.Token())
	pull := func() (*dsl.Catalog, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run([]string{"templates", "pull", "--waba", fake.WABAID(), "-o", out}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		cat, err := dsl.LoadCatalog(out)
		if err != nil {
			t.Fatal(err)
		}
		return cat, stderr.String()
	}
	cat, report := pull()
	s, _ := cat.Lookup("summer_reminder", "en_US")
	bf, _ := cat.Lookup("black_friday", "en_US")
	if !s.StatusChangedAt.IsZero() || s.Quality != "GREEN" || bf.StatusChangedAt.IsZero() || !strings.Contains(report, "black_friday (en_US): PENDING") {
		t.Fatalf("first pull: %+v %+v %q", s, bf, report)
	}
	firstSeen := bf.StatusChangedAt

	fake.SetTemplateStatus("summer_reminder", "en_US", "PAUSED")
	cat, report = pull()
	s, _ = cat.Lookup("summer_reminder", "en_US")
	bf, _ = cat.Lookup("black_friday", "en_US")
	if s.Status != "PAUSED" || s.StatusChangedAt.IsZero() || !bf.StatusChangedAt.Equal(firstSeen) ||
		!strings.Contains(report, "summer_reminder (en_US): APPROVED → PAUSED") || strings.Contains(report, "black_friday") {
		t.Fatalf("second pull: %+v %+v %q", s, bf, report)
	}
	pausedAt := s.StatusChangedAt
	cat, _ = pull()
	if s, _ = cat.Lookup("summer_reminder", "en_US"); !s.StatusChangedAt.Equal(pausedAt) {
		t.Fatalf("an unchanged status lost its date: %v, want %v", s.StatusChangedAt, pausedAt)
	}

	flow := filepath.Join(dir, "promo.yaml")
	os.WriteFile(flow, []byte("flow: promo\nlanguage: en_US\nassume_opt_in: true\ntrigger: {message: {keywords: [promo]}}\nsteps:\n  - id: a\n    send: {template: summer_reminder, params: [\"x\"]}\n"), 0o644)
	var stdout, stderr bytes.Buffer
	code := run([]string{"validate", "--templates", out, flow}, &stdout, &stderr)
	want := "is PAUSED since " + pausedAt.UTC().Format("2006-01-02") + ", not APPROVED"
	if code == 0 || !strings.Contains(stdout.String()+stderr.String(), want) {
		t.Fatalf("validate: exit %d, want %q in %s%s", code, want, stdout.String(), stderr.String())
	}
}
