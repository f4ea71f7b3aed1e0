package coppersim

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/jsonenc"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// Custom field definitions are per-server state, so a test editing one server's definitions
// never affects another's. Records hold no custom field state: their values are generated
// from the definitions in effect when they are served.

// CustomField is the shared description of a definition a test adds (simfault).
type CustomField = simfault.CustomField

var _ simfault.CustomFieldEditor = (*Server)(nil)

// cfType is a data_type, as a small integer so the per-record loop switches on it cheaply.
type cfType uint8

const (
	cfString cfType = iota
	cfText
	cfURL
	cfDropdown
	cfMultiSelect
	cfDate
	cfCheckbox
	cfFloat
	cfPercentage
	cfCurrency
	cfConnect
	numCFTypes
)

var cfTypeNames = [numCFTypes]string{
	cfString: "String", cfText: "Text", cfURL: "URL", cfDropdown: "Dropdown", cfMultiSelect: "MultiSelect",
	cfDate: "Date", cfCheckbox: "Checkbox", cfFloat: "Float", cfPercentage: "Percentage",
	cfCurrency: "Currency", cfConnect: "Connect",
}

func cfTypeOf(name string) (cfType, bool) {
	for t, n := range cfTypeNames {
		if n == name {
			return cfType(t), true
		}
	}
	return 0, false
}

func (t cfType) hasOptions() bool { return t == cfDropdown || t == cfMultiSelect }

// unfittable: the types Config.UnfitCustomValues spoils (typed scalars a replica converts).
func (t cfType) unfittable() bool {
	switch t {
	case cfFloat, cfPercentage, cfCurrency, cfDate, cfCheckbox, cfDropdown:
		return true
	}
	return false
}

// customKinds are the available_on kinds Copper accepts.
var customKinds = []string{"person", "company", "lead", "opportunity", "project", "task"}

// unfitOptionID is the Dropdown value UnfitCustomValues writes: no definition lists it
// (option ids are never allocated there).
const unfitOptionID = 999999

// cfDef is one definition and how records carry it.
type cfDef struct {
	customFieldDef // as served by /custom_field_definitions
	typ            cfType
	// since: only record versions modified at or after it carry values (0 for the defaults).
	since int64
	// shared: a default definition, whose values come from the record's one stCustom stream
	// in definition order (as they always have, so default data never changes). Added
	// definitions and Connect values draw from their own streams instead.
	shared  bool
	deleted bool
}

// customFields is a server's definitions. Guarded by Server.mu.
type customFields struct {
	defs []*cfDef // every definition ever made, in id order (the served order), deleted included
	// byEntity is what a record of each entity walks: its live definitions, plus deleted shared
	// ones, still drawn (not written) so the values of the fields after them do not move.
	byEntity   [numEntities][]*cfDef
	nextID     int64
	nextOption int64
}

// newCustomFields copies the default definitions, deeply: edits must not reach other servers.
func newCustomFields() customFields {
	var c customFields
	for _, d := range defaultCustomFields {
		t, ok := cfTypeOf(d.DataType)
		if !ok {
			panic("coppersim: default custom field with unknown data_type " + d.DataType)
		}
		cp := d
		cp.AvailableOn = slices.Clone(d.AvailableOn)
		cp.Options = slices.Clone(d.Options)
		if d.CanonicalName != nil {
			cp.CanonicalName = strp(*d.CanonicalName)
		}
		c.defs = append(c.defs, &cfDef{customFieldDef: cp, typ: t, shared: true})
		c.nextID = max(c.nextID, d.ID+1)
		for _, o := range d.Options {
			c.nextOption = max(c.nextOption, o.ID+1)
		}
	}
	c.index()
	return c
}

// index rebuilds byEntity after an edit.
func (c *customFields) index() {
	for e := entity(0); e < numEntities; e++ {
		kind := entities[e].kind
		var list []*cfDef
		for _, d := range c.defs {
			if (!d.deleted || d.shared) && slices.Contains(d.AvailableOn, kind) {
				list = append(list, d)
			}
		}
		c.byEntity[e] = list
	}
}

