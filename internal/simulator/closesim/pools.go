package closesim

// Word pools for generated records. They deliberately include non-ASCII
// text (umlauts, accents, CJK, Cyrillic, Greek, emoji) and characters that
// need JSON escaping (quotes, backslashes, newlines, tabs).

type name2 struct{ n, ascii string }

var firstNames = []name2{
	{"Maya", "maya"}, {"Lukas", "lukas"}, {"Sofía", "sofia"}, {"Jörg", "joerg"}, {"Ana", "ana"},
	{"Dana", "dana"}, {"Kiyomi", "kiyomi"}, {"Zoë", "zoe"}, {"Łukasz", "lukasz"}, {"François", "francois"},
	{"Chloé", "chloe"}, {"Björn", "bjoern"}, {"Mehmet", "mehmet"}, {"Aiko", "aiko"}, {"Nguyễn", "nguyen"},
	{"Ольга", "olga"}, {"Søren", "soren"}, {"Inés", "ines"}, {"Raj", "raj"}, {"Fatima", "fatima"},
	{"Olu", "olu"}, {"Hannah", "hannah"}, {"Émile", "emile"}, {"Yuki", "yuki"}, {"清美", "kiyomi"},
	{"Δημήτρης", "dimitris"}, {"Seán", "sean"}, {"Ayşe", "ayse"}, {"Priya", "priya"}, {"John", "john"},
}

var lastNames = []name2{
	{"Okafor", "okafor"}, {"Brandt", "brandt"}, {"Herrera", "herrera"}, {"Lindqvist", "lindqvist"},
	{"Costa", "costa"}, {"O'Neill", "oneill"}, {"田中", "tanaka"}, {"Müller", "mueller"},
	{"Wiśniewski", "wisniewski"}, {"Dubois", "dubois"}, {"Núñez", "nunez"}, {"Öztürk", "ozturk"},
	{"Sato", "sato"}, {"Tran", "tran"}, {"Иванова", "ivanova"}, {"Kierkegaard", "kierkegaard"},
	{"Patel", "patel"}, {"Haddad", "haddad"}, {"Adeyemi", "adeyemi"}, {"Schröder", "schroeder"},
	{"García", "garcia"}, {"Nakamura", "nakamura"}, {"Smith", "smith"}, {"Johansson", "johansson"},
	{"Παπαδόπουλος", "papadopoulos"}, {"D'Angelo", "dangelo"}, {"van der Berg", "vanderberg"},
}

var companyHeads = []name2{
	{"Harbor & Finch", "harborfinch"}, {"Kiyomi Ceramics", "kiyomi-ceramics"}, {"Old Mill Bakery", "oldmillbakery"},
	{"Nordlicht", "nordlicht"}, {"Blue Fjord", "bluefjord"}, {"Café Lumière", "cafe-lumiere"},
	{"東京ロボティクス", "tokyo-robotics"}, {"Zürich Analytics", "zurich-analytics"}, {"Øresund Shipping", "oresund"},
	{"Grüne Energie", "gruene-energie"}, {"Acme", "acme"}, {"Globex", "globex"}, {"Initech", "initech"},
	{"Umbrella", "umbrella"}, {"Hooli", "hooli"}, {"Pied Piper", "piedpiper"}, {"Vandelay", "vandelay"},
	{"Dunder Mifflin", "dundermifflin"}, {"Tyrell", "tyrell"}, {"São Paulo Têxtil", "sp-textil"},
	{"Kraków Cosmetics", "krakow-cosmetics"}, {"Ελληνική Ναυτιλία", "hellenic-shipping"}, {"Rocket 🚀 Labs", "rocketlabs"},
	{"\"Quoted\" Traders", "quoted-traders"}, {"Back\\Slash Systems", "backslash"}, {"Северсталь Трейд", "severstal"},
	{"Northwind", "northwind"}, {"Contoso", "contoso"}, {"Fabrikam", "fabrikam"}, {"Soylent", "soylent"},
}

var companyTails = []string{"GmbH", "Inc.", "Co.", "Ltd", "AG", "S.A.", "LLC", "株式会社", "Logistics", "Holdings", "", "Group", "& Söhne", "SARL"}

var cities = []struct{ city, state, zip, country string }{
	{"Hamburg", "", "20457", "DE"}, {"Portland", "OR", "97208", "US"}, {"Kyoto", "", "600-8216", "JP"},
	{"Zürich", "ZH", "8001", "CH"}, {"São Paulo", "SP", "01310-100", "BR"}, {"Kraków", "", "31-155", "PL"},
	{"Austin", "TX", "78701", "US"}, {"Lyon", "", "69002", "FR"}, {"København", "", "1050", "DK"},
}

