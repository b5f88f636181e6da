package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/funnel-dev/funnel/dsl"
)

func newExplainCmd() *cobra.Command {
	var templates, format, margin string
	c := &cobra.Command{
		Use:   "explain FILE",
		Short: "Show each step's worst-case time since the contact's last message, and what it may send",
		Long: `Prints the window budget of a flow as a table: for every step, what it does,
the worst-case time since the contact's last message when it runs (over all paths,
including flows in the same folder that start it), and what may be sent there:
anything, or only an approved template.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := checkOptions(templates, margin)
			if err != nil {
				return err
			}
			p, f, err := loadOne(cmd, args[0], opts)
			if err != nil {
				return err
			}
			return p.WriteExplain(cmd.OutOrStdout(), f, format, opts.Margin)
		},
	}
	c.Flags().StringVar(&templates, "templates", "", "template catalog (default: templates.yaml|yml|json beside the flow)")
	enumFlag(c, &format, "format", "text", []string{"text", "json"}, "output format: text or json")
	c.Flags().StringVar(&margin, "margin", "30m", "safety margin below 24h")
	return c
}

func newGraphCmd() *cobra.Command {
	var templates, format string
	c := &cobra.Command{
		Use:   "graph FILE [--format mermaid|dot]",
		Short: "Draw a flow as a Mermaid or Graphviz diagram",
		Long: `Draws the flow: edges labelled with waits, replies and timeouts; steps where the
window may be closed (template only) in red. Mermaid renders in GitHub pull requests
and READMEs; dot is for Graphviz.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, f, err := loadOne(cmd, args[0], dsl.Options{Templates: templates})
			if err != nil {
				return err
			}
			return p.WriteGraph(cmd.OutOrStdout(), f, format)
		},
	}
	c.Flags().StringVar(&templates, "templates", "", "template catalog (default: templates.yaml|yml|json beside the flow)")
	enumFlag(c, &format, "format", "mermaid", []string{"mermaid", "dot"}, "diagram format: mermaid or dot")
	return c
}

// loadOne loads a flow file with the flows beside it (which may start it), and
// returns it. Errors that leave the model incomplete (syntax, schema, reference,
// expression) are printed and fail the command; window and template findings
// don't stop it — the table and the diagram are how you fix those.
func loadOne(cmd *cobra.Command, file string, opts dsl.Options) (*dsl.Project, *dsl.Flow, error) {
	paths := []string{file}
	if siblings, _, err := dsl.FindFlowFiles([]string{filepath.Dir(file)}); err == nil {
		paths = append(paths, siblings...)
	}
	p, diags, err := dsl.Load(paths, opts)
	if err != nil {
		return nil, nil, inputError(err)
	}
	var own dsl.Diagnostics
	for _, d := range diags {
		if d.Pos.File == file && d.Severity == dsl.SevError && blocking[d.Rule] {
			own = append(own, d)
		}
	}
	var flow *dsl.Flow
	for _, f := range p.Flows {
		if f.File == file {
			flow = f
		}
	}
	if len(own) > 0 || flow == nil {
		if err := writeDiagnostics(cmd, "text", own); err != nil {
			return nil, nil, err
		}
		return nil, nil, fail(exitFailed, "%s has errors; run `funnel validate %s`", file, file)
	}
	return p, flow, nil
}

var blocking = map[string]bool{dsl.RuleSyntax: true, dsl.RuleSchema: true, dsl.RuleReference: true, dsl.RuleExpression: true}

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of flow files (for editors' YAML language servers)",
		Long: `Prints a JSON Schema (draft-07) of flow files. Save it and point your editor at it
with a modeline on the first line of each flow:

  # yaml-language-server: $schema=./flow.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write(dsl.JSONSchema())
			return err
		},
	}
}
