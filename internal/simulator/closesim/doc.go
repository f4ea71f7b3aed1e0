// Package closesim is an in-memory fake of the Close REST API
// (https://api.close.com/api/v1/) for tests, benchmarks and the
// `crmsync sandbox` command.
//
// It serves a deterministic, seeded dataset of leads (with embedded
// contacts, addresses, opportunities, lead tasks and custom field values),
// activities, tasks, users, custom field definitions and the event log. The
// same Config (Seed, Epoch, Span, sizes) gives byte-identical responses in
// any process.
//
// # Memory model
//
// Only 24 bytes of metadata are kept per record (date_created,
// date_updated, a version counter, the _type/group and a deleted flag),
// plus one 4-byte entry per sorted index (id, date_created, date_updated,
// task date) and 32 bytes per event reference. A record's JSON is generated
// when it is served, from (seed, stream, index, version, dates), straight
// into a byte buffer. About 35 bytes per record are resident; a
// 1,000,000-record dataset builds in about a second and a 100-activity page
// (~165 kB) is written in about 0.2 ms.
//
// # Reproduced API behaviour
//
//   - Paths under /api/v1/ ending in '/'; a path without the slash gets a
//     301 to the slash form. Unknown paths → 404, other methods than GET →
//     405, always with a JSON {"error": "..."} body.
//   - HTTP Basic auth, API key as user name; anything else → 401.
//     GET /me/ is the cheap credential check.
//   - Offset paging with _skip/_limit, {"data": [...], "has_more": ...}
//     (leads also "total_results"). Maximum _limit: leads 200, activities
//     100, tasks/users/custom fields 1000; above → 400 "... less than or equal
//     to N". _skip above Config.MaxSkip (250000) on /lead/, /activity/,
//     /task/ → 400 with the real message "The skip you set is larger than
//     the maximum skip for this resource (max_skip = 250000). Please refine
//     your search query."
//   - _fields=a,b projects top-level fields ("custom" selects all custom
//     fields), GET /<resource>/{id}/ returns one record.
//   - /lead/ has no date filters; the deprecated `query` parameter works
//     for date_updated / date_created with > >= < <= and
//     sort:[-]date_updated|date_created. The query language has minute
//     precision (seconds in the value are ignored). By default the record's
//     timestamp and the value are both truncated to the minute before
//     comparing, so date_updated<="12:34" includes 12:34:59.
//     Config.QueryExactMinute instead reads the value as exactly
//     HH:MM:00.000000 against the record's full precision: <="12:34"
//     excludes 12:34:05, >="12:34" includes 12:34:00 on, >"12:34" includes
//     12:34:00.5. The docs do not say which; a client must survive both.
//     A value without a zone is read in Config.QueryZone (default UTC; the
//     docs leave open whether an account's zone applies), unless the
//     request's X-TZ-Offset header (hours) names another. Other terms → 400.
//   - /activity/ (and /activity/<type>/): date_created__gt/gte/lt/lte
//     (ISO 8601, naive = UTC), _order_by=[-]date_created. Trap: there is
//     no date_updated filter (it is silently ignored) although
//     UpdateRecords on activities moves date_updated; _type only filters
//     together with lead_id, as documented.
//   - /task/: trap: without _type only "lead" tasks are returned;
//     _type=all returns every type. date_updated__* and date_created__*
//     filters; _order_by only [-]date or [-]date_created (date_updated →
//     400).
//   - /user/ (optional _order_by=last_name,first_name), and
//     /custom_field/{lead,contact,opportunity,activity,custom_object_type,
//     shared}/ (plus the old plural /custom_fields/...), each returning only
//     its own fields, without an object_type field (but see
//     Config.SharedFieldsInTypeLists). Custom fields are described under
//     "Custom fields" below.
//   - /contact/ and /opportunity/ serve the contacts and opportunities the
//     leads embed (always the same objects, field for field). /contact/:
//     _limit max 100, only lead_id filters (no date filter). /opportunity/:
//     _limit max 250, total_results, date_created__* and date_updated__*
//     filters, lead_id, _order_by=[-]date_updated|date_created. Both capped
//     at MaxSkip. UpdateRecords/DeleteRecords on "contacts" and
//     "opportunities" move the lead's date_updated (no lead event; every
//     object it embeds takes that date_updated) and emit the object's own
//     event; deleting or merging away a lead deletes its contacts and
//     opportunities, each with a "deleted" event. AddRecords is not modelled
//     for them (returns nil).
//   - /event/: newest first by date_updated, always; _limit default and max
//     50; paging only by the opaque _cursor (keyset: events added during a
//     walk never shift it; the cursor keeps the walk's date_updated window);
//     _skip → 400; filters date_updated__*, object_type, object_id, action,
//     lead_id, user_id, request_id in the documented combinations only.
//     Event timestamps carry no offset ("2024-06-04T08:31:44.530000").
//     Retention: events older than Now()-30 days are not served.
//   - Default order of every offset listing (no sort asked) is by id, which
//     is stable but not time-ordered.
//   - Timestamps: "2024-06-04T08:31:44.512000+00:00", some without fraction.
//     Records contain non-ASCII text (ö, é, 日本語, emoji), characters that
//     need escaping, nulls and empty arrays.
//   - Rate limits per endpoint group, keyed "METHOD pattern" as the route
//     table names it ("GET /me/", "GET /lead/", "GET /lead/{id}/",
//     "GET /activity/", "GET /activity/email/", "GET /task/",
//     "GET /user/", "GET /event/", "GET /custom_field/lead/", …; GroupKeys
//     lists all, HEAD has its own). Config.RateLimit applies to every group,
//     Config.GroupRateLimits overrides single groups (0 = unlimited). Every
//     response of a limited group carries RateLimit: limit=N, remaining=M,
//     reset=S for that group (unlimited groups: limit=1000, remaining=1000,
//     reset=0); over the limit → 429 with RateLimit, Retry-After and the
//     legacy body {"error": {"rate_reset": 1.2, "message": "..."}}.
//
// # Custom fields
//
// Definitions are served per object type; values sit on the records as flat
// "custom.cf_<id>" keys (leads: top-level, honouring _fields; embedded and
// listed contacts and opportunities; custom activities) and, on leads only,
// also in the deprecated "custom" object keyed by field name. A record has
// a value for a field with probability 0.6; the value depends only on the
// seed, the record and the field, so editing one definition never changes
// another's values.
//
//   - Leads carry up to 12 lead fields, contacts 5 contact fields,
//     opportunities 4 opportunity fields (the first generated of each), and
//     the first 4 shared fields are on both leads and contacts (their
//     associations: lead, contact). Every account with CustomFields ≥ 1 has
//     the single-choice lead field "Industry" (Logistics, Manufacturing,
//     Retail, Software) first, whatever the seed: generator index 0. With
//     CustomFields 0 there are no definitions at all.
//   - Custom activities: one activity in 50 has _type "Custom" (path
//     /activity/custom/, event object_type activity.custom_activity), a
//     custom_activity_type_id (one of three types), a status (published,
//     sometimes draft) and the values of the activity fields of its type
//     (the first 6 activity fields; field gen belongs to type gen%3).
//   - Types written: text, textarea, number (integers, some decimals), date,
//     datetime, choices (labels; multi-valued: arrays), user (a user id),
//     contact (a contact id of the record's lead, or null) and hidden (text).
//     Config.UnfitCustomValues turns that fraction of number, date and
//     datetime values into text no parser of the type accepts ("n/a",
//     "TBD", "sometime in Q3", "31/31/2024"); which ones depends only on the
//     seed, the record and the field, and the other values stay as they are.
//   - Config.SharedFieldsInTypeLists: /custom_field/<object type>/ also lists
//     the shared fields associated with that object type, as the same
//     record /custom_field/shared/ serves (reference open question 9).
//     Snapshot("custom_fields") still holds each definition once.
//   - Config.ChunkedAnswers: answers announce no Content-Length and come in
//     chunks (the reference does not say which a client gets).
//
// Server implements simfault.CustomFieldEditor; every edit is under the
// server's lock, deterministic, emits an event of object_type
// custom_fields.<group> and moves no record's date_updated (as in Close,
// editing a definition does not touch the records carrying its values):
//
//   - AddCustomField: a new definition of the endpoint its On names (lead,
//     contact, opportunity, activity; several → a shared field with an
//     association per object, activity associated as custom_activity_type),
//     date_created = date_updated = at, "created" event. Values only on
//     record versions whose date_updated (activities: date_created) is at
//     or after at, so a sync reading records changed since sees them on
//     exactly those. Types as above (no custom_object); a name another field
//     of the same object has, no name, no object, or choices on a
//     non-choice field → error.
//   - RenameCustomField: same id, new name, date_updated = at, "updated"
//     event (changed_fields date_updated, name, updated_by); the leads'
//     "custom" object uses the new name.
//   - RenameCustomFieldOption: the choice label changes in the definition
//     (date_updated = at, "updated" event with changed_fields choices, …) and
//     on every record, old or new, since Close stores labels.
//   - DeleteCustomField: the definition leaves its listings ("deleted"
//     event) and its values vanish from every record.
//
// Unknown or deleted ids are an error. DeleteRecords("custom_fields", …)
// still deletes definitions only (records keep the values), as before.
// Events render their objects with today's definitions: a rename also shows
// in the data of earlier events.
//
// # Choices for what the documentation leaves open
//
//   - Limiter model: Config.RateWindow zero → token bucket (refill rate per
//     second, burst max(1, rate), limit = burst, reset = time until full, on
//     429 time until the next token). Non-zero → fixed windows aligned to
//     multiples of RateWindow: limit = rate×window, reset = time to the
//     window's end.
//   - reset is whole seconds rounded up (the official client's regex reads
//     only digits); Config.FractionalReset prints milliseconds
//     (reset=0.347), as tap-closeio saw on the old headers. Retry-After is
//     always whole seconds, rate_reset milliseconds; all are rounded up so a
//     client that honours any of them is never early.
//   - Announced waits: a 429 with a reset (genuine, Faults.Rate429, storm)
//     or a 503 with Retry-After closes its group until then. A request to
//     that group before then is counted (Stats.InsideReset,
//     InsideResetByGroup); with Config.EnforceResets it is also answered
//     429 with the time left (the docs: wait reset seconds before retrying
//     that endpoint). Off by default so fault tests under a frozen clock
//     keep working.
//   - The Date header comes from Config.Now, so moving the simulator's
//     clock moves the server time a client sees.
//
// # Faults and mutations
//
// Config.Faults (or SetFaults at runtime) injects 429s (with or without any
// hint), 500/502/503/504, 503 with Retry-After, truncated and invalid JSON
// bodies, dropped connections, slow responses, stalls (headers and half the
// body, then nothing for StallFor or until the client leaves; or nothing at
// all for that long), and mutations between the pages of one listing (so
// offset pages shift). All Rate* kinds share one draw (their sum ≤ 1,
// new kinds after the old so old seeds draw the same). Storms are counted,
// not drawn: Faults.Every429 / Every5xx answer every Nth authenticated
// request to a known endpoint (1-based, since New or SetFaults; 429 wins a
// tie) with a 429 (reset = StormReset) or a proxy's HTML 502. Order per
// request: closed group (EnforceResets), storms, limiter, random faults.
// Invalid settings (negative, NaN, a rate above 1, rates summing above 1)
// are an error from New and from SetFaults, which then keeps the previous
// faults: the one policy of simfault.Model.Check, shared with coppersim.
// UpdateRecords, AddRecords and
// DeleteRecords change the data deterministically and emit matching
// "updated" / "created" / "deleted" events. Snapshot and Count give the
// ground truth a correct replica must hold.
//
// Simplifications: embedded lead tasks belong to their lead and are not
// part of the tasks stream; deleting a lead does not cascade; seeded events
// reference records whose last change lies in the 30 days before Epoch, or
// objects that no longer exist (never a "deleted" event for a live record);
// previous_data of "updated" events holds only date_updated.
package closesim
