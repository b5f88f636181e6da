package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

func init() { extraCommands = append(extraCommands, newServeCmd) }

// serveConfig is funnel.yaml. Secrets are never read from it: they come from the
// environment only (FUNNEL_ACCESS_TOKEN, FUNNEL_APP_SECRET, FUNNEL_VERIFY_TOKEN,
// FUNNEL_API_TOKEN).
type serveConfig struct {
	Listen         string   `yaml:"listen"`
	DB             string   `yaml:"db"`
	Flows          []string `yaml:"flows"`
	Templates      string   `yaml:"templates"`
	GraphURL       string   `yaml:"graph_url"`
	PhoneNumberID  string   `yaml:"phone_number_id"`
	Timezone       string   `yaml:"timezone"`
	Rate           float64  `yaml:"rate"`
	PairBurst      int      `yaml:"pair_burst"`
	PairInterval   string   `yaml:"pair_interval"`
	OptOutKeywords []string `yaml:"opt_out_keywords"`
	MaxBody        int64    `yaml:"max_body"`
	LogLevel       string   `yaml:"log_level"`
	Synchronous    string   `yaml:"synchronous"`
	Margin         string   `yaml:"margin"`
}

var secretKeys = []string{"access_token", "app_secret", "verify_token", "api_token", "token", "secret"}

func loadServeConfig(path string, explicit bool) (*serveConfig, error) {
	cfg := &serveConfig{}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return cfg, nil
		}
		return nil, &exitError{code: exitNoInput, err: fmt.Errorf("config: %w", err)}
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, &exitError{code: exitNoInput, err: fmt.Errorf("config %s: %w", path, err)}
	}
	for _, k := range secretKeys {
		if _, ok := raw[k]; ok {
			return nil, fail(exitUsage, "config %s: `%s` is a secret: set it in the environment (FUNNEL_*), never in a file", path, k)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, &exitError{code: exitNoInput, err: fmt.Errorf("config %s: %w", path, err)}
	}
	return cfg, nil
}

