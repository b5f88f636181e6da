package whatsapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
)

// SignatureHeader is the header Meta signs webhook POSTs with.
const SignatureHeader = "X-Hub-Signature-256"

const sigPrefix = "sha256="

// VerifySignature reports whether header is Meta's signature of body:
// "sha256=" followed by the 64-hex-digit HMAC-SHA256 of the raw body bytes keyed
// with the app secret. It must run on the bytes as received, before any
// decoding. Anything but that exact shape fails closed: empty secret, missing
// header, other prefix or algorithm (sha1=, SHA256=), wrong length. Hex digits
// may be upper or lower case. The comparison is constant time.
func VerifySignature(appSecret string, body []byte, header string) bool {
	if appSecret == "" || len(header) != len(sigPrefix)+2*sha256.Size || header[:len(sigPrefix)] != sigPrefix {
		return false
	}
	got := make([]byte, sha256.Size)
	if _, err := hex.Decode(got, []byte(header[len(sigPrefix):])); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns the X-Hub-Signature-256 value Meta would send for body; the
// simulator and tests use it to produce genuine-looking webhooks.
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return sigPrefix + hex.EncodeToString(mac.Sum(nil))
}

// VerifyChallenge answers Meta's webhook subscription check
// (GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C): ok is true and
// challenge is C only when the mode is subscribe, a challenge is present and T
// equals verifyToken. An empty configured token never verifies, so a missing
// setting cannot let anyone subscribe. The token comparison is constant time
// (over SHA-256 digests, so the token's length does not leak either).
func VerifyChallenge(query url.Values, verifyToken string) (challenge string, ok bool) {
	if verifyToken == "" || query.Get("hub.mode") != "subscribe" {
		return "", false
	}
	c := query.Get("hub.challenge")
	if c == "" {
		return "", false
	}
	got, want := sha256.Sum256([]byte(query.Get("hub.verify_token"))), sha256.Sum256([]byte(verifyToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return "", false
	}
	return c, true
}
