package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine"
	"github.com/funnel-dev/funnel/engine/server"
	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// serveConfig is every setting of `funnel serve`, resolved from (highest first)
// flags, FUNNEL_* environment variables, funnel.yaml and the defaults. The
// settings table below is the only place a setting is declared: its funnel.yaml
// key, flag, environment variable, default, validation and documentation all
// come from its one entry.
type serveConfig struct {
	Listen         string
	MetricsListen  string // "": /metrics on Listen
	PprofListen    string // "": no profiling endpoint
	DB             string
	Flows          []string
	Templates      string
	GraphURL       string
	PhoneNumberID  string
	PhoneNumberIDs []string // numbers whose webhooks are served; none: PhoneNumberID's
	DatasetID      string   // Conversions API dataset; "": conversions are only recorded
	WABAID         string   // the WhatsApp Business Account the conversions' clicks belong to
	MemoryLimit    int64    // Go's soft memory limit (GOMEMLIMIT); 0: none
	Timezone       *time.Location
	Rate           float64
	PairBurst      int
	PairInterval   time.Duration
	MaxQueued      int // unsent messages one contact may have
	OptOutKeywords []string
	MaxBody        int64
	LogLevel       slog.Level
	Synchronous    string
	Margin         time.Duration // 0: none

	RetentionRuns, RetentionMessages, RetentionInbox time.Duration
	ResendUnknownAfter                               time.Duration // 0: never (at-most-once)
	MessagingLimit                                   int           // unique users per rolling 24h; 0: unlimited
	MarketingRetryAfter                              time.Duration // 0: a 131049 is final
	LeaseTTL                                         time.Duration

	// Secrets: from the environment only.
	AccessToken, AppSecret, VerifyToken, APIToken string
}

// source says where a setting may be given.
type source uint8

const (
	fromFile source = 1 << iota
	fromFlag
	fromEnv

	anywhere = fromFile | fromFlag | fromEnv
	// secret settings are read from the environment only: a file is committed or
	// copied around, a flag is visible in the process list.
	secret = fromEnv
)

// setting is one row of the table. The flag is the key with dashes (--pair-burst),
// the environment variable FUNNEL_ and the key in capitals (FUNNEL_PAIR_BURST).
type setting struct {
	key   string
	def   string // the default, written as a flag would take it ("" = none)
	from  source
	val   value
	usage string
}