func newServeCmd() *cobra.Command {
	var configPath, listen, db, templates, logLevel string
	var dev bool
	c := &cobra.Command{
		Use:   "serve [--config funnel.yaml] [--listen ADDR] [--db PATH] [--templates FILE] [--dev] [PATH...]",
		Short: "Run the daemon: WhatsApp webhooks in, Graph API sends out, everything persisted",
		Long: `Runs the flows under PATH (default ./flows) against the WhatsApp Cloud API.

Settings come from flags, then the environment, then the config file (funnel.yaml
when present). Secrets come from the environment only:

  FUNNEL_ACCESS_TOKEN     Graph API token (required unless --dev)
  FUNNEL_APP_SECRET       app secret: webhook signatures (required unless --dev)
  FUNNEL_VERIFY_TOKEN     webhook verification token (required unless --dev)
  FUNNEL_API_TOKEN        bearer token of /v1/events and /v1/contacts (API off when unset)
  FUNNEL_PHONE_NUMBER_ID  number for business-initiated sends
  FUNNEL_GRAPH_URL        Graph API base with version (default ` + whatsapp.DefaultBaseURL + `)

Flows are validated at start: errors refuse to start. SIGHUP (or a changed flow
file) reloads; a reload that fails validation keeps the running flows. SIGTERM
drains and stops. --dev runs with no credentials: a sandbox at /sandbox instead
of the Graph API, and a clock you can fast-forward.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadServeConfig(configPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			pick := func(flag, env, file, def string) string {
				for _, v := range []string{flag, os.Getenv(env), file} {
					if v != "" {
						return v
					}
				}
				return def
			}
			d := &daemon{dev: dev}
			d.listen = pick(listen, "FUNNEL_LISTEN", cfg.Listen, ":8080")
			d.db = pick(db, "FUNNEL_DB", cfg.DB, "funnel.db")
			d.templates = pick(templates, "FUNNEL_TEMPLATES", cfg.Templates, "")
			d.paths = args
			if len(d.paths) == 0 {
				d.paths = cfg.Flows
			}
			if len(d.paths) == 0 {
				d.paths = []string{"flows"}
			}
			d.graphURL = pick("", "FUNNEL_GRAPH_URL", cfg.GraphURL, whatsapp.DefaultBaseURL)
			d.phone = pick("", "FUNNEL_PHONE_NUMBER_ID", cfg.PhoneNumberID, "")
			d.token, d.secret = os.Getenv("FUNNEL_ACCESS_TOKEN"), os.Getenv("FUNNEL_APP_SECRET")
			d.verify, d.apiToken = os.Getenv("FUNNEL_VERIFY_TOKEN"), os.Getenv("FUNNEL_API_TOKEN")
			d.cfg = cfg
			d.log = newLogger(pick(logLevel, "FUNNEL_LOG_LEVEL", cfg.LogLevel, "info"))
			if !dev {
				var missing []string
				for k, v := range map[string]string{"FUNNEL_ACCESS_TOKEN": d.token, "FUNNEL_APP_SECRET": d.secret, "FUNNEL_VERIFY_TOKEN": d.verify} {
					if v == "" {
						missing = append(missing, k)
					}
				}
				if len(missing) > 0 {
					return fail(exitUsage, "missing %v in the environment (or run with --dev for the sandbox)", missing)
				}
			}
			return d.run(cmd)
		},
	}
	f := c.Flags()
	f.StringVar(&configPath, "config", "funnel.yaml", "config file (optional unless given)")
	f.StringVar(&listen, "listen", "", "address to listen on (default :8080)")
	f.StringVar(&db, "db", "", "SQLite database file (default funnel.db)")
	f.StringVar(&templates, "templates", "", "template catalog (default: templates.* beside the flows)")
	f.StringVar(&logLevel, "log-level", "", "debug, info, warn or error (default info)")
	f.BoolVar(&dev, "dev", false, "sandbox mode: no credentials, no Graph API, a chat page at /sandbox")
	return c
}

// newLogger logs JSON when stderr is not a terminal (a service), text otherwise.
func newLogger(level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

type daemon struct {
	dev                                    bool
	listen, db, templates, graphURL, phone string
	token, secret, verify, apiToken        string
	paths                                  []string
	cfg                                    *serveConfig
	log                                    *slog.Logger
	eng                                    *engine.Engine

	mu        sync.Mutex
	stamp     string // files' sizes and mtimes at the last load
	lastError string
}

func (d *daemon) options() (dsl.Options, error) {
	opts := dsl.Options{Templates: d.templates}
	if d.cfg.Margin != "" {
		m, err := parseDurationFlag(d.cfg.Margin)
		if err != nil {
			return opts, fail(exitUsage, "config margin: %v", err)
		}
		opts.Margin = m
	}
	return opts, nil
}

// loadFlows validates the flows; diagnostics with errors are printed.
func (d *daemon) loadFlows() (*dsl.Project, dsl.Diagnostics, error) {
	opts, err := d.options()
	if err != nil {
		return nil, nil, err
	}
	stamp := d.filesStamp()
	p, diags, err := dsl.Load(d.paths, opts)
	if err == nil {
		d.mu.Lock()
		d.stamp = stamp
		d.mu.Unlock()
	}
	return p, diags, err
}

func (d *daemon) run(cmd *cobra.Command) error {
	if os.Getenv("GOGC") == "" {
		// The daemon's live heap is tiny (state is on disk) and its garbage is
		// short-lived JSON: collecting less often cuts CPU per event by a fifth
		// to a third (docs/BENCHMARKS.md) for a few MB of memory.
		debug.SetGCPercent(400)
	}
	p, diags, err := d.loadFlows()
	if err != nil {
		return inputError(err)
	}
	if diags.HasErrors() {
		writeDiagnostics(cmd, "text", diags)
		return fail(exitFailed, "the flows have errors: fix them (funnel validate) before serving")
	}
	// Listen before opening the database: a start that fails (port busy) leaves
	// no database, WAL or lock file behind.
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return fail(exitFailed, "listen %s: %v", d.listen, err)
	}
	defer ln.Close()
	ctx := context.Background()
	sync := d.cfg.Synchronous
	st, err := store.Open(ctx, d.db, store.Options{Synchronous: sync})
	if err != nil {
		return fail(exitFailed, "database: %v", err)
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	opts := engine.Options{Logger: d.log, Metrics: engine.NewMetrics(reg), PhoneNumberID: d.phone,
		OptOutKeywords: d.cfg.OptOutKeywords, Rate: d.cfg.Rate, PairBurst: d.cfg.PairBurst}
	if d.cfg.PairInterval != "" {
		if opts.PairInterval, err = parseDurationFlag(d.cfg.PairInterval); err != nil {
			return fail(exitUsage, "config pair_interval: %v", err)
		}
	}
	if d.cfg.Timezone != "" {
		if opts.Timezone, err = time.LoadLocation(d.cfg.Timezone); err != nil {
			return fail(exitUsage, "config timezone: %v", err)
		}
	}
	var sandbox *server.Sandbox
	if d.dev {
		var clock *engine.OffsetClock
		sandbox, clock, opts.Channel = server.NewSandbox()
		opts.Clock = clock
		if opts.PhoneNumberID == "" {
			opts.PhoneNumberID = "sandbox"
		}
	} else {
		opts.Channel = engine.GraphChannel{Client: &whatsapp.Client{BaseURL: d.graphURL, Token: d.token,
			HTTP: &http.Client{Timeout: 30 * time.Second}}}
	}
	d.eng = engine.New(st, opts)
	if err := d.eng.Load(ctx, p, diags); err != nil {
		return fail(exitFailed, "loading flows: %v", err)
	}
	srv := server.New(server.Config{AppSecret: d.secret, VerifyToken: d.verify, APIToken: d.apiToken, MaxBody: d.cfg.MaxBody},
		d.eng, reg, d.log)
	if sandbox != nil {
		sandbox.Attach(srv)
	}
	hs := server.HTTPServer(d.listen, srv.Handler())
	engCtx, stopEngine := context.WithCancel(ctx)
	engDone := make(chan error, 1)
	go func() { engDone <- d.eng.Run(engCtx) }()
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Serve(ln) }()

	flows := len(p.Flows)
	d.log.Info("funnel serving", "listen", ln.Addr().String(), "db", d.db, "flows", flows, "dev", d.dev, "version", version)
	if d.dev {
		fmt.Fprintf(cmd.ErrOrStderr(), "\n  sandbox: http://%s/sandbox\n\n", displayAddr(ln.Addr()))
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	watch := time.NewTicker(2 * time.Second)
	defer watch.Stop()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload(ctx, "SIGHUP")
				d.eng.ResumeSender()
				continue
			}
			d.log.Info("stopping: draining requests and the current batch", "signal", sig.String())
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			hs.Shutdown(sctx)
			cancel()
			srv.Close()
			stopEngine()
			<-engDone
			d.log.Info("stopped")
			return nil
		case <-watch.C:
			if d.filesStamp() != d.currentStamp() {
				d.reload(ctx, "files changed")
			}
		case err := <-httpDone:
			stopEngine()
			<-engDone
			return fail(exitFailed, "http server: %v", err)
		}
	}
}

func (d *daemon) currentStamp() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stamp
}

// reload validates the flows again; on errors the running version stays.
func (d *daemon) reload(ctx context.Context, why string) {
	p, diags, err := d.loadFlows()
	if err != nil {
		d.log.Error("reload failed: keeping the running flows", "why", why, "err", err)
		return
	}
	if diags.HasErrors() {
		var buf bytes.Buffer
		dsl.WriteDiagnostics(&buf, "text", diags, dsl.FormatOptions{Source: cachedReader()})
		d.log.Error("reload refused: the flows have errors; keeping the running flows", "why", why, "diagnostics", buf.String())
		return
	}
	if err := d.eng.Load(ctx, p, diags); err != nil {
		d.log.Error("reload failed: keeping the running flows", "why", why, "err", err)
		return
	}
	d.log.Info("flows reloaded", "why", why, "flows", len(p.Flows))
}

// filesStamp summarizes the flow files and catalogs (names, sizes, mtimes) to
// notice edits without a filesystem watcher.
func (d *daemon) filesStamp() string {
	var b bytes.Buffer
	add := func(path string) {
		if fi, err := os.Stat(path); err == nil {
			fmt.Fprintf(&b, "%s|%d|%d;", path, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	files, _, _ := dsl.FindFlowFiles(d.paths)
	dirs := map[string]bool{}
	for _, f := range files {
		add(f)
		dirs[filepath.Dir(f)] = true
	}
	for dir := range dirs {
		for _, n := range dsl.CatalogNames {
			add(filepath.Join(dir, n))
		}
	}
	if d.templates != "" {
		add(d.templates)
	}
	return b.String()
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
