package engine

import (
	"slices"
	"time"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// Contacts and their WhatsApp ids.
//
// A contact's key (store.Contact.WaID) never changes; the person's ids (phone
// number, BSUID, parent BSUID, and BSUIDs replaced by a number change) all
// resolve to it through the store's id table. An event finds its contact by
// whichever ids it carries. When one event names two contacts (a user first
// seen by BSUID later reveals a number that already has a contact), the younger
// contact is merged into the older one: runs, messages, consent, window, tags
// and attributes end up on one contact, never two for one person.

// resolveIDs loads the contact keys of every id the batch's events carry (one
// query), and returns the keys found so their contacts and runs can be loaded.
func (b *batch) resolveIDs(ids []string) ([]string, error) {
	var need []string
	for _, id := range ids {
		if id != "" {
			if _, ok := b.ids[id]; !ok && !slices.Contains(need, id) {
				need = append(need, id)
			}
		}
	}
	if len(need) == 0 {
		return nil, nil
	}
	found, err := b.tx.ContactIDs(need)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(found))
	for id, key := range found {
		b.ids[id] = key
		keys = append(keys, key)
	}
	return keys, nil
}

// inboundIDs lists every id an inbound event names.
func inboundIDs(in *Inbound) []string {
	return []string{in.WaID, in.UserID, in.ParentUserID, in.NewUserID}
}

// resolve returns the contact of a user named by these ids (any may be
// empty), creating it when none is known and merging contacts the ids show to
// be one person; ids it did not have yet are attached to it.
func (b *batch) resolve(phone, userID, parentID string) *store.Contact {
	var keys []string
	for _, id := range []string{userID, phone, parentID} {
		if k, ok := b.ids[id]; ok && id != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var c *store.Contact
	if len(keys) == 0 {
		key := phone
		if key == "" {
			key = userID
		}
		if key == "" {
			key = parentID
		}
		c = b.contact(key)
	} else {
		c = b.contact(keys[0])
		for _, k := range keys[1:] {
			c = b.merge(c, b.contact(k))
		}
	}
	b.attach(c, phone, userID, parentID, false)
	return c
}

// known returns the contact one of these ids already belongs to, or nil.
func (b *batch) known(ids ...string) *store.Contact {
	for _, id := range ids {
		if k, ok := b.ids[id]; ok && id != "" {
			return b.contact(k)
		}
	}
	return nil
}

// attach records ids of the contact. An id new to funnel replaces the current
// one of its kind (a new BSUID or number after a change); an id already known
// (an older BSUID in a late webhook) does not. current forces the replacement.
func (b *batch) attach(c *store.Contact, phone, userID, parentID string, current bool) {
	set := func(field *string, id string) {
		if id == "" {
			return
		}
		_, seen := b.ids[id]
		if *field != id && (*field == "" || !seen || current) {
			*field = id
			b.touchContact(c)
		}
		if b.ids[id] != c.WaID {
			b.ids[id] = c.WaID
			if id != c.WaID { // a key resolves by itself: no row needed
				b.newIDs[id] = c.WaID
			}
		}
	}
	if c.Phone == "" && !whatsapp.IsBSUID(c.WaID) && c.WaID != "" && (phone == "" || phone == c.WaID) {
		// A contact stored before ids were kept: its key is its number.
		c.Phone = c.WaID
		b.touchContact(c)
	}
	set(&c.Phone, phone)
	set(&c.UserID, userID)
	set(&c.ParentUserID, parentID)
	b.ids[c.WaID] = c.WaID
}

// merge folds one of two contacts of the same person into the other (the
// older survives) and returns the survivor. The state of both is combined:
// the latest consent decision, the later window, every tag, the attributes
// (the survivor's win), every id.
func (b *batch) merge(x, y *store.Contact) *store.Contact {
	if x == y {
		return x
	}
	into, from := x, y
	if y.CreatedAt.Before(x.CreatedAt) {
		into, from = y, x
	}
	b.e.log.Info("merging contacts of one person", "into", into.WaID, "from", from.WaID)
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&into.Phone, from.Phone)
	fill(&into.UserID, from.UserID)
	fill(&into.ParentUserID, from.ParentUserID)
	fill(&into.Username, from.Username)
	fill(&into.Name, from.Name)
	fill(&into.Timezone, from.Timezone)
	if from.LastInboundAt.After(into.LastInboundAt) {
		into.LastInboundAt = from.LastInboundAt
		if from.PhoneNumberID != "" {
			into.PhoneNumberID = from.PhoneNumberID
		}
	}
	fill(&into.PhoneNumberID, from.PhoneNumberID)
	if laterConsent(from, into) {
		into.Consent, into.ConsentAt, into.ConsentSource = from.Consent, from.ConsentAt, from.ConsentSource
	}
	for _, t := range from.Tags {
		if !into.HasTag(t) {
			into.Tags = append(into.Tags, t)
		}
	}
	for k, v := range from.Attributes {
		if into.Attributes == nil {
			into.Attributes = map[string]any{}
		}
		if _, ok := into.Attributes[k]; !ok {
			into.Attributes[k] = v
		}
	}
	// Runs and queued messages move in memory; the store moves the rest.
	runs := append(b.liveRuns[into.WaID], b.liveRuns[from.WaID]...)
	slices.SortFunc(runs, func(p, q *store.Run) int { return int(p.ID - q.ID) })
	for _, r := range runs {
		r.Contact = into.WaID
	}
	b.liveRuns[into.WaID] = runs
	delete(b.liveRuns, from.WaID)
	for _, it := range b.outbox {
		if it.Contact == from.WaID {
			it.Contact = into.WaID
		}
	}
	if b.cancelOutbox[from.WaID] {
		b.cancelOutbox[into.WaID] = true
		delete(b.cancelOutbox, from.WaID)
	}
	for id, k := range b.ids {
		if k == from.WaID {
			b.ids[id] = into.WaID
		}
	}
	for id, k := range b.newIDs {
		if k == from.WaID {
			b.newIDs[id] = into.WaID
		}
	}
	b.ids[from.WaID] = into.WaID
	delete(b.contacts, from.WaID)
	delete(b.dirtyContacts, from.WaID)
	b.contacts[from.WaID] = into // later events of the batch filed under the old key
	b.merges = append(b.merges, [2]string{from.WaID, into.WaID})
	b.touchContact(into)
	return into
}

