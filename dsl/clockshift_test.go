package dsl

import (
	"archive/zip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// MaxClockShift must cover every zone of the tz database Go ships (the contact's
// zone can be any of them).
func TestMaxClockShift(t *testing.T) {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("no go command to find the tz database: %v", err)
	}
	z, err := zip.OpenReader(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "time", "zoneinfo.zip"))
	if err != nil {
		t.Skipf("no tz database to scan: %v", err)
	}
	defer z.Close()
	largest, which, n := time.Duration(0), "", 0
	for _, f := range z.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		loc, err := time.LoadLocation(f.Name)
		if err != nil {
			continue
		}
		n++
		if s := ZoneShift(loc); s > largest {
			largest, which = s, f.Name
		}
	}
	if n < 300 {
		t.Fatalf("only %d zones scanned", n)
	}
	if largest > MaxClockShift {
		t.Errorf("%s shifts its clocks by %s, more than MaxClockShift (%s)", which, largest, MaxClockShift)
	}
	if largest < MaxClockShift {
		t.Logf("the largest shift is %s (%s): MaxClockShift could be lowered", largest, which)
	}
}

func TestZoneShift(t *testing.T) {
	for _, c := range []struct {
		zone string
		want time.Duration
	}{
		{"UTC", 0},
		{"Asia/Tokyo", 0},
		{"America/Sao_Paulo", 0}, // no daylight saving time since 2019
		{"Europe/Lisbon", time.Hour},
		{"America/New_York", time.Hour},
		{"Australia/Lord_Howe", 30 * time.Minute},
		{"Antarctica/Troll", 2 * time.Hour},
	} {
		loc, err := time.LoadLocation(c.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := ZoneShift(loc); got != c.want {
			t.Errorf("%s: %s, want %s", c.zone, got, c.want)
		}
	}
}
