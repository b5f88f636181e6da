package engine

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/funnel-dev/funnel/dsl"
	"github.com/funnel-dev/funnel/engine/whatsapp"
	"github.com/funnel-dev/funnel/store"
)

// send renders a send step into an outbox row. The row's key (run id / step
// sequence) makes the step send once even if the batch is replayed.
func (b *batch) send(r *store.Run, f *dsl.Flow, c *store.Contact, s *dsl.Step) {
	if s.Send == nil {
		return
	}
	env := b.env(r, c)
	render := func(t *dsl.Text) string {
		out, err := t.Render(env)
		if err != nil {
			b.stepError(f, s, err)
		}
		return out
	}
	item := &store.OutboxItem{ID: b.tx.NewID("outbox"), Key: fmt.Sprintf("%d/%d", r.ID, r.StepSeq), RunID: r.ID,
		FlowID: f.ID, Step: s.ID, Contact: c.WaID, PhoneNumberID: c.PhoneNumberID, AssumeOptIn: f.AssumeOptIn,
		Status: store.OutPending, NextAttemptAt: b.now, CreatedAt: b.now, UpdatedAt: b.now}
	if item.PhoneNumberID == "" {
		item.PhoneNumberID = b.e.opts.PhoneNumberID
	}
	callback := CallbackData(item.ID)
	// To the phone number when known, else to the BSUID ("recipient").
	msg, category := buildMessage(s.Send, f, c.Address(), render)
	msg.BizOpaqueCallbackData = callback
	if in := msg.Interactive; in != nil && in.Type == whatsapp.InteractiveFlow {
		// The completed form carries the token back: it names the message.
		in.Action.Parameters.FlowToken = callback
	}
	item.Payload = mustMarshal(msg)
	item.Kind, item.Category = store.KindFreeForm, ""
	if s.Send.Template != nil {
		item.Kind, item.Category = store.KindTemplate, category
	}
	if msg.Template != nil {
		item.Template = whatsapp.TemplateKey(msg.Template.Name, msg.Template.Language.Code)
	}
	if fb := s.Send.Fallback; fb != nil {
		fm, fcat := buildTemplate(fb, f, c.Address(), render)
		fm.BizOpaqueCallbackData = callback
		item.Fallback, item.FallbackCategory = mustMarshal(fm), fcat
		if item.Template == "" {
			item.Template = whatsapp.TemplateKey(fm.Template.Name, fm.Template.Language.Code)
		}
	}
	b.outbox = append(b.outbox, item)
}

// CallbackData is the biz_opaque_callback_data that ties Meta's status webhooks
// to an outbox row.
func CallbackData(outboxID int64) string { return "funnel:" + strconv.FormatInt(outboxID, 10) }

// ParseCallbackData reads an outbox id back (0 when the data is not ours).
func ParseCallbackData(s string) int64 {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "funnel:"), 10, 64)
	if err != nil || !strings.HasPrefix(s, "funnel:") {
		return 0
	}
	return id
}

