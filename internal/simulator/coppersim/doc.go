// Package coppersim is an in-memory fake of the Copper Developer API
// (https://api.copper.com/developer_api/v1) for tests, benchmarks and the
// sandbox/demo command. Mount a *Server at the root of an http.Server or
// httptest.Server; paths are /developer_api/v1/....
//
// # Data
//
// The dataset is deterministic: the same Seed, Epoch, Span, sizes and calls
// give byte-identical responses in every process. Every field of a record is a
// pure function of (Seed, entity, slot, version) and, for custom_fields, the
// server's definitions (see Custom fields); the server stores only 24 bytes
// of metadata per record (date_created, date_modified or activity_date,
// version, flags) plus 4-byte sorted indexes, and renders JSON when a record
// is served. date_created, date_modified and activity_date lie in
// [Epoch-Span, Epoch) except the FutureDated ones (forward-looking dates such
// as close_date, due_date and custom Date values may lie ahead). Ids grow with date_created, are unique per entity only, and activity
// ids exceed 2^31. Text includes accents, CJK, emoji, quotes, backslashes and
// newlines; many fields are null; custom_fields list every definition
// available on the entity (value typed by data_type, null when unset, [] for
// an empty MultiSelect; Connect values are null unless Config.ConnectValues).
//
// # Custom fields
//
// Each Server has its own copy of the default definitions (every data_type),
// served by GET /custom_field_definitions in id order and walked by every
// record, so a test editing one server never affects another. *Server
// implements simfault.CustomFieldEditor, with decimal ids; none of the edits
// moves a record's date_modified:
//
//   - AddCustomField(f, at): the next id above every definition made so far
//     (ids are never reused), data_type f.Type, available_on f.On (person,
//     company, lead, opportunity, project, task), options from f.Choices (new
//     ids, rank in order; required and distinct for Dropdown/MultiSelect,
//     refused for other types), canonical_name a slug of the name, currency
//     USD for a Currency field; f.Multi is refused. Every record of those kinds
//     lists it from then on, last; only versions whose date_modified is at or
//     after `at` carry values (~55%), older ones null ([] for MultiSelect), so
//     an incremental sync sees values on records updated or created since.
//   - RenameCustomField: name changes, canonical_name and records do not.
//   - RenameCustomFieldOption(id, from, to): the option labelled `from`
//     (exact match) is renamed; records keep its id. A label another option of
//     the field has, or a field without options, is an error.
//   - DeleteCustomField: the definition leaves the list and every record's
//     custom_fields; the other fields' values do not change.
//
// Unknown or deleted ids are errors. Values are drawn per record version:
// the default definitions from one shared stream, in order, as they always
// were (a deleted default is still drawn, not written), added definitions and
// Connect values from their own streams, so edits never move other values.
// SetSmallList("custom_field_definitions", …) replaces only the served list,
// for good: records and edits keep using the server's definitions, and edits
// no longer show in the served list.
//
// Options for what the docs leave open or real accounts get wrong:
// Config.UnfitCustomValues spoils that fraction of the non-null Float,
// Percentage, Currency, Date, Checkbox and Dropdown values with a value of the
// wrong type ("n/a"/"TBD", "31/31/2024"/"soon", "yes", option id 999999 that
// no definition lists); Config.ConnectValues gives Connect fields an array of
// one or two company ids on ~55% of versions (the reference leaves the record
// value open; links live in /related_links); Config.CustomDatesAsText writes
// Date values as "M/D/YYYY" text of the same UTC day instead of Unix seconds
// (open question: the best-practices page says mm/dd/yyyy, every example
// shows seconds); Config.ChunkedAnswers sends answers in chunks with no
// Content-Length (the reference does not say which a client gets).
//
// # Reproduced real-API behaviour
//
//   - Auth: X-PW-AccessToken, X-PW-Application: developer_api and
//     X-PW-UserEmail (compared case-insensitively) on every request; anything
//     missing or wrong is 401. Errors are {"success":false,"status":N,"message":"..."}.
//   - POST /{people,companies,leads,opportunities,projects,tasks,activities,users}/search
//     with a JSON body: page_number (1-based, default 1), page_size (default
//     20, 1..200), sort_by/sort_direction (documented values only, per-entity
//     default, default direction asc), min/max created and modified dates
//     (Unix seconds, inclusive) and ids on the six record entities. Response:
//     a bare JSON array and X-PW-TOTAL. page_number/page_size are also read
//     from the query string when the body lacks them.
//   - leads: include_converted_leads defaults to false, hiding converted
//     leads (the trap); status_ids, customer_source_ids. opportunities:
//     status_ids (0 Open, 1 Won, 2 Lost, 3 Abandoned), pipeline_ids,
//     pipeline_stage_ids. tasks: statuses.
//   - activities: only minimum/maximum_activity_date, parent, activity_types
//     and user_ids filter; there is no created/modified filter (sending one is
//     422). Always newest first by activity_date, whatever sort_by says.
//     date_modified equals activity_date except for ~3% edited later; user
//     activities are usually dated before their date_created (logged after
//     the fact); system types 1 "Property Changed" and 3 "Pipeline Stage
//     Changed" carry old_value/new_value.
//   - The 100,000-result ceiling (Config.MaxResults).
//   - GET /account, /users/me, /users/{id}, /contact_types,
//     /custom_field_definitions, /customer_sources, /lead_statuses (403 when
//     leads are disabled), /loss_reasons, /pipeline_stages,
//     /pipeline_stages/pipeline/{id}, /pipelines (stages nested), /tags
//     (sorted by name, with live counts), /activity_types ({user, system}),
//     /custom_activity_types: unpaginated. POST /pipeline_stages/search does
//     not exist: 404.
//   - GET /{entity}/{id}; 404 once deleted, except deleted activities, which
//     answer {"id":…, "is_deleted":true}. Deleted records vanish from search.
//   - Rolling-window rate limit over all endpoints (Copper: 180/min, i.e.
//     RateLimit: CopperRateLimit, RateWindow: time.Minute; the 2019 burst
//     limit is 6 per second over 6 s): 429 with no Retry-After and no
//     rate-limit headers, body {"success":false,"status":429,"message":"Rate limit exceeded"}.
//     Rejected requests do not use up the window. Stats.RateLimited counts
//     these 429s.
//
// # Choices for what the documentation leaves open
//
//   - Unknown search body keys: 422 "Invalid input: unknown attribute …"
//     (reported by third-party clients). Documented Copper parameters the
//     simulator does not implement (tags, assignee_ids, city, …) are also 422,
//     with a message saying so, rather than silently ignored.
//   - page_size above 200 (or below 1) and page_number below 1: 422, not
//     clamped. Malformed JSON: 400.
//   - Beyond the ceiling: a page that starts at or past MaxResults returns []
//     (200); a page straddling it is cut at MaxResults. X-PW-TOTAL is the exact
//     number of matches, uncapped, so a client can see it must split its window.
//   - X-PW-TOTAL is sent by every search, users and activities included.
//   - Sort ties break by id (desc order is the exact reverse of asc); nulls
//     sort first ascending; strings compare bytewise. Direction is honoured for
//     every sort. Sort keys with no visible field use the nearest one (see
//     sortFields).
//   - Activities: full_result is accepted and has no effect (no duplicate
//     ids); deleted-activity stubs appear in search (where the activity was)
//     only with Config.DeletedActivitiesInSearch.
//   - Leads stay searchable when leads are disabled; only /lead_statuses is 403.
//   - An update bumps version and date_modified; the details field always
//     changes ("(rev N)"). Updating an activity re-dates it: activity_date and
//     date_modified both become the update time, so activity-date CDC sees it.
//     AddBackdatedActivities adds activities dated before their creation.
//   - Cost: a 200-record people page takes about 0.7 ms of CPU. Sorting by
//     date_modified/date_created and filtering on them is index-backed; any
//     other sort_by builds its order on first use (~150 ms per 100k records)
//     and keeps it up to date through mutations; filtered scans are cached
//     until the next mutation.
//   - The Date header comes from Config.Now, so moving the simulator's clock
//     moves the server time a client sees.
//   - Storms are counted, not drawn: Faults.Every429 / Every5xx answer every
//     Nth authenticated request (1-based, since New or SetFaults; 429 wins a
//     tie) with the header-less 429 above or a gateway's HTML 502. They come
//     before the limiter and do not use up its window.
//   - Faults are drawn per authenticated, non-rate-limited, non-storm request
//     from their own seeded stream; response faults (including RateStall and
//     RateStallHeaders, drawn after the old kinds so old seeds draw the same)
//     are mutually exclusive, RateSlow and MutateBetweenPages are
//     independent. A stall sends status, headers (full Content-Length) and
//     half the body, then nothing for StallFor (zero → 40 s) or until the
//     client goes away, then the rest; a header stall sends nothing at all
//     for that long, then the normal response. Invalid settings (negative,
//     NaN, a rate above 1, exclusive rates summing above 1) are an error from
//     New and from SetFaults, which then keeps the previous faults (the one
//     policy of simfault.Model.Check, shared with closesim); so are the
//     Faults fields Copper cannot show (Rate503RetryAfter, RetryAfter,
//     StormReset): refused, never ignored. Truncation declares the full
//     Content-Length, sends half and closes the connection. MutateBetweenPages
//     applies before any search of an entity but its first since New or
//     SetFaults (keyset clients send no page 2): two updates, one insert and
//     one delete in that entity, at Config.Now().
package coppersim
