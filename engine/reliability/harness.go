package reliability

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // reading the daemon's database
	"gopkg.in/yaml.v3"

	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
)

// Level is how much the gated tests do, from FUNNEL_RELIABILITY: "" (plain
// go test: smoke tests only), "ci" (bounded forms) or "full".
func Level() string {
	switch v := strings.ToLower(os.Getenv("FUNNEL_RELIABILITY")); v {
	case "ci", "full":
		return v
	case "", "0", "off":
		return ""
	default:
		return "ci"
	}
}

// RequireLevel skips t unless FUNNEL_RELIABILITY is at least min ("ci" or
// "full").
func RequireLevel(t testing.TB, min string) {
	t.Helper()
	l := Level()
	if l == "full" || (l == "ci" && min == "ci") {
		return
	}
	t.Skipf("set FUNNEL_RELIABILITY=%s (or run scripts/reliability.sh) to run this check", min)
}

// EnvInt reads an integer setting from the environment (def when unset or bad).
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// Seed is a test's random seed: $name when set (FUNNEL_CRASH_SEED, ...), else
// $FUNNEL_SEED, else a new one. It is logged with the variable that replays it.
func Seed(t testing.TB, name string) uint64 {
	t.Helper()
	for _, env := range []string{name, "FUNNEL_SEED"} {
		if v, err := strconv.ParseUint(os.Getenv(env), 10, 64); err == nil {
			t.Logf("seed %d (from %s)", v, env)
			return v
		}
	}
	v := uint64(time.Now().UnixNano() & 0x7fffffff)
	t.Logf("seed %d (FUNNEL_SEED=%d replays this run)", v, v)
	return v
}

// EnvDuration reads a duration setting from the environment.
func EnvDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// RepoRoot is the module's root directory (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// TestdataFlows is the directory of the flows with short waits used by the
// crash and soak tests (engine/reliability/testdata/flows).
func TestdataFlows() string {
	return filepath.Join(RepoRoot(), "engine", "reliability", "testdata", "flows")
}

var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

// FunnelBinary builds ./cmd/funnel once per test process (or returns
// $FUNNEL_BIN when set: scripts/reliability.sh builds it once for all runs).
func FunnelBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("FUNNEL_BIN"); p != "" {
			binPath, binErr = filepath.Abs(p)
			return
		}
		binDir, binErr = os.MkdirTemp("", "funnel-reliability-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "funnel")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/funnel")
		cmd.Dir = RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/funnel: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// RemoveBinary deletes the binary FunnelBinary built (call it from TestMain).
func RemoveBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Secrets the harness gives the daemon besides the fake's token and app secret.
const (
	VerifyToken = "reliability-verify-token"
	APIToken    = "reliability-api-token-0123456789abcdef"
)

// DaemonOptions configure a `funnel serve` process.
type DaemonOptions struct {
	// Dir is the working directory (database, funnel.yaml, daemon.log);
	// default t.TempDir().
	Dir string
	// DB is the database file, default Dir/funnel.db.
	DB string
	// Flows are the flow paths, default TestdataFlows().
	Flows []string
	// Templates is --templates (default: the catalog beside the flows).
	Templates string
	// Fake gives FUNNEL_GRAPH_URL, FUNNEL_ACCESS_TOKEN and FUNNEL_APP_SECRET;
	// the three fields below override it.
	Fake                             *whatsapptest.Fake
	GraphURL, AccessToken, AppSecret string
	// PhoneNumberID is FUNNEL_PHONE_NUMBER_ID, default the fake's default.
	PhoneNumberID string
	// Config is written to Dir/funnel.yaml (rate, pair_burst, pair_interval,
	// synchronous, …). Secrets are refused there by the daemon.
	Config map[string]any
	// Listen is the address, default a free loopback port (kept on restart).
	Listen string
	// LogLevel is --log-level, default info.
	LogLevel string
	// Env adds environment variables.
	Env []string
}

// Daemon is a `funnel serve` process that can be killed and restarted on the
// same database and address.
type Daemon struct {
	t       testing.TB
	Bin     string
	Opts    DaemonOptions
	Addr    string // host:port
	URL     string // http://host:port
	LogPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	starts int
}

