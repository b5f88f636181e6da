package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPprofListenLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"localhost:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"10.0.0.1:6060", false},
		{"example.com:6060", false},
		{"127.0.0.1", false}, // no port
	} {
		ln, srv, err := pprofListen(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("pprofListen(%q): err %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "pprof_listen") {
				t.Errorf("pprofListen(%q): error %q does not name pprof_listen", tc.addr, err)
			}
			continue
		}
		if tc.addr == "127.0.0.1:0" {
			go srv.Serve(ln)
			res, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || len(b) == 0 {
				t.Errorf("/debug/pprof/cmdline: %s %q", res.Status, b)
			}
		}
		srv.Close()
		ln.Close()
	}
}
