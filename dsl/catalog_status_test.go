package dsl

import (
	"strings"
	"testing"
	"time"
)

// A catalog carries when each status changed and the quality rating, in
// Meta's shape (quality_score {score}) and funnel's (quality).
func TestCatalogStatusTimeAndQuality(t *testing.T) {
	c, err := ParseCatalog("t.json", []byte(`{"data": [
		{"name": "a", "language": "en_US", "status": "PAUSED", "category": "MARKETING", "status_changed_at": "2026-11-27T06:10:00+01:00", "quality_score": {"score": "red", "date": 1764200000}},
		{"name": "b", "language": "en_US", "status": "DISABLED", "category": "UTILITY", "status_changed_at": "2026-10-02"},
		{"name": "c", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "quality": "green"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Lookup("a", "en_US")
	b, _ := c.Lookup("b", "en_US")
	cc, _ := c.Lookup("c", "en_US")
	if !a.StatusChangedAt.Equal(time.Date(2026, 11, 27, 5, 10, 0, 0, time.UTC)) || a.Quality != "RED" {
		t.Errorf("a: %v %q", a.StatusChangedAt, a.Quality)
	}
	if !b.StatusChangedAt.Equal(time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC)) || b.Quality != "" {
		t.Errorf("b: %v %q", b.StatusChangedAt, b.Quality)
	}
	if !cc.StatusChangedAt.IsZero() || cc.Quality != "GREEN" {
		t.Errorf("c: %v %q", cc.StatusChangedAt, cc.Quality)
	}
	_, err = ParseCatalog("t.yaml", []byte("templates:\n  - {name: a, language: en_US, status: PAUSED, status_changed_at: yesterday}\n"))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:2:5: template 1: template \"a\": status_changed_at: \"yesterday\": want a date") {
		t.Errorf("bad date: %v", err)
	}
}
