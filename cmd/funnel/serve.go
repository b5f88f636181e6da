package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

func init() { extraCommands = append(extraCommands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var cf *configFlags
	var dev bool
	c := &cobra.Command{
		Use:   "serve [flags] [PATH...]",
		Short: "Run the daemon: WhatsApp webhooks in, Graph API sends out, everything persisted",
		Long: `Runs the flows under PATH (default ./flows) against the WhatsApp Cloud API.

Every setting comes from a flag, else its FUNNEL_* environment variable, else the
config file (funnel.yaml when present, or --config / FUNNEL_CONFIG), else its
default. An unknown key or a bad value in any of them refuses to start. Secrets
come from the environment only:

  FUNNEL_ACCESS_TOKEN     Graph API token (required unless --dev)
  FUNNEL_APP_SECRET       app secret: webhook signatures (required unless --dev)
  FUNNEL_VERIFY_TOKEN     webhook verification token (required unless --dev)
  FUNNEL_API_TOKEN        bearer token of /v1/events and /v1/contacts, 32+ characters (API off when unset)

Flows are validated at start: errors refuse to start. SIGHUP (or a changed flow
file) reloads; a reload that fails validation keeps the running flows. SIGTERM
drains and stops. --dev runs with no credentials: a sandbox at /sandbox instead
of the Graph API, and a clock you can fast-forward. It listens on 127.0.0.1 unless
--listen is given, uses a fresh temporary database unless --db is given, and
refuses production credentials and production databases (docs/SANDBOX.md).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkEnvNames(os.Environ()); err != nil {
				return err
			}
			cfg, err := cf.load(os.Getenv)
			if err != nil {
				return err
			}
			d := &daemon{dev: dev, cfg: cfg, paths: args}
			if len(d.paths) == 0 {
				d.paths = cfg.Flows
			}
			d.log = newLogger(cfg.LogLevel)
			if dev {
				if err := devSettings(cmd.Flags(), cfg); err != nil {
					return err
				}
			} else {
				var missing []string
				for env, v := range map[string]string{"FUNNEL_ACCESS_TOKEN": cfg.AccessToken, "FUNNEL_APP_SECRET": cfg.AppSecret, "FUNNEL_VERIFY_TOKEN": cfg.VerifyToken} {
					if v == "" {
						missing = append(missing, env)
					}
				}
				sort.Strings(missing)
				if len(missing) > 0 {
					return fail(exitUsage, "missing %v in the environment (or run with --dev for the sandbox)", missing)
				}
				if cfg.DatasetID != "" && cfg.WABAID == "" {
					return fail(exitUsage, "dataset_id needs waba_id: Meta requires the WhatsApp Business Account id with each conversion")
				}
			}
			return d.run(cmd)
		},
	}
	cf = addConfigFlags(c.Flags())
	c.Flags().BoolVar(&dev, "dev", false, "sandbox mode: no credentials, no Graph API, a chat page at /sandbox")
	return c
}

// newLogger logs JSON when stderr is not a terminal (a service), text otherwise.
func newLogger(level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

type daemon struct {
	dev   bool
	cfg   *serveConfig
	paths []string
	log   *slog.Logger
	eng   *engine.Engine

	mu    sync.Mutex
	stamp fileStamp // the files as of the last successful load
}

func (d *daemon) options() dsl.Options {
	opts := dsl.Options{Templates: d.cfg.Templates, Margin: d.cfg.Margin}
	if opts.Margin == 0 {
		opts.Margin = -1 // explicitly none
	}
	return opts
}

// loadFlows validates the flows; diagnostics with errors are printed.
func (d *daemon) loadFlows() (*dsl.Project, dsl.Diagnostics, error) {
	stamp := d.filesStamp()
	p, diags, err := dsl.Load(d.paths, d.options())
	// Even a failed load records the files it read: the same files fail the
	// same way, so the watcher waits for the next edit instead of retrying.
	d.mu.Lock()
	d.stamp = stamp
	d.mu.Unlock()
	return p, diags, err
}

func (d *daemon) run(cmd *cobra.Command) error {
	if os.Getenv("GOGC") == "" {
		// The daemon's live heap is tiny (state is on disk) and its garbage is
		// short-lived JSON: collecting less often cuts CPU per event by a fifth
		// to a third (docs/BENCHMARKS.md) for a few MB of memory.
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" && d.cfg.MemoryLimit > 0 {
		// With GOGC at 400 the heap may grow to five times what is live
		// before a collection; the soft limit makes the collector run
		// earlier when memory is short instead of letting garbage pile up.
		debug.SetMemoryLimit(d.cfg.MemoryLimit)
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
	ln, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		return fail(exitFailed, "listen %s: %v", d.cfg.Listen, err)
	}
	defer ln.Close()
	var mln net.Listener
	if d.cfg.MetricsListen != "" {
		if mln, err = net.Listen("tcp", d.cfg.MetricsListen); err != nil {
			return fail(exitFailed, "listen %s (metrics_listen): %v", d.cfg.MetricsListen, err)
		}
		defer mln.Close()
	}
	ctx := context.Background()
	temporary := d.dev && d.cfg.DB == ""
	if d.dev {
		removeDB, err := devDatabase(d.cfg)
		if err != nil {
			return err
		}
		defer removeDB()
	}
	st, err := store.Open(ctx, d.cfg.DB, store.Options{Synchronous: d.cfg.Synchronous})
	if err != nil {
		return fail(exitFailed, "database: %v", err)
	}
	defer st.Close()
	if !d.dev {
		if err := st.ClaimMode(ctx, store.ModeProduction); err != nil {
			return fail(exitFailed, "database: %v (a --dev sandbox's database holds simulated sends: give serve its own --db)", err)
		}
	}
	if w := store.DirWarning(d.cfg.DB); w != "" {
		d.log.Warn(w)
	}

	reg := prometheus.NewRegistry()
	opts := engine.Options{Logger: d.log, Metrics: engine.NewMetrics(reg), PhoneNumberID: d.cfg.PhoneNumberID,
		OptOutKeywords: d.cfg.OptOutKeywords, Rate: d.cfg.Rate, PairBurst: d.cfg.PairBurst,
		PairInterval: d.cfg.PairInterval, Timezone: d.cfg.Timezone, MaxQueuedPerContact: d.cfg.MaxQueued,
		RunRetention: d.cfg.RetentionRuns, MessageRetention: d.cfg.RetentionMessages, InboxRetention: d.cfg.RetentionInbox,
		ResendUnknownAfter: d.cfg.ResendUnknownAfter, MessagingLimit: d.cfg.MessagingLimit, MarketingRetryAfter: d.cfg.MarketingRetryAfter}
	if opts.ResendUnknownAfter == 0 {
		opts.ResendUnknownAfter = -1 // 0 in the config: never (the engine's 0 is its default)
	}
	var sandbox *server.Sandbox
	if d.dev {
		if sandbox, err = server.NewSandbox(ctx, st, server.SandboxConfig{DBPath: d.cfg.DB, Temporary: temporary}); err != nil {
			return fail(exitFailed, "sandbox: %v (--dev never opens a production database: give it its own --db)", err)
		}
		sandbox.Configure(&opts)
	} else {
		graph := engine.GraphChannel{Client: &whatsapp.Client{BaseURL: d.cfg.GraphURL, Token: d.cfg.AccessToken,
			HTTP: &http.Client{Timeout: 30 * time.Second}}}
		opts.Channel = graph
		if d.cfg.DatasetID != "" {
			opts.DatasetID, opts.WABAID, opts.Conversions = d.cfg.DatasetID, d.cfg.WABAID, graph
		}
	}
	d.eng = engine.New(st, opts)
	if err := d.eng.Load(ctx, p, diags); err != nil {
		return fail(exitFailed, "loading flows: %v", err)
	}
	numbers := servedNumbers(d.cfg)
	if len(numbers) == 0 && !d.dev {
		d.log.Warn("no phone_number_ids nor phone_number_id: webhooks for every phone number of the app are served")
	}
	srv := server.New(server.Config{AppSecret: d.cfg.AppSecret, VerifyToken: d.cfg.VerifyToken, APIToken: d.cfg.APIToken, MaxBody: d.cfg.MaxBody,
		SeparateMetrics: mln != nil, PhoneNumberIDs: numbers, MaxConcurrentBodies: bodySlots(d.cfg.MemoryLimit, d.cfg.MaxBody)},
		d.eng, reg, d.log)
	if sandbox != nil {
		sandbox.Attach(srv)
	}
	hs := server.HTTPServer(d.cfg.Listen, srv.Handler())
	if d.cfg.PprofListen != "" {
		pln, ps, err := pprofListen(d.cfg.PprofListen)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		defer ps.Close()
		go ps.Serve(pln)
		d.log.Info("profiling endpoint", "pprof_listen", pln.Addr().String())
	}
	// Signals are taken before anything answers: a SIGTERM right after /readyz
	// says 200 must be a clean stop, not the default kill.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	engCtx, stopEngine := context.WithCancel(ctx)
	engDone := make(chan error, 1)
	// The engine's loops run on the replica holding the lease (with one
	// SQLite process, always this one); every replica takes webhooks.
	host, _ := os.Hostname()
	el := engine.NewElector(st, engine.ElectorOptions{Holder: engine.NewHolderID(host, os.Getpid()), TTL: d.cfg.LeaseTTL,
		Logger: d.log, Registry: reg})
	// On a shared database (PostgreSQL), other replicas' webhooks wake this
	// one's engine, and a leader that resigns wakes the followers.
	if l, ok := any(st).(interface {
		Listen(context.Context, []string, func(string)) error
	}); ok {
		go l.Listen(engCtx, []string{store.TopicInbox, store.TopicLeader}, func(ch string) {
			if ch == store.TopicLeader {
				el.Wake()
				return
			}
			d.eng.Notify()
		})
	}
	go func() {
		el.Run(engCtx, func(ctx context.Context) {
			if err := d.eng.Run(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("engine", "err", err)
			}
		})
		engDone <- nil
	}()
	httpDone := make(chan error, 2)
	go func() { httpDone <- hs.Serve(ln) }()
	var ms *http.Server
	if mln != nil {
		ms = server.HTTPServer(d.cfg.MetricsListen, srv.MetricsHandler())
		go func() { httpDone <- ms.Serve(mln) }()
		d.log.Info("metrics on a separate listener", "metrics_listen", mln.Addr().String())
	}

	flows := len(p.Flows)
	d.log.Info("funnel serving", "listen", ln.Addr().String(), "db", store.DisplayName(d.cfg.DB), "flows", flows, "dev", d.dev, "version", readBuildVersion().Short())
	if d.dev {
		fmt.Fprint(cmd.ErrOrStderr(), devBanner(ln.Addr(), d.cfg.DB, temporary))
	}

	watch := time.NewTicker(2 * time.Second)
	defer watch.Stop()
	// Alerts (a stopped sender, a backlog, late timers, failing commits) are
	// logged when they appear and when they clear; /v1/status shows them too.
	alerts := time.NewTicker(15 * time.Second)
	defer alerts.Stop()
	var active []string
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
			if ms != nil {
				ms.Shutdown(sctx)
			}
			cancel()
			srv.Close()
			stopEngine()
			<-engDone
			d.log.Info("stopped")
			return nil
		case <-alerts.C:
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			now := srv.Status(sctx).Alerts
			cancel()
			logAlerts(d.log, active, now)
			active = now
		case <-watch.C:
			if changed := changedFiles(d.currentStamp(), d.filesStamp()); len(changed) > 0 {
				d.reload(ctx, "files changed: "+strings.Join(changed, ", "))
			}
		case err := <-httpDone:
			stopEngine()
			<-engDone
			return fail(exitFailed, "http server: %v", err)
		}
	}
}

// logAlerts logs the alerts that appeared (warn) and those that cleared (info).
// An alert is keyed by its words before the first colon, so a count that moves
// does not repeat it.
func logAlerts(log *slog.Logger, before, now []string) {
	key := func(a string) string { k, _, _ := strings.Cut(a, ":"); return k }
	was, is := map[string]bool{}, map[string]bool{}
	for _, a := range before {
		was[key(a)] = true
	}
	for _, a := range now {
		is[key(a)] = true
		if !was[key(a)] {
			log.Warn("alert", "alert", a)
		}
	}
	for _, a := range before {
		if !is[key(a)] {
			log.Info("alert cleared", "alert", key(a))
		}
	}
}

func (d *daemon) currentStamp() fileStamp {
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

// fileStamp maps each flow file and catalog to its size and modification time:
// enough to notice edits without a filesystem watcher.
type fileStamp map[string]string

// filesStamp reads the stamps of the flow files and of the catalogs beside them.
func (d *daemon) filesStamp() fileStamp {
	st := fileStamp{}
	add := func(path string) {
		if fi, err := os.Stat(path); err == nil {
			st[path] = fmt.Sprintf("%d|%d", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	files, roots, _ := dsl.FindFlowFiles(d.paths)
	dirs := map[string]bool{}
	for _, f := range files {
		add(f)
		dirs[filepath.Dir(f)] = true
		if fi, err := os.Stat(roots[f]); err == nil && fi.IsDir() {
			dirs[roots[f]] = true
		}
	}
	for dir := range dirs {
		for _, n := range dsl.CatalogNames {
			add(filepath.Join(dir, n))
		}
	}
	if d.cfg.Templates != "" {
		add(d.cfg.Templates)
	}
	return st
}

// changedFiles lists, sorted, the files added, removed or modified from old to now.
func changedFiles(old, now fileStamp) []string {
	var out []string
	for p, s := range now {
		if old[p] != s {
			out = append(out, p)
		}
	}
	for p := range old {
		if _, ok := now[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
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

// bodySlots is how many webhook bodies may be read at once: an eighth of the
// memory limit in bodies of the largest size (reading one can take twice its
// size, decoding more), between 8 and 256; 64 without a limit.
func bodySlots(memoryLimit, maxBody int64) int {
	if memoryLimit <= 0 || maxBody <= 0 {
		return 64
	}
	return int(min(max(memoryLimit/(8*maxBody), 8), 256))
}

// servedNumbers are the phone number ids whose webhooks are served:
// phone_number_ids, else phone_number_id, else (none) every number.
func servedNumbers(c *serveConfig) []string {
	if len(c.PhoneNumberIDs) > 0 {
		return c.PhoneNumberIDs
	}
	if c.PhoneNumberID != "" {
		return []string{c.PhoneNumberID}
	}
	return nil
}
