// Command funnel validates, explains, tests and runs WhatsApp marketing funnels
// written as YAML flows. Each subcommand is a thin layer over the dsl, engine and
// store packages.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/funnel-dev/funnel/store"

	_ "time/tzdata" // quiet hours and schedules name IANA zones; don't depend on the host's tzdata
)

// Exit codes shared by the commands (docs/LANGUAGE.md, "Diagnostics").
const (
	exitOK      = 0
	exitFailed  = 1 // errors found (or warnings with --strict), tests failed
	exitUsage   = 2 // bad command line
	exitNoInput = 3 // input that cannot be read
)

// exitError carries an exit code out of a command; err (if any) is printed first.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "funnel",
		Short:         "WhatsApp marketing funnels as YAML, proven inside the 24-hour window",
		Version:       readBuildVersion().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// The commands that keep state need SQLite, which a CGO_ENABLED=0 build
	// lacks; the validator's commands work in every build.
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if needsSQLite[c.Name()] && c.Parent() == c.Root() && !usesPostgres(c) {
			if err := store.Available(); err != nil {
				return fail(exitFailed, "`funnel %s` needs the cgo SQLite build: %v. Install it with a C compiler "+
					"(gcc or clang): CGO_ENABLED=1 go install github.com/funnel-dev/funnel/cmd/funnel@latest. "+
					"validate, explain, graph and schema work in this build", c.Name(), err)
			}
		}
		return nil
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("%w\nrun `%s --help` for usage", err, c.CommandPath())}
	})
	root.AddCommand(newValidateCmd(), newExplainCmd(), newGraphCmd(), newSchemaCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	return root
}

// usesPostgres reports whether the command's database is PostgreSQL (its
// --db flag, else FUNNEL_DB): a build without cgo can open that one.
func usesPostgres(c *cobra.Command) bool {
	if f := c.Flags().Lookup("db"); f != nil && f.Changed {
		return store.IsPostgres(f.Value.String())
	}
	return store.IsPostgres(os.Getenv("FUNNEL_DB"))
}

// needsSQLite are the commands that open a database.
var needsSQLite = map[string]bool{"serve": true, "simulate": true, "test": true, "contacts": true, "runs": true, "outbox": true}

// extraCommands lets other files of the package register commands (the runtime
// commands live beside the engine they drive).
var extraCommands []func() *cobra.Command

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes a command line and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "funnel:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown command, wrong number of arguments.
	fmt.Fprintln(stderr, "funnel:", err)
	return exitUsage
}
