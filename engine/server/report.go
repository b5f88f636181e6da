package server

import (
	"context"
	"net/http"
	"time"

	"github.com/funnel-dev/funnel/report"
)

// reportTimeout bounds the report's queries: it reads through indexes, but a
// caller must not hold a read connection for ever.
const reportTimeout = 30 * time.Second

// reportFor reads the report the query asks for (?flow=ID&since=T&until=T,
// T as `funnel report` takes it); a bad parameter is an error in words.
func (s *Server) reportFor(ctx context.Context, r *http.Request) (*report.Report, int, error) {
	q := r.URL.Query()
	now := s.eng.Now()
	var since, until time.Time
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = report.ParseTime(v, now); err != nil {
			return nil, http.StatusBadRequest, badParam("since", err)
		}
	}
	if v := q.Get("until"); v != "" {
		if until, err = report.ParseTime(v, now); err != nil {
			return nil, http.StatusBadRequest, badParam("until", err)
		}
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		return nil, http.StatusBadRequest, errString("until must be after since")
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	rep, err := report.Build(ctx, s.st, q.Get("flow"), since, until)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	return rep, http.StatusOK, nil
}

type errString string

func (e errString) Error() string { return string(e) }

func badParam(name string, err error) error { return errString(name + ": " + err.Error()) }

// getReport is GET /v1/report: the funnel report as JSON (docs/REPORT.md).
func (s *Server) getReport(w http.ResponseWriter, r *http.Request) {
	rep, code, err := s.reportFor(r.Context(), r)
	if err != nil {
		if code == http.StatusInternalServerError {
			s.log.Error("report", "err", err)
		}
		apiError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
