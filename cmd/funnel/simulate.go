package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/sim"
)

func init() { extraCommands = append(extraCommands, newSimulateCmd, newTestCmd) }

func newSimulateCmd() *cobra.Command {
	var templates, script, format string
	c := &cobra.Command{
		Use:   "simulate --script FILE [--templates FILE] [--format text|json] [PATH...]",
		Short: "Play a conversation script against the flows on a virtual clock",
		Long: `Runs the real engine on a temporary database and a virtual clock, with a channel
that behaves like the Cloud API (free-form outside the 24h window fails with 131047),
and prints the timeline: every message in and out, with the window state.

PATH (flow files or folders) defaults to the script's own flows: entry, or its folder.
Exit codes: 0 ok, 1 an expectation failed, 2 bad command line, 3 unreadable input.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if script == "" {
				return fail(exitUsage, "--script is required")
			}
			s, err := sim.LoadScript(script)
			if err != nil {
				return &exitError{code: exitNoInput, err: err}
			}
			p, diags, err := sim.ProjectFor(s, args, templates)
			if err != nil {
				return inputError(err)
			}
			if diags.HasErrors() {
				return flowErrors(cmd, diags)
			}
			res, err := sim.Run(cmd.Context(), s, p)
			if err != nil {
				return fail(exitFailed, "%v", err)
			}
			if err := sim.WriteTimeline(cmd.OutOrStdout(), format, res.Timeline); err != nil {
				return err
			}
			for _, f := range res.Failures {
				fmt.Fprintln(cmd.ErrOrStderr(), f)
			}
			if len(res.Failures) > 0 {
				return &exitError{code: exitFailed}
			}
			return nil
		},
	}
	c.Flags().StringVar(&templates, "templates", "", "template catalog (default: the script's `templates:`, or templates.* beside the flows)")
	c.Flags().StringVar(&script, "script", "", "conversation script (YAML)")
	enumFlag(c, &format, "format", "text", []string{"text", "json"}, "output format: text or json")
	return c
}

// maxLoadErrors is how many flow errors `funnel test` shows per script whose
// flows do not load.
const maxLoadErrors = 5

// flowErrors prints validation errors and fails: flows with errors never run.
func flowErrors(cmd *cobra.Command, diags dsl.Diagnostics) error {
	var errs dsl.Diagnostics
	for _, d := range diags {
		if d.Severity == dsl.SevError {
			errs = append(errs, d)
		}
	}
	if err := dsl.WriteDiagnostics(cmd.ErrOrStderr(), "text", errs, dsl.FormatOptions{Source: cachedReader()}); err != nil {
		return err
	}
	return fail(exitFailed, "the flows have errors: run `funnel validate`")
}

func newTestCmd() *cobra.Command {
	var templates string
	c := &cobra.Command{
		Use:   "test [PATH...]",
		Short: "Run conversation tests (*.test.yaml) against the flows",
		Long: `Runs every *.test.yaml script under PATH (default: the current folder). Each script
names its flows and templates (flows:, templates:) or uses those beside it. Every
failed expectation is reported with its script line; the exit code is 1 when any
test fails.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			files, err := sim.FindScripts(args)
			if err != nil {
				return &exitError{code: exitNoInput, err: err}
			}
			if len(files) == 0 {
				return fail(exitNoInput, "no *.test.yaml scripts found in %v", args)
			}
			out := cmd.OutOrStdout()
			failed := 0
			for _, file := range files {
				s, err := sim.LoadScript(file)
				if err != nil {
					failed++
					fmt.Fprintf(out, "FAIL %s\n    %v\n", file, err)
					continue
				}
				p, diags, err := sim.ProjectFor(s, nil, templates)
				if err != nil || diags.HasErrors() {
					failed++
					fmt.Fprintf(out, "FAIL %s\n    flows do not load: ", file)
					if err != nil {
						fmt.Fprintln(out, err)
						continue
					}
					// Which flows, and why: the script's flows are not always
					// the ones beside it the reader has in mind.
					fmt.Fprintln(out, "they have errors (`funnel validate` shows them in full)")
					shown := 0
					for _, d := range diags {
						if d.Severity != dsl.SevError {
							continue
						}
						if shown == maxLoadErrors {
							fmt.Fprintln(out, "      …")
							break
						}
						fmt.Fprintf(out, "      %s\n", d)
						shown++
					}
					continue
				}
				res, err := sim.Run(cmd.Context(), s, p)
				if err != nil {
					failed++
					fmt.Fprintf(out, "FAIL %s\n    %v\n", file, err)
					continue
				}
				if len(res.Failures) > 0 {
					failed++
					fmt.Fprintf(out, "FAIL %s\n", file)
					for _, f := range res.Failures {
						fmt.Fprintf(out, "    %s\n", f)
					}
					continue
				}
				fmt.Fprintf(out, "ok   %s (%s, %s)\n", file, count(len(s.Events), "event"), count(countOut(res), "message"))
			}
			fmt.Fprintf(out, "%d passed, %d failed\n", len(files)-failed, failed)
			if failed > 0 {
				return &exitError{code: exitFailed}
			}
			return nil
		},
	}
	c.Flags().StringVar(&templates, "templates", "", "template catalog for every script (default: each script's own)")
	return c
}

// count is "1 message", "2 messages".
func count(n int, noun string) string { return fmt.Sprintf("%d %s%s", n, noun, plural(n)) }

func countOut(r *sim.Result) int {
	n := 0
	for _, l := range r.Timeline {
		if l.Direction == "out" {
			n++
		}
	}
	return n
}
