package closesim

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// Custom fields. A definition is a record of the custom_fields stream, generated from its
// generator index like every record (cfDefFor) unless a test edited it: renamed, options
// renamed or added with AddCustomField (Server.cfEdited). Records carry values of the
// definitions in the value tables (cfByGroup, cfByAct), built once by New and changed only by
// the editor methods, so serving a record never looks a definition up.

// Objects whose records carry custom field values, as bits of cfDef.assoc.
const (
	oLead = 1 << iota
	oContact
	oOpportunity
	oActivity
)

type cfObject struct {
	name, assocType string
	bit, group      uint8
}

// cfObjects names the objects as simfault.CustomField.On and the associations of shared
// fields spell them ("activity" is associated as its custom activity type).
var cfObjects = []cfObject{
	{"lead", "lead", oLead, gLead}, {"contact", "contact", oContact, gContact},
	{"opportunity", "opportunity", oOpportunity, gOpportunity}, {"activity", "custom_activity_type", oActivity, gActivity},
}

// cfTypes are the field types AddCustomField accepts (the reference's, without
// custom_object, which would need custom objects).
var cfTypes = []string{"text", "textarea", "number", "date", "datetime", "choices", "user", "contact", "hidden"}

// numCustomActTypes is the number of custom activity types: an activity field belongs to type
// gen%3, a custom activity to one drawn from its generator index.
const numCustomActTypes = 3

// Value table caps: how many generated definitions of each group carry values.
var cfCaps = [...]int{gLead: 12, gContact: 5, gOpportunity: 4, gActivity: 6, gShared: 4}

// unfitValues are what a careless import leaves in number, date and datetime fields
// (Config.UnfitCustomValues): none parses as any of these types.
var unfitValues = []string{"n/a", "TBD", "sometime in Q3", "31/31/2024"}

type cfDef struct {
	gen     uint32
	group   uint8
	assoc   uint8 // objects whose records carry its values (shared fields: their associations)
	multi   bool
	added   bool  // created by AddCustomField
	since   int64 // values only on record versions at or after it (unix micros; 0 = always)
	id      string
	flatKey string // "custom.cf_..."
	name    string
	typ     string
	choices []string
}

// groupAssoc is where the values of a generated definition of group go.
func groupAssoc(group uint8) uint8 {
	switch group {
	case gLead:
		return oLead
	case gContact:
		return oContact
	case gOpportunity:
		return oOpportunity
	case gActivity:
		return oActivity
	case gShared:
		return oLead | oContact
	}
	return 0 // custom object fields: no custom objects are served
}

// cfDefFor is the generated definition of gen. Generator index 0 is always the lead field
// "Industry" (kindFor gives gen 0 the lead group, cfTemplates starts with it), so every
// account with at least one custom field has it, as the demo queries expect.
func (s *Server) cfDefFor(gen uint32, group uint8) cfDef {
	d := cfDef{gen: gen, group: group, assoc: groupAssoc(group), id: makeID("cf_", s.idkey(sCustomFields, gen), 43)}
	d.flatKey = "custom." + d.id
	// Names must be unique: the deprecated "custom" object is keyed by name.
	t := cfTemplates[int(gen)%len(cfTemplates)]
	d.name = t.name
	if int(gen) >= len(cfTemplates) {
		d.name += " " + strconv.Itoa(int(gen)/len(cfTemplates)+1)
	}
	d.typ, d.multi = t.typ, t.multi
	if t.choices >= 0 {
		d.choices = choiceSets[t.choices]
	}
	return d
}

// cfDefOf is the definition of gen as it stands now. Caller holds s.mu.
func (s *Server) cfDefOf(gen uint32, group uint8) cfDef {
	if d, ok := s.cfEdited[gen]; ok {
		return d
	}
	return s.cfDefFor(gen, group)
}

// buildCFTables fills the value tables with the first generated definitions of each group
// (lead, contact and opportunity fields first, then the shared ones on both their objects).
func (s *Server) buildCFTables() {
	st := s.st[sCustomFields]
	var n [len(cfCaps)]int
	var shared []cfDef
	for g := range st.recs {
		k := st.recs[g].kind
		if k == gCustomObject || n[k] >= cfCaps[k] {
			continue
		}
		n[k]++
		if d := s.cfDefFor(uint32(g), k); k == gShared {
			shared = append(shared, d)
		} else {
			s.attachCF(d)
		}
	}
	for _, d := range shared {
		s.attachCF(d)
	}
}

