package dsl

import (
	"fmt"
	"strings"
	"time"
)

// checkWindow is the rule the product exists for: a free-form message (text,
// buttons, media, list) may only be sent inside the 24-hour customer service
// window. Using the window analysis, a free-form send whose worst case reaches
// SendDeadline (24h less the engine's guard minute: where the engine refuses it)
// is an error unless it has an approved fallback template; within the safety
// margin below that it is a warning.
func (c *checker) checkWindow() {
	a := c.p.Analysis
	c.eachSend(func(f *Flow, s *Step) {
		m := s.Send
		if !m.FreeForm() {
			return
		}
		if c.hasUsableFallback(f, m) {
			return
		}
		b := a.Budget(s)
		if !b.Reached {
			return
		}
		pos := freeFormPos(s)
		what := "free-form " + m.Describe()
		fix := "send an approved template here, or add a `fallback:` template for when the window is closed"
		witness := a.Witness(s)
		path := PathIDs(witness, f)
		switch {
		case b.Inf && a.BusinessEntry(s) != nil:
			entry := a.BusinessEntry(s)
			c.report(f, s, pos, SevError, RuleWindow, fmt.Sprintf(
				"%s where the window may be closed: flow `%s` starts from %s trigger, sent by the business when the contact may not have written for days: %s; %s",
				what, entry.ID, withArticle("`"+string(entry.Trigger.Kind)+"`"), FormatPath(witness, f), fix), path)
		case b.Inf && a.Overflows(s):
			c.report(f, s, pos, SevError, RuleWindow, fmt.Sprintf(
				"%s outside the 24h window: %s: the waits on the way add up to more than %d years, past what the analysis counts, so the time since the contact's last message is unbounded; %s",
				what, FormatPath(witness, f), horizon/(365*Day), fix), path)
		case b.Inf:
			loop := a.Loop(witness[0].Step)
			msg := fmt.Sprintf("%s with no bound on the time since the contact's last message: the loop %s can repeat without a reply",
				what, FormatPath(loop, f))
			if len(witness) > 1 {
				msg += ", then " + FormatPath(witness, f)
			}
			path = append(PathIDs(loop[:len(loop)-1], f), path...)
			c.report(f, s, pos, SevError, RuleWindow, msg+"; "+fix, path)
		case b.Sent() >= SendDeadline:
			c.report(f, s, pos, SevError, RuleWindow, fmt.Sprintf(
				"%s outside the 24h window: %s: up to %s after the contact's last message%s%s; %s",
				what, FormatPath(witness, f), FormatHours(shown(b, SendDeadline)), paceNote(b, SendDeadline), guardNote(shown(b, SendDeadline)), fix), path)
		case c.opts.Margin > 0 && b.Sent() >= SendDeadline-c.opts.Margin:
			c.report(f, s, pos, SevWarning, RuleWindow, fmt.Sprintf(
				"%s close to the end of the 24h window: %s: up to %s after the contact's last message%s, within the %s safety margin, so a delayed message can find the window closed; add a `fallback:` template or shorten the wait",
				what, FormatPath(witness, f), FormatHours(shown(b, SendDeadline-c.opts.Margin)), paceNote(b, SendDeadline-c.opts.Margin), FormatDuration(c.opts.Margin)), path)
		}
	})
}

// shown is the bound a message names: when the step runs, or, when only the
// pacing takes it past the threshold, when the message leaves.
func shown(b Budget, threshold time.Duration) time.Duration {
	if b.D >= threshold {
		return b.D
	}
	return b.Sent()
}

// paceNote explains the part of a bound that is pacing, when it is what takes
// the bound past the threshold.
func paceNote(b Budget, threshold time.Duration) string {
	if b.Pace <= 0 || b.D >= threshold {
		return ""
	}
	return fmt.Sprintf(" (%s when the step runs, then up to %s while the messages before it go out: WhatsApp takes %d messages in a row to one contact, then one per %s)",
		FormatHours(b.D), formatUnits(b.Pace), PairBurst, FormatDuration(PairInterval))
}

// guardNote explains an error below 24h: the engine's guard minute.
func guardNote(d time.Duration) string {
	if d >= Window {
		return ""
	}
	return " (the engine treats the window as closed from " + FormatHours(SendDeadline) + ", a minute early, so the message reaches Meta in time)"
}

// hasUsableFallback reports whether a free-form send has a fallback template that
// can go out when the window is closed. Without a catalog the template rule already
// reports the fallback as unchecked, so it is not reported twice here.
func (c *checker) hasUsableFallback(f *Flow, m *Send) bool {
	if m.Fallback == nil {
		return false
	}
	if c.p.Catalog(f) == nil {
		return true
	}
	return m.Fallback.Resolved != nil && m.Fallback.Resolved.Approved()
}

// withArticle puts "a" or "an" before a word (which may be in backquotes).
func withArticle(w string) string {
	if strings.ContainsRune("aeiouAEIOU", []rune(strings.TrimLeft(w, "`") + "x")[0]) {
		return "an " + w
	}
	return "a " + w
}

// freeFormPos points at the message body of a send.
func freeFormPos(s *Step) Pos {
	m := s.Send
	switch {
	case m.Text != nil && m.Text.Pos.IsValid():
		return m.Text.Pos
	case m.Media != nil:
		return m.Media.Pos
	case m.List != nil:
		return m.List.Pos
	}
	return s.KPos
}

// MayRunAfter reports whether a step can run at or after d since the contact's last
// message, per the last Check (for explain and graph).
func (p *Project) MayRunAfter(s *Step, d time.Duration) bool {
	return p.Analysis != nil && p.Analysis.Budget(s).AtLeast(d)
}
