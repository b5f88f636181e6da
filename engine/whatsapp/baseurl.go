package whatsapp

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckBaseURL reports whether base may receive the access token: an absolute
// http(s) URL, and https unless its host is a loopback address (a local fake
// or proxy). Every request to it carries `Authorization: Bearer <token>`, so
// plain http to anywhere else would hand the token to the network.
func CheckBaseURL(base string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", base)
	}
	if u.User != nil {
		return fmt.Errorf("%q: credentials do not belong in the Graph URL", u.Redacted())
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return fmt.Errorf("%q: plain http would send the access token in clear; use https (http is allowed only to a loopback address)", base)
	}
	return nil
}

// IsLoopback reports whether host (a name or an IP, without port) is this
// machine: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
