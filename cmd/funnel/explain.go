package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/spf13/cobra"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/sim"
)

func newExplainCmd() *cobra.Command {
	var templates, format, margin string
	c := &cobra.Command{
		Use:   "explain FILE|DIR",
		Short: "Show each step's worst-case time since the contact's last message, and what it may send",
		Long: `Prints the window budget of a flow as a table: for every step, what it does,
the worst-case time since the contact's last message when it runs (over all paths,
including flows in the same folder that start it), and what may be sent there:
anything, or only an approved template.

Given a folder, explains every flow in it (recursively), one section per flow; with
--format json, an array of the per-flow objects.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := checkOptions(templates, margin)
			if err != nil {
				return err
			}
			p, flows, err := loadFlowsOf(cmd, args[0], opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !flows.dir {
				return p.WriteExplain(out, flows.list[0], format, opts.Margin)
			}
			if format == "json" {
				all := []json.RawMessage{}
				for _, f := range flows.list {
					var b bytes.Buffer
					if err := p.WriteExplain(&b, f, "json", opts.Margin); err != nil {
						return err
					}
					all = append(all, b.Bytes())
				}
				return printJSON(out, all)
			}
			for i, f := range flows.list {
				if i > 0 {
					fmt.Fprintln(out)
				}
				if err := p.WriteExplain(out, f, "text", opts.Margin); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&templates, "templates", "", "template catalog (default: templates.yaml|yml|json beside the flow)")
	enumFlag(c, &format, "format", "text", []string{"text", "json"}, "output format: text or json")
	c.Flags().StringVar(&margin, "margin", "30m", "safety margin below the 23h59m send deadline")
	return c
}

func newGraphCmd() *cobra.Command {
	var templates, format string
	c := &cobra.Command{
		Use:   "graph FILE|DIR [--format mermaid|dot]",
		Short: "Draw a flow as a Mermaid or Graphviz diagram",
		Long: `Draws the flow: edges labelled with waits, replies and timeouts; steps where the
window may be closed (template only) in red. Mermaid renders in GitHub pull requests
and READMEs; dot is for Graphviz.

Given a folder, draws every flow in it (recursively): with mermaid, Markdown with
one section (a heading and a mermaid block) per flow, ready for a README or a pull
request; with dot, one digraph per flow in one file (dot -O renders each).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, flows, err := loadFlowsOf(cmd, args[0], dsl.Options{Templates: templates})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !flows.dir || format == "dot" {
				for _, f := range flows.list {
					if err := p.WriteGraph(out, f, format); err != nil {
						return err
					}
				}
				return nil
			}
			for i, f := range flows.list {
				if i > 0 {
					fmt.Fprintln(out)
				}
				fmt.Fprintf(out, "## %s\n\n`%s`\n\n```mermaid\n", f.ID, filepath.ToSlash(f.File))
				if err := p.WriteGraph(out, f, format); err != nil {
					return err
				}
				fmt.Fprintln(out, "```")
			}
			return nil
		},
	}
	c.Flags().StringVar(&templates, "templates", "", "template catalog (default: templates.yaml|yml|json beside the flow)")
	enumFlag(c, &format, "format", "mermaid", []string{"mermaid", "dot"}, "diagram format: mermaid or dot")
	return c
}

// flowSet is what explain and graph work on: one flow file, or every flow of a
// folder (sorted by file).
type flowSet struct {
	dir  bool
	list []*dsl.Flow
}

// loadFlowsOf loads a flow file with the flows beside it (which may start it), or
// every flow of a folder. Errors that leave the model incomplete (syntax, schema,
// reference, expression) in the files asked about are printed and fail the
// command; window and template findings don't stop it — the table and the
// diagram are how you fix those.
func loadFlowsOf(cmd *cobra.Command, path string, opts dsl.Options) (*dsl.Project, flowSet, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, flowSet{}, inputError(&dsl.InputError{Err: err})
	}
	set := flowSet{dir: st.IsDir()}
	wanted := map[string]bool{}
	var paths []string
	if set.dir {
		files, _, err := dsl.FindFlowFiles([]string{path})
		if err != nil {
			return nil, set, inputError(err)
		}
		if len(files) == 0 {
			return nil, set, fail(exitNoInput, "no flow files (*.yaml, *.yml) in %s", path)
		}
		for _, f := range files {
			wanted[f] = true
		}
		paths = files
	} else {
		wanted[path] = true
		paths = []string{path}
		if siblings, _, err := dsl.FindFlowFiles([]string{filepath.Dir(path)}); err == nil {
			paths = append(paths, siblings...)
		}
	}
	p, diags, err := dsl.Load(paths, opts)
	if err != nil {
		return nil, set, inputError(err)
	}
	var own dsl.Diagnostics
	bad := map[string]bool{}
	for _, d := range diags {
		if wanted[d.Pos.File] && d.Severity == dsl.SevError && blocking[d.Rule] {
			own = append(own, d)
			bad[d.Pos.File] = true
		}
	}
	for _, f := range p.Flows {
		if wanted[f.File] {
			set.list = append(set.list, f)
		}
	}
	sort.Slice(set.list, func(i, j int) bool { return set.list[i].File < set.list[j].File })
	if len(own) > 0 || len(set.list) == 0 {
		if err := writeDiagnostics(cmd, "text", own); err != nil {
			return nil, set, err
		}
		what := path + " has errors"
		if files := slices.Sorted(maps.Keys(bad)); len(files) == 1 {
			what = files[0] + " has errors"
		} else if len(files) > 1 {
			what = fmt.Sprintf("%d files in %s have errors", len(files), path)
		}
		return nil, set, fail(exitFailed, "%s; run `funnel validate %s`", what, path)
	}
	return p, set, nil
}

var blocking = map[string]bool{dsl.RuleSyntax: true, dsl.RuleSchema: true, dsl.RuleReference: true, dsl.RuleExpression: true}

func newSchemaCmd() *cobra.Command {
	var tests bool
	c := &cobra.Command{
		Use:   "schema [--tests]",
		Short: "Print the JSON Schema of flow files, or of conversation tests (for editors' YAML language servers)",
		Long: `Prints a JSON Schema (draft-07) of flow files, or with --tests of conversation
test scripts (*.test.yaml, docs/TESTING.md). Save it and point your editor at it
with a modeline on the first line of each file:

  # yaml-language-server: $schema=./flow.schema.json
  # yaml-language-server: $schema=./test.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			schema := dsl.JSONSchema()
			if tests {
				schema = sim.JSONSchema()
			}
			_, err := cmd.OutOrStdout().Write(schema)
			return err
		},
	}
	c.Flags().BoolVar(&tests, "tests", false, "the schema of conversation test scripts (*.test.yaml) instead of flows")
	return c
}
