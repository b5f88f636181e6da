package engine

import (
	"context"

	"github.com/funnel-dev/funnel/engine/whatsapp"
)

// Channel delivers messages: the Graph API in production, a sandbox or a simulated
// Cloud API in tests. Errors are classified with whatsapp.Classify.
type Channel interface {
	Send(ctx context.Context, phoneNumberID string, m *whatsapp.Message) (providerID string, err error)
}

// GraphChannel sends through the WhatsApp Cloud API.
type GraphChannel struct{ Client *whatsapp.Client }

// Send posts the message.
func (g GraphChannel) Send(ctx context.Context, phoneNumberID string, m *whatsapp.Message) (string, error) {
	r, err := g.Client.Send(ctx, phoneNumberID, m)
	if err != nil {
		return "", err
	}
	return r.MessageID, nil
}
