package sim

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/funnel-dev/funnel/dsl"
)

// ProjectFor loads the flows a script runs against: explicit paths (flags) win,
// then the script's own `flows:` and `templates:` (relative to the script
// unless absolute), then
// the flows and catalog beside the script.
func ProjectFor(s *Script, paths []string, templates string) (*dsl.Project, dsl.Diagnostics, error) {
	dir := filepath.Dir(s.File)
	if len(paths) == 0 {
		for _, f := range s.Flows {
			paths = append(paths, besideScript(dir, f))
		}
	}
	if len(paths) == 0 {
		paths = []string{dir}
	}
	if templates == "" && s.Templates != "" {
		templates = besideScript(dir, s.Templates)
	}
	return dsl.Load(paths, dsl.Options{Templates: templates})
}

// besideScript resolves a path written in a script: relative to the
// script's folder, or as written when absolute.
func besideScript(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// FindScripts lists the *.test.yaml (and .test.yml) files under paths.
func FindScripts(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && len(d.Name()) > 0 && d.Name()[0] == '.' {
				return filepath.SkipDir
			}
			if !d.IsDir() && (filepath.Ext(path) == ".yaml" || filepath.Ext(path) == ".yml") &&
				filepath.Ext(path[:len(path)-len(filepath.Ext(path))]) == ".test" {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}