// NewDaemon prepares a daemon (not started). It is killed at the end of the test.
func NewDaemon(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.DB == "" {
		opts.DB = filepath.Join(opts.Dir, "funnel.db")
	}
	if len(opts.Flows) == 0 {
		opts.Flows = []string{TestdataFlows()}
	}
	if opts.Fake != nil {
		if opts.GraphURL == "" {
			opts.GraphURL = opts.Fake.URL()
		}
		if opts.AccessToken == "" {
			opts.AccessToken = opts.Fake.Token()
		}
		if opts.AppSecret == "" {
			opts.AppSecret = opts.Fake.AppSecret()
		}
	}
	if opts.AccessToken == "" {
		opts.AccessToken = whatsapptest.DefaultToken
	}
	if opts.AppSecret == "" {
		opts.AppSecret = whatsapptest.DefaultAppSecret
	}
	if opts.PhoneNumberID == "" {
		opts.PhoneNumberID = whatsapptest.DefaultPhoneNumberID
	}
	if opts.Listen == "" {
		opts.Listen = FreeAddr(t)
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	d := &Daemon{t: t, Bin: FunnelBinary(t), Opts: opts, Addr: opts.Listen, URL: "http://" + opts.Listen,
		LogPath: filepath.Join(opts.Dir, "daemon.log")}
	cfg := opts.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.configPath(), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Kill()
		d.checkRaces()
	})
	return d
}

// checkRaces fails the test when the daemon (a binary built with -race, as
// scripts/reliability.sh --ci builds one) reported a data race in its log.
func (d *Daemon) checkRaces() {
	log := d.Log()
	i := strings.Index(log, "WARNING: DATA RACE")
	if i < 0 {
		return
	}
	end := min(len(log), i+6000)
	d.t.Errorf("the daemon reported a data race (%d in its log):\n%s", strings.Count(log, "WARNING: DATA RACE"), log[i:end])
}

// StartDaemon is NewDaemon, Start and WaitReady.
func StartDaemon(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	d := NewDaemon(t, opts)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *Daemon) configPath() string { return filepath.Join(d.Opts.Dir, "funnel.yaml") }

// Start runs the process and waits until it answers /healthz (30 s at most).
func (d *Daemon) Start() error {
	d.mu.Lock()
	if d.cmd != nil {
		d.mu.Unlock()
		return errors.New("daemon already running")
	}
	args := []string{"serve", "--config", d.configPath(), "--listen", d.Addr, "--db", d.Opts.DB, "--log-level", d.Opts.LogLevel}
	if d.Opts.Templates != "" {
		args = append(args, "--templates", d.Opts.Templates)
	}
	args = append(args, d.Opts.Flows...)
	cmd := exec.Command(d.Bin, args...)
	cmd.Dir = d.Opts.Dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FUNNEL_") {
			env = append(env, kv)
		}
	}
	env = append(env, "FUNNEL_GRAPH_URL="+d.Opts.GraphURL, "FUNNEL_ACCESS_TOKEN="+d.Opts.AccessToken,
		"FUNNEL_APP_SECRET="+d.Opts.AppSecret, "FUNNEL_VERIFY_TOKEN="+VerifyToken, "FUNNEL_API_TOKEN="+APIToken,
		"FUNNEL_PHONE_NUMBER_ID="+d.Opts.PhoneNumberID)
	cmd.Env = append(env, d.Opts.Env...)
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "=== start %d at %s\n", d.starts+1, time.Now().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		d.mu.Unlock()
		return err
	}
	d.starts++
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	go func() {
		err := cmd.Wait()
		logf.Close()
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		close(done)
	}()
	d.mu.Unlock()
	return d.WaitReady(30 * time.Second)
}

// WaitReady polls /healthz until it answers 200.
func (d *Daemon) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		d.mu.Lock()
		done := d.done
		d.mu.Unlock()
		if done == nil {
			return errors.New("daemon not started")
		}
		select {
		case <-done:
			return fmt.Errorf("daemon exited before it was ready (%v):\n%s", d.exitErr(), d.LogTail(4000))
		default:
		}
		res, err := c.Get(d.URL + "/healthz")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("daemon not ready after %v:\n%s", timeout, d.LogTail(4000))
}

func (d *Daemon) exitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Starts is how many times the process was started.
func (d *Daemon) Starts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starts
}

