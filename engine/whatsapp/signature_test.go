package whatsapp

import (
	"net/url"
	"strings"
	"testing"
)

const vector = "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"

func TestSignVector(t *testing.T) {
	if got := Sign("secret", []byte("test")); got != "sha256="+vector {
		t.Fatalf("Sign = %s", got)
	}
}

func TestVerifySignature(t *testing.T) {
	body := readTestdata(t, "text.json")
	good := Sign("app-secret", body)
	flipped := append([]byte(nil), body...)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"vector", "secret", []byte("test"), "sha256=" + vector, true},
		{"vector uppercase hex", "secret", []byte("test"), "sha256=" + strings.ToUpper(vector), true},
		{"vector mixed-case hex", "secret", []byte("test"), "sha256=" + strings.ToUpper(vector[:10]) + vector[10:], true},
		{"sample", "app-secret", body, good, true},
		{"missing header", "app-secret", body, "", false},
		{"only prefix", "app-secret", body, "sha256=", false},
		{"bare hex", "app-secret", body, good[len("sha256="):], false},
		{"sha1 prefix", "secret", []byte("test"), "sha1=" + vector, false},
		{"uppercase prefix", "secret", []byte("test"), "SHA256=" + vector, false},
		{"space after prefix", "secret", []byte("test"), "sha256= " + vector[1:], false},
		{"leading space", "secret", []byte("test"), " sha256=" + vector, false},
		{"trailing space", "secret", []byte("test"), "sha256=" + vector + " ", false},
		{"too short", "secret", []byte("test"), "sha256=" + vector[:63], false},
		{"too long", "secret", []byte("test"), "sha256=" + vector + "0", false},
		{"truncated to 32 bytes of hex", "secret", []byte("test"), "sha256=" + vector[:32], false},
		{"non-hex", "secret", []byte("test"), "sha256=" + strings.Repeat("z", 64), false},
		{"empty secret", "", []byte("test"), Sign("", []byte("test")), false},
		{"wrong secret", "other", []byte("test"), "sha256=" + vector, false},
		{"body one byte changed", "app-secret", flipped, good, false},
		{"body with extra byte", "app-secret", append(append([]byte(nil), body...), '\n'), good, false},
		{"empty body signed", "secret", nil, Sign("secret", nil), true},
		{"two signatures", "secret", []byte("test"), "sha256=" + vector + ",sha256=" + vector, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyChallenge(t *testing.T) {
	q := func(mode, token, challenge string) url.Values {
		v := url.Values{}
		if mode != "" {
			v.Set("hub.mode", mode)
		}
		if token != "" {
			v.Set("hub.verify_token", token)
		}
		if challenge != "" {
			v.Set("hub.challenge", challenge)
		}
		return v
	}
	tests := []struct {
		name       string
		query      url.Values
		configured string
		want       string
		ok         bool
	}{
		{"ok", q("subscribe", "T", "1158201444"), "T", "1158201444", true},
		{"wrong token", q("subscribe", "X", "C"), "T", "", false},
		{"token prefix", q("subscribe", "T", "C"), "TT", "", false},
		{"no token", q("subscribe", "", "C"), "T", "", false},
		{"empty configured token never verifies", q("subscribe", "", "C"), "", "", false},
		{"wrong mode", q("unsubscribe", "T", "C"), "T", "", false},
		{"no mode", q("", "T", "C"), "T", "", false},
		{"no challenge", q("subscribe", "T", ""), "T", "", false},
		{"case matters", q("subscribe", "t", "C"), "T", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := VerifyChallenge(tt.query, tt.configured)
			if got != tt.want || ok != tt.ok {
				t.Errorf("VerifyChallenge = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzVerifySignature: the genuine signature always verifies (either hex
// case), any one-byte change to the body fails, and an arbitrary header only
// verifies if it is the genuine signature.
func FuzzVerifySignature(f *testing.F) {
	f.Add("secret", []byte("test"), "sha256="+vector, 0)
	f.Add("app-secret", readTestdata(f, "text.json"), "sha1=abc", 5)
	f.Add("app-secret", readTestdata(f, "status_failed_131047.json"), "SHA256="+vector, 17)
	f.Add("", []byte("{}"), "", 0)
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string, pos int) {
		genuine := Sign(secret, body)
		got := VerifySignature(secret, body, header)
		if got && (secret == "" || !strings.EqualFold(header[len("sha256="):], genuine[len("sha256="):]) || header[:7] != "sha256=") {
			t.Fatalf("forged header %q verified", header)
		}
		if secret == "" {
			if VerifySignature(secret, body, genuine) {
				t.Fatal("empty secret verified")
			}
			return
		}
		if !VerifySignature(secret, body, genuine) || !VerifySignature(secret, body, "sha256="+strings.ToUpper(genuine[7:])) {
			t.Fatal("genuine signature rejected")
		}
		if len(body) > 0 {
			if pos < 0 {
				pos = -pos
			}
			if pos < 0 { // math.MinInt
				pos = 0
			}
			mod := append([]byte(nil), body...)
			mod[pos%len(mod)] ^= 0x01
			if VerifySignature(secret, mod, genuine) {
				t.Fatal("modified body verified")
			}
		}
	})
}
