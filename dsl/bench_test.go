package dsl_test

// Benchmarks of the validator against plain YAML decoding of the same files:
//
//	go test ./dsl -run XXX -bench Validate -benchtime 5x -count 3
//
// The goal (issue: "validation must stay cheap") is full validation at most 3×
// the cost of yaml.v3 decoding the files alone; BenchmarkValidateVsDecode reports
// that ratio as validate/decode.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"gopkg.in/yaml.v3"
)

const (
	benchFiles = 1000
	benchSteps = 30
)

// benchTemplates is the catalog the generated flows use, in Meta's format.
var benchTemplates = []struct {
	name, category, body, header string
	named                        []string
}{
	{"welcome_back", "UTILITY", "Welcome back! Reply to continue.", "", nil},
	{"summer_reminder", "MARKETING", "Hi {{1}}! Your code ends soon.", "", nil},
	{"appointment_reminder", "UTILITY", "Hi {{1}}, see you on {{2}}.", "", nil},
	{"promo_image", "MARKETING", "{{1}}, our new collection is here!", "IMAGE", nil},
	{"order_update", "UTILITY", "Hi {{first_name}}, order {{order_id}} shipped.", "", []string{"first_name", "order_id"}},
}

// writeBenchProject writes the catalog and benchFiles realistic flows of
// benchSteps steps each into dir, and returns the catalog's path.
func writeBenchProject(tb testing.TB, dir string) string {
	tb.Helper()
	var data []map[string]any
	for _, t := range benchTemplates {
		comps := []map[string]any{{"type": "BODY", "text": t.body}}
		if t.header != "" {
			comps = append([]map[string]any{{"type": "HEADER", "format": t.header}}, comps...)
		}
		format := "POSITIONAL"
		if t.named != nil {
			format = "NAMED"
		}
		for _, lang := range []string{"en_US", "pt_BR"} {
			data = append(data, map[string]any{"name": t.name, "language": lang, "status": "APPROVED",
				"category": t.category, "parameter_format": format, "components": comps})
		}
	}
	cat, _ := json.MarshalIndent(map[string]any{"data": data}, "", "  ")
	catalog := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(catalog, cat, 0o644); err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewSource(42))
	for i := 0; i < benchFiles; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("team%02d", i%20))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			tb.Fatal(err)
		}
		path := filepath.Join(sub, fmt.Sprintf("flow_%04d.yaml", i))
		if err := os.WriteFile(path, []byte(benchFlow(rng, i)), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return catalog
}

// benchFlow writes one flow of benchSteps steps: a click-to-WhatsApp or keyword
// entry, then four rounds of question (text with ${…} and buttons) →
// wait_for_reply with a timeout → branch on the answer → set → a wait (or an
// opt-in) → a template or a text with a fallback → wait_for_reply; then a tag and
// the end. Half the flows have quiet hours.
func benchFlow(rng *rand.Rand, i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated flow %d for the benchmarks.\n", i)
	fmt.Fprintf(&b, "flow: flow-%04d\n", i)
	fmt.Fprintf(&b, "description: \"Campaign %d: ad entry, questions, reminders\"\n", i)
	b.WriteString("language: en_US\n")
	if i%2 == 0 {
		b.WriteString("quiet_hours: {from: \"21:00\", to: \"09:00\", timezone: contact}\n")
	}
	if i%3 == 0 {
		fmt.Fprintf(&b, "trigger:\n  click_to_whatsapp:\n    ads: [\"1202263058548%05d\"]\n", i)
	} else {
		fmt.Fprintf(&b, "trigger:\n  message:\n    keywords: [promo%d, \"offer %d\"]\n", i, i)
	}
	b.WriteString("steps:\n")
	n := 0
	id := func(k int) string { return fmt.Sprintf("s%02d", k) }
	emit := func(format string, args ...any) {
		fmt.Fprintf(&b, "  - id: %s\n", id(n))
		fmt.Fprintf(&b, format, args...)
		n++
	}
	for round := 0; round < (benchSteps-2)/7; round++ {
		r0 := n
		emit("    send:\n      text: \"Hi ${contact.name}! You came from “${entry.headline}”. Round %d: interested in offer %d?\"\n      buttons: [\"Yes please\", \"Not now\", \"Tell me more\"]\n", round, rng.Intn(100))
		emit("    wait_for_reply: {timeout: %dh, on_timeout: %s}\n", 1+rng.Intn(6), id(r0+4))
		emit("    branch:\n      - if: reply.text == \"Yes please\" && \"vip%d\" in contact.tags\n        goto: %s\n      - if: reply.payload startsWith \"MORE\" || len(reply.text) > %d\n        goto: %s\n", rng.Intn(50), id(r0+3), rng.Intn(50), id(r0+4))
		emit("    set:\n      last_answer: \"${reply.text}\"\n      round: %d\n", round)
		switch round % 3 {
		case 0:
			emit("    wait: %dh\n", 2+rng.Intn(10))
			emit("    send:\n      text: \"Still there, ${contact.name}? Your code ${vars.code ?? \\\"SUMMER20\\\"} is waiting.\"\n      fallback: {template: welcome_back}\n")
		case 1:
			emit("    wait: {for: %dh, at: \"10:00\"}\n", 1+rng.Intn(4))
			emit("    send:\n      template: appointment_reminder\n      params: [\"${contact.name}\", \"${now.Format(\\\"Jan 2\\\")}\"]\n")
		default:
			emit("    opt_in: true\n")
			emit("    send:\n      template: promo_image\n      header: \"https://example.com/img/${entry.source_id}.jpg\"\n      params: [\"${contact.name}\"]\n")
		}
		emit("    wait_for_reply: {timeout: 1d}\n")
	}
	emit("    tag: [finished, \"campaign-%d\"]\n", i)
	for n < benchSteps {
		emit("    end: completed\n")
	}
	return b.String()
}

