package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version overrides the version from the build info when set at build time
// (-ldflags "-X main.version=v1.2.3"), for packagers who build from a tarball.
var version = ""

// buildVersion is what this binary is: the module version the go command
// recorded (`go install …/cmd/funnel@v0.4.0` records v0.4.0; a build in a
// checkout records a version derived from the VCS tag, or "(devel)"), and the
// VCS revision when built from a checkout.
type buildVersion struct {
	Version  string // v0.4.0, or "devel"
	Revision string // the commit, shortened; empty when built from a module download
	Modified bool   // built from a checkout with uncommitted changes
	Time     string // the commit's time (RFC 3339)
	Go       string // the toolchain
}

func readBuildVersion() buildVersion {
	info, _ := debug.ReadBuildInfo()
	return versionOf(info, version)
}

func versionOf(info *debug.BuildInfo, override string) buildVersion {
	v := buildVersion{Version: "devel"}
	if info != nil {
		v.Go = info.GoVersion
		if mv := info.Main.Version; mv != "" && mv != "(devel)" {
			v.Version = mv
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
				if len(v.Revision) > 12 {
					v.Revision = v.Revision[:12]
				}
			case "vcs.modified":
				v.Modified = s.Value == "true"
			case "vcs.time":
				v.Time = s.Value
			}
		}
	}
	if override != "" {
		v.Version = override
	}
	return v
}

// Short is the version for machines (SARIF's tool.driver.version, logs):
// the module version, or devel+revision for a build of an untagged checkout.
func (v buildVersion) Short() string {
	if v.Version == "devel" && v.Revision != "" {
		s := "devel+" + v.Revision
		if v.Modified {
			s += "-dirty"
		}
		return s
	}
	return v.Version
}

// String is the line `funnel --version` prints after "funnel version ".
func (v buildVersion) String() string {
	var extra []string
	if v.Revision != "" {
		r := "revision " + v.Revision
		if v.Modified {
			r += " with local changes"
		}
		if v.Time != "" {
			r += " of " + v.Time
		}
		extra = append(extra, r)
	}
	if v.Go != "" {
		extra = append(extra, "built with "+v.Go)
	}
	if len(extra) == 0 {
		return v.Version
	}
	return fmt.Sprintf("%s (%s)", v.Version, strings.Join(extra, ", "))
}