// cfTable is the value table of one object (activities: of one custom activity type).
func (s *Server) cfTable(bit uint8, gen uint32) *[]cfDef {
	switch bit {
	case oLead:
		return &s.cfByGroup[gLead]
	case oContact:
		return &s.cfByGroup[gContact]
	case oOpportunity:
		return &s.cfByGroup[gOpportunity]
	}
	return &s.cfByAct[gen%numCustomActTypes]
}

// attachCF appends d to the value table of every object it applies to.
func (s *Server) attachCF(d cfDef) {
	for _, o := range cfObjects {
		if d.assoc&o.bit != 0 {
			t := s.cfTable(o.bit, d.gen)
			*t = append(*t, d)
		}
	}
}

// cfTables lists every value table.
func (s *Server) cfTables() []*[]cfDef {
	out := []*[]cfDef{&s.cfByGroup[gLead], &s.cfByGroup[gContact], &s.cfByGroup[gOpportunity]}
	for t := range s.cfByAct {
		out = append(out, &s.cfByAct[t])
	}
	return out
}

// ---- values ----

// Where writeCustom writes values.
const (
	cfNested = iota // "custom.cf_<id>" keys of an embedded object
	cfTop           // "custom.cf_<id>" top-level record fields (honouring _fields)
	cfByName        // the deprecated "custom" object's entries, keyed by field name
)

// writeCustom writes the values of defs on one record version: seedX names the record, l is
// its lead (-1: none), created places date values, vt is the version's time (added fields
// have values only from their creation on). A value depends only on (seed, seedX, the
// definition's gen), so adding, deleting or renaming a definition leaves the others' values
// alone; 40% of the records have no value for a field.
func (s *Server) writeCustom(e *enc, defs []cfDef, seedX uint64, l, created, vt int64, how int) {
	base := s.h(hCustom, seedX)
	for k := range defs {
		d := &defs[k]
		if vt < d.since {
			continue
		}
		x := simfault.Mix64(base ^ (uint64(d.gen)+1)*0xD1B54A32D192ED03)
		if float64(x>>11)/(1<<53) < 0.4 {
			continue
		}
		switch how {
		case cfByName:
			e.keyQ(d.name)
		case cfTop:
			e.f(d.flatKey)
		default:
			e.key(d.flatKey)
		}
		s.writeCFValue(e, d, x, l, created)
	}
}

// writeCFValue writes one value of d drawn from x; multi-valued fields hold arrays.
func (s *Server) writeCFValue(e *enc, d *cfDef, x uint64, l, created int64) {
	r := simfault.NewRand(x)
	if f := s.cfg.UnfitCustomValues; f > 0 && (d.typ == "number" || d.typ == "date" || d.typ == "datetime") {
		if u := simfault.Mix64(x ^ 0xBADF17); float64(u>>11)/(1<<53) < f {
			e.str(unfitValues[(u>>3)%uint64(len(unfitValues))])
			return
		}
	}
	if !d.multi {
		s.writeCFScalar(e, d, &r, l, created)
		return
	}
	e.arr()
	if d.typ == "choices" {
		n, base := 1+r.Intn(2), r.Intn(len(d.choices))
		for k := 0; k < min(n, len(d.choices)); k++ {
			e.str(d.choices[(base+k)%len(d.choices)])
		}
	} else {
		for k, n := 0, 1+r.Intn(2); k < n; k++ {
			s.writeCFScalar(e, d, &r, l, created)
		}
	}
	e.endArr()
}

func (s *Server) writeCFScalar(e *enc, d *cfDef, r *rng, l, created int64) {
	switch d.typ {
	case "text":
		hd, _ := s.leadNameParts(int64(r.Next() % 1000))
		e.str(hd.n)
	case "textarea":
		e.str(pick(r, notes))
	case "number":
		if r.Chance(0.2) {
			e.raw(strconv.FormatFloat(float64(r.Intn(1000))/4, 'f', -1, 64))
		} else {
			e.int(int64(r.Intn(5000)))
		}
	case "choices":
		e.str(pick(r, d.choices))
	case "date":
		e.date(created - r.Int63n(40*365)*usPerDay)
	case "datetime":
		e.ts(created - r.Int63n(365*usPerDay/1000)*1000)
	case "user":
		s.userIDOrNull(e, s.userOf(hCustom, r.Next()))
	case "contact":
		// A contact of the record's own lead, as the UI offers; null when it has none left.
		n := 0
		if l >= 0 {
			n = s.nContacts(l)
		}
		j := r.Intn(n)
		if n == 0 || s.subGone(sContacts, subGen(l, j)) {
			e.null()
		} else {
			e.id("cont_", s.contactKey(l, j), 43)
		}
	case "hidden":
		e.str("ext-" + strconv.FormatUint(r.Next()%1_000_000, 10))
	default:
		e.null()
	}
}

