package dsl

// checker runs the project-level rules; each rule lives in its own check_*.go file.
type checker struct {
	p     *Project
	opts  Options
	diags Diagnostics
}

// Check runs every project-level rule (references, templates, limits, reachability,
// the window and opt-in analyses) and returns their diagnostics, unsorted. It also
// leaves the window analysis in p.Analysis for explain and graph.
func Check(p *Project, opts Options) Diagnostics {
	if opts.Margin == 0 {
		opts.Margin = DefaultMargin
	}
	c := &checker{p: p, opts: opts}
	c.checkReferences()
	c.checkTemplates()
	c.checkLimits()
	c.checkParamValues()
	c.checkConstant()
	c.checkForms()
	c.checkUnreachable()
	c.checkAdConflicts()
	p.Analysis = Analyze(p)
	c.checkWindow()
	c.checkOptIn()
	c.checkPhoneOnly()
	return c.diags
}

func (c *checker) report(f *Flow, s *Step, pos Pos, sev Severity, rule, msg string, path []string) {
	d := Diagnostic{Pos: pos, Severity: sev, Rule: rule, Message: msg, Flow: f.ID, Path: path}
	if s != nil {
		d.Step = s.ID
	}
	c.diags = append(c.diags, d)
}

// eachSend calls fn for every send step of every flow.
func (c *checker) eachSend(fn func(f *Flow, s *Step)) {
	for _, f := range c.p.Flows {
		for _, s := range f.Steps {
			if s.Kind == ActSend && s.Send != nil {
				fn(f, s)
			}
		}
	}
}
