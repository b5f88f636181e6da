package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/report"
)

// The dashboard (GET /dashboard) is the funnel report as a page: per flow the
// funnel of steps with drop-off, results by ad, conversions over time and the
// split tests with intervals and a verdict in words. Everything is drawn on
// the server (SVG, no script), so it needs no build step and no CDN, and the
// page's CSP allows nothing but its own stylesheet.
//
// Outside --dev it is behind the API token: a bearer header (scripts), or a
// cookie set by giving the token once in the page's form. The cookie holds a
// digest of the token, not the token: it opens the dashboard only. Under
// --dev the sandbox's guard applies instead (local Host, same origin) and the
// page refreshes itself (unless ?refresh=0), so the funnel fills while you
// chat.

const (
	dashCookie  = "funnel_dashboard"
	dashRefresh = 5 // seconds, under --dev
	dashCSP     = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

var dashFuncs = template.FuncMap{
	"pct":   func(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" },
	"money": func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) },
	"dur": func(s float64) string {
		d := time.Duration(s * float64(time.Second)).Round(time.Second)
		if d < time.Second {
			return "<1s"
		}
		return dsl.FormatDuration(d)
	},
}

var (
	dashPage  = template.Must(template.New("dashboard.html").Funcs(dashFuncs).ParseFS(sandboxStatic, "static/dashboard.html"))
	dashLogin = template.Must(template.ParseFS(sandboxStatic, "static/dashboard-login.html"))
	dashCSS   = mustRead("static/dashboard.css")
)

func mustRead(name string) []byte {
	b, err := sandboxStatic.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// mountDashboard registers the dashboard's routes. Which guard applies is
// decided per request: the sandbox, attached after New, replaces the token.
func (s *Server) mountDashboard() {
	s.mux.HandleFunc("GET /dashboard", s.dashGuard(s.dashboard))
	s.mux.HandleFunc("POST /dashboard", s.dashSecure(s.dashLogin))
	s.mux.HandleFunc("GET /dashboard/dashboard.css", s.dashSecure(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Write(dashCSS)
	}))
}

// dashSecure sets the page's security headers, and under --dev applies the
// sandbox's guard.
func (s *Server) dashSecure(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", dashCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if s.devGuard != nil {
			// The sandbox's guard sets its own policy, which forbids forms.
			s.devGuard(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Security-Policy", dashCSP)
				next(w, r)
			})(w, r)
			return
		}
		next(w, r)
	}
}

// dashGuard lets a request through with the API token (header or cookie), or
// under --dev; others get the token form.
func (s *Server) dashGuard(next http.HandlerFunc) http.HandlerFunc {
	return s.dashSecure(func(w http.ResponseWriter, r *http.Request) {
		if s.devGuard == nil && !s.dashAuthorized(r) {
			msg := ""
			if s.cfg.APIToken == "" {
				msg = "The dashboard is off: set FUNNEL_API_TOKEN."
			}
			s.dashLoginPage(w, http.StatusUnauthorized, msg)
			return
		}
		next(w, r)
	})
}

// dashKey is the cookie's value: a digest of the API token, bound to the
// dashboard.
func (s *Server) dashKey() string {
	sum := sha256.Sum256([]byte("funnel dashboard\x00" + s.cfg.APIToken))
	return hex.EncodeToString(sum[:])
}

func (s *Server) dashAuthorized(r *http.Request) bool {
	if s.cfg.APIToken == "" {
		return false
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		gd := tokenDigest(got)
		return subtle.ConstantTimeCompare(gd[:], s.apiDigest[:]) == 1
	}
	c, err := r.Cookie(dashCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.dashKey())) == 1
}

func (s *Server) dashLoginPage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	dashLogin.Execute(w, msg)
}

// dashLogin takes the token from the page's form and sets the cookie.
func (s *Server) dashLogin(w http.ResponseWriter, r *http.Request) {
	if s.devGuard != nil {
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		s.dashLoginPage(w, http.StatusBadRequest, "Unreadable form.")
		return
	}
	gd := tokenDigest(r.PostForm.Get("token"))
	if s.cfg.APIToken == "" || subtle.ConstantTimeCompare(gd[:], s.apiDigest[:]) != 1 {
		s.dashLoginPage(w, http.StatusUnauthorized, "That is not the API token.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: dashCookie, Value: s.dashKey(), Path: "/dashboard", HttpOnly: true,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

type dashFlow struct {
	F      *report.Flow
	Funnel template.HTML
	Daily  template.HTML
	Splits []dashSplit
}

type dashSplit struct {
	S   *report.Split
	SVG template.HTML
	Win bool
}

type dashData struct {
	Dev                bool
	Refresh            int
	Flow, Since, Until string
	FlowIDs            []string
	Error              string
	Report             *report.Report
	Flows              []dashFlow
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := dashData{Dev: s.devGuard != nil, Flow: q.Get("flow"), Since: q.Get("since"), Until: q.Get("until")}
	if d.Dev && q.Get("refresh") != "0" {
		d.Refresh = dashRefresh
	}
	code := http.StatusOK
	rep, status, err := s.reportFor(r.Context(), r)
	if err != nil {
		code, d.Error = status, err.Error()
		if status == http.StatusInternalServerError {
			s.log.Error("dashboard", "err", err)
			d.Error = "The report could not be read: " + err.Error()
		}
	} else {
		d.Report = rep
		for _, f := range rep.Flows {
			d.FlowIDs = append(d.FlowIDs, f.Flow)
			df := dashFlow{F: f}
			var b bytes.Buffer
			report.WriteFunnelSVG(&b, f)
			df.Funnel = template.HTML(b.String()) // escaped where drawn
			b.Reset()
			report.WriteDailySVG(&b, f)
			df.Daily = template.HTML(b.String())
			for i := range f.Splits {
				sp := &f.Splits[i]
				b.Reset()
				report.WriteSplitSVG(&b, sp)
				df.Splits = append(df.Splits, dashSplit{S: sp, SVG: template.HTML(b.String()), Win: strings.Contains(sp.Verdict, "95% sure")})
			}
			d.Flows = append(d.Flows, df)
		}
	}
	var page bytes.Buffer
	if err := dashPage.Execute(&page, d); err != nil {
		s.log.Error("dashboard page", "err", err)
		http.Error(w, "dashboard page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(page.Bytes())
}