// benchProject generates the project in b.TempDir() and checks that it is
// realistic, i.e. clean; it returns the folder and the catalog.
func benchProject(b *testing.B) (dir, catalog string) {
	b.Helper()
	dir = b.TempDir()
	catalog = writeBenchProject(b, dir)
	_, diags, err := dsl.Load([]string{dir}, dsl.Options{Templates: catalog})
	if err != nil {
		b.Fatal(err)
	}
	if e, _ := diags.Count(); e > 0 {
		b.Fatalf("generated project has %d errors, first: %v", e, diags[0])
	}
	return dir, catalog
}

func validate(b *testing.B, dir, catalog string) {
	_, _, err := dsl.Load([]string{dir}, dsl.Options{Templates: catalog})
	if err != nil {
		b.Fatal(err)
	}
}

// decode reads the same files the same way (found by dsl.FindFlowFiles, read and
// handled by GOMAXPROCS workers) and only decodes them with yaml.v3 into a yaml.Node.
func decode(b *testing.B, dir string) {
	files, _, err := dsl.FindFlowFiles([]string{dir})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, 1)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for path := range work {
				data, err := os.ReadFile(path)
				if err == nil {
					// Into a yaml.Node, as the parser decodes (a node tree is
					// less work than building maps: the strict baseline).
					var doc yaml.Node
					err = yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

func reportFilesPerSec(b *testing.B, name string, total time.Duration, n int) {
	b.ReportMetric(float64(benchFiles*n)/total.Seconds(), name)
}

func BenchmarkValidate(b *testing.B) {
	dir, catalog := benchProject(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		validate(b, dir, catalog)
	}
	reportFilesPerSec(b, "files/s", time.Since(start), b.N)
}

func BenchmarkYAMLDecode(b *testing.B) {
	dir, _ := benchProject(b)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		decode(b, dir)
	}
	reportFilesPerSec(b, "files/s", time.Since(start), b.N)
}

// BenchmarkValidateVsDecode runs both alternately, so that both see the same
// machine state, and reports validate/decode: the goal is at most 3.
func BenchmarkValidateVsDecode(b *testing.B) {
	dir, catalog := benchProject(b)
	var tv, td time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		validate(b, dir, catalog)
		t1 := time.Now()
		decode(b, dir)
		t2 := time.Now()
		tv += t1.Sub(t0)
		td += t2.Sub(t1)
	}
	b.ReportMetric(float64(tv)/float64(td), "validate/decode")
	reportFilesPerSec(b, "validate-files/s", tv, b.N)
	reportFilesPerSec(b, "decode-files/s", td, b.N)
}
