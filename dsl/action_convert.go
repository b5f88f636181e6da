package dsl

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConversionEvents are the event names a `convert` step may record: the
// standard events Meta's Conversions API accepts for business messaging
// (action_source "business_messaging"). Other standard events (Lead,
// CompleteRegistration, Subscribe, …) and custom names are refused by Meta for
// that source; docs/CONVERSIONS.md says where the list comes from.
var ConversionEvents = []string{"LeadSubmitted", "Purchase", "AddToCart", "InitiateCheckout", "ViewContent"}

// Convert records a conversion of the run: Event, and for a sale its Value in
// Currency (both or neither; Purchase requires them).
type Convert struct {
	Pos         Pos
	Event       string
	EventPos    Pos
	Value       *Number // nil without a value
	Currency    string  // ISO 4217, "" without a value
	CurrencyPos Pos
}

// Number is a literal number or a numeric expression.
type Number struct {
	Pos     Pos
	Literal float64
	Expr    *Expr // nil for a literal
}

// Eval returns the number; an expression that fails or is not a finite number
// is an error.
func (n *Number) Eval(env *Env) (float64, error) {
	if n.Expr == nil {
		return n.Literal, nil
	}
	v, err := n.Expr.Eval(env)
	if err != nil {
		return 0, err
	}
	f, ok := v.(float64)
	if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, &numberError{v}
	}
	return f, nil
}

type numberError struct{ v any }

func (e *numberError) Error() string { return "not a finite number: " + FormatValue(e.v) }

func (p *parser) parseConvert(n *yaml.Node) *Convert {
	c := &Convert{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode {
		ev, ok := p.str(n, "`convert`")
		if !ok || !p.conversionEvent(ev, p.pos(n)) {
			return nil
		}
		c.Event, c.EventPos = ev, p.pos(n)
		if ev == "Purchase" {
			p.errorf(c.Pos, RuleSchema, "`convert: Purchase` needs a value and a currency: write `convert: {event: Purchase, value: \"${…}\", currency: EUR}`")
			return nil
		}
		return c
	}
	ps, ok := p.mapping(n, "`convert`")
	if !ok {
		return nil
	}
	p.checkKeys(ps, "`convert`", "event", "value", "currency")
	valid := true
	for _, kv := range ps {
		switch kv.key {
		case "event":
			ev, ok := p.str(kv.value, "`convert.event`")
			if !ok || !p.conversionEvent(ev, p.pos(p.resolve(kv.value))) {
				valid = false
				continue
			}
			c.Event, c.EventPos = ev, p.pos(p.resolve(kv.value))
		case "value":
			c.Value = p.number(kv.value, "`convert.value`")
			valid = valid && c.Value != nil
		case "currency":
			cur, ok := p.str(kv.value, "`convert.currency`")
			pos := p.pos(p.resolve(kv.value))
			if !ok {
				valid = false
				continue
			}
			if !isCurrency(cur) {
				p.errorf(pos, RuleSchema, "`convert.currency`: unknown currency `%s`%s (an ISO 4217 code in capitals, like EUR, USD, BRL)",
					cur, didYouMean(strings.ToUpper(cur), currencyCodes))
				valid = false
				continue
			}
			c.Currency, c.CurrencyPos = cur, pos
		}
	}
	if !valid {
		return nil
	}
	switch {
	case c.Event == "":
		p.errorf(c.Pos, RuleSchema, "`convert` needs an `event` (%s)", strings.Join(ConversionEvents, ", "))
		return nil
	case c.Event == "Purchase" && (c.Value == nil || c.Currency == ""):
		p.errorf(c.Pos, RuleSchema, "`convert: {event: Purchase}` needs a `value` and a `currency`: Meta requires both for a purchase")
		return nil
	case c.Value != nil && c.Currency == "":
		p.errorf(c.Pos, RuleSchema, "`convert.value` needs a `currency` (an ISO 4217 code, like EUR)")
		return nil
	case c.Value == nil && c.Currency != "":
		p.errorf(c.CurrencyPos, RuleSchema, "`convert.currency` without a `value` says nothing: add `value`, or remove `currency`")
		return nil
	}
	return c
}

// conversionEvent reports whether ev is a conversion event, else reports it.
func (p *parser) conversionEvent(ev string, pos Pos) bool {
	for _, e := range ConversionEvents {
		if e == ev {
			return true
		}
	}
	p.errorf(pos, RuleSchema, "unknown conversion event `%s`%s (events Meta accepts from business messaging: %s)",
		ev, didYouMean(ev, ConversionEvents), strings.Join(ConversionEvents, ", "))
	return false
}

// number reads a number: a literal ≥ 0, or a lone ${expression} compiled as a
// number.
func (p *parser) number(n *yaml.Node, what string) *Number {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	pos := p.pos(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Tag == "!!bool" {
		p.errorf(pos, RuleSchema, "%s must be a number or a \"${…}\" expression, found %s", what, describeNode(n))
		return nil
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil {
			var v float64
			if n.Decode(&v) != nil {
				p.errorf(pos, RuleSchema, "%s: invalid number %s", what, n.Value)
				return nil
			}
			f = v
		}
		if math.IsInf(f, 0) || math.IsNaN(f) || f < 0 {
			p.errorf(pos, RuleSchema, "%s must be a finite number ≥ 0, found %s", what, n.Value)
			return nil
		}
		return &Number{Pos: pos, Literal: f}
	}
	t := p.text(n, what)
	if t == nil || t.broken {
		return nil
	}
	if len(t.parts) != 1 || t.parts[0].expr == nil {
		p.errorf(pos, RuleSchema, "%s must be a number or one \"${…}\" expression, like \"${event.total}\"", what)
		return nil
	}
	// Compiled again as a number: `${reply.text}` is a type error here.
	e := t.parts[0].expr
	ne, d := compileExpr(e.Src, exprNumber, func(i int) Pos { q := e.Pos; q.Col += i; return q })
	if d != nil {
		d.Message = strings.Replace(d.Message, "expected float64", "expected a number", 1)
		p.addDiags([]Diagnostic{*d})
		return nil
	}
	return &Number{Pos: pos, Expr: ne}
}

func isCurrency(c string) bool {
	i := sort.SearchStrings(currencyCodes, c)
	return i < len(currencyCodes) && currencyCodes[i] == c
}

// currencyCodes are the ISO 4217 codes of currencies in circulation, sorted.
var currencyCodes = strings.Fields(`AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB
BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN
NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS
SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD
XCG XOF XPF YER ZAR ZMW ZWG`)
