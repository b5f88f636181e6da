package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// funnel test and funnel simulate refuse a tap that was not offered, naming the
// script line and the titles offered.
func TestTestAndSimulateRefuseTapsNotOffered(t *testing.T) {
	dir := copyFlows(t)
	script := filepath.Join(dir, "flows", "bad.test.yaml")
	os.WriteFile(script, []byte(`flows: [menu.yaml]
events:
  - inbound: menu
  - inbound: {button: "Opening hours"}
`), 0o644)
	want := "bad.test.yaml:4: button: \"Opening hours\": `button:` taps a template's quick reply, but this is a list row of an interactive message (menu/show-menu): write interactive: \"Opening hours\""
	var out, errOut bytes.Buffer
	if code := run([]string{"test", script}, &out, &errOut); code != exitFailed || !strings.Contains(out.String(), want) {
		t.Fatalf("funnel test: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"simulate", "--script", script}, &out, &errOut); code != exitFailed || !strings.Contains(errOut.String(), want) {
		t.Fatalf("funnel simulate: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// A script whose flows do not load names their errors (file, line, why), not
// only "run funnel validate": the flows a script loads (every flow beside it
// by default) are not always the ones its author had in mind.
func TestTestNamesFlowErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("flow: broken\ntrigger:\n  message: {keyword: hi}\nsteps:\n  - id: a\n    send: {text: hi}\n"), 0o644)
	script := filepath.Join(dir, "a.test.yaml")
	os.WriteFile(script, []byte("events:\n  - inbound: hi\n"), 0o644)
	var out, errOut bytes.Buffer
	code := run([]string{"test", script}, &out, &errOut)
	want := "broken.yaml:3:13: error: unknown key `keyword` in `message`; did you mean `keywords`?"
	if code != exitFailed || !strings.Contains(out.String(), want) {
		t.Fatalf("funnel test: exit %d, want %d and %q in\n%s%s", code, exitFailed, want, out.String(), errOut.String())
	}
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 messages"}, {1, "1 message"}, {2, "2 messages"}} {
		if got := count(c.n, "message"); got != c.want {
			t.Errorf("count(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