// laterConsent reports whether a's consent decision is more recent than b's
// (an opt-out wins a tie: never message someone who may have said stop).
func laterConsent(a, b *store.Contact) bool {
	if a.Consent == "" {
		return false
	}
	if b.Consent == "" || a.ConsentAt.After(b.ConsentAt) {
		return true
	}
	return a.ConsentAt.Equal(b.ConsentAt) && a.Consent == store.ConsentOut
}

// handleIdentity applies a user_id_update: the contact of the previous BSUID
// gets the new one (and the number, when the webhook has it).
func (b *batch) handleIdentity(in *Inbound) string {
	c := b.known(in.UserID, in.WaID, in.ParentUserID)
	if c == nil {
		return ResultNoMatch
	}
	b.attach(c, "", in.NewUserID, in.ParentUserID, true)
	if in.WaID != "" {
		b.attach(c, in.WaID, "", "", true)
	}
	return ResultIdentity
}

// systemMessage applies a system message: the user changed number (new
// number and BSUID) or their BSUID changed. It is no message from the user:
// it neither opens the window nor reaches a flow.
func (b *batch) systemMessage(c *store.Contact, s *whatsapp.InboundSystem) string {
	if s == nil {
		return ResultIdentity
	}
	switch s.Type {
	case whatsapp.SystemUserChangedNumber:
		b.attach(c, s.WaID, s.UserID, s.ParentUserID, true)
	default:
		b.attach(c, "", s.UserID, s.ParentUserID, true)
		if whatsapp.IsBSUID(s.WaID) {
			b.attach(c, "", s.WaID, "", true)
		}
	}
	return ResultIdentity
}