// find returns the live definition with the decimal id.
func (c *customFields) find(id string) (*cfDef, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("custom field id %q is not a decimal id", id)
	}
	for _, d := range c.defs {
		if d.ID == n && !d.deleted {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no custom field definition %s", id)
}

// listJSON renders /custom_field_definitions: the live definitions in id order.
func (c *customFields) listJSON() ([]byte, error) {
	rows := make([]*customFieldDef, 0, len(c.defs))
	for _, d := range c.defs {
		if !d.deleted {
			rows = append(rows, &d.customFieldDef)
		}
	}
	return json.Marshal(rows)
}

func (c *customFields) live() int {
	n := 0
	for _, d := range c.defs {
		if !d.deleted {
			n++
		}
	}
	return n
}

// canonicalName derives a Field Key from the name ("Deal Region" → "deal_region"); null when
// the name has no ASCII letter or digit, suffixed with the id when another live field has it.
func (c *customFields) canonicalName(name string, id int64) *string {
	var b []byte
	for i := 0; i < len(name); i++ {
		ch := name[i]
		switch {
		case ch >= 'A' && ch <= 'Z':
			b = append(b, ch+'a'-'A')
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
			b = append(b, ch)
		case len(b) > 0 && b[len(b)-1] != '_':
			b = append(b, '_')
		}
	}
	for len(b) > 0 && b[len(b)-1] == '_' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil
	}
	key := string(b)
	for _, d := range c.defs {
		if !d.deleted && d.CanonicalName != nil && *d.CanonicalName == key {
			key += "_" + strconv.FormatInt(id, 10)
			break
		}
	}
	return &key
}

