package whatsapp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

func TestCheckBaseURL(t *testing.T) {
	for base, ok := range map[string]bool{
		"https://graph.facebook.com/v23.0": true,
		"http://127.0.0.1:9000/v23.0":      true,
		"http://[::1]:9000":                true,
		"http://localhost:9000":            true,
		"http://graph.facebook.com/v23.0":  false,
		"http://10.0.0.7/v23.0":            false,
		"http://127.0.0.1.evil.example":    false,
		"ftp://graph.facebook.com":         false,
		"graph.facebook.com":               false,
		"https://user:pw@graph.example":    false,
	} {
		if err := CheckBaseURL(base); (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", base, err, ok)
		}
	}
}

// The client refuses to put the token on plain http to another machine,
// whatever configured it.
func TestClientRefusesPlainHTTPElsewhere(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := &Client{BaseURL: "http://graph.example.com/v23.0", Token: "t", HTTP: srv.Client()}
	c.HTTP.Transport = &http.Transport{Proxy: func(*http.Request) (*url.URL, error) { return url.Parse(srv.URL) }}
	if _, err := c.Send(t.Context(), "1", NewText("16505551234", "x")); !errors.Is(err, ErrConfig) {
		t.Errorf("send: %v", err)
	}
	if _, err := c.ListTemplates(t.Context(), "1"); !errors.Is(err, ErrConfig) {
		t.Errorf("templates: %v", err)
	}
	if hits.Load() != 0 {
		t.Error("the token left over plain http")
	}
}
