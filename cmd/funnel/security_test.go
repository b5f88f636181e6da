package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/funnel-dev/funnel/engine/whatsapp/whatsapptest"
)

// productionEnv is the environment of a daemon against the fake Graph API.
func productionEnv(fake *whatsapptest.Fake, apiToken string) []string {
	return []string{"FUNNEL_GRAPH_URL=" + fake.URL(), "FUNNEL_ACCESS_TOKEN=" + fake.Token(),
		"FUNNEL_APP_SECRET=" + fake.AppSecret(), "FUNNEL_VERIFY_TOKEN=verify-token-of-the-security-test",
		"FUNNEL_API_TOKEN=" + apiToken}
}

// An API token short enough to guess stops the daemon at start, saying why.
func TestServeRefusesShortAPIToken(t *testing.T) {
	dir := copyFlows(t)
	fake := whatsapptest.New(t, whatsapptest.Options{})
	for _, kv := range productionEnv(fake, "api-secret-token") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"serve", "--listen", freePort(t), "--db", filepath.Join(dir, "f.db"), filepath.Join(dir, "flows")}, &out, &errOut)
	if code != exitUsage || !strings.Contains(errOut.String(), "FUNNEL_API_TOKEN: the API token has 16 characters: use at least 32") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}

// metrics_listen serves /metrics on its own listener, and the public one no
// longer shows it; memory_limit shows there as Go's memory limit.
func TestServeMetricsOnSeparateListener(t *testing.T) {
	dir := copyFlows(t)
	fake := whatsapptest.New(t, whatsapptest.Options{})
	addr, maddr := freePort(t), freePort(t)
	cmd := funnelCmd(t, dir, productionEnv(fake, strings.Repeat("k", 32)), "serve", "--listen", addr,
		"--metrics-listen", maddr, "--memory-limit", "300MiB", "--db", filepath.Join(dir, "f.db"))
	cmd.Env = append(cmd.Env, "GOMEMLIMIT=")
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "readiness", func() bool { code, _ := get("http://" + addr + "/readyz"); return code == 200 })
	if code, body := get("http://" + maddr + "/metrics"); code != 200 || !strings.Contains(body, "funnel_inbox_pending") {
		t.Fatalf("metrics listener: %d\n%.300s\nlogs:\n%s", code, body, logs.String())
	}
	// memory_limit is Go's soft memory limit (GOMEMLIMIT unset).
	if _, body := get("http://" + maddr + "/metrics"); !strings.Contains(body, "go_gc_gomemlimit_bytes 3.145728e+08") {
		t.Fatalf("memory_limit 300MiB did not set the Go memory limit:\n%s", grepLines(body, "gomemlimit"))
	}
	if code, _ := get("http://" + addr + "/metrics"); code != 404 {
		t.Fatalf("the public listener still serves /metrics: %d", code)
	}
	if code, _ := get("http://" + maddr + "/v1/contacts/16505551234"); code != 404 {
		t.Fatalf("the metrics listener serves the API: %d", code)
	}
}

func TestServedNumbersDefaultToThePhoneNumberID(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"FUNNEL_PHONE_NUMBER_ID": "106540352242922"}, []string{"106540352242922"}},
		{map[string]string{"FUNNEL_PHONE_NUMBER_ID": "106540352242922", "FUNNEL_PHONE_NUMBER_IDS": "1,2"}, []string{"1", "2"}},
		{nil, nil},
	} {
		c, err := loadWith(t, "", tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if got := servedNumbers(c); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: served %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestBodySlots(t *testing.T) {
	for _, tc := range []struct {
		limit, body int64
		want        int
	}{{512 << 20, 1 << 20, 64}, {0, 1 << 20, 64}, {16 << 20, 1 << 20, 8}, {8 << 30, 1 << 20, 256}, {256 << 20, 256 << 10, 128}} {
		if got := bodySlots(tc.limit, tc.body); got != tc.want {
			t.Errorf("bodySlots(%d, %d) = %d, want %d", tc.limit, tc.body, got, tc.want)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
