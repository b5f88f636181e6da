package dsl

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultMargin is the safety margin below 24h within which a free-form send is a
// warning: delivery and processing delays can close the window in between.
const DefaultMargin = 30 * time.Minute

// Window is WhatsApp's customer service window.
const Window = 24 * time.Hour

// WindowGuard is how long before the 24h mark the engine already treats the window
// as closed: a message needs a moment to reach Meta, and one arriving at 24h00m01s
// fails with 131047.
const WindowGuard = time.Minute

// SendDeadline is the one threshold the validator and the engine share: the engine
// hands a free-form message to WhatsApp only while less than this has passed since
// the contact's last message, and the validator reports an error for a free-form
// send that can run this late (its margin warning lies below it).
const SendDeadline = Window - WindowGuard

// The per-recipient pacing the engine applies by default (WhatsApp's pair rate): a
// burst of PairBurst messages to one contact, then one per PairInterval. The window
// analysis charges a chain of sends the delay these settings can impose.
const (
	PairBurst    = 5
	PairInterval = 6 * time.Second
)

// CatalogNames are the file names looked up beside the flows when no catalog is given.
var CatalogNames = []string{"templates.yaml", "templates.yml", "templates.json"}

// Options configure loading and checking.
type Options struct {
	// Templates is the catalog file; "" looks for templates.yaml|yml|json in each
	// flow's folder, then its parents up to the folder given on the command line.
	Templates string
	// Margin below 24h that makes a warning; 0 means DefaultMargin, negative none.
	Margin time.Duration
}

// Project is a set of flows checked together: start_flow edges cross its files.
type Project struct {
	Flows    []*Flow
	byID     map[string]*Flow
	catalogs map[*Flow]*Catalog
	// Analysis is the window analysis of the last Check.
	Analysis *Analysis
}

// Flow returns the flow with that id, or nil.
func (p *Project) Flow(id string) *Flow { return p.byID[id] }

// FlowIDs lists the flow ids, sorted.
func (p *Project) FlowIDs() []string {
	ids := make([]string, 0, len(p.byID))
	for id := range p.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Catalog returns the template catalog that applies to a flow (nil when none).
func (p *Project) Catalog(f *Flow) *Catalog { return p.catalogs[f] }

// InputError is input that cannot be read at all: a missing file, an unreadable or
// malformed catalog. `funnel validate` exits 3 on it.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// IsFlowFile reports whether a file found while walking a folder is a flow: YAML,
// and not a template catalog or a conversation test script.
func IsFlowFile(path string) bool {
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	if ext != ".yaml" && ext != ".yml" {
		return false
	}
	if contains(CatalogNames, base) {
		return false
	}
	stem := strings.TrimSuffix(base, ext)
	return !strings.HasSuffix(stem, ".test") && stem != "funnel"
}

// FindFlowFiles expands paths: files are taken as given, folders are walked for
// flow files (hidden folders skipped). The result is sorted and deduplicated; each
// file is mapped to the root it was found under (for catalog lookup).
func FindFlowFiles(paths []string) (files []string, roots map[string]string, err error) {
	roots = map[string]string{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, &InputError{err}
		}
		if !st.IsDir() {
			if _, seen := roots[p]; !seen {
				files = append(files, p)
				roots[p] = filepath.Dir(p)
			}
			continue
		}
		found := 0
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if IsFlowFile(path) {
				found++
				if _, seen := roots[path]; !seen {
					files = append(files, path)
					roots[path] = p
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, &InputError{err}
		}
		if found == 0 {
			return nil, nil, &InputError{fmt.Errorf("%s: no flow files (*.yaml, *.yml) found", p)}
		}
	}
	sort.Strings(files)
	return files, roots, nil
}

// Load reads, parses and checks the flows under paths. The error is an InputError
// for input that cannot be read; everything else is a diagnostic.
func Load(paths []string, opts Options) (*Project, Diagnostics, error) {
	files, roots, err := FindFlowFiles(paths)
	if err != nil {
		return nil, nil, err
	}
	type parsed struct {
		flow  *Flow
		diags []Diagnostic
		err   error
	}
	results := make([]parsed, len(files))
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				data, err := os.ReadFile(files[i])
				if err != nil {
					results[i].err = &InputError{err}
					continue
				}
				results[i].flow, results[i].diags = ParseFlow(files[i], data)
			}
		}()
	}
	for i := range files {
		work <- i
	}
	close(work)
	wg.Wait()

	var diags Diagnostics
	var flows []*Flow
	for _, r := range results {
		if r.err != nil {
			return nil, nil, r.err
		}
		diags = append(diags, r.diags...)
		if r.flow != nil {
			flows = append(flows, r.flow)
			diags = append(diags, loadFormSchemas(r.flow)...)
		}
	}
	catalogs, err := resolveCatalogs(flows, roots, opts.Templates)
	if err != nil {
		return nil, nil, err
	}
	p, pdiags := NewProject(flows, catalogs)
	diags = append(diags, pdiags...)
	diags = append(diags, Check(p, opts)...)
	diags.Sort()
	return p, diags, nil
}

// resolveCatalogs finds each flow's catalog: the explicit one, or the nearest
// templates.* from the flow's folder up to its root.
func resolveCatalogs(flows []*Flow, roots map[string]string, explicit string) (func(*Flow) *Catalog, error) {
	if explicit != "" {
		c, err := LoadCatalog(explicit)
		if err != nil {
			return nil, &InputError{fmt.Errorf("template catalog: %w", err)}
		}
		return func(*Flow) *Catalog { return c }, nil
	}
	byDir := map[string]*Catalog{}
	looked := map[string]bool{}
	lookup := func(dir string) (*Catalog, error) {
		if looked[dir] {
			return byDir[dir], nil
		}
		looked[dir] = true
		for _, n := range CatalogNames {
			path := filepath.Join(dir, n)
			if _, err := os.Stat(path); err == nil {
				c, err := LoadCatalog(path)
				if err != nil {
					return nil, &InputError{fmt.Errorf("template catalog: %w", err)}
				}
				byDir[dir] = c
				return c, nil
			}
		}
		return nil, nil
	}
	m := map[*Flow]*Catalog{}
	for _, f := range flows {
		root, _ := filepath.Abs(roots[f.File])
		dir, _ := filepath.Abs(filepath.Dir(f.File))
		for {
			c, err := lookup(dir)
			if err != nil {
				return nil, err
			}
			if c != nil {
				m[f] = c
				break
			}
			parent := filepath.Dir(dir)
			if dir == root || parent == dir || !strings.HasPrefix(dir, root) {
				break
			}
			dir = parent
		}
	}
	return func(f *Flow) *Catalog { return m[f] }, nil
}

// NewProject indexes parsed flows; duplicate flow ids are reported.
func NewProject(flows []*Flow, catalog func(*Flow) *Catalog) (*Project, Diagnostics) {
	p := &Project{byID: map[string]*Flow{}, catalogs: map[*Flow]*Catalog{}}
	var diags Diagnostics
	for _, f := range flows {
		if f.ID == "" {
			continue
		}
		if first, dup := p.byID[f.ID]; dup {
			diags = append(diags, Diagnostic{Pos: f.Pos, Severity: SevError, Rule: RuleReference, Flow: f.ID,
				Message: fmt.Sprintf("duplicate flow id `%s`: also defined at %s", f.ID, first.Pos)})
			continue
		}
		p.byID[f.ID] = f
		p.Flows = append(p.Flows, f)
		if catalog != nil {
			p.catalogs[f] = catalog(f)
		}
	}
	return p, diags
}
