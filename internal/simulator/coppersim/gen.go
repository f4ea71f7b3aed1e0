package coppersim

// Deterministic value generation. Every field of every record is a pure
// function of (Config.Seed, entity, slot, field, version), so the dataset
// needs no per-record storage beyond the compact metadata in rec and is
// identical across processes.

import "github.com/crmsync/crmsync/internal/simulator/simfault"

// rng is the shared splitmix64 stream with the bounded draws coppersim's data has always
// been generated with (they differ from closesim's, hence not simfault.Rand's).
type rng struct{ simfault.Rand }

// intn returns a value in [0, n); n must be > 0 and < 2^32.
func (r *rng) intn(n int) int {
	return int(((r.Next() >> 32) * uint64(n)) >> 32)
}

// int63n returns a value in [0, n) for any positive int64 n.
func (r *rng) int63n(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return int64(r.Next() % uint64(n))
}

func pick[T any](r *rng, list []T) T { return list[r.intn(len(list))] }

// Field streams. A stream is a field group; versioned streams mix in the
// record version so an update changes them, stable ones never change.
const (
	stBuild    = 1 // timestamps at build time
	stStable   = 2 // names, emails, references: never change
	stVersion  = 3 // details, status, counts: change on update
	stTags     = 4 // tag mask (separate so tag counting is cheap)
	stCustom   = 5 // custom field values
	stMutation = 6 // choice of records to mutate
	stStable2  = 7 // second stable stream where the first is shared (company basics)
)

func (s *Server) rngFor(e entity, slot int32, stream uint64, version uint32) rng {
	h := simfault.Mix64(uint64(s.cfg.Seed) ^ 0x5eed5eed5eed5eed)
	h = simfault.Mix64(h ^ uint64(e)<<56 ^ uint64(uint32(slot)))
	h = simfault.Mix64(h ^ stream<<40 ^ uint64(version))
	return rng{simfault.NewRand(h)}
}

// Text pools. Deliberately include non-ASCII letters, CJK, emoji, quotes,
// backslashes and newlines so clients exercise their JSON and UTF-8 paths.

type slugged struct{ text, slug string }

var firstNames = []slugged{
	{"Priya", "priya"}, {"Tom", "tom"}, {"Lena", "lena"}, {"Jörg", "joerg"}, {"Zoë", "zoe"},
	{"José", "jose"}, {"Siobhán", "siobhan"}, {"Émile", "emile"}, {"Aiko", "aiko"}, {"Wei", "wei"},
	{"María", "maria"}, {"Ngozi", "ngozi"}, {"Dmitri", "dmitri"}, {"Fatima", "fatima"}, {"Øyvind", "oyvind"},
	{"Chloé", "chloe"}, {"Kenji", "kenji"}, {"Amara", "amara"}, {"Liam", "liam"}, {"Grace", "grace"},
	{"Marco", "marco"}, {"Dana", "dana"}, {"Sven", "sven"}, {"Olu", "olu"}, {"太郎", "taro"},
	{"Noa", "noa"}, {"Björn", "bjorn"}, {"İlkay", "ilkay"}, {"Anaïs", "anais"}, {"Kwame", "kwame"},
}

var lastNames = []slugged{
	{"Raman", "raman"}, {"Okafor", "okafor"}, {"Vogt", "vogt"}, {"Müller", "mueller"}, {"García", "garcia"},
	{"Nguyễn", "nguyen"}, {"O'Brien", "obrien"}, {"Ødegaard", "odegaard"}, {"Kowalski", "kowalski"}, {"Dubois", "dubois"},
	{"Rossi", "rossi"}, {"Chen", "chen"}, {"da Silva", "dasilva"}, {"Lin", "lin"}, {"Whitfield", "whitfield"},
	{"Alvarez", "alvarez"}, {"Петров", "petrov"}, {"Σταύρου", "stavrou"}, {"山田", "yamada"}, {"Smith-Jones", "smithjones"},
	{"Andersson", "andersson"}, {"Mbeki", "mbeki"}, {"Schäfer", "schaefer"}, {"Kim", "kim"}, {"Novák", "novak"},
}

var prefixes = []string{"Dr.", "Mr.", "Ms.", "Mx.", "Prof."}
var suffixes = []string{"Jr.", "III", "PhD"}
var middleNames = []string{"A.", "B.", "Marie", "J.", "Søren"}

