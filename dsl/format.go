package dsl

// The output formats of diagnostics: text (for people), json (for scripts),
// github (workflow commands that annotate a pull request) and sarif (for GitHub
// code scanning and other SARIF consumers).
//
// The machine formats (json, github, sarif) write file names with forward
// slashes on every OS; text writes them as the diagnostics hold them.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// FormatOptions configures WriteDiagnostics.
type FormatOptions struct {
	// Color writes the text format with ANSI colors (see ColorEnabled).
	Color bool
	// Source returns a file's contents, for the snippets of the text format. It
	// may be nil, or return nil for a file it cannot read: the diagnostic is then
	// written without a snippet.
	Source func(file string) []byte
	// ToolVersion is funnel's version, written into SARIF (tool.driver.version).
	ToolVersion string
}

// Formats lists the formats WriteDiagnostics writes.
var Formats = []string{"text", "json", "github", "sarif"}

// WriteDiagnostics writes ds in one of Formats. The diagnostics are written in
// the order given (callers sort them with Diagnostics.Sort).
//
//   - text: `file:line:col: severity: message [rule]`, then the source line with
//     a caret under the column, framed by a `|` gutter.
//   - json: {"diagnostics": [...], "errors": N, "warnings": N}, every key always
//     present, indented by two spaces.
//   - github: one `::error file=…,line=…,col=…,title=funnel (rule)::message`
//     workflow command (`::warning` for warnings) per diagnostic.
//   - sarif: a SARIF 2.1.0 log with one run, as GitHub code scanning accepts it.
func WriteDiagnostics(w io.Writer, format string, ds Diagnostics, opts FormatOptions) error {
	switch format {
	case "text":
		return writeText(w, ds, opts)
	case "json":
		return writeJSON(w, ds)
	case "github":
		return writeGitHub(w, ds)
	case "sarif":
		return writeSARIF(w, ds, opts)
	}
	return fmt.Errorf("unknown diagnostics format %q (use %s)", format, strings.Join(Formats, ", "))
}

