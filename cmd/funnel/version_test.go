package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-11-29T08:37:01Z"}, {Key: "vcs.modified", Value: modified}}
	}
	for _, c := range []struct {
		name        string
		info        *debug.BuildInfo
		override    string
		short, full string
	}{
		{"go install @v0.4.0", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}}, "",
			"v0.4.0", "v0.4.0 (built with go1.26.8)"},
		{"checkout at a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}, Settings: vcs("9c22b73b59e982abc1d725bf2b8554c0495deedf", "false")}, "",
			"v0.4.0", "v0.4.0 (revision 9c22b73b59e9 of 2026-11-29T08:37:01Z, built with go1.26.8)"},
		{"untagged checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("9c22b73b59e982abc1d725bf2b8554c0495deedf", "true")}, "",
			"devel+9c22b73b59e9-dirty", "devel (revision 9c22b73b59e9 with local changes of 2026-11-29T08:37:01Z, built with go1.26.8)"},
		{"-ldflags -X main.version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "v1.0.0-rc1",
			"v1.0.0-rc1", "v1.0.0-rc1 (built with go1.26.8)"},
		{"no build info", nil, "", "devel", "devel"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := versionOf(c.info, c.override)
			if v.Short() != c.short || v.String() != c.full {
				t.Errorf("got %q / %q, want %q / %q", v.Short(), v.String(), c.short, c.full)
			}
		})
	}
}

// The --version line and SARIF's tool version both come from the build info.
func TestVersionFlagAndSARIF(t *testing.T) {
	want := readBuildVersion()
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, &out, &errOut); code != 0 || out.String() != "funnel version "+want.String()+"\n" {
		t.Fatalf("--version: exit %d, %q, want %q", code, out.String(), "funnel version "+want.String())
	}
	out.Reset()
	run([]string{"validate", "--format", "sarif", "--templates", "../../flows/templates.json", "../../testdata/readme/day3.yaml"}, &out, &errOut)
	var log struct {
		Runs []struct {
			Tool struct {
				Driver struct{ Version string } `json:"driver"`
			} `json:"tool"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out.Bytes(), &log); err != nil || len(log.Runs) != 1 {
		t.Fatalf("sarif: %v\n%s", err, out.String())
	}
	if got := log.Runs[0].Tool.Driver.Version; got != want.Short() || got == "" {
		t.Fatalf("SARIF tool.driver.version %q, want %q", got, want.Short())
	}
}

// TestGoInstallReportsModuleVersion does what a user does, `go install
// github.com/funnel-dev/funnel/cmd/funnel@v0.9.0`, against a module proxy on disk
// holding this checkout as v0.9.0, and runs the result.
func TestGoInstallReportsModuleVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	goEnv := func(key string) string {
		out, err := exec.Command(gobin, "env", key).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	modcache := goEnv("GOMODCACHE")
	const mod, ver = "github.com/funnel-dev/funnel", "v0.9.0"
	proxy := t.TempDir()
	dir := filepath.Join(proxy, mod, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "list"), []byte(ver+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ver+".info"), []byte(`{"Version":"`+ver+`","Time":"2026-11-29T00:00:00Z"}`), 0o644)
	os.WriteFile(filepath.Join(dir, ver+".mod"), gomod, 0o644)
	writeModuleZip(t, filepath.Join(dir, ver+".zip"), "../..", mod+"@"+ver)

	bin := t.TempDir()
	cmd := exec.Command(gobin, "install", mod+"/cmd/funnel@"+ver)
	// A module cache of its own (filled from the shared one's downloads, offline),
	// so the shared cache never holds this fake v0.9.0. Without cgo and with
	// -trimpath the build hits the build cache from the second run on; --version
	// needs no SQLite.
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-modcacherw -trimpath", "GOSUMDB=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0",
		"GOMODCACHE="+t.TempDir(), "GOPROXY=file://"+proxy+",file://"+filepath.Join(modcache, "cache", "download"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(bin, "funnel"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "funnel version "+ver+" ") {
		t.Fatalf("--version of a go install @%s: %q", ver, out)
	}
}

// writeModuleZip zips the module at root (the files git tracks) as the go
// command expects a module zip: every path under prefix/.
func writeModuleZip(t *testing.T, zipPath, root, prefix string) {
	t.Helper()
	files, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("git ls-files: %v", err)
	}
	f, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, name := range strings.Split(strings.TrimSpace(string(files)), "\n") {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue // deleted in the work tree
		}
		w, err := zw.Create(prefix + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}