// settings is the table of every setting, bound to the fields of c. To add a
// setting: a field above, a line here, and `go test ./cmd/funnel -run
// TestSettingsDocumented -update` to refresh the README's table.
func settings(c *serveConfig) []setting {
	return []setting{
		{"listen", ":8080", anywhere, address(&c.Listen), "address the HTTP server listens on"},
		{"metrics_listen", "", anywhere, address(&c.MetricsListen), "address of a separate listener for GET /metrics, which `listen` then does not serve"},
		{"pprof_listen", "", fromFlag | fromEnv, loopbackAddress(&c.PprofListen), "loopback address serving Go's profiles at /debug/pprof/ (off when unset)"},
		{"db", "funnel.db", anywhere, text(&c.DB), "the database: a SQLite file, or `postgres://…` for PostgreSQL"},
		{"flows", "flows", anywhere, list(&c.Flows), "flow files or folders (the command's arguments take precedence)"},
		{"templates", "", anywhere, text(&c.Templates), "template catalog (default: templates.* beside the flows)"},
		{"graph_url", whatsapp.DefaultBaseURL, fromFlag | fromEnv, graphURL(&c.GraphURL), "Graph API base URL with its version; it receives the access token, so never from a file, and https unless on loopback"},
		{"phone_number_id", "", anywhere, phoneNumberID(&c.PhoneNumberID), "phone number id for business-initiated sends"},
		{"phone_number_ids", "", anywhere, phoneNumberIDs(&c.PhoneNumberIDs), "phone number ids whose webhooks are served; others are acknowledged, logged and dropped (default: phone_number_id; neither set: all)"},
		{"dataset_id", "", anywhere, graphID(&c.DatasetID, "dataset id"), "Meta dataset that receives conversions through the Conversions API (the token needs whatsapp_business_manage_events; needs waba_id); unset: conversions are only recorded"},
		{"waba_id", "", anywhere, graphID(&c.WABAID, "WhatsApp Business Account id"), "WhatsApp Business Account id, sent with each conversion as Meta requires"},
		{"timezone", "UTC", anywhere, location(&c.Timezone), "IANA time zone of contacts without one (quiet hours, wait at)"},
		{"rate", "80", anywhere, number(&c.Rate, 0.1, 1000), "messages per second per phone number (up to 1000)"},
		{"pair_burst", "5", anywhere, integer(&c.PairBurst, 1, 1000), "messages to one contact in a burst"},
		{"pair_interval", "6s", anywhere, duration(&c.PairInterval, time.Millisecond, time.Hour), "then one message to that contact per interval"},
		{"max_queued_per_contact", "100", anywhere, integer(&c.MaxQueued, 1, 100000), "unsent messages one contact may have; new ones past it are dropped and counted (refusals{reason=\"queue_full\"})"},
		{"opt_out_keywords", strings.Join(engine.DefaultOptOutKeywords, ","), anywhere, list(&c.OptOutKeywords), "whole messages that opt a contact out (comma-separated in a flag or variable)"},
		{"max_body", "1MiB", anywhere, size(&c.MaxBody, 1<<10, 64<<20), "largest webhook or API request body (bytes, or with KiB/MiB)"},
		{"memory_limit", "512MiB", anywhere, size(&c.MemoryLimit, 0, 1<<40), "Go's soft memory limit (GOMEMLIMIT wins when set; 0: none); also bounds the webhook bodies read at once"},
		{"log_level", "info", anywhere, level(&c.LogLevel), "debug, info, warn or error"},
		{"synchronous", "FULL", anywhere, oneOf(&c.Synchronous, "FULL", "NORMAL"), "SQLite synchronous: FULL (an acknowledged webhook survives power loss) or NORMAL"},
		{"margin", "30m", anywhere, duration(&c.Margin, 0, dsl.Window-time.Minute), "safety margin below 24h that makes a free-form send a warning (0: none)"},
		{"resend_unknown_after", "10m", anywhere, duration(&c.ResendUnknownAfter, 0, 7*dsl.Day), "how long a message whose outcome is unknown (a crash or a dropped connection during its call) waits for a status webhook before it is sent once more (0: never, at-most-once)"},
		{"messaging_limit", "unlimited", anywhere, messagingLimit(&c.MessagingLimit), "the business portfolio's messaging limit: unique users reached by business-initiated messages (templates outside the 24h window) in a rolling 24h; past it they wait for the allowance instead of failing"},
		{"marketing_retry_after", "0", anywhere, duration(&c.MarketingRetryAfter, 0, 30*dsl.Day), "send a message Meta refused with 131049 (per-user marketing limit) once more after this long (0: never; Meta advises waiting at least 24h)"},
		{"lease_ttl", "10s", anywhere, duration(&c.LeaseTTL, time.Second, 5*time.Minute), "how long the leader's lease lasts unrenewed: with several replicas on one PostgreSQL database, a leader that dies is replaced within about this (docs/SCALING.md)"},
		{"retention_runs", "90d", anywhere, duration(&c.RetentionRuns, time.Second, 100*365*dsl.Day), "how long ended runs (and their timers) are kept"},
		{"retention_messages", "90d", anywhere, duration(&c.RetentionMessages, time.Second, 100*365*dsl.Day), "how long settled messages and their status webhooks are kept, from when they were queued"},
		{"retention_inbox", "30d", anywhere, duration(&c.RetentionInbox, time.Second, 100*365*dsl.Day), "how long processed webhook events are kept: their ids deduplicate Meta's redeliveries and the API's Idempotency-Keys"},
		{"access_token", "", secret, text(&c.AccessToken), "Graph API token (required unless --dev)"},
		{"app_secret", "", secret, text(&c.AppSecret), "app secret: checks webhook signatures (required unless --dev)"},
		{"verify_token", "", secret, text(&c.VerifyToken), "the token of Meta's webhook verification (required unless --dev)"},
		{"api_token", "", secret, apiToken(&c.APIToken), "bearer token of /v1/events and /v1/contacts, at least 32 characters (that API is off when unset)"},
	}
}

func (s setting) flag() string { return strings.ReplaceAll(s.key, "_", "-") }
func (s setting) env() string  { return "FUNNEL_" + strings.ToUpper(s.key) }

// value parses a setting's text into its field. List settings get every item,
// the others exactly one.
type value struct {
	kind string // for help and docs
	list bool
	set  func(items []string) error
}

func text(p *string) value {
	return value{kind: "string", set: func(v []string) error { *p = v[0]; return nil }}
}

