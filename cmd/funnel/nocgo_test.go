//go:build !cgo

package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestWithoutCgo (CGO_ENABLED=0 go test ./cmd/funnel -run TestWithoutCgo): the
// validator's commands work, the commands that need a database say why not.
func TestWithoutCgo(t *testing.T) {
	for _, args := range [][]string{
		{"validate", "../../flows"},
		{"explain", "../../flows/menu.yaml"},
		{"graph", "../../flows/menu.yaml"},
		{"schema"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != exitOK || out.Len()+errOut.Len() == 0 {
			t.Errorf("funnel %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
		}
	}
	for _, args := range [][]string{
		{"serve", "--dev", "--listen", "127.0.0.1:0"},
		{"simulate", "../../flows/menu.yaml"},
		{"test", "../../flows"},
		{"runs", "--db", "funnel.db"},
	} {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		if code != exitFailed || !strings.Contains(errOut.String(), "`funnel "+args[0]+"` needs the cgo SQLite build") {
			t.Errorf("funnel %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
		}
	}
}
