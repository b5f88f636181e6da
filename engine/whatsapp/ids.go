package whatsapp

// ValidWaID reports whether s is a WhatsApp user's number as Meta writes it in
// `from`, `wa_id` and `recipient_id`: international format, digits only, no
// "+", 5 to 20 digits. Anything else in a signed webhook is refused as an
// identifier, so a contact key can never be arbitrary text.
func ValidWaID(s string) bool { return digits(s, 5, 20) }

// ValidObjectID reports whether s can be a Graph API object id (a phone number
// id, a WhatsApp Business Account id): a decimal number of at most 32 digits.
// Such ids go into request paths, so nothing else may pass.
func ValidObjectID(s string) bool { return digits(s, 1, 32) }

func digits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxMessageIDLen bounds a message or status id (a wamid is well under 100
// characters); ids become deduplication keys.
const maxMessageIDLen = 256

// validMessageID reports whether s can be a wamid: printable ASCII without
// spaces, at most maxMessageIDLen bytes.
func validMessageID(s string) bool {
	if len(s) == 0 || len(s) > maxMessageIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// validStatusName reports whether s can be a delivery status (sent,
// delivered, …): 1 to 32 lowercase letters or underscores. It becomes part of
// a deduplication key and a stored column.
func validStatusName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && s[i] != '_' {
			return false
		}
	}
	return true
}
