package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

var updateDocs = flag.Bool("update", false, "rewrite the README's table of settings")

// loadWith resolves the settings from a funnel.yaml body (none when ""), an
// environment and a command line.
func loadWith(t *testing.T, file string, env map[string]string, args ...string) (*serveConfig, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cf := addConfigFlags(fs)
	path := filepath.Join(t.TempDir(), "funnel.yaml")
	if file != "" {
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Parse(append([]string{"--config", path}, args...)); err != nil {
		t.Fatal(err)
	}
	if file == "" {
		cf.path = path + ".absent"
		fs.Lookup("config").Changed = false
	}
	return cf.load(func(k string) string { return env[k] })
}

// samples holds a valid value, other than any default, of each kind of setting.
var samples = map[string]string{
	"string": "x1", "list": "a,b", "url": "http://127.0.0.1:1/v9", "zone": "Europe/Madrid",
	"number": "12.5", "integer": "7", "duration": "90s", "size": "2MiB", "address": "127.0.0.1:9",
	"FULL|NORMAL": "NORMAL", "debug|info|warn|error": "debug", "250|2000|10000|100000|unlimited": "2000", "token": "0123456789abcdef0123456789abcdef", "id": "106540352242922", "ids": "106540352242922,106540352242923",
}

// TestEverySettingFromEverySource sets each setting, in turn, from each source
// it allows and checks that it took effect: a setting added to the table gets
// its flag and environment variable with nothing else to write.
func TestEverySettingFromEverySource(t *testing.T) {
	def, err := loadWith(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings(&serveConfig{}) {
		sample, ok := samples[s.val.kind]
		if !ok {
			t.Fatalf("%s: no sample value for kind %q: add one to samples", s.key, s.val.kind)
		}
		if s.from&fromEnv == 0 {
			t.Errorf("%s: every setting must have an environment variable", s.key)
		}
		if s.from&fromFile != 0 && s.from&fromFlag == 0 {
			t.Errorf("%s: a setting of funnel.yaml must also have a flag", s.key)
		}
		yamlValue := sample
		if s.val.list {
			yamlValue = "[" + strings.ReplaceAll(sample, ",", ", ") + "]"
		}
		for _, src := range []struct {
			name string
			from source
			file string
			env  map[string]string
			args []string
		}{
			{"file", fromFile, s.key + ": " + yamlValue + "\n", nil, nil},
			{"env", fromEnv, "", map[string]string{s.env(): sample}, nil},
			{"flag", fromFlag, "", nil, []string{"--" + s.flag(), sample}},
		} {
			if s.from&src.from == 0 {
				continue
			}
			got, err := loadWith(t, src.file, src.env, src.args...)
			if err != nil {
				t.Errorf("%s from %s: %v", s.key, src.name, err)
				continue
			}
			if reflect.DeepEqual(got, def) {
				t.Errorf("%s from %s = %q: no effect", s.key, src.name, sample)
			}
		}
	}
}

func TestSettingsPrecedence(t *testing.T) {
	file := "rate: 10\npair_burst: 3\nlisten: 127.0.0.1:1\n"
	env := map[string]string{"FUNNEL_RATE": "20", "FUNNEL_PAIR_BURST": "4"}
	c, err := loadWith(t, file, env, "--rate", "30")
	if err != nil {
		t.Fatal(err)
	}
	if c.Rate != 30 || c.PairBurst != 4 || c.Listen != "127.0.0.1:1" || c.PairInterval != 6*time.Second {
		t.Fatalf("flag > env > file > default: rate %v, pair_burst %d, listen %s, pair_interval %v",
			c.Rate, c.PairBurst, c.Listen, c.PairInterval)
	}
	c, err = loadWith(t, "synchronous: normal\nopt_out_keywords: [BASTA, stop]\nmargin: 0\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Synchronous != "NORMAL" || !reflect.DeepEqual(c.OptOutKeywords, []string{"BASTA", "stop"}) || c.Margin != 0 {
		t.Fatalf("synchronous %q, keywords %q, margin %v", c.Synchronous, c.OptOutKeywords, c.Margin)
	}
	if c.MessagingLimit != 0 || c.MarketingRetryAfter != 0 {
		t.Fatalf("defaults: messaging_limit %d, marketing_retry_after %v; want unlimited and off", c.MessagingLimit, c.MarketingRetryAfter)
	}
	c, err = loadWith(t, "messaging_limit: 2000\nmarketing_retry_after: 24h\n", nil)
	if err != nil || c.MessagingLimit != 2000 || c.MarketingRetryAfter != 24*time.Hour {
		t.Fatalf("messaging_limit %d, marketing_retry_after %v, %v", c.MessagingLimit, c.MarketingRetryAfter, err)
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		args       []string
		want       string
	}{
		{"typo", "listen: :8080\npair_brust: 3\n", nil, nil, "funnel.yaml:2: unknown setting `pair_brust` (did you mean `pair_burst`?)"},
		{"unknown far", "colour: blue\n", nil, nil, "unknown setting `colour`"},
		{"synchronous", "synchronous: OFF\n", nil, nil, `funnel.yaml:1: synchronous: "OFF" is not one of FULL, NORMAL`},
		{"messaging_limit", "messaging_limit: 1000\n", nil, nil, `funnel.yaml:1: messaging_limit: "1000" is not one of 250, 2000, 10000, 100000, unlimited`},
		{"synchronous env", "", map[string]string{"FUNNEL_SYNCHRONOUS": "EXTRA"}, nil, `FUNNEL_SYNCHRONOUS: "EXTRA" is not one of FULL, NORMAL`},
		{"synchronous flag", "", nil, []string{"--synchronous", "off"}, `--synchronous: "off" is not one of FULL, NORMAL`},
		{"secret", "app_secret: hunter2\n", nil, nil, "`app_secret` is a secret: set it in the environment (FUNNEL_APP_SECRET)"},
		{"secret-like", "token: x\n", nil, nil, "`token` looks like a secret"},
		{"rate", "rate: 5000\n", nil, nil, "rate: 5000 is out of range"},
		{"rate text", "rate: fast\n", nil, nil, `rate: "fast" is not a number`},
		{"burst", "", map[string]string{"FUNNEL_PAIR_BURST": "0"}, nil, "FUNNEL_PAIR_BURST: 0 is out of range"},
		{"interval", "pair_interval: soon\n", nil, nil, `pair_interval: "soon"`},
		{"margin", "margin: 24h\n", nil, nil, "margin: 24h is out of range"},
		{"zone", "timezone: Mars/Olympus\n", nil, nil, "not an IANA time zone"},
		{"level", "log_level: loud\n", nil, nil, `log_level: "loud" is not one of debug, info, warn, error`},
		{"size", "max_body: lots\n", nil, nil, `max_body: "lots" is not a size`},
		{"listen", "", nil, []string{"--listen", "8080"}, `--listen: "8080" is not an address`},
		{"url", "", map[string]string{"FUNNEL_GRAPH_URL": "graph.facebook.com"}, nil, "not an http(s) URL"},
		{"graph url in the file", "graph_url: https://graph.facebook.com/v23.0\n", nil, nil, "funnel.yaml:1: `graph_url` cannot be set in a file: use --graph-url or FUNNEL_GRAPH_URL"},
		{"graph url over http", "", map[string]string{"FUNNEL_GRAPH_URL": "http://graph.example.com/v23.0"}, nil, "FUNNEL_GRAPH_URL: \"http://graph.example.com/v23.0\": plain http would send the access token in clear"},
		{"graph url over http by flag", "", nil, []string{"--graph-url", "http://10.0.0.7:8080/v23.0"}, "--graph-url: \"http://10.0.0.7:8080/v23.0\": plain http"},
		{"graph url with credentials", "", map[string]string{"FUNNEL_GRAPH_URL": "https://u:p@graph.example.com"}, nil, "credentials do not belong"},
		{"phone number id", "phone_number_id: ../me\n", nil, nil, `phone_number_id: "../me" is not a phone number id`},
		{"phone number ids", "", map[string]string{"FUNNEL_PHONE_NUMBER_IDS": "106540352242922,x"}, nil, `FUNNEL_PHONE_NUMBER_IDS: "x" is not a phone number id`},
		{"memory limit", "memory_limit: lots\n", nil, nil, `memory_limit: "lots" is not a size`},
		{"short api token", "", map[string]string{"FUNNEL_API_TOKEN": "api-secret-token"}, nil, "FUNNEL_API_TOKEN: the API token has 16 characters: use at least 32"},
		{"metrics listen", "metrics_listen: 9090\n", nil, nil, `metrics_listen: "9090" is not an address`},
		{"list shape", "flows: {a: b}\n", nil, nil, "flows: want a list"},
		{"scalar shape", "rate: [1, 2]\n", nil, nil, "rate: want a single number value"},
		{"twice", "rate: 1\nrate: 2\n", nil, nil, "`rate` is set twice"},
		{"not a mapping", "- rate\n", nil, nil, "want a mapping of settings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(t, tc.file, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigFileOptionalUnlessNamed(t *testing.T) {
	if _, err := loadWith(t, "", nil); err != nil {
		t.Fatalf("no funnel.yaml: %v", err)
	}
	if _, err := loadWith(t, "# only a comment\n", nil); err != nil {
		t.Fatalf("an empty funnel.yaml: %v", err)
	}
	_, err := loadWith(t, "", map[string]string{"FUNNEL_CONFIG": filepath.Join(t.TempDir(), "missing.yaml")})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("a named config file that is missing: %v", err)
	}
}

// TestSettingsDocumented keeps the README's table of settings equal to the code's.
func TestSettingsDocumented(t *testing.T) {
	const begin, end = "<!-- BEGIN settings -->\n", "<!-- END settings -->"
	path := "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q block", strings.TrimSpace(begin), end)
	}
	want := settingsMarkdown()
	if got := s[i+len(begin) : j]; got != want {
		if *updateDocs {
			os.WriteFile(path, []byte(s[:i+len(begin)]+want+s[j:]), 0o644)
			return
		}
		t.Fatalf("README.md's table of settings is out of date (go test ./cmd/funnel -run TestSettingsDocumented -update):\n%s", want)
	}
}

// A FUNNEL_ variable one edit away from a setting's is refused with the name
// meant (set, it would be ignored); other FUNNEL_ variables are left alone.
func TestEnvTypo(t *testing.T) {
	for _, c := range []struct {
		env  string
		want string // "" = accepted
	}{
		{"FUNNEL_PAIR_INTERVL=3s", "FUNNEL_PAIR_INTERVL is not a setting (did you mean FUNNEL_PAIR_INTERVAL?)"},
		{"FUNNEL_SYNCHRONUS=NORMAL", "did you mean FUNNEL_SYNCHRONOUS?"},
		{"FUNNEL_LISTNE=:1", "did you mean FUNNEL_LISTEN?"},
		{"FUNNEL_PAIR_INTERVAL=3s", ""},
		{"FUNNEL_CONFIG=x.yaml", ""},
		{"FUNNEL_FLOOD=10", ""}, // a test knob, two edits from FUNNEL_FLOWS
		{"FUNNEL_SEED=1", ""},
		{"FUNNEL_RELIABILITY=ci", ""},
		{"PATH=/bin", ""},
	} {
		err := checkEnvNames([]string{"HOME=/root", c.env})
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.env, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.env, err, c.want)
		}
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("%s: want exit %d, got %v", c.env, exitUsage, err)
		}
	}
}
