package coppersim

import (
	"encoding/json"
	"sort"
)

// Small fixed lists ("full table" streams). Sizes are realistic for a small
// sales team; ids follow the style of the reference examples.

const accountID = 289117

type idName struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

var contactTypes = []idName{
	{601501, "Potential Customer"}, {601502, "Current Customer"}, {601503, "Uncategorized"},
	{601504, "Other"}, {601505, "Partner 🤝"}, {601506, "Fournisseur"},
}

var customerSources = []idName{
	{441201, "Email"}, {441202, "Cold Call"}, {441203, "Trade Show"},
	{441204, "Website"}, {441205, "Empfehlung"}, {441206, "Partner"},
}

var lossReasons = []idName{
	{350901, "Price"}, {350902, "Features"}, {350903, "Went with competitor"},
	{350904, "Timing"}, {350905, "Kein Budget"},
}

type leadStatus struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Order     int    `json:"order"`
	IsDefault bool   `json:"is_default"`
}

var leadStatuses = []leadStatus{
	{280101, "New", 1, true}, {280102, "Open", 2, false}, {280103, "Unqualified", 3, false},
	{280104, "Qualified", 4, false}, {280105, "Junk", 5, false},
}

type stage struct {
	ID             int64   `json:"id"`
	Name           string  `json:"name"`
	WinProbability float64 `json:"win_probability"`
}

type pipeline struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	IsRevenue bool    `json:"is_revenue"`
	Stages    []stage `json:"stages"`
}

var pipelines = []pipeline{
	{612001, "New Business", "opportunity", true, []stage{
		{2890101, "Qualified", 10}, {2890102, "Proposal Sent", 40}, {2890103, "Negotiation", 75}, {2890104, "Verbal Yes", 90}}},
	{612002, "Partnerships", "opportunity", false, []stage{
		{2890201, "Intro", 5}, {2890202, "Pilot", 50}, {2890203, "Signed", 100}}},
	{612003, "Renewals ♻️", "opportunity", true, []stage{
		{2890301, "Upcoming", 60}, {2890302, "Quoted", 80}, {2890303, "Renewed", 100}}},
}

type pipelineStage struct {
	ID             int64   `json:"id"`
	Name           string  `json:"name"`
	PipelineID     int64   `json:"pipeline_id"`
	WinProbability float64 `json:"win_probability"`
}

var userGroups = []idName{{5101, "Sales"}, {5102, "Customer Success"}, {5103, "Ventes & Marketing"}}

type activityType struct {
	ID                 int64  `json:"id"`
	Category           string `json:"category"`
	Name               string `json:"name"`
	IsDisabled         bool   `json:"is_disabled"`
	CountAsInteraction bool   `json:"count_as_interaction"`
}

const (
	actNote          = 0
	actPhoneCall     = 771001
	actMeeting       = 771002
	actToDo          = 771003
	actEmail         = 771004
	actSiteVisit     = 771005
	actPropertyChg   = 1
	actPipelineStage = 3
)

var userActivityTypes = []activityType{
	{actNote, "user", "Note", false, false},
	{actPhoneCall, "user", "Phone Call", false, true},
	{actMeeting, "user", "Meeting", false, true},
	{actToDo, "user", "To Do", false, false},
	{actEmail, "user", "Email", false, true},
	{actSiteVisit, "user", "Site visit 🚚", true, true}, // removed custom types stay listed
}

var systemActivityTypes = []activityType{
	{actPropertyChg, "system", "Property Changed", false, false},
	{actPipelineStage, "system", "Pipeline Stage Changed", false, false},
}

type customActivityType struct {
	ID                int64  `json:"id"`
	CompanyID         int64  `json:"company_id"`
	IconType          string `json:"icon_type"`
	IsDisabled        bool   `json:"is_disabled"`
	IsInteraction     bool   `json:"is_interaction"`
	Name              string `json:"name"`
	IsDefaultTaskType bool   `json:"is_default_task_type"`
}

var customActivityTypes = []customActivityType{
	{actPhoneCall, accountID, "Phone", false, true, "Phone Call", false},
	{actMeeting, accountID, "Event", false, true, "Meeting", false},
	{actToDo, accountID, "Todo", false, false, "To Do", true},
	{actEmail, accountID, "Email", false, true, "Email", false},
	{actSiteVisit, accountID, "Event", true, true, "Site visit 🚚", false},
}