func list(p *[]string) value {
	return value{kind: "list", list: true, set: func(v []string) error {
		*p = nil
		for _, s := range v {
			if s = strings.TrimSpace(s); s != "" {
				*p = append(*p, s)
			}
		}
		return nil
	}}
}

// messagingLimit is one of Meta's messaging-limit tiers, or unlimited (0).
func messagingLimit(p *int) value {
	var s string
	pick := oneOf(&s, "250", "2000", "10000", "100000", "unlimited")
	return value{kind: pick.kind, set: func(v []string) error {
		if err := pick.set(v); err != nil {
			return err
		}
		*p, _ = strconv.Atoi(s) // unlimited: 0
		return nil
	}}
}

func oneOf(p *string, choices ...string) value {
	return value{kind: strings.Join(choices, "|"), set: func(v []string) error {
		for _, c := range choices {
			if strings.EqualFold(v[0], c) {
				*p = c
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v[0], strings.Join(choices, ", "))
	}}
}

func level(p *slog.Level) value {
	var s string
	pick := oneOf(&s, "debug", "info", "warn", "error")
	return value{kind: pick.kind, set: func(v []string) error {
		if err := pick.set(v); err != nil {
			return err
		}
		return p.UnmarshalText([]byte(s))
	}}
}

func integer(p *int, lo, hi int) value {
	return value{kind: "integer", set: func(v []string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v[0]))
		if err != nil {
			return fmt.Errorf("%q is not an integer", v[0])
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is out of range (%d to %d)", n, lo, hi)
		}
		*p = n
		return nil
	}}
}

func number(p *float64, lo, hi float64) value {
	return value{kind: "number", set: func(v []string) error {
		n, err := strconv.ParseFloat(strings.TrimSpace(v[0]), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v[0])
		}
		if !(n >= lo && n <= hi) { // NaN fails too
			return fmt.Errorf("%v is out of range (%v to %v)", n, lo, hi)
		}
		*p = n
		return nil
	}}
}

// duration accepts the flow language's durations (30m, 2h, 1d) and Go's (1h30m, 500ms).
func duration(p *time.Duration, lo, hi time.Duration) value {
	return value{kind: "duration", set: func(v []string) error {
		d, err := parseDurationFlag(strings.TrimSpace(v[0]))
		if err != nil {
			return fmt.Errorf("%q: %v", v[0], err)
		}
		if d < lo || d > hi {
			return fmt.Errorf("%s is out of range (%s to %s)", v[0], fmtDuration(lo), fmtDuration(hi))
		}
		*p = d
		return nil
	}}
}

func fmtDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return dsl.FormatDuration(d)
}