var companyHeads = []slugged{
	{"Blue Heron", "blueheron"}, {"Kestrel", "kestrel"}, {"Fjordline", "fjordline"}, {"Northwind", "northwind"},
	{"Café Müller", "cafemueller"}, {"Sakura", "sakura"}, {"Ωmega", "omega"}, {"Redwood", "redwood"},
	{"Aurora", "aurora"}, {"Tidewater", "tidewater"}, {"Zephyr", "zephyr"}, {"Brightpath", "brightpath"},
	{"Łódź Steel", "lodzsteel"}, {"Nordlys", "nordlys"}, {"Cobalt", "cobalt"}, {"Granite", "granite"},
}

var companyTails = []slugged{
	{"Logistics", "logistics"}, {"Dental Group", "dental"}, {"Analytics", "analytics"}, {"Outfitters", "outfitters"},
	{"& Söhne", "soehne"}, {"Robotics", "robotics"}, {"Labs 🚀", "labs"}, {"Foods", "foods"},
	{"Ventures", "ventures"}, {"Health", "health"}, {"Studios", "studios"}, {"Systems", "systems"},
}

var companySuffixes = []string{"", "", "", " GmbH", " Inc.", " LLC", " S.A.", " 株式会社", " Ltd"}

var titles = []string{
	"VP Operations", "Practice Owner", "Head of Data", "CEO", "Einkaufsleiter", "Directora de Ventas",
	"購買部長", "Office Manager", "CTO 🤖", "Owner", "Procurement Lead", "Chargée d'affaires",
}

var detailsPool = []string{
	"Prefers calls after 2pm PT.",
	"Met at the Hamburg expo — follow up 🚀",
	"日本語のメモ: 来週電話する",
	"Said \"call me back\" \\ maybe next week.\nSecond line\twith a tab.",
	"Regional 3PL, 40 warehouses on the west coast.",
	"Budget approved for Q3; wants pricing by Friday.",
	"Ünïcödé check: ñ, ß, ø, ç, 😀",
	"",
}

var noteDetails = []string{
	"Walked through the phase-1 site list; wants pricing by Friday.",
	"Left voicemail ☎️",
	"Demo went well — 5 seats to start.",
	"Kunde möchte ein Angebot bis Freitag.",
	"打ち合わせ完了。見積もりを送付予定。",
	"Sent follow-up email with \"Q4 deck\".",
	"",
}

type place struct{ street, city, state, postal, country string }

// Empty strings in place are served as null.
var places = []place{
	{"1200 Harbor Blvd, Suite 400", "Oakland", "CA", "94607", "US"},
	{"", "Austin", "TX", "78701", ""},
	{"Speicherstraße 12", "Hamburg", "", "20457", "DE"},
	{"88 Market St", "Portland", "OR", "97204", "US"},
	{"1-1 Marunouchi", "東京", "東京都", "100-0005", "JP"},
	{"Av. Paulista, 1578", "São Paulo", "SP", "01310-100", "BR"},
	{"5333 Av. Casgrain", "Montréal", "QC", "H2T 1X3", "CA"},
	{"1 Poultry", "London", "", "EC2R 8EJ", "GB"},
	{"Bahnhofstrasse 1", "Zürich", "", "8001", "CH"},
	{"233 S Wacker Dr", "Chicago", "IL", "60606", "US"},
	{"", "", "", "", "US"},
	{"350 5th Ave", "New York", "NY", "10118", "US"},
}

// phonePrefixes are completed with four digits: numbers are stored as typed, never normalised.
var phonePrefixes = []string{"(541) 555-", "510555", "+49 40 5550 ", "+1 312 555 ", "503-555-"}

var emailCats = []string{"work", "personal", "other"}
var phoneCats = []string{"mobile", "work", "home", "other"}
var socialCats = []struct{ cat, prefix string }{
	{"linkedin", "https://www.linkedin.com/in/"}, {"twitter", "https://twitter.com/"},
	{"facebook", "https://www.facebook.com/"}, {"gravatar", "https://gravatar.com/"},
}

var opportunityNames = []string{
	"WMS rollout (40 sites)", "starter plan", "renewal 2026", "data-sharing pilot", "expansion",
	"Ausbau Phase 2", "導入プロジェクト", "add-on seats 🎯",
}

var projectNames = []string{"onboarding", "Q3 data cleanup", "migration", "Einführung", "go-live 🚀", "health check"}

var taskNames = []string{
	"Send revised SOW", "Intro call", "Renew support contract", "Angebot nachfassen",
	"見積もり送付", "Book onsite visit 🚗", "Check \"legal\" redlines",
}

var priorities = []string{"None", "Low", "Medium", "High"}
