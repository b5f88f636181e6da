package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newClient(srv *httptest.Server) *Client {
	return &Client{BaseURL: srv.URL + "/v23.0", Token: "tok", HTTP: &http.Client{Timeout: 5 * time.Second}}
}

func TestSendSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v23.0/106540352242922/messages" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer tok" {
			t.Errorf("Authorization %q", got)
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type %q", got)
		}
		var m Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Text.Body != "hello" || m.To != "16505551234" {
			t.Errorf("body %+v %v", m, err)
		}
		io.WriteString(w, `{"messaging_product":"whatsapp","contacts":[{"input":"+1 650 555 1234","wa_id":"16505551234"}],"messages":[{"id":"wamid.ABC","message_status":"accepted"}]}`)
	}))
	defer srv.Close()
	res, err := newClient(srv).Send(context.Background(), "106540352242922", NewText("16505551234", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if res != (SendResult{MessageID: "wamid.ABC", MessageStatus: "accepted", WaID: "16505551234"}) {
		t.Errorf("result %+v", res)
	}
}

func TestSendResponses(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		check  func(t *testing.T, err error)
		class  Class
	}{
		{"api error", 400, `{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_subcode":2494010,"error_data":{"messaging_product":"whatsapp","details":"More than 24 hours"},"fbtrace_id":"AbC"}}`,
			func(t *testing.T, err error) {
				var api *APIError
				if !errors.As(err, &api) {
					t.Fatalf("%T", err)
				}
				want := APIError{HTTPStatus: 400, Code: 131047, Subcode: 2494010, Type: "OAuthException", Message: "(#131047) Re-engagement message", Details: "More than 24 hours", FBTraceID: "AbC"}
				if *api != want {
					t.Errorf("%+v", *api)
				}
				for _, s := range []string{"131047", "More than 24 hours", "AbC", "HTTP 400"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%q lacks %q", err, s)
					}
				}
			}, Permanent},
		{"throughput", 400, `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"x"}}`, nil, Retryable},
		{"pair rate", 400, `{"error":{"code":131056,"message":"pair rate"}}`, func(t *testing.T, err error) {
			if ErrorCode(err) != 131056 {
				t.Error("pair rate not recognized")
			}
		}, Retryable},
		{"token expired", 401, `{"error":{"message":"Error validating access token","type":"OAuthException","code":190,"error_subcode":463}}`, nil, Fatal},
		{"5xx html", 502, `<html>Bad Gateway</html>`, func(t *testing.T, err error) {
			var api *APIError
			if !errors.As(err, &api) || api.HTTPStatus != 502 || api.Code != 0 {
				t.Errorf("%#v", err)
			}
		}, Retryable},
		{"5xx empty", 503, ``, nil, Retryable},
		{"500 code 1", 500, `{"error":{"code":1,"message":"An unknown error occurred"}}`, nil, Retryable},
		{"4xx not json", 404, `not found`, nil, Permanent},
		{"429 no code", 429, `slow down`, nil, Retryable},
		{"200 garbage", 200, `<html>`, func(t *testing.T, err error) {
			var u *UnknownOutcomeError
			if !errors.As(err, &u) {
				t.Errorf("%T %v", err, err)
			}
		}, Unknown},
		{"200 no messages", 200, `{"messaging_product":"whatsapp","messages":[]}`, nil, Unknown},
		{"200 with error object", 200, `{"error":{"code":131026,"message":"undeliverable"}}`, nil, Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			_, err := newClient(srv).Send(context.Background(), "1", NewText("2", "x"))
			if err == nil {
				t.Fatal("want error")
			}
			if got := Classify(err); got != tt.class {
				t.Errorf("Classify(%v) = %v, want %v", err, got, tt.class)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

func wantNotSent(t *testing.T, err error) {
	t.Helper()
	var ns *NotSentError
	if !errors.As(err, &ns) {
		t.Fatalf("want *NotSentError, got %T: %v", err, err)
	}
	if Classify(err) != Retryable {
		t.Errorf("not-sent classified %v", Classify(err))
	}
}

func wantUnknown(t *testing.T, err error) {
	t.Helper()
	var u *UnknownOutcomeError
	if !errors.As(err, &u) {
		t.Fatalf("want *UnknownOutcomeError, got %T: %v", err, err)
	}
	if Classify(err) != Unknown {
		t.Errorf("unknown outcome classified %v", Classify(err))
	}
}

func TestSendNeverLeft(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := &Client{BaseURL: "http://" + addr + "/v23.0", Token: "t", HTTP: &http.Client{Timeout: 2 * time.Second}}
		_, err = c.Send(context.Background(), "1", NewText("2", "x"))
		wantNotSent(t, err)
	})
	t.Run("dns", func(t *testing.T) {
		c := &Client{BaseURL: "https://funnel-test.invalid/v23.0", Token: "t", HTTP: &http.Client{Timeout: 3 * time.Second}}
		_, err := c.Send(context.Background(), "1", NewText("2", "x"))
		wantNotSent(t, err)
	})
	t.Run("tls untrusted", func(t *testing.T) {
		var hits atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the expected handshake failure
		srv.StartTLS()
		defer srv.Close()
		c := &Client{BaseURL: srv.URL, Token: "t", HTTP: &http.Client{Timeout: 2 * time.Second}}
		_, err := c.Send(context.Background(), "1", NewText("2", "x"))
		wantNotSent(t, err)
		if hits.Load() != 0 {
			t.Error("handler reached")
		}
	})
	t.Run("context already done", func(t *testing.T) {
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		defer srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newClient(srv).Send(ctx, "1", NewText("2", "x"))
		wantNotSent(t, err)
		if !errors.Is(err, context.Canceled) || hits.Load() != 0 {
			t.Errorf("err %v hits %d", err, hits.Load())
		}
	})
	t.Run("server never reads", func(t *testing.T) {
		// A listener that accepts nothing: the dial succeeds (backlog) but
		// a request this size still fits in socket buffers, so this is the
		// ambiguous case: it must not be reported as not-sent.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c := &Client{BaseURL: "http://" + ln.Addr().String(), Token: "t", HTTP: &http.Client{Timeout: 300 * time.Millisecond}}
		_, err = c.Send(context.Background(), "1", NewText("2", "x"))
		wantUnknown(t, err)
	})
}

func TestSendUnknownOutcome(t *testing.T) {
	t.Run("timeout after write", func(t *testing.T) {
		var got atomic.Int32
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			got.Add(1)
			<-release
		}))
		defer srv.Close()
		defer close(release)
		c := newClient(srv)
		c.HTTP.Timeout = 200 * time.Millisecond
		_, err := c.Send(context.Background(), "1", NewText("2", "x"))
		wantUnknown(t, err)
		if got.Load() != 1 {
			t.Error("server did not get the request")
		}
	})
	t.Run("context deadline after write", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			<-release
		}))
		defer srv.Close()
		defer close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := newClient(srv).Send(ctx, "1", NewText("2", "x"))
		wantUnknown(t, err)
	})
	t.Run("connection dropped after read", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		}))
		defer srv.Close()
		_, err := newClient(srv).Send(context.Background(), "1", NewText("2", "x"))
		wantUnknown(t, err)
	})
	t.Run("2xx body cut short", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"messages\":[")
			buf.Flush()
			conn.Close()
		}))
		defer srv.Close()
		_, err := newClient(srv).Send(context.Background(), "1", NewText("2", "x"))
		wantUnknown(t, err)
	})
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A custom transport does not report through httptrace: its errors are
// unknown unless they can only happen before sending.
func TestSendCustomTransport(t *testing.T) {
	c := &Client{BaseURL: "https://example.test", Token: "t", HTTP: &http.Client{Transport: rtFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("something broke")
	})}}
	_, err := c.Send(context.Background(), "1", NewText("2", "x"))
	wantUnknown(t, err)
	c.HTTP.Transport = rtFunc(func(*http.Request) (*http.Response, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}
	})
	_, err = c.Send(context.Background(), "1", NewText("2", "x"))
	wantNotSent(t, err)
}