var streets = []string{"Großer Grasbrook 9", "PO Box 4410", "1-2-3 Shijō-dōri", "Bahnhofstrasse 1", "Av. Paulista 1578",
	"ul. Floriańska 12", "500 Congress Ave", "12 rue de la République", "Nyhavn 17"}

var notes = []string{
	"Walked through pilot scope; they want ROI numbers per site.",
	"Met at Ambiente fair. Interested in glaze-line automation – follow up after July.",
	"Left voicemail 📞, will try again Thursday.",
	"Budget approved für Q3 — nächster Schritt: Vertrag.",
	"見積もりを送付しました。来週フォローアップ予定。",
	"Asked for références clients 👍",
	"Needs a security review before the pilot.\nSent the questionnaire.",
	"Call back after the board meeting 🚀",
	"Price objection: compare with competitor's \"premium\" tier.",
	"Path to the shared drive: C:\\Sales\\Q3\\pricing.xlsx",
	"Tab\tseparated\tnotes from the import",
	"Связаться после праздников.",
	"",
	"Decision maker on vacation until the 15th ☀️",
	"<b>Important</b>: wants SSO & audit logs.",
}

var subjects = []string{
	"Pilot pricing – Harbor & Finch", "Re: Follow-up on our call", "Angebot für Q3", "見積もりの件",
	"Quick question 🙂", "Contract draft v2", "Intro: \"Northwind\" × you", "Réunion de suivi", "Invoice #4411",
}

var smsTexts = []string{
	"Hi, quick reminder of our call tomorrow at 10am PT.", "Danke für das Gespräch! 👍", "Are you free at 3?",
	"お世話になっております。", "Sent the contract, let me know ✍️", "",
}

var taskTexts = []string{
	"Send revised pilot pricing", "Confirm delivery address", "Follow up on the proposal 📄",
	"Angebot nachfassen", "Ask about glaze-line volumes", "Prepare demo for 田中さん", "Call back re: \"budget\"",
}

var descriptions = []string{
	"Mid-size 3PL, 14 warehouses in DACH. Evaluating pick-robot pilots for Q3.",
	"Imported from trade-show list (spring 2023).", "", "Référence client — très satisfait.",
	"Family-owned since 1921 🏭", "Multi-line\ndescription with a \"quote\"", "地方の陶芸工房。",
}

var timezones = []string{"Europe/Berlin", "America/New_York", "Asia/Tokyo", "America/Sao_Paulo", "Europe/Warsaw", "UTC", ""}

var leadStatusLabels = []string{"Potential", "Bad Fit", "Qualified", "Interested", "Customer", "Nicht erreichbar"}

var oppStatuses = []struct{ label, typ string }{
	{"Demo Completed", "active"}, {"Proposal Sent", "active"}, {"Negotiation", "active"}, {"Won", "won"}, {"Lost", "lost"},
}

var pipelines = []string{"Sales", "Partnerships"}

// Custom field templates: name, type, choice set (-1 none), multi-valued.
var cfTemplates = []struct {
	name, typ string
	choices   int
	multi     bool
}{
	{"Industry", "choices", 0, false}, {"Employees", "number", -1, false}, {"Lead Owner", "user", -1, false},
	{"Birthday", "date", -1, false}, {"Region", "choices", 3, false}, {"Priorität", "choices", 2, false},
	{"Budget (€)", "number", -1, false}, {"Source", "text", -1, false}, {"Tier", "choices", 2, false},
	{"Renewal date", "date", -1, false}, {"NPS", "number", -1, false}, {"ウェブサイト", "text", -1, false},
	{"Decision role", "choices", 1, true}, {"Last audit", "datetime", -1, false}, {"Notes (long)", "textarea", -1, false},
	{"Discovery score", "number", -1, false}, {"Deal type", "choices", 4, false}, {"Tags", "choices", 0, true},
}

var choiceSets = [][]string{
	{"Logistics", "Manufacturing", "Retail", "Software"},
	{"Decision Maker", "Gatekeeper", "Point of Contact", "Champion"},
	{"Gold", "Silver", "Bronze"},
	{"EMEA", "AMER", "APAC", "日本"},
	{"Pilot", "Expansion", "Renewal"},
}

type phoneCountry struct {
	iso, cc, area string
	digits        int
}

var phoneCountries = []phoneCountry{
	{"DE", "49", "40", 8}, {"US", "1", "503", 7}, {"JP", "81", "3", 8}, {"FR", "33", "1", 8}, {"BR", "55", "11", 8},
}