var sizeUnits = []struct {
	suffix string
	n      int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

// size is a byte count: 1048576, 1MiB, 512KiB, 2MB.
func size(p *int64, lo, hi int64) value {
	return value{kind: "size", set: func(v []string) error {
		s, mul := strings.TrimSpace(v[0]), int64(1)
		for _, u := range sizeUnits {
			if strings.HasSuffix(s, u.suffix) {
				s, mul = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.n
				break
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > hi/mul+1 {
			return fmt.Errorf("%q is not a size like 1048576 or 1MiB", v[0])
		}
		if n*mul < lo || n*mul > hi {
			return fmt.Errorf("%s is out of range (%d to %d bytes)", v[0], lo, hi)
		}
		*p = n * mul
		return nil
	}}
}

func location(p **time.Location) value {
	return value{kind: "zone", set: func(v []string) error {
		loc, err := time.LoadLocation(strings.TrimSpace(v[0]))
		if err != nil {
			return fmt.Errorf("%q is not an IANA time zone (like Europe/Madrid)", v[0])
		}
		*p = loc
		return nil
	}}
}

func address(p *string) value {
	return value{kind: "address", set: func(v []string) error {
		if _, port, err := net.SplitHostPort(v[0]); err != nil || port == "" {
			return fmt.Errorf("%q is not an address like :8080 or 127.0.0.1:8080", v[0])
		}
		*p = v[0]
		return nil
	}}
}

// loopbackAddress is an address on 127.0.0.1, ::1 or localhost: what it
// serves (profiles) is for the machine's own operators only.
func loopbackAddress(p *string) value {
	return value{kind: "address", set: func(v []string) error {
		if err := checkLoopback(v[0]); err != nil {
			return err
		}
		*p = v[0]
		return nil
	}}
}

// phoneNumberID is a Graph id: it goes into the path of every send.
func phoneNumberID(p *string) value {
	return value{kind: "id", set: func(v []string) error {
		if v[0] != "" && !whatsapp.ValidObjectID(v[0]) {
			return fmt.Errorf("%q is not a phone number id (digits only)", v[0])
		}
		*p = v[0]
		return nil
	}}
}

func graphID(p *string, what string) value {
	return value{kind: "id", set: func(v []string) error {
		if v[0] != "" && !whatsapp.ValidObjectID(v[0]) {
			return fmt.Errorf("%q is not a %s (digits only)", v[0], what)
		}
		*p = v[0]
		return nil
	}}
}

func phoneNumberIDs(p *[]string) value {
	l := list(p)
	return value{kind: "ids", list: true, set: func(v []string) error {
		if err := l.set(v); err != nil {
			return err
		}
		for _, id := range *p {
			if !whatsapp.ValidObjectID(id) {
				return fmt.Errorf("%q is not a phone number id (digits only)", id)
			}
		}
		return nil
	}}
}

// apiToken is a bearer token long enough not to be guessed.
func apiToken(p *string) value {
	return value{kind: "token", set: func(v []string) error {
		if err := server.CheckAPIToken(v[0]); err != nil {
			return err
		}
		*p = v[0]
		return nil
	}}
}

// graphURL is where the access token goes: an https URL, or http to loopback.
func graphURL(p *string) value {
	return value{kind: "url", set: func(v []string) error {
		if err := whatsapp.CheckBaseURL(v[0]); err != nil {
			return err
		}
		*p = strings.TrimRight(v[0], "/")
		return nil
	}}
}

// configFlags holds the raw flag values until the file and environment are read.
type configFlags struct {
	path     string
	settings []setting
	raw      map[string]*flagValue
	fs       *pflag.FlagSet
}

type flagValue struct {
	kind, v string
	list    bool
}

func (f *flagValue) String() string { return f.v }
func (f *flagValue) Type() string   { return f.kind }
func (f *flagValue) Set(s string) error {
	if f.list && f.v != "" { // a repeated list flag adds items
		s = f.v + "," + s
	}
	f.v = s
	return nil
}

// addConfigFlags registers --config and a flag for every setting that takes one.
func addConfigFlags(fs *pflag.FlagSet) *configFlags {
	cf := &configFlags{settings: settings(&serveConfig{}), raw: map[string]*flagValue{}, fs: fs}
	fs.StringVar(&cf.path, "config", "funnel.yaml", "config file, optional unless given (env FUNNEL_CONFIG)")
	for _, s := range cf.settings {
		if s.from&fromFlag == 0 {
			continue
		}
		fv := &flagValue{kind: s.val.kind, list: s.val.list}
		cf.raw[s.key] = fv
		usage := s.usage + " (env " + s.env() + ")"
		fs.Var(fv, s.flag(), usage)
		fs.Lookup(s.flag()).DefValue = s.def
	}
	return cf
}

// load resolves every setting: defaults, then funnel.yaml, then the
// environment, then flags. getenv is os.Getenv outside tests.
func (cf *configFlags) load(getenv func(string) string) (*serveConfig, error) {
	cfg := &serveConfig{}
	table := settings(cfg)
	for _, s := range table {
		if s.def == "" {
			continue
		}
		if err := s.val.set(splitItems(s.val, s.def)); err != nil {
			panic(fmt.Sprintf("setting %s: bad default: %v", s.key, err)) // a defect of the table, caught by its test
		}
	}
	path, explicit := cf.path, cf.fs != nil && cf.fs.Changed("config")
	if env := getenv("FUNNEL_CONFIG"); env != "" && !explicit {
		path, explicit = env, true
	}
	if err := loadConfigFile(table, path, explicit); err != nil {
		return nil, err
	}
	for _, s := range table {
		if s.from&fromEnv == 0 {
			continue
		}
		if v := getenv(s.env()); v != "" {
			if err := s.val.set(splitItems(s.val, v)); err != nil {
				return nil, fail(exitUsage, "%s: %v", s.env(), err)
			}
		}
	}
	for _, s := range table {
		if fv := cf.raw[s.key]; fv != nil && cf.fs.Changed(s.flag()) {
			if err := s.val.set(splitItems(s.val, fv.v)); err != nil {
				return nil, fail(exitUsage, "--%s: %v", s.flag(), err)
			}
		}
	}
	return cfg, nil
}

func splitItems(v value, s string) []string {
	if v.list {
		return strings.Split(s, ",")
	}
	return []string{s}
}

// loadConfigFile applies funnel.yaml to the table. A missing file is fine unless
// it was named; an unknown key, a secret or a bad value is an error with its line.
func loadConfigFile(table []setting, path string, explicit bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return &exitError{code: exitNoInput, err: fmt.Errorf("config: %w", err)}
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file
		}
		return &exitError{code: exitNoInput, err: fmt.Errorf("config %s: %w", path, err)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fail(exitUsage, "config %s:%d: want a mapping of settings (key: value)", path, root.Line)
	}
	byKey := map[string]setting{}
	var keys []string
	for _, s := range table {
		byKey[s.key] = s
		if s.from&fromFile != 0 {
			keys = append(keys, s.key)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		at := fmt.Sprintf("config %s:%d", path, k.Line)
		s, ok := byKey[k.Value]
		switch {
		case ok && s.from&fromFile == 0 && s.from&fromFlag == 0:
			return fail(exitUsage, "%s: `%s` is a secret: set it in the environment (%s), never in a file", at, k.Value, s.env())
		case ok && s.from&fromFile == 0:
			return fail(exitUsage, "%s: `%s` cannot be set in a file: use --%s or %s", at, k.Value, s.flag(), s.env())
		case !ok && (strings.Contains(k.Value, "token") || strings.Contains(k.Value, "secret")):
			return fail(exitUsage, "%s: `%s` looks like a secret: secrets come from the environment (FUNNEL_*), never from a file", at, k.Value)
		case !ok:
			hint := ""
			if n := suggest(k.Value, keys); n != "" {
				hint = fmt.Sprintf(" (did you mean `%s`?)", n)
			}
			return fail(exitUsage, "%s: unknown setting `%s`%s", at, k.Value, hint)
		}
		if seen[k.Value] {
			return fail(exitUsage, "%s: `%s` is set twice", at, k.Value)
		}
		seen[k.Value] = true
		items, err := nodeItems(s.val, v)
		if err == nil {
			err = s.val.set(items)
		}
		if err != nil {
			return fail(exitUsage, "config %s:%d: %s: %v", path, v.Line, k.Value, err)
		}
	}
	return nil
}

// nodeItems reads a YAML value: a scalar, or for lists a sequence of scalars.
func nodeItems(v value, n *yaml.Node) ([]string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag != "!!null":
		return []string{n.Value}, nil
	case n.Kind == yaml.SequenceNode && v.list:
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("want a list of plain values")
			}
			items = append(items, c.Value)
		}
		return items, nil
	case v.list:
		return nil, fmt.Errorf("want a list")
	default:
		return nil, fmt.Errorf("want a single %s value", v.kind)
	}
}

