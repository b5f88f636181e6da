package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// pulledTemplate is what `templates pull` reads of a template, in Meta's JSON
// or in a file it wrote before.
type pulledTemplate struct {
	Name            string          `json:"name"`
	Language        json.RawMessage `json:"language"`
	Status          string          `json:"status"`
	StatusChangedAt string          `json:"status_changed_at"`
}

func (p pulledTemplate) key() string {
	lang := string(p.Language)
	var s string
	if json.Unmarshal(p.Language, &s) == nil {
		lang = s
	} else {
		var o struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(p.Language, &o) == nil {
			lang = o.Code
		}
	}
	return p.Name + "\x00" + lang
}

// stampStatusChanges adds funnel's `status_changed_at` to each pulled
// template: the time recorded in the previous file while the status is the
// same, else now (the status changed since the last pull, or a template first
// seen in a status other than APPROVED). The catalog file is the only memory
// of a status between pulls; Meta's listing has no such date. It writes the
// changes it saw to report.
func stampStatusChanges(prev []byte, ts []json.RawMessage, now time.Time, report io.Writer) ([]json.RawMessage, error) {
	before := map[string]pulledTemplate{}
	if len(bytes.TrimSpace(prev)) > 0 {
		var old struct {
			Data []pulledTemplate `json:"data"`
		}
		// A previous file funnel cannot read (a YAML catalog, say) only
		// means no history: every status counts as first seen.
		if json.Unmarshal(prev, &old) == nil {
			for _, t := range old.Data {
				before[t.key()] = t
			}
		}
	}
	stamp := now.UTC().Format(time.RFC3339)
	out := make([]json.RawMessage, len(ts))
	for i, raw := range ts {
		var t pulledTemplate
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("template %d: %v", i+1, err)
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("template %d: %v", i+1, err)
		}
		at := ""
		old, seen := before[t.key()]
		switch {
		case seen && old.Status == t.Status:
			at = old.StatusChangedAt
		case seen:
			at = stamp
			fmt.Fprintf(report, "%s: %s → %s\n", t.Name+" ("+langOf(t)+")", old.Status, t.Status)
		case t.Status != "APPROVED":
			at = stamp
			fmt.Fprintf(report, "%s: %s\n", t.Name+" ("+langOf(t)+")", t.Status)
		}
		if at == "" {
			out[i] = raw
			continue
		}
		obj["status_changed_at"], _ = json.Marshal(at)
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func langOf(t pulledTemplate) string {
	k := t.key()
	return k[len(t.Name)+1:]
}
