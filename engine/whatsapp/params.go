package whatsapp

import (
	"fmt"
	"net/url"
	"strings"
)

// CheckTemplateParam reports what Meta would refuse in a template's text
// parameter: a new line or a tab, more than four consecutive spaces, or more
// characters than the component holds (MaxTemplateHeaderParam in a header,
// MaxTemplateBodyParam elsewhere). Meta answers such a call with an error
// after the fact; checking first keeps the reason next to the message.
func CheckTemplateParam(s string, header bool) error {
	if i := strings.IndexAny(s, "\n\r\t"); i >= 0 {
		what := "a new line"
		if s[i] == '\t' {
			what = "a tab"
		}
		return fmt.Errorf("has %s at character %d; WhatsApp refuses new lines and tabs in template parameters", what, runes(s[:i])+1)
	}
	if i := strings.Index(s, "     "); i >= 0 {
		return fmt.Errorf("has more than 4 consecutive spaces at character %d; WhatsApp refuses that in template parameters", runes(s[:i])+1)
	}
	max := MaxTemplateBodyParam
	if header {
		max = MaxTemplateHeaderParam
	}
	if n := runes(s); n > max {
		return fmt.Errorf("%d characters, limit %d", n, max)
	}
	return nil
}

// CheckMediaLink reports a media link WhatsApp cannot fetch: anything but an
// absolute http or https URL (file:, data:, javascript:, a bare path, …).
func CheckMediaLink(link string) error {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%.80q is not an http(s) URL", link)
	}
	return nil
}