// checkEnvNames refuses a FUNNEL_ variable that is one edit (a letter
// missing, extra, wrong or two swapped) from a setting's variable: set, it
// would otherwise be ignored and the daemon would run with the default. Only
// near misses are refused, since other FUNNEL_ variables exist (FUNNEL_CONFIG,
// the test suites' knobs). environ holds KEY=value entries.
func checkEnvNames(environ []string) error {
	known := map[string]bool{"FUNNEL_CONFIG": true}
	var names []string
	for _, s := range settings(&serveConfig{}) {
		if s.from&fromEnv != 0 {
			known[s.env()] = true
			names = append(names, s.env())
		}
	}
	sort.Strings(names)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "FUNNEL_") || known[name] {
			continue
		}
		for _, n := range names {
			if dsl.EditDistance(name, n) == 1 {
				return fail(exitUsage, "%s is not a setting (did you mean %s?)", name, n)
			}
		}
	}
	return nil
}

// suggest returns the candidate nearest to s when it is a plausible typo
// (candidates sorted first, so a tie is decided the same way every time).
func suggest(s string, candidates []string) string {
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	return dsl.Nearest(s, sorted)
}

// settingsMarkdown is the README's table of settings.
func settingsMarkdown() string {
	var b strings.Builder
	b.WriteString("| funnel.yaml | flag | environment | default | |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range settings(&serveConfig{}) {
		key, flag := "`"+s.key+"`", "`--"+s.flag()+"`"
		if s.from&fromFile == 0 {
			key = "—"
		}
		if s.from&fromFlag == 0 {
			flag = "—"
		}
		def := "`" + s.def + "`"
		if s.def == "" {
			def = ""
		}
		fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s |\n", key, flag, s.env(), def, s.usage)
	}
	return b.String()
}
