package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// devDefaultListen is where --dev listens unless --listen says otherwise: the
// sandbox has no authentication worth the name beyond its page token, so it is
// for this machine only.
const devDefaultListen = "127.0.0.1:8080"

// devSettings applies --dev's own rules to the resolved settings. The sandbox
// never runs beside production credentials (it would make them look usable from
// a page without authentication), listens on loopback unless --listen is given,
// and never takes production's database from FUNNEL_DB or funnel.yaml: only
// --db names one, else a fresh temporary database is used.
func devSettings(fs *pflag.FlagSet, cfg *serveConfig) error {
	var set []string
	for _, s := range []struct{ env, v string }{{"FUNNEL_ACCESS_TOKEN", cfg.AccessToken}, {"FUNNEL_APP_SECRET", cfg.AppSecret},
		{"FUNNEL_VERIFY_TOKEN", cfg.VerifyToken}, {"FUNNEL_API_TOKEN", cfg.APIToken}} {
		if s.v != "" {
			set = append(set, s.env)
		}
	}
	if len(set) > 0 {
		return fail(exitUsage, "--dev refuses to start with production credentials set: %s (unset them: the sandbox needs none)", strings.Join(set, ", "))
	}
	if !fs.Changed("listen") {
		cfg.Listen = devDefaultListen
	}
	if !fs.Changed("db") {
		cfg.DB = ""
	}
	return nil
}

// devDatabase makes the fresh temporary database of a --dev start without --db;
// cleanup removes it at stop.
func devDatabase(cfg *serveConfig) (cleanup func(), err error) {
	if cfg.DB != "" {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "funnel-sandbox-")
	if err != nil {
		return nil, fail(exitFailed, "sandbox database: %v", err)
	}
	cfg.DB = filepath.Join(dir, "sandbox.db")
	return func() { os.RemoveAll(dir) }, nil
}

// devBanner is what --dev prints on start: where the page is, which database it
// uses, and whether the listener is reachable from other machines.
func devBanner(a net.Addr, db string, temporary bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n  sandbox: http://%s/sandbox\n", displayAddr(a))
	if ta, ok := a.(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		fmt.Fprintf(&b, "  warning: listening on %s, beyond this machine: whoever reaches it can load the page and drive the sandbox\n", a)
	}
	if temporary {
		fmt.Fprintf(&b, "  database: %s (temporary: removed at stop; --db FILE keeps a sandbox across restarts)\n", db)
	} else {
		fmt.Fprintf(&b, "  database: %s\n", db)
	}
	return b.String() + "\n"
}