// AddCustomField creates a definition (simfault.CustomFieldEditor): the next id above every
// definition made so far, data_type f.Type, available_on f.On, options from f.Choices (new
// ids, ranked in order). Every record of those kinds lists it from now on; only versions
// whose date_modified is at or after `at` carry values (older ones null, MultiSelect []).
// f.Type must be one of Copper's data types; Choices are required (distinct, non-empty) for
// Dropdown and MultiSelect and refused otherwise; f.Multi is refused (Copper spells it
// MultiSelect).
func (s *Server) AddCustomField(f CustomField, at time.Time) (string, error) {
	t, ok := cfTypeOf(f.Type)
	switch {
	case !ok:
		return "", fmt.Errorf("coppersim: AddCustomField: unknown data_type %q", f.Type)
	case f.Name == "":
		return "", errors.New("coppersim: AddCustomField: empty name")
	case f.Multi:
		return "", errors.New("coppersim: AddCustomField: Multi is Close's; Copper's multi-choice type is MultiSelect")
	case len(f.On) == 0:
		return "", errors.New("coppersim: AddCustomField: no available_on kind")
	case t.hasOptions() && len(f.Choices) == 0:
		return "", fmt.Errorf("coppersim: AddCustomField: a %s needs choices", f.Type)
	case !t.hasOptions() && len(f.Choices) > 0:
		return "", fmt.Errorf("coppersim: AddCustomField: a %s has no choices", f.Type)
	}
	for i, k := range f.On {
		if !slices.Contains(customKinds, k) {
			return "", fmt.Errorf("coppersim: AddCustomField: unknown available_on kind %q", k)
		}
		if slices.Contains(f.On[:i], k) {
			return "", fmt.Errorf("coppersim: AddCustomField: available_on kind %q twice", k)
		}
	}
	for i, ch := range f.Choices {
		if ch == "" || slices.Contains(f.Choices[:i], ch) {
			return "", fmt.Errorf("coppersim: AddCustomField: choice %q empty or repeated", ch)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.cf
	d := &cfDef{typ: t, since: at.Unix()}
	d.ID = c.nextID
	c.nextID++
	d.Name = f.Name
	d.CanonicalName = c.canonicalName(f.Name, d.ID)
	d.DataType = f.Type
	d.AvailableOn = slices.Clone(f.On)
	d.IsFilterable = t != cfText && t != cfConnect
	if t == cfCurrency {
		d.Currency = "USD"
	}
	for i, ch := range f.Choices {
		if c.nextOption == unfitOptionID {
			c.nextOption++
		}
		d.Options = append(d.Options, cfOption{ID: c.nextOption, Name: ch, Rank: i})
		c.nextOption++
	}
	c.defs = append(c.defs, d)
	c.index()
	return strconv.FormatInt(d.ID, 10), nil
}

// RenameCustomField changes a definition's name; canonical_name and records stay as they are
// (records carry definition ids only). `at` is unused: Copper keeps no definition times.
func (s *Server) RenameCustomField(id, name string, at time.Time) error {
	_ = at
	if name == "" {
		return errors.New("coppersim: RenameCustomField: empty name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.cf.find(id)
	if err != nil {
		return fmt.Errorf("coppersim: RenameCustomField: %w", err)
	}
	d.Name = name
	return nil
}

// RenameCustomFieldOption renames the option labelled `from` of a Dropdown or MultiSelect
// definition; records keep its id. A label another option of the field has is refused (labels
// would no longer name one option). `at` is unused.
func (s *Server) RenameCustomFieldOption(id, from, to string, at time.Time) error {
	_ = at
	if to == "" {
		return errors.New("coppersim: RenameCustomFieldOption: empty label")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.cf.find(id)
	if err != nil {
		return fmt.Errorf("coppersim: RenameCustomFieldOption: %w", err)
	}
	i := slices.IndexFunc(d.Options, func(o cfOption) bool { return o.Name == from })
	if i < 0 {
		return fmt.Errorf("coppersim: RenameCustomFieldOption: %s (%s) has no option %q", id, d.DataType, from)
	}
	if j := slices.IndexFunc(d.Options, func(o cfOption) bool { return o.Name == to }); j >= 0 && j != i {
		return fmt.Errorf("coppersim: RenameCustomFieldOption: %s already has an option %q", id, to)
	}
	d.Options[i].Name = to
	return nil
}

// DeleteCustomField removes a definition: it leaves /custom_field_definitions and every
// record's custom_fields; no record's date_modified moves and no other field's values change.
// Its id is never reused. `at` is unused.
func (s *Server) DeleteCustomField(id string, at time.Time) error {
	_ = at
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.cf.find(id)
	if err != nil {
		return fmt.Errorf("coppersim: DeleteCustomField: %w", err)
	}
	d.deleted = true
	s.cf.index()
	return nil
}

// customRng is a definition's own stream for a record version, apart from the shared one.
func (s *Server) customRng(e entity, slot int32, version uint32, salt uint64) rng {
	r := s.rngFor(e, slot, stCustom, version)
	return rng{simfault.NewRand(simfault.Mix64(r.Next() ^ salt))}
}

// unfitSalt separates the UnfitCustomValues draw from a definition's value stream.
const unfitSalt = 0x0bad0bad << 32

// appendCustomFields lists every definition available on the entity, typed by data_type, null
// (MultiSelect: []) when unset. Callers hold the read lock.
func (s *Server) appendCustomFields(b []byte, e entity, slot int32, rc *rec) []byte {
	r := s.rngFor(e, slot, stCustom, rc.version)
	b = append(b, `"custom_fields":[`...)
	n := 0
	for _, d := range s.cf.byEntity[e] {
		mark := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"custom_field_definition_id":`...)
		b = jsonenc.AppendInt(b, d.ID)
		b = append(b, `,"value":`...)
		b = s.appendCustomValue(b, d, e, slot, rc, &r)
		b = append(b, '}')
		if d.deleted { // drawn above so the later fields keep their values; not listed
			b = b[:mark]
			continue
		}
		n++
	}
	return append(b, ']')
}

func appendUnset(b []byte, t cfType) []byte {
	if t == cfMultiSelect {
		return append(b, "[]"...)
	}
	return append(b, "null"...)
}

// appendCustomValue writes one value. shared is the record's stCustom stream, which the
// default definitions draw from in order.
func (s *Server) appendCustomValue(b []byte, d *cfDef, e entity, slot int32, rc *rec, shared *rng) []byte {
	if rc.modified < d.since {
		return appendUnset(b, d.typ)
	}
	if d.typ == cfConnect { // never drew from the shared stream: its links live in /related_links
		if !s.cfg.ConnectValues {
			return append(b, "null"...)
		}
		own := s.customRng(e, slot, rc.version, uint64(d.ID))
		return s.appendConnect(b, &own)
	}
	r := shared
	if !d.shared {
		own := s.customRng(e, slot, rc.version, uint64(d.ID))
		r = &own
	}
	if r.Chance(0.45) {
		return appendUnset(b, d.typ)
	}
	start := len(b)
	switch d.typ {
	case cfString:
		b = jsonenc.AppendString(b, pick(r, titles)+" @ "+pick(r, companyHeads).text)
	case cfText:
		b = jsonenc.AppendString(b, pick(r, detailsPool))
	case cfURL:
		b = jsonenc.AppendString(b, "https://portal.example/"+entities[e].kind+"/"+itoa(slot))
	case cfDropdown:
		b = jsonenc.AppendInt(b, pick(r, d.Options).ID)
	case cfMultiSelect:
		b = append(b, '[')
		n := 1 + r.intn(len(d.Options))
		first := r.intn(len(d.Options))
		for j := 0; j < n; j++ {
			if j > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendInt(b, d.Options[(first+j)%len(d.Options)].ID)
		}
		b = append(b, ']')
	case cfDate: // midnight UTC, around the record's creation
		ts := rc.created + r.int63n(365*day)
		ts -= ts % day
		if s.cfg.CustomDatesAsText {
			b = appendCloseDate(b, ts) // same day, "M/D/YYYY"
		} else {
			b = jsonenc.AppendInt(b, ts)
		}
	case cfCheckbox:
		b = jsonenc.AppendBool(b, r.Chance(0.5))
	case cfFloat:
		b = jsonenc.AppendFloat(b, float64(r.intn(4000))/4)
	case cfPercentage:
		b = jsonenc.AppendInt(b, int64(r.intn(101)))
	case cfCurrency:
		b = jsonenc.AppendInt(b, int64(1000*(1+r.intn(500))))
	}
	if s.cfg.UnfitCustomValues > 0 && d.typ.unfittable() {
		u := s.customRng(e, slot, rc.version, uint64(d.ID)^unfitSalt)
		if u.Chance(s.cfg.UnfitCustomValues) {
			b = appendUnfit(b[:start], d.typ, u.intn(2))
		}
	}
	return b
}

// appendUnfit writes a value of the wrong type, as a careless import or an API change could
// leave: text for numbers and dates, text for a Checkbox, an option id no definition lists.
func appendUnfit(b []byte, t cfType, variant int) []byte {
	switch t {
	case cfDate:
		return jsonenc.AppendString(b, [2]string{"31/31/2024", "soon"}[variant])
	case cfCheckbox:
		return jsonenc.AppendString(b, "yes")
	case cfDropdown:
		return jsonenc.AppendInt(b, unfitOptionID)
	default: // Float, Percentage, Currency
		return jsonenc.AppendString(b, [2]string{"n/a", "TBD"}[variant])
	}
}

// appendConnect writes a Connect value (Config.ConnectValues): on ~55% of record versions an
// array of one or two distinct company ids (people when there are no companies), else null.
func (s *Server) appendConnect(b []byte, r *rng) []byte {
	target := entCompanies
	if s.tabs[target].base == 0 {
		target = entPeople
	}
	if r.Chance(0.45) {
		return append(b, "null"...)
	}
	a := s.refSlot(target, r)
	if a < 0 {
		return append(b, "null"...)
	}
	b = append(b, '[')
	b = jsonenc.AppendInt(b, s.idOf(target, a))
	if r.Chance(0.3) {
		if c := s.refSlot(target, r); c != a {
			b = append(b, ',')
			b = jsonenc.AppendInt(b, s.idOf(target, c))
		}
	}
	return append(b, ']')
}