// PID is the running process's id (0 when not running).
func (d *Daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (d *Daemon) Kill() error { return d.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM (drain and exit) and waits up to timeout, then kills.
func (d *Daemon) Stop(timeout time.Duration) error {
	err := d.signal(syscall.SIGTERM, timeout)
	if err != nil {
		d.Kill()
	}
	return err
}

func (d *Daemon) signal(sig syscall.Signal, timeout time.Duration) error {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("daemon did not exit %v after %v", timeout, sig)
	}
	d.mu.Lock()
	d.cmd, d.done = nil, nil
	err := d.err
	d.mu.Unlock()
	if sig == syscall.SIGKILL {
		return nil
	}
	return err
}

// Log is everything the daemon wrote to stderr and stdout, over all starts.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// LogTail is the last n bytes of Log.
func (d *Daemon) LogTail(n int) string {
	s := d.Log()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// WebhookURL is the daemon's webhook endpoint.
func (d *Daemon) WebhookURL() string { return d.URL + "/webhook" }

// RSS is the process's resident set size in bytes (VmRSS of /proc/PID/status).
func (d *Daemon) RSS() (int64, error) { return ProcRSS(d.PID()) }

// ProcRSS reads VmRSS of a process from /proc (bytes).
func ProcRSS(pid int) (int64, error) {
	if pid == 0 {
		return 0, errors.New("no process")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// CPU is the process's user+system CPU time so far.
func (d *Daemon) CPU() (time.Duration, error) { return ProcCPU(d.PID()) }

// ProcCPU reads utime+stime of a process from /proc/PID/stat (clock ticks of
// 1/100 s, the Linux default USER_HZ).
func ProcCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, errors.New("no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (which may hold spaces) start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat times")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// LoadAverage is the 1-minute load average of the machine (the benchmarks
// report it: figures from a busy host are not comparable).
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// CPUPressure is the share of the last 10 s in which some runnable task of
// the machine waited for a CPU (Linux PSI, "some avg10" of
// /proc/pressure/cpu), e.g. "97%"; "?" where the kernel does not report it.
// Near 100% the host is oversubscribed: every process's latencies include
// waiting for a core.
func CPUPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			return v + "%"
		}
	}
	return "?"
}

// StallMeter measures how much a busy host delays this process: a goroutine
// sleeps 1 ms at a time and adds up the oversleeps longer than 10 ms. Reported
// beside a throughput figure it tells a slow daemon from a starved one.
type StallMeter struct {
	stop  chan struct{}
	done  chan struct{}
	count int
	total time.Duration
}

// StartStallMeter starts measuring.
func StartStallMeter() *StallMeter {
	s := &StallMeter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			t0 := time.Now()
			select {
			case <-s.stop:
				return
			case <-time.After(time.Millisecond):
			}
			if over := time.Since(t0) - time.Millisecond; over > 10*time.Millisecond {
				s.count++
				s.total += over
			}
		}
	}()
	return s
}

// Stop ends the measure: how many stalls over 10 ms, and their total.
func (s *StallMeter) Stop() (int, time.Duration) {
	close(s.stop)
	<-s.done
	return s.count, s.total
}

// Metrics is one scrape of /metrics: series ("name" or `name{labels}`) → value.
type Metrics map[string]float64

// Metrics scrapes /metrics.
func (d *Daemon) Metrics(ctx context.Context) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", res.Status)
	}
	return ParseMetrics(res.Body)
}