type cfOption struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Rank int    `json:"rank"`
}

type customFieldDef struct {
	ID            int64      `json:"id"`
	Name          string     `json:"name"`
	CanonicalName *string    `json:"canonical_name"`
	DataType      string     `json:"data_type"`
	AvailableOn   []string   `json:"available_on"`
	IsFilterable  bool       `json:"is_filterable"`
	Currency      string     `json:"currency,omitempty"`
	Options       []cfOption `json:"options,omitempty"`
}

func strp(s string) *string { return &s }

// defaultCustomFields covers every data_type. It is only a template: each server works on
// its own copy (customFields), which tests may edit.
var defaultCustomFields = []customFieldDef{
	{710001, "Account Tier", strp("account_tier"), "Dropdown", []string{"company", "opportunity", "person"}, true, "",
		[]cfOption{{902001, "Gold", 0}, {902002, "Silver", 1}, {902003, "Bronze", 2}}},
	{710002, "Renewal Date", nil, "Date", []string{"company", "opportunity", "project", "person"}, true, "", nil},
	{710003, "Contract Value", strp("contract_value"), "Currency", []string{"opportunity"}, false, "USD", nil},
	{710004, "LinkedIn Headline", strp("linkedin_headline"), "String", []string{"person", "lead"}, false, "", nil},
	{710005, "Background (long)", nil, "Text", []string{"person", "company", "lead"}, false, "", nil},
	{710006, "Newsletter Opt-in", strp("newsletter_opt_in"), "Checkbox", []string{"person", "lead"}, true, "", nil},
	{710007, "Seats", strp("seats"), "Float", []string{"company", "opportunity"}, true, "", nil},
	{710008, "Portal URL", strp("portal_url"), "URL", []string{"company"}, false, "", nil},
	{710009, "Discount %", strp("discount_pct"), "Percentage", []string{"opportunity"}, true, "", nil},
	{710010, "Interests", strp("interests"), "MultiSelect", []string{"person", "lead", "company"}, true, "",
		[]cfOption{{903001, "Hiking", 0}, {903002, "Ski & Snow ❄️", 1}, {903003, "Café culture", 2}, {903004, "日本旅行", 3}}},
	{710011, "Region", strp("region"), "Dropdown", []string{"lead", "person", "task", "project"}, true, "",
		[]cfOption{{904001, "EMEA", 0}, {904002, "AMER", 1}, {904003, "APAC", 2}}},
	{710012, "Partner Link", nil, "Connect", []string{"opportunity", "company"}, false, "", nil},
	{710013, "Effort (h)", strp("effort_hours"), "Float", []string{"task"}, false, "", nil},
}

// tagNames is the account's tag vocabulary, sorted by name (byte order) as
// GET /tags serves it. Records carry a bitmask into this slice.
var tagNames = func() []string {
	t := []string{"enterprise", "q4-push", "trade show 2025", "vip", "churn-risk", "partner",
		"Überprüfung", "日本市場", "🔥 hot", "newsletter", "renewal", "smb"}
	sort.Strings(t)
	return t
}()

func stageByID(id int64) (pipeline, stage, bool) {
	for _, p := range pipelines {
		for _, st := range p.Stages {
			if st.ID == id {
				return p, st, true
			}
		}
	}
	return pipeline{}, stage{}, false
}

// rawRows marshals each element to its own JSON object, keeping field order.
func rawRows[T any](rows []T) []json.RawMessage {
	out := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			panic(err) // static data: cannot fail
		}
		out[i] = b
	}
	return out
}

// defaultSmallLists builds the served rows of the fixed list tables. custom_field_definitions
// is not one: it is rendered from the server's definitions unless SetSmallList overrides it.
func defaultSmallLists() map[string][]json.RawMessage {
	var stages []pipelineStage
	for _, p := range pipelines {
		for _, st := range p.Stages {
			stages = append(stages, pipelineStage{st.ID, st.Name, p.ID, st.WinProbability})
		}
	}
	return map[string][]json.RawMessage{
		"contact_types":    rawRows(contactTypes),
		"customer_sources": rawRows(customerSources),
		"loss_reasons":     rawRows(lossReasons),
		"lead_statuses":    rawRows(leadStatuses),
		"pipelines":        rawRows(pipelines),
		"pipeline_stages":  rawRows(stages),
	}
}