func TestSendRefusesBeforeCalling(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := newClient(srv)
	_, err := c.Send(context.Background(), "1", NewButtons("2", "b", ButtonReply{"1", "a"}, ButtonReply{"2", "b"}, ButtonReply{"3", "c"}, ButtonReply{"4", "d"}))
	if !errors.Is(err, ErrInvalidMessage) || Classify(err) != Permanent {
		t.Errorf("invalid: %v (%v)", err, Classify(err))
	}
	_, err = c.Send(context.Background(), "", NewText("2", "x"))
	if !errors.Is(err, ErrConfig) || Classify(err) != Fatal {
		t.Errorf("no phone id: %v", err)
	}
	_, err = (&Client{BaseURL: srv.URL}).Send(context.Background(), "1", NewText("2", "x"))
	if !errors.Is(err, ErrConfig) {
		t.Errorf("no token: %v", err)
	}
	if hits.Load() != 0 {
		t.Error("server called")
	}
}

func TestListTemplates(t *testing.T) {
	var srv *httptest.Server
	pages := map[string]string{
		"":   `{"data":[{"name":"a","language":"en_US","status":"APPROVED"},{"name":"b","language":"en_US"}],"paging":{"cursors":{"before":"x","after":"p2"},"next":"%s/v23.0/555/message_templates?limit=100&after=p2"}}`,
		"p2": `{"data":[{"name":"c","language":"pt_BR"}],"paging":{"cursors":{"before":"p2","after":"p3"},"next":"%s/v23.0/555/message_templates?limit=100&after=p3"}}`,
		"p3": `{"data":[{"name":"d","language":"es"}],"paging":{"cursors":{"before":"p3","after":"p4"}}}`,
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v23.0/555/message_templates" || r.URL.Query().Get("limit") != "100" || r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("%s %s %s", r.Method, r.URL, r.Header.Get("Authorization"))
		}
		p, ok := pages[r.URL.Query().Get("after")]
		if !ok {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"code":100,"message":"bad cursor"}}`)
			return
		}
		if strings.Contains(p, "%s") {
			p = fmt.Sprintf(p, srv.URL)
		}
		io.WriteString(w, p)
	}))
	defer srv.Close()
	got, err := newClient(srv).ListTemplates(context.Background(), "555")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, raw := range got {
		var v struct{ Name string }
		json.Unmarshal(raw, &v)
		names = append(names, v.Name)
	}
	if strings.Join(names, ",") != "a,b,c,d" {
		t.Errorf("names %v", names)
	}
	var buf bytes.Buffer
	if err := WriteTemplates(&buf, got); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Data) != 4 || back.Data[0]["status"] != "APPROVED" {
		t.Errorf("WriteTemplates: %s %v", buf.Bytes(), err)
	}
	buf.Reset()
	WriteTemplates(&buf, nil)
	if strings.TrimSpace(buf.String()) != "{\n  \"data\": []\n}" {
		t.Errorf("empty: %q", buf.String())
	}
}

func TestListTemplatesRefusals(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
		status              int
	}{
		{"foreign host", `{"data":[],"paging":{"next":"https://evil.example/steal"}}`, "refusing paging.next", 200},
		{"loop", `{"data":[{"name":"a"}],"paging":{"next":"SELF"}}`, "does not end", 200},
		{"api error", `{"error":{"code":190,"message":"expired"}}`, "code 190", 401},
		{"bad json", `{"data":`, "templates page 1", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, strings.ReplaceAll(tt.body, "SELF", srv.URL+"/v23.0/555/message_templates?limit=100"))
			}))
			defer srv.Close()
			_, err := newClient(srv).ListTemplates(context.Background(), "555")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// Over HTTP/2 (what graph.facebook.com speaks) the trace tells the same story.
func TestSendHTTP2(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("proto %s", r.Proto)
		}
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v23.0/999/messages" {
			<-release
			return
		}
		io.WriteString(w, `{"messages":[{"id":"wamid.H2","message_status":"accepted"}]}`)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	defer close(release)
	hc := srv.Client()
	hc.Timeout = 300 * time.Millisecond
	c := &Client{BaseURL: srv.URL + "/v23.0", Token: "t", HTTP: hc}
	res, err := c.Send(context.Background(), "1", NewText("2", "x"))
	if err != nil || res.MessageID != "wamid.H2" {
		t.Fatalf("%+v %v", res, err)
	}
	_, err = c.Send(context.Background(), "999", NewText("2", "x"))
	wantUnknown(t, err)
}