// ParseMetrics reads Prometheus' text format.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// Sum adds every series of a metric whose labels contain all of the given
// `key="value"` pairs.
func (m Metrics) Sum(name string, labels ...string) float64 {
	total := 0.0
	for k, v := range m {
		base, rest, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// Webhooks posts webhook bodies to a daemon, signed like Meta's.
type Webhooks struct {
	URL    string
	Secret string
	Client *http.Client
}

// NewWebhooks makes a poster with a keep-alive pool of conns connections.
func NewWebhooks(url, secret string, conns int) *Webhooks {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	return &Webhooks{URL: url, Secret: secret, Client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Post sends one body with its X-Hub-Signature-256 and returns the status.
func (w *Webhooks) Post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(whatsapp.SignatureHeader, whatsapp.Sign(w.Secret, body))
	res, err := w.Client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// Deliver posts body until it is acknowledged with 200, as Meta redelivers a
// webhook that got no 2xx: connection refused (daemon down), reset (killed
// mid-request), timeouts and 5xx are retried with backoff from 50 ms to 1 s.
// Any other status is an error (it would never succeed). It returns the
// number of attempts.
func (w *Webhooks) Deliver(ctx context.Context, body []byte) (int, error) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		status, err := w.Post(ctx, body)
		if err == nil && status == http.StatusOK {
			return attempt, nil
		}
		if err == nil && status < 500 && status != http.StatusTooManyRequests {
			return attempt, fmt.Errorf("webhook refused with %d", status)
		}
		select {
		case <-ctx.Done():
			return attempt, fmt.Errorf("webhook not acknowledged after %d attempts: %w", attempt, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// StatusPoster posts a signed `delivered` status webhook, with Deliver's
// retries, for every message the fake accepts, as Meta does after a send.
type StatusPoster struct {
	fake   *whatsapptest.Fake
	posted atomic.Int64 // messages of fake.Sent() handed to the workers
	acked  atomic.Int64
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

// StartStatusPoster starts posting with `workers` concurrent deliveries.
func StartStatusPoster(ctx context.Context, fake *whatsapptest.Fake, hooks *Webhooks, workers int) *StatusPoster {
	p := &StatusPoster{fake: fake, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		work := make(chan string, 1024)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					body, _, err := fake.StatusWebhook(id, whatsapp.StatusDelivered, 0)
					if err == nil {
						_, err = hooks.Deliver(ctx, body)
					}
					if err != nil {
						p.mu.Lock()
						if p.err == nil {
							p.err = err
						}
						p.mu.Unlock()
						continue
					}
					p.acked.Add(1)
				}
			}()
		}
		defer func() { close(work); wg.Wait() }()
		for {
			sent := fake.Sent()
			for _, s := range sent[p.posted.Load():] {
				work <- s.ID
				p.posted.Add(1)
			}
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return p
}

// Acked is how many statuses were acknowledged.
func (p *StatusPoster) Acked() int64 { return p.acked.Load() }

// CaughtUp reports whether every accepted message's status was acknowledged.
func (p *StatusPoster) CaughtUp() bool {
	return p.posted.Load() == int64(len(p.fake.Sent())) && p.acked.Load() == p.posted.Load()
}

// Stop stops posting (after the deliveries in progress) and returns the first
// delivery error.
func (p *StatusPoster) Stop() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// OpenDB opens the daemon's SQLite database for queries. With readOnly it may
// run beside the daemon (WAL readers); otherwise the daemon must be stopped.
func OpenDB(t testing.TB, path string, readOnly bool) *sql.DB {
	t.Helper()
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	db, err := sql.Open("sqlite3", "file:"+url.PathEscape(path)+"?_busy_timeout=10000&mode="+mode)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db
}

// QueryInt runs a query that returns one integer.
func QueryInt(t testing.TB, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n.Int64
}

// WaitFor polls cond every 100 ms until it is true, it fails, or timeout.
func WaitFor(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met after %v", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Drained reports whether the daemon has nothing left to do: no unprocessed
// inbox row, no pending or sending message, no timer, no live run.
func Drained(m Metrics) bool {
	return m.Sum("funnel_inbox_pending") == 0 && m.Sum("funnel_outbox_pending") == 0 &&
		m.Sum("funnel_outbox_sending") == 0 && m.Sum("funnel_timers_pending") == 0 && m.Sum("funnel_runs_live") == 0
}

// Percentile of durations (p in [0,100]); the slice is sorted in place.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// Median of float samples.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TheilSen is the median of the pairwise slopes of (i, xs[i]): a growth per
// sample that a few outliers do not move.
func TheilSen(xs []float64) float64 {
	var slopes []float64
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			slopes = append(slopes, (xs[j]-xs[i])/float64(j-i))
		}
	}
	return Median(slopes)
}

// Report writes a figure both to the test log and, when FUNNEL_REPORT names a
// file, appended to it as "key<TAB>value" (scripts/reliability.sh builds its
// summary table from it).
func Report(t testing.TB, key, format string, args ...any) {
	t.Helper()
	v := fmt.Sprintf(format, args...)
	t.Logf("REPORT %s = %s", key, v)
	if p := os.Getenv("FUNNEL_REPORT"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "%s\t%s\n", key, strings.ReplaceAll(v, "\n", " "))
	}
}
