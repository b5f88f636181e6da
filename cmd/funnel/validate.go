package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/funnel-dev/funnel/dsl"
)

var diagFormats = []string{"text", "json", "github", "sarif"}

func newValidateCmd() *cobra.Command {
	var (
		templates, format, margin string
		strict                    bool
	)
	c := &cobra.Command{
		Use:   "validate [--templates FILE] [--format text|json|github|sarif] [--strict] [--margin DUR] PATH...",
		Short: "Check flows: schema, expressions, templates, and the 24-hour window proof",
		Long: `Checks flow files (or folders of them, recursively) and proves that no step can
send a free-form message 24 hours or more after the contact's last message.

Exit codes: 0 no errors (warnings fail only with --strict), 1 errors found,
2 bad command line, 3 input that cannot be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := checkOptions(templates, margin)
			if err != nil {
				return err
			}
			_, diags, err := dsl.Load(args, opts)
			if err != nil {
				return inputError(err)
			}
			if err := writeDiagnostics(cmd, format, diags); err != nil {
				return err
			}
			errs, warns := diags.Count()
			if format == "text" {
				summary(cmd, errs, warns)
			}
			if errs > 0 || (strict && warns > 0) {
				return &exitError{code: exitFailed}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&templates, "templates", "", "template catalog: funnel YAML or Meta's message_templates JSON (default: templates.yaml|yml|json beside the flows)")
	enumFlag(c, &format, "format", "text", diagFormats, "output format: text, json, github or sarif")
	f.BoolVar(&strict, "strict", false, "fail on warnings too")
	f.StringVar(&margin, "margin", "30m", "safety margin below the 23h59m send deadline that makes a free-form send a warning (0 disables)")
	return c
}

// checkOptions turns the shared flags into dsl.Options.
func checkOptions(templates, margin string) (dsl.Options, error) {
	opts := dsl.Options{Templates: templates}
	m, err := parseDurationFlag(margin)
	if err != nil {
		return opts, fail(exitUsage, "invalid --margin %q: %v", margin, err)
	}
	if m >= dsl.SendDeadline {
		return opts, fail(exitUsage, "invalid --margin %q: must be shorter than %s (24h less the engine's guard)", margin, dsl.FormatHours(dsl.SendDeadline))
	}
	opts.Margin = m
	if m == 0 {
		opts.Margin = -1 // explicitly none
	}
	return opts, nil
}

// parseDurationFlag accepts the flow language's durations and Go's (1h30m, 0).
func parseDurationFlag(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if d, err := dsl.ParseDuration(s); err == nil {
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("use a duration like 30m, 1h or 0")
	}
	return d, nil
}

func inputError(err error) error {
	var ie *dsl.InputError
	if errors.As(err, &ie) {
		return &exitError{code: exitNoInput, err: err}
	}
	return &exitError{code: exitFailed, err: err}
}

func writeDiagnostics(cmd *cobra.Command, format string, diags dsl.Diagnostics) error {
	out := cmd.OutOrStdout()
	color := false
	if f, ok := out.(*os.File); ok && format == "text" {
		color = dsl.ColorEnabled(f)
	}
	return dsl.WriteDiagnostics(out, format, diags, dsl.FormatOptions{
		Color:       color,
		Source:      cachedReader(),
		ToolVersion: readBuildVersion().Short(),
	})
}

// cachedReader reads each source file once for snippets.
func cachedReader() func(string) []byte {
	var mu sync.Mutex
	cache := map[string][]byte{}
	return func(file string) []byte {
		mu.Lock()
		defer mu.Unlock()
		if b, ok := cache[file]; ok {
			return b
		}
		b, _ := os.ReadFile(file)
		cache[file] = b
		return b
	}
}

func summary(cmd *cobra.Command, errs, warns int) {
	w := cmd.ErrOrStderr()
	if errs == 0 && warns == 0 {
		fmt.Fprintln(w, "no problems found")
		return
	}
	fmt.Fprintf(w, "%d error%s, %d warning%s\n", errs, plural(errs), warns, plural(warns))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