// buildMessage turns a send step into the Graph API message; category is the
// template's (for policy) when it is a template.
func buildMessage(m *dsl.Send, f *dsl.Flow, to string, render func(*dsl.Text) string) (*whatsapp.Message, string) {
	switch {
	case m.Template != nil:
		return buildTemplate(m.Template, f, to, render)
	case m.Media != nil:
		media := whatsapp.Media{Link: render(m.Media.Link)}
		if m.Media.Caption != nil {
			media.Caption = render(m.Media.Caption)
		}
		if m.Media.Filename != nil {
			media.Filename = render(m.Media.Filename)
		}
		switch m.Media.Kind {
		case "image":
			return whatsapp.NewImage(to, media), ""
		case "video":
			return whatsapp.NewVideo(to, media), ""
		default:
			return whatsapp.NewDocument(to, media), ""
		}
	case m.List != nil:
		l := m.List
		var sections []whatsapp.Section
		for _, sec := range l.Sections {
			ws := whatsapp.Section{}
			if sec.Title != nil {
				ws.Title = render(sec.Title)
			}
			for _, row := range sec.Rows {
				wr := whatsapp.Row{ID: row.ID, Title: render(row.Title)}
				if row.Description != nil {
					wr.Description = render(row.Description)
				}
				ws.Rows = append(ws.Rows, wr)
			}
			sections = append(sections, ws)
		}
		msg := whatsapp.NewList(to, render(l.Body), render(l.Button), sections...)
		if l.Header != nil {
			msg.Interactive.Header = &whatsapp.InteractiveHeader{Type: "text", Text: render(l.Header)}
		}
		if l.Footer != nil {
			msg.Interactive.Footer = &whatsapp.InteractiveText{Text: render(l.Footer)}
		}
		return msg, ""
	case m.CTA != nil:
		return buildCTAURL(m.CTA, to, render), ""
	case m.Form != nil:
		return buildForm(m.Form, to, render), ""
	case m.LocationRequest != nil:
		return whatsapp.NewLocationRequest(to, render(m.LocationRequest.Body)), ""
	case len(m.Buttons) > 0:
		var bs []whatsapp.ButtonReply
		for _, bt := range m.Buttons {
			bs = append(bs, whatsapp.ButtonReply{ID: bt.ID, Title: render(bt.Title)})
		}
		return whatsapp.NewButtons(to, render(m.Text), bs...), ""
	}
	body := render(m.Text)
	msg := whatsapp.NewText(to, body)
	msg.Text.PreviewURL = strings.Contains(body, "https://") || strings.Contains(body, "http://")
	return msg, ""
}

// buildTemplate renders a template send: header media or text parameter, body
// parameters (positional or named), and quick-reply payloads equal to the button
// titles, so a tap reads the same in `reply.payload` and `reply.button`.
func buildTemplate(t *dsl.TemplateRef, f *dsl.Flow, to string, render func(*dsl.Text) string) (*whatsapp.Message, string) {
	lang := t.Language
	if lang == "" {
		lang = f.Language
	}
	tpl := t.Resolved
	if lang == "" && tpl != nil {
		lang = tpl.Language
	}
	var comps []whatsapp.Component
	if t.Header != nil {
		value := render(t.Header)
		p := whatsapp.Parameter{Type: "text", Text: value}
		if tpl != nil && tpl.Named() && len(tpl.HeaderParams) > 0 {
			// A named template names every text parameter, the header's too.
			p.ParameterName = tpl.HeaderParams[0]
		}
		if tpl != nil && tpl.MediaHeader() {
			media := &whatsapp.Media{Link: value}
			switch tpl.HeaderFormat {
			case "IMAGE":
				p = whatsapp.Parameter{Type: "image", Image: media}
			case "VIDEO":
				p = whatsapp.Parameter{Type: "video", Video: media}
			case "DOCUMENT":
				p = whatsapp.Parameter{Type: "document", Document: media}
			}
		}
		comps = append(comps, whatsapp.Component{Type: "header", Parameters: []whatsapp.Parameter{p}})
	}
	switch {
	case len(t.Named) > 0:
		var ps []whatsapp.NamedBodyParam
		for _, np := range t.Named {
			ps = append(ps, whatsapp.NamedBodyParam{Name: np.Name, Value: render(np.Value)})
		}
		comps = append(comps, whatsapp.NamedBodyParams(ps...))
	case len(t.Params) > 0:
		var vs []string
		for _, p := range t.Params {
			vs = append(vs, render(p))
		}
		comps = append(comps, whatsapp.BodyParams(vs...))
	}
	category := "MARKETING" // unknown category: treat as the strictest
	if tpl != nil {
		category = tpl.Category
		for i, bt := range tpl.Buttons {
			if bt.Type == "QUICK_REPLY" {
				comps = append(comps, whatsapp.QuickReplyPayload(i, bt.Text))
			}
		}
	}
	return whatsapp.NewTemplate(to, t.Name, lang, comps...), category
}