// ColorEnabled reports whether text written to f should be colored: when f is a
// terminal, NO_COLOR is unset (or empty, per no-color.org) and TERM is not
// "dumb"; or when FORCE_COLOR is set, whatever f is. FORCE_COLOR=0 (or false)
// turns colors off.
func ColorEnabled(f *os.File) bool {
	if v, ok := os.LookupEnv("FORCE_COLOR"); ok {
		switch strings.ToLower(v) {
		case "0", "false":
			return false
		case "":
		default:
			return true
		}
	}
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" || f == nil {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// ---- text ----

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[1;31m"
	ansiYellow = "\x1b[1;33m"
	ansiGreen  = "\x1b[1;32m"
)

func writeText(w io.Writer, ds Diagnostics, opts FormatOptions) error {
	bw := bufio.NewWriter(w)
	paint := func(code, s string) string {
		if !opts.Color {
			return s
		}
		return code + s + ansiReset
	}
	lines := map[string][][]rune{}
	sourceLines := func(file string) [][]rune {
		if ls, ok := lines[file]; ok {
			return ls
		}
		var ls [][]rune
		if opts.Source != nil {
			if data := opts.Source(file); data != nil {
				ls = (&source{name: file, data: data}).lineRunes()
			}
		}
		lines[file] = ls
		return ls
	}
	for _, d := range ds {
		if where := d.Pos.String(); where != "" {
			bw.WriteString(paint(ansiBold, where+":") + " ")
		}
		sev := string(d.Severity)
		switch d.Severity {
		case SevError:
			sev = paint(ansiRed, sev)
		case SevWarning:
			sev = paint(ansiYellow, sev)
		}
		bw.WriteString(sev + ": " + printable(d.Message) + " " + paint(ansiDim, "["+d.Rule+"]") + "\n")

		ls := sourceLines(d.Pos.File)
		if !d.Pos.IsValid() || d.Pos.Line > len(ls) {
			continue
		}
		line := ls[d.Pos.Line-1]
		col := min(max(d.Pos.Col, 1), len(line)+1)
		var shown strings.Builder
		pad := 0
		for i, r := range line {
			s, width := displayRune(r)
			shown.WriteString(s)
			if i < col-1 {
				pad += width
			}
		}
		num := strconv.Itoa(d.Pos.Line)
		frame := strings.Repeat(" ", len(num)+2) + "|" // the number's column, right-aligned
		bw.WriteString(frame + "\n")
		if shown.Len() == 0 {
			bw.WriteString(" " + num + " |\n")
		} else {
			bw.WriteString(" " + num + " | " + shown.String() + "\n")
		}
		bw.WriteString(frame + " " + strings.Repeat(" ", pad) + paint(ansiGreen, "^") + "\n")
	}
	return bw.Flush()
}

// printable makes a message safe for a terminal: control characters (which a
// string in a flow can hold through YAML escapes) are escaped, and characters
// that reorder text (bidirectional overrides) are named.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r != '\t' && (unicode.IsControl(r) || isBidiControl(r)) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		case isBidiControl(r):
			fmt.Fprintf(&b, "<U+%04X>", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// tabWidth is how many spaces a tab of a snippet is shown as.
const tabWidth = 4

// displayRune is how a character of a source line is shown in a snippet, and
// the number of terminal columns that takes: a tab becomes spaces, control
// characters their visible Unicode pictures, bidirectional overrides their code
// point; combining marks take no column, East Asian wide characters and emoji
// two. The caret is indented by the widths of the characters before it.
func displayRune(r rune) (string, int) {
	switch {
	case r == '\t':
		return strings.Repeat(" ", tabWidth), tabWidth
	case r < 0x20:
		return string(0x2400 + r), 1 // ␀ … ␟
	case r == 0x7f:
		return "\u2421", 1 // ␡
	case r >= 0x80 && r < 0xa0:
		return "\ufffd", 1
	case isBidiControl(r):
		s := fmt.Sprintf("<U+%04X>", r)
		return s, len(s)
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		return string(r), 0
	case isWide(r):
		return string(r), 2
	}
	return string(r), 1
}

func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// wideRanges are the East Asian Wide and Fullwidth characters (Unicode 15,
// UAX #11), which terminals draw two columns wide, emoji included.
var wideRanges = [][2]rune{
	{0x1100, 0x115f}, {0x231a, 0x231b}, {0x2329, 0x232a}, {0x23e9, 0x23ec},
	{0x23f0, 0x23f0}, {0x23f3, 0x23f3}, {0x25fd, 0x25fe}, {0x2614, 0x2615},
	{0x2648, 0x2653}, {0x267f, 0x267f}, {0x2693, 0x2693}, {0x26a1, 0x26a1},
	{0x26aa, 0x26ab}, {0x26bd, 0x26be}, {0x26c4, 0x26c5}, {0x26ce, 0x26ce},
	{0x26d4, 0x26d4}, {0x26ea, 0x26ea}, {0x26f2, 0x26f3}, {0x26f5, 0x26f5},
	{0x26fa, 0x26fa}, {0x26fd, 0x26fd}, {0x2705, 0x2705}, {0x270a, 0x270b},
	{0x2728, 0x2728}, {0x274c, 0x274c}, {0x274e, 0x274e}, {0x2753, 0x2755},
	{0x2757, 0x2757}, {0x2795, 0x2797}, {0x27b0, 0x27b0}, {0x27bf, 0x27bf},
	{0x2b1b, 0x2b1c}, {0x2b50, 0x2b50}, {0x2b55, 0x2b55}, {0x2e80, 0x303e},
	{0x3041, 0x33ff}, {0x3400, 0x4dbf}, {0x4e00, 0x9fff}, {0xa000, 0xa4cf},
	{0xa960, 0xa97f}, {0xac00, 0xd7a3}, {0xf900, 0xfaff}, {0xfe10, 0xfe19},
	{0xfe30, 0xfe6f}, {0xff00, 0xff60}, {0xffe0, 0xffe6}, {0x16fe0, 0x16fe4},
	{0x17000, 0x18cff}, {0x1b000, 0x1b2ff}, {0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf},
	{0x1f18e, 0x1f18e}, {0x1f191, 0x1f19a}, {0x1f200, 0x1f251}, {0x1f300, 0x1f320},
	{0x1f32d, 0x1f335}, {0x1f337, 0x1f37c}, {0x1f37e, 0x1f393}, {0x1f3a0, 0x1f3ca},
	{0x1f3cf, 0x1f3d3}, {0x1f3e0, 0x1f3f0}, {0x1f3f4, 0x1f3f4}, {0x1f3f8, 0x1f43e},
	{0x1f440, 0x1f440}, {0x1f442, 0x1f4fc}, {0x1f4ff, 0x1f53d}, {0x1f54b, 0x1f54e},
	{0x1f550, 0x1f567}, {0x1f57a, 0x1f57a}, {0x1f595, 0x1f596}, {0x1f5a4, 0x1f5a4},
	{0x1f5fb, 0x1f64f}, {0x1f680, 0x1f6c5}, {0x1f6cc, 0x1f6cc}, {0x1f6d0, 0x1f6d2},
	{0x1f6d5, 0x1f6d7}, {0x1f6dc, 0x1f6df}, {0x1f6eb, 0x1f6ec}, {0x1f6f4, 0x1f6fc},
	{0x1f7e0, 0x1f7eb}, {0x1f7f0, 0x1f7f0}, {0x1f90c, 0x1f93a}, {0x1f93c, 0x1f945},
	{0x1f947, 0x1f9ff}, {0x1fa70, 0x1faff}, {0x20000, 0x2fffd}, {0x30000, 0x3fffd},
}

func isWide(r rune) bool {
	if r < wideRanges[0][0] {
		return false
	}
	lo, hi := 0, len(wideRanges)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < wideRanges[m][0]:
			hi = m
		case r > wideRanges[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// ---- json ----

type jsonReport struct {
	Diagnostics []jsonDiagnostic `json:"diagnostics"`
	Errors      int              `json:"errors"`
	Warnings    int              `json:"warnings"`
}

type jsonDiagnostic struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Column   int      `json:"column"`
	Severity string   `json:"severity"`
	Rule     string   `json:"rule"`
	Flow     string   `json:"flow"`
	Step     string   `json:"step"`
	Message  string   `json:"message"`
	Path     []string `json:"path"`
}

func writeJSON(w io.Writer, ds Diagnostics) error {
	r := jsonReport{Diagnostics: make([]jsonDiagnostic, 0, len(ds))}
	r.Errors, r.Warnings = ds.Count()
	for _, d := range ds {
		p := d.Path
		if p == nil {
			p = []string{}
		}
		r.Diagnostics = append(r.Diagnostics, jsonDiagnostic{
			File: filepath.ToSlash(d.Pos.File), Line: d.Pos.Line, Column: d.Pos.Col,
			Severity: string(d.Severity), Rule: d.Rule, Flow: d.Flow, Step: d.Step,
			Message: d.Message, Path: p,
		})
	}
	return encodeJSON(w, r)
}

// encodeJSON writes v indented by two spaces, with a final newline, leaving <, >
// and & as they are (the output is not embedded in HTML).
func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ---- github ----

func writeGitHub(w io.Writer, ds Diagnostics) error {
	bw := bufio.NewWriter(w)
	for _, d := range ds {
		cmd := "error"
		if d.Severity == SevWarning {
			cmd = "warning"
		}
		var props []string
		if d.Pos.File != "" {
			props = append(props, "file="+githubProperty(filepath.ToSlash(d.Pos.File)))
		}
		if d.Pos.IsValid() {
			props = append(props, "line="+strconv.Itoa(d.Pos.Line))
			if d.Pos.Col > 0 {
				props = append(props, "col="+strconv.Itoa(d.Pos.Col))
			}
		}
		props = append(props, "title="+githubProperty("funnel ("+d.Rule+")"))
		bw.WriteString("::" + cmd + " " + strings.Join(props, ",") + "::" + githubData(d.Message) + "\n")
	}
	return bw.Flush()
}

// githubData escapes a workflow command's message as the Actions runner unescapes it.
func githubData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// githubProperty escapes a workflow command's property value.
func githubProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// ---- sarif ----

const (
	sarifSchema      = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion     = "2.1.0"
	sarifToolURI     = "https://github.com/funnel-dev/funnel"
	sarifSrcRoot     = "%SRCROOT%"
	sarifFingerprint = "funnel/v1"
)

// sarifShort are the rules' short descriptions: GitHub shows them as the title
// of an alert's rule. A rule missing here uses its full description.
var sarifShort = map[string]string{
	RuleSyntax:      "Malformed YAML",
	RuleSchema:      "Not valid in the flow language",
	RuleReference:   "Unresolved or duplicate reference",
	RuleExpression:  "Invalid expression",
	RuleWindow:      "Free-form message outside the 24-hour window",
	RuleTemplate:    "Template missing, not approved or with wrong parameters",
	RuleOptIn:       "MARKETING template without opt-in",
	RuleLimits:      "WhatsApp message limit exceeded",
	RuleUnreachable: "Unreachable step",
	RuleTrigger:     "Flows claiming the same ad",
	RulePhoneOnly:   "Phone-only message without a contact.has_phone guard",
}

// sarifDefaultLevel is the level of rules that only warn; the others are errors.
var sarifDefaultLevel = map[string]string{
	RuleOptIn:       "warning",
	RuleUnreachable: "warning",
	RulePhoneOnly:   "warning",
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool sarifTool `json:"tool"`
	// ColumnKind says columns count Unicode code points, as funnel's do (the
	// SARIF default is UTF-16 code units).
	ColumnKind string        `json:"columnKind"`
	Results    []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name"`
	ShortDescription     sarifMessage       `json:"shortDescription"`
	FullDescription      sarifMessage       `json:"fullDescription"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifMessage      `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          *sarifProperties  `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

// sarifProperties carries what SARIF has no field for: the flow, the step and
// the witness path of a window or opt-in finding.
type sarifProperties struct {
	Flow string   `json:"flow,omitempty"`
	Step string   `json:"step,omitempty"`
	Path []string `json:"path,omitempty"`
}

func writeSARIF(w io.Writer, ds Diagnostics, opts FormatOptions) error {
	driver := sarifDriver{Name: "funnel", InformationURI: sarifToolURI, Version: opts.ToolVersion}
	index := map[string]int{}
	addRule := func(id, description string) {
		short := sarifShort[id]
		if short == "" {
			short = description
		}
		level := sarifDefaultLevel[id]
		if level == "" {
			level = "error"
		}
		index[id] = len(driver.Rules)
		driver.Rules = append(driver.Rules, sarifRule{
			ID: id, Name: sarifRuleName(id),
			ShortDescription:     sarifMessage{short},
			FullDescription:      sarifMessage{description},
			DefaultConfiguration: sarifConfiguration{level},
		})
	}
	for _, r := range Rules {
		addRule(r.ID, r.Description)
	}
	run := sarifRun{ColumnKind: "unicodeCodePoints", Results: make([]sarifResult, 0, len(ds))}
	seen := map[string]int{}
	for _, d := range ds {
		if _, ok := index[d.Rule]; !ok {
			addRule(d.Rule, "funnel rule "+d.Rule+".")
		}
		level := "error"
		if d.Severity == SevWarning {
			level = "warning"
		}
		res := sarifResult{
			RuleID: d.Rule, RuleIndex: index[d.Rule], Level: level,
			Message:   sarifMessage{d.Message},
			Locations: []sarifLocation{},
		}
		uri, base := sarifURI(d.Pos.File)
		if d.Pos.File != "" {
			loc := sarifLocation{PhysicalLocation: sarifPhysicalLocation{
				ArtifactLocation: sarifArtifactLocation{URI: uri, URIBaseID: base},
			}}
			if d.Pos.IsValid() {
				loc.PhysicalLocation.Region = &sarifRegion{StartLine: d.Pos.Line, StartColumn: max(d.Pos.Col, 0)}
			}
			res.Locations = append(res.Locations, loc)
		}
		// The fingerprint leaves out the line, so that an alert survives edits
		// above it; identical findings in one run are told apart by their rank.
		key := strings.Join([]string{d.Rule, uri, d.Flow, d.Step, d.Message}, "\x00")
		n := seen[key]
		seen[key] = n + 1
		if n > 0 {
			key += "\x00" + strconv.Itoa(n)
		}
		sum := sha256.Sum256([]byte(key))
		res.PartialFingerprints = map[string]string{sarifFingerprint: hex.EncodeToString(sum[:16])}
		if d.Flow != "" || d.Step != "" || len(d.Path) > 0 {
			res.Properties = &sarifProperties{Flow: d.Flow, Step: d.Step, Path: d.Path}
		}
		run.Results = append(run.Results, res)
	}
	run.Tool.Driver = driver
	return encodeJSON(w, sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

// sarifRuleName turns a rule id into the PascalCase name SARIF expects:
// opt-in → OptIn.
func sarifRuleName(id string) string {
	var b strings.Builder
	up := true
	for _, r := range id {
		if r == '-' || r == '_' || r == ' ' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sarifURI turns a file name into an artifact URI: relative to %SRCROOT% (the
// checkout, which `funnel validate` runs in) when it can be, else an absolute
// file:// URI.
func sarifURI(file string) (uri, base string) {
	if file == "" {
		return "", ""
	}
	p := filepath.Clean(file)
	if filepath.IsAbs(p) {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				p = rel
			}
		}
	}
	slashed := filepath.ToSlash(p)
	if filepath.IsAbs(p) || path.IsAbs(slashed) {
		if !strings.HasPrefix(slashed, "/") {
			slashed = "/" + slashed // C:/x → /C:/x
		}
		return (&url.URL{Scheme: "file", Path: slashed}).String(), ""
	}
	return (&url.URL{Path: slashed}).String(), sarifSrcRoot
}
