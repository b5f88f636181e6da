package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// checkLoopback accepts host:port addresses on a loopback host only.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("%q is not an address like 127.0.0.1:6060", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1, ::1 or localhost): profiles expose the process's internals", addr)
	}
	return nil
}

// pprofListen opens the profiling endpoint of pprof_listen: Go's
// net/http/pprof handlers on their own listener, apart from the webhook
// server, on a loopback address only (a CPU profile also costs CPU while it
// runs).
func pprofListen(addr string) (net.Listener, *http.Server, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, nil, fmt.Errorf("pprof_listen: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s (pprof_listen): %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or a trace streams for its whole duration.
	return ln, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, nil
}