// sharedPhone is the user's own number from a contacts message that answers a
// request for it (a REQUEST_CONTACT_INFO template button): one card, one
// number with its WhatsApp id, in reply to a message funnel sent. Anything else
// is an ordinary contact card.
func sharedPhone(c *store.Contact, m *whatsapp.InboundMessage) string {
	if m.Type != whatsapp.InContacts || m.Context == nil || m.Context.ID == "" || len(m.Contacts) != 1 {
		return ""
	}
	ph := m.Contacts[0].Phones
	if len(ph) != 1 || ph[0].WaID == "" || whatsapp.IsBSUID(ph[0].WaID) {
		return ""
	}
	if c.Phone != "" && c.Phone != ph[0].WaID {
		return "" // a card of someone else
	}
	return ph[0].WaID
}

// contactEnv is the contact as expressions see it.
func contactEnv(c *store.Contact) dsl.ContactEnv {
	phone := c.Phone
	if phone == "" && c.UserID == "" && !whatsapp.IsBSUID(c.WaID) {
		phone = c.WaID // stored before ids were kept: the key is the number
	}
	return dsl.ContactEnv{WaID: phone, UserID: c.UserID, Username: c.Username, HasPhone: phone != "",
		Name: c.Name, Tags: c.Tags, Attributes: c.Attributes, OptedIn: c.Consent == store.ConsentIn, Timezone: c.Timezone}
}

// countryZones are the time zones of countries that have one, for contacts
// without a time zone or phone number: the BSUID's country code is then all
// that is known of where they are.
var countryZones = map[string]string{
	"PT": "Europe/Lisbon", "GB": "Europe/London", "IE": "Europe/Dublin", "ES": "Europe/Madrid",
	"FR": "Europe/Paris", "DE": "Europe/Berlin", "IT": "Europe/Rome", "NL": "Europe/Amsterdam",
	"BE": "Europe/Brussels", "CH": "Europe/Zurich", "AT": "Europe/Vienna", "PL": "Europe/Warsaw",
	"SE": "Europe/Stockholm", "NO": "Europe/Oslo", "DK": "Europe/Copenhagen", "FI": "Europe/Helsinki",
	"GR": "Europe/Athens", "TR": "Europe/Istanbul", "IN": "Asia/Kolkata", "PK": "Asia/Karachi",
	"BD": "Asia/Dhaka", "JP": "Asia/Tokyo", "KR": "Asia/Seoul", "SG": "Asia/Singapore",
	"MY": "Asia/Kuala_Lumpur", "TH": "Asia/Bangkok", "VN": "Asia/Ho_Chi_Minh", "PH": "Asia/Manila",
	"AE": "Asia/Dubai", "SA": "Asia/Riyadh", "IL": "Asia/Jerusalem", "EG": "Africa/Cairo",
	"NG": "Africa/Lagos", "KE": "Africa/Nairobi", "ZA": "Africa/Johannesburg", "CO": "America/Bogota",
	"PE": "America/Lima", "AR": "America/Argentina/Buenos_Aires", "CL": "America/Santiago",
	"VE": "America/Caracas", "EC": "America/Guayaquil", "GT": "America/Guatemala",
}

// BSUIDZone names the zone quiet hours use for a contact without a time zone
// or phone number, from the country of its BSUID ("" when that country has
// several zones or none is known: the configured default applies).
func BSUIDZone(userID string) string { return countryZones[whatsapp.BSUIDCountry(userID)] }

// bsuidZone is the time zone of the country of a contact known only by BSUID,
// when that country has one zone.
func bsuidZone(c *store.Contact) *time.Location {
	if c == nil || c.Phone != "" || c.Timezone != "" {
		return nil
	}
	id := c.UserID
	if id == "" {
		id = c.WaID
	}
	name, ok := countryZones[whatsapp.BSUIDCountry(id)]
	if !ok {
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	return loc
}
