package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/store"
)

// A flow version is the flow's source and the template catalog entries its
// sends were resolved against: a run is pinned to both. A run of a flow that
// was since edited or removed, compiled again after a restart, sends with the
// categories, header formats and buttons of its own version, not those of
// whatever the catalog (or a flow with the same id) says now.

// resolvedTemplates encodes the catalog entries the flow's sends resolved to,
// in a stable order (nil when it sends no known template).
func resolvedTemplates(f *dsl.Flow) ([]byte, error) {
	seen := map[string]*dsl.Template{}
	for _, s := range f.Steps {
		if s.Send == nil {
			continue
		}
		for _, ref := range []*dsl.TemplateRef{s.Send.Template, s.Send.Fallback} {
			if ref != nil && ref.Resolved != nil {
				seen[ref.Resolved.Name+"\x00"+ref.Resolved.Language] = ref.Resolved
			}
		}
	}
	if len(seen) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ts := make([]versionTemplate, len(keys))
	for i, k := range keys {
		t := seen[k]
		ts[i] = versionTemplate{Name: t.Name, Language: t.Language, Category: t.Category, Status: t.Status,
			ParameterFormat: t.ParameterFormat, HeaderFormat: t.HeaderFormat, HeaderText: t.HeaderText,
			Body: t.Body, Footer: t.Footer, Buttons: t.Buttons}
	}
	return json.Marshal(ts)
}

// versionTemplate is what a version keeps of a catalog entry.
type versionTemplate struct {
	Name            string               `json:"name"`
	Language        string               `json:"language"`
	Category        string               `json:"category"`
	Status          string               `json:"status"`
	ParameterFormat string               `json:"parameter_format,omitempty"`
	HeaderFormat    string               `json:"header_format,omitempty"`
	HeaderText      string               `json:"header_text,omitempty"`
	Body            string               `json:"body"`
	Footer          string               `json:"footer,omitempty"`
	Buttons         []dsl.TemplateButton `json:"buttons,omitempty"`
}

// versionCatalog rebuilds the catalog a version was resolved against (nil for
// versions stored without one).
func versionCatalog(v *store.FlowVersion) (*dsl.Catalog, error) {
	if len(v.Templates) == 0 {
		return nil, nil
	}
	var vts []versionTemplate
	if err := json.Unmarshal(v.Templates, &vts); err != nil {
		return nil, fmt.Errorf("flow version %d: its templates: %w", v.ID, err)
	}
	ts := make([]*dsl.Template, len(vts))
	for i, t := range vts {
		ts[i] = &dsl.Template{Name: t.Name, Language: t.Language, Category: t.Category, Status: t.Status,
			ParameterFormat: t.ParameterFormat, HeaderFormat: t.HeaderFormat, HeaderText: t.HeaderText,
			Body: t.Body, Footer: t.Footer, Buttons: t.Buttons}
	}
	return dsl.NewCatalog(fmt.Sprintf("flow version %d", v.ID), ts), nil
}

// versionHash identifies a version: the source's hash, and when the flow
// sends templates, theirs (a template changed in the catalog makes a new
// version, so runs started before keep the old one).
func versionHash(f *dsl.Flow, templates []byte) string {
	if len(templates) == 0 {
		return f.Hash
	}
	sum := sha256.Sum256(templates)
	return f.Hash + "+" + hex.EncodeToString(sum[:8])
}

// A project version is the set of flow versions loaded together. A run keeps
// the set it started under (store.Run.ProjectVersionID), so the flow its
// start_flow starts is the target's version from that same set: the validator
// checked caller and target together, and a reload between the caller's wait
// and its start_flow must not pair an old caller with a new target (each valid
// alone, not together).

// projectVersion finds or records the project version of a set of flow
// versions (flow id -> version id).
func projectVersion(tx store.Tx, set map[string]int64, now time.Time) (int64, error) {
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s\x00%d\n", id, set[id])
	}
	sum := sha256.Sum256([]byte(b.String()))
	hash := hex.EncodeToString(sum[:])
	pv, err := tx.ProjectVersionID(hash)
	if err != nil || pv != 0 {
		return pv, err
	}
	v := &store.ProjectVersion{Hash: hash, Flows: set, CreatedAt: now}
	if err := tx.InsertProjectVersion(v); err != nil {
		return 0, err
	}
	return v.ID, nil
}

// projectSet returns the flow versions of a project version.
func (e *Engine) projectSet(tx store.Tx, pv int64) (map[string]int64, error) {
	if set, ok := e.sets.Load(pv); ok {
		return set.(map[string]int64), nil
	}
	v, err := tx.ProjectVersion(pv)
	if err != nil {
		return nil, fmt.Errorf("project version %d: %w", pv, err)
	}
	e.sets.Store(pv, v.Flows)
	return v.Flows, nil
}

// startFlowTarget is the flow a run's start_flow starts, with its version and
// project version: the target's version in the run's own set; for a run
// started before sets were recorded (or a set without the target), the
// running one. nil when neither has it.
func (b *batch) startFlowTarget(r *store.Run, id string) (*dsl.Flow, int64, int64, error) {
	if r.ProjectVersionID != 0 {
		set, err := b.e.projectSet(b.tx, r.ProjectVersionID)
		if err != nil {
			return nil, 0, 0, err
		}
		if vid, ok := set[id]; ok {
			f, err := b.e.flowForVersion(b.tx, vid)
			return f, vid, r.ProjectVersionID, err
		}
	}
	return b.flows.byID[id], b.flows.version[id], b.flows.pv, nil
}
