package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// enumValue is a flag that takes one of a fixed set of values. A value outside
// the set fails the command line (exit 2) with the valid ones listed, and shell
// completion offers them.
type enumValue struct {
	p      *string
	values []string
}

func (e *enumValue) String() string { return *e.p }
func (e *enumValue) Type() string   { return "string" }

func (e *enumValue) Set(s string) error {
	if !contains(e.values, s) {
		return fmt.Errorf("use one of %s", strings.Join(e.values, ", "))
	}
	*e.p = s
	return nil
}

// enumFlag defines --name with the default def (which may be "" for "no filter")
// and the valid values, and registers their completion.
func enumFlag(c *cobra.Command, p *string, name, def string, values []string, usage string) {
	*p = def
	c.Flags().Var(&enumValue{p: p, values: values}, name, usage)
	c.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	})
}
