package whatsapp

import "strings"

// A WhatsApp user is identified by up to three ids, and the webhooks carry
// whichever the user lets the business see:
//
//   - the phone number (wa_id, from, recipient_id): digits only, absent when
//     a user with a username hides it;
//   - the business-scoped user ID, BSUID (user_id, from_user_id,
//     recipient_user_id): always present once Meta sends them, e.g.
//     "US.13491208655302741918" — an ISO 3166 country code, a dot, up to 128
//     letters and digits. A new one is issued when the user changes number;
//   - the parent BSUID (parent_user_id, …) for linked business portfolios,
//     e.g. "US.ENT.11815799212886844830".
//
// The username (profile.username) is shown to people but may change: it is
// never used to match a user.

// MaxBSUID bounds the part after the country code (Meta: up to 128).
const MaxBSUID = 128

// IsBSUID reports whether id has the shape of a BSUID or parent BSUID. A
// phone number never does (it has no dot and no letters), so the two share
// one namespace without ambiguity.
func IsBSUID(id string) bool {
	cc, rest, ok := strings.Cut(id, ".")
	if !ok || len(cc) != 2 || !upper(cc) {
		return false
	}
	rest = strings.TrimPrefix(rest, "ENT.")
	if rest == "" || len(rest) > MaxBSUID {
		return false
	}
	for _, r := range rest {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// IsParentBSUID reports whether id is a parent BSUID ("CC.ENT.…").
func IsParentBSUID(id string) bool { return IsBSUID(id) && strings.HasPrefix(id[2:], ".ENT.") }

// BSUIDCountry is the ISO 3166 country code a BSUID starts with ("" for
// anything else): the only hint of where a user without a phone number lives.
func BSUIDCountry(id string) string {
	if !IsBSUID(id) {
		return ""
	}
	return id[:2]
}

func upper(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