// ---- editing (simfault.CustomFieldEditor) ----

var _ simfault.CustomFieldEditor = (*Server)(nil)

// Changed-fields variants of "updated" events of custom fields (evRef.changed).
const (
	chDefault = iota
	chName
	chChoices
)

var cfChangedFields = [...][]string{chName: {"date_updated", "name", "updated_by"}, chChoices: {"choices", "date_updated", "updated_by"}}

// AddCustomField creates a definition at at and returns its id. f.On names the objects whose
// records carry its values: one of "lead", "contact", "opportunity", "activity" makes a field
// of that endpoint; several make a shared field (listed under /custom_field/shared/ with an
// association for each; "activity" is associated as a custom activity type). An activity
// field belongs to the custom activity type its custom_activity_type_id names. Records carry
// values only in versions whose date_updated (activities: date_created) is at or after at; no
// record changes. Emits a "created" event. Types: text, textarea, number, date, datetime,
// choices (f.Choices required, f.Multi for several values), user, contact (a contact of the
// record's lead), hidden. A name already used on one of the objects is an error, as are an
// empty name, unknown types or objects, and choices on a non-choice field.
func (s *Server) AddCustomField(f simfault.CustomField, at time.Time) (string, error) {
	if f.Name == "" {
		return "", errors.New("closesim: custom field without a name")
	}
	if !slices.Contains(cfTypes, f.Type) {
		return "", fmt.Errorf("closesim: custom field %q: unknown type %q", f.Name, f.Type)
	}
	if err := checkChoices(f); err != nil {
		return "", err
	}
	var assoc uint8
	group := uint8(gShared)
	for _, on := range f.On {
		i := slices.IndexFunc(cfObjects, func(o cfObject) bool { return o.name == on })
		if i < 0 {
			return "", fmt.Errorf("closesim: custom field %q: unknown object type %q", f.Name, on)
		}
		assoc |= cfObjects[i].bit
	}
	switch bits.OnesCount8(assoc) {
	case 0:
		return "", fmt.Errorf("closesim: custom field %q applies to no object", f.Name)
	case 1:
		group = cfObjects[bits.TrailingZeros8(assoc)].group
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkName(f.Name, assoc, -1); err != nil {
		return "", err
	}
	st := s.st[sCustomFields]
	gen := uint32(len(st.recs))
	t := at.UnixMicro()
	st.recs = append(st.recs, rec{created: t, updated: t, kind: group, flags: flagTouched})
	st.live++
	d := cfDef{gen: gen, group: group, assoc: assoc, multi: f.Multi, added: true, since: t,
		id: makeID("cf_", s.idkey(sCustomFields, gen), 43), name: f.Name, typ: f.Type}
	d.flatKey = "custom." + d.id
	if f.Type == "choices" {
		d.choices = slices.Clone(f.Choices)
	}
	if s.cfEdited == nil {
		s.cfEdited = map[uint32]cfDef{}
	}
	s.cfEdited[gen] = d
	s.attachCF(d)
	s.emit(sCustomFields, gen, &st.recs[gen], actCreated, t, t)
	s.reindex(st, []int32{int32(gen)})
	s.flushPendingEvents()
	s.clearCache()
	return d.id, nil
}

func checkChoices(f simfault.CustomField) error {
	if f.Type != "choices" {
		if len(f.Choices) > 0 {
			return fmt.Errorf("closesim: custom field %q: choices on a %s field", f.Name, f.Type)
		}
		return nil
	}
	if len(f.Choices) == 0 {
		return fmt.Errorf("closesim: choice field %q without choices", f.Name)
	}
	for i, c := range f.Choices {
		if c == "" || slices.Contains(f.Choices[:i], c) {
			return fmt.Errorf("closesim: choice field %q: empty or repeated choice %q", f.Name, c)
		}
	}
	return nil
}

// checkName refuses a name another live definition on one of the objects in assoc has (the
// deprecated "custom" object is keyed by name). self is the definition being renamed.
func (s *Server) checkName(name string, assoc uint8, self int32) error {
	st := s.st[sCustomFields]
	for _, i := range st.idx[0].ids {
		if i == self {
			continue
		}
		if d := s.cfDefOf(uint32(i), st.recs[i].kind); d.assoc&assoc != 0 && d.name == name {
			return fmt.Errorf("closesim: custom field name %q already used by %s", name, d.id)
		}
	}
	return nil
}

// liveCF looks up a live definition by id. Caller holds s.mu.
func (s *Server) liveCF(id string) (int32, cfDef, error) {
	i, ok := s.lookupID(sCustomFields, id)
	if !ok {
		return 0, cfDef{}, fmt.Errorf("closesim: no custom field %q", id)
	}
	return i, s.cfDefOf(uint32(i), s.st[sCustomFields].recs[i].kind), nil
}

// RenameCustomField gives a definition a new name (the id stays): its date_updated becomes
// at, with an "updated" event; records show the new name as the key of the leads' deprecated
// "custom" object, and no record's date_updated moves. Renaming to the current name does
// nothing; a name another field on the same objects has is an error.
func (s *Server) RenameCustomField(id, name string, at time.Time) error {
	if name == "" {
		return fmt.Errorf("closesim: rename %s: empty name", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, d, err := s.liveCF(id)
	if err != nil {
		return err
	}
	if d.name == name {
		return nil
	}
	if err := s.checkName(name, d.assoc, i); err != nil {
		return err
	}
	d.name = name
	s.editCF(i, d, at.UnixMicro(), chName)
	return nil
}

// RenameCustomFieldOption renames choice from of a choice field to to: the definition's
// choices change (date_updated = at, "updated" event) and every record, old or new, shows the
// new label, as Close stores labels; no record's date_updated moves. An unknown id, a field
// without choices, an unknown label or a label the field already has is an error.
func (s *Server) RenameCustomFieldOption(id, from, to string, at time.Time) error {
	if to == "" {
		return fmt.Errorf("closesim: rename option of %s: empty label", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, d, err := s.liveCF(id)
	if err != nil {
		return err
	}
	k := slices.Index(d.choices, from)
	if d.typ != "choices" || k < 0 {
		return fmt.Errorf("closesim: custom field %s has no choice %q", id, from)
	}
	if from == to {
		return nil
	}
	if slices.Contains(d.choices, to) {
		return fmt.Errorf("closesim: custom field %s already has a choice %q", id, to)
	}
	d.choices = slices.Clone(d.choices) // generated definitions share the global choice sets
	d.choices[k] = to
	s.editCF(i, d, at.UnixMicro(), chChoices)
	return nil
}

// editCF makes d the definition of record i everywhere, moves its date_updated to at and
// emits the "updated" event.
func (s *Server) editCF(i int32, d cfDef, at int64, changed uint8) {
	if s.cfEdited == nil {
		s.cfEdited = map[uint32]cfDef{}
	}
	s.cfEdited[uint32(i)] = d
	for _, t := range s.cfTables() {
		for k := range *t {
			if (*t)[k].gen == uint32(i) {
				(*t)[k] = d
			}
		}
	}
	st := s.st[sCustomFields]
	r := &st.recs[i]
	prev := r.updated
	r.updated = at
	r.flags |= flagTouched
	s.emit(sCustomFields, uint32(i), r, actUpdated, at, prev)
	s.evRefs[len(s.evRefs)-1].changed = changed
	s.reindex(st, []int32{i}, fID, fCreated, fDate)
	s.flushPendingEvents()
	s.clearCache()
}

// DeleteCustomField removes a definition: it leaves every listing (with a "deleted" event)
// and its values vanish from every record, without any record's date_updated moving.
// (DeleteRecords("custom_fields", …) removes definitions only: records keep their values.)
func (s *Server) DeleteCustomField(id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _, err := s.liveCF(id)
	if err != nil {
		return err
	}
	for _, t := range s.cfTables() {
		*t = slices.DeleteFunc(*t, func(d cfDef) bool { return d.gen == uint32(i) })
	}
	st := s.st[sCustomFields]
	s.deleteRec(sCustomFields, i, at.UnixMicro())
	s.reindex(st, []int32{i})
	s.flushPendingEvents()
	s.clearCache()
	return nil
}

// cfListing is what /custom_field/<group>/ lists with Config.SharedFieldsInTypeLists: the
// group's own fields and the shared fields associated with its object, in id order. Caller
// holds s.mu.
func (s *Server) cfListing(group uint8) []int32 {
	bit := groupAssoc(group)
	st := s.st[sCustomFields]
	var ids []int32
	for _, i := range st.idx[0].ids {
		k := st.recs[i].kind
		if k == group || k == gShared && s.cfDefOf(uint32(i), k).assoc&bit != 0 {
			ids = append(ids, i)
		}
	}
	return ids
}
