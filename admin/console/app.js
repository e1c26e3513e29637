// The web console of access authorization: a client of the admin REST API
// (docs/admin-api.md) served beside it. Plain DOM code, no framework and no build
// step. Everything the API returns is written with textContent and DOM
// nodes, never parsed as markup, so a name like <img onerror=…> stays text.
"use strict";

(() => {
	const TOKEN_KEY = "access-auth-console-token";
	const PAGE_SIZE = 50;
	const CHOICES_LIMIT = 500; // keys and groups offered in pickers
	const $ = (id) => document.getElementById(id);

	// ---- DOM helpers ------------------------------------------------------

	// el builds an element: props set attributes (on… adds a listener, class
	// sets the class, true adds an empty attribute), children are nodes or
	// text.
	function el(tag, props, ...children) {
		const node = document.createElement(tag);
		for (const [name, value] of Object.entries(props || {})) {
			if (value === undefined || value === null || value === false) continue;
			if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
			else if (name === "class") node.className = value;
			else node.setAttribute(name, value === true ? "" : String(value));
		}
		node.append(...present(children));
		return node;
	}

	// present flattens nested lists of children and drops the absent ones
	// (undefined, null, false), which append would write as text.
	function present(children) {
		return children.flat(Infinity).filter((child) => child !== undefined && child !== null && child !== false);
	}

	// fill replaces a node's children, as el takes them.
	function fill(node, ...children) {
		node.replaceChildren(...present(children));
	}

	// button makes a button; name is its accessible name when the label
	// alone does not say what it acts on (a row's "Delete").
	function button(label, onclick, cls, name) {
		return el("button", { type: "button", class: cls, onclick, "aria-label": name }, label);
	}

	function badge(text, kind) {
		return el("span", { class: "badge " + kind }, text);
	}

	function muted(text) {
		return el("div", { class: "muted" }, text);
	}

	function code(text) {
		return el("code", {}, text);
	}

	function clear(node) {
		node.replaceChildren();
	}

	// ---- time -------------------------------------------------------------

	const pad = (n) => String(n).padStart(2, "0");

	function localParts(d) {
		return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
	}

	// when shows an API time in local time, the exact instant as a tooltip.
	function when(iso, none) {
		if (!iso) return el("span", { class: "muted" }, none || "—");
		const d = new Date(iso);
		if (isNaN(d)) return iso;
		return el("time", { datetime: iso, title: iso }, localParts(d).replace("T", " ") + ":" + pad(d.getSeconds()));
	}

	// A datetime-local input's value from an API time, and back (null: none).
	function toInputTime(iso) {
		return iso ? localParts(new Date(iso)) : "";
	}

	function fromInputTime(value) {
		return value ? new Date(value).toISOString() : null;
	}

	const isPast = (iso) => iso && new Date(iso) <= new Date();
	const isFuture = (iso) => iso && new Date(iso) > new Date();

	// ---- the admin API ----------------------------------------------------

	class ApiError extends Error {
		constructor(status, code, message) {
			super(message);
			this.status = status;
			this.code = code;
		}
	}

	// A 401 after sign-in ends the session; callers leave it to signOut.
	class SessionEnded extends Error {}

	// api calls the admin API at path (relative to /access-auth/) and
	// answers the decoded JSON, null for 204. Errors are ApiError with the
	// API's code and message.
	async function api(method, path, body, token = sessionStorage.getItem(TOKEN_KEY)) {
		const headers = { Accept: "application/json" };
		if (token) headers.Authorization = "Bearer " + token;
		const init = { method, headers, cache: "no-store" };
		if (body !== undefined) {
			headers["Content-Type"] = "application/json";
			init.body = JSON.stringify(body);
		}
		let resp;
		try {
			resp = await fetch("../" + path, init);
		} catch (err) {
			throw new ApiError(0, "network", "cannot reach the server: " + err.message);
		}
		if (resp.status === 204) return null;
		const text = await resp.text();
		let data = null;
		try {
			data = text ? JSON.parse(text) : null;
		} catch {
			// not JSON: a proxy's error page, say
		}
		if (!resp.ok) {
			const err = new ApiError(
				resp.status,
				data && typeof data.code === "string" ? data.code : "http_" + resp.status,
				data && typeof data.error === "string" ? data.error : `HTTP ${resp.status} ${resp.statusText}`.trim(),
			);
			if (resp.status === 401 && token === sessionStorage.getItem(TOKEN_KEY)) {
				signOut("The server no longer accepts your token (401 unauthenticated). Sign in again.");
				throw new SessionEnded();
			}
			throw err;
		}
		if (data === null) throw new ApiError(resp.status, "bad_answer", "the server's answer is not JSON");
		return data;
	}

	const enc = encodeURIComponent;

	function query(params) {
		const q = new URLSearchParams();
		for (const [name, value] of Object.entries(params)) if (value) q.set(name, value);
		const s = q.toString();
		return s ? "?" + s : "";
	}

	// CheckError is a refusal of the console itself, before anything is
	// sent: worded as such, never as the server's.
	class CheckError extends Error {}

	// What the user should know about an error code, beyond the API's message.
	const explanations = {
		key_in_use: "This key is named by an authorization: delete that authorization first, then the key.",
		authorization_exists: "This key already has an authorization (one per key): bind groups to that one instead.",
		name_taken: "That name (or imported API key) is taken already.",
		group_not_found: "There is no such group: create it under API groups first.",
		plan_not_found: "There is no such plan: create it under Plans first.",
		plan_in_use: "An authorization or binding still names this plan: choose another plan there (or none) first, then delete it.",
		not_found: "It does not exist (any more): it may have been deleted meanwhile.",
		store_unavailable: "The store is unavailable right now. Try again in a moment.",
		invalid_argument: "The server refused a value.",
		unauthenticated: "The token was refused.",
	};

	// describe turns an error into one readable line that says where it
	// came from: this page's checks, the network, or the server.
	function describe(err) {
		if (err instanceof CheckError) return "Check the form: " + err.message;
		if (!(err instanceof ApiError)) return "Unexpected error in the console: " + err.message;
		if (err.code === "network") return "Network error: the server did not answer (" + err.message + "). Check the connection and try again.";
		const status = err.status ? `, HTTP ${err.status}` : "";
		const why = explanations[err.code];
		return `${why ? why + " " : ""}Server says: ${err.message} (${err.code}${status})`;
	}
	// ---- notices ----------------------------------------------------------

	function notify(kind, text) {
		const box = el("div", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" }, el("span", {}, text));
		box.append(button("×", () => box.remove(), "close"));
		$("notices").replaceChildren(box);
		if (kind === "ok") setTimeout(() => box.remove(), 6000);
	}

	function fail(err) {
		if (!(err instanceof SessionEnded)) notify("error", describe(err));
	}

	// run performs an action, reports its error, and answers whether it
	// went through.
	async function run(action, success) {
		try {
			await action();
			if (success) notify("ok", success);
			return true;
		} catch (err) {
			fail(err);
			return false;
		}
	}

	// ---- the dialog -------------------------------------------------------

	let dialogSubmit = null;

	// openDialog shows a form of fields; submit runs onSubmit(fields by
	// name) and closes on success, or shows the error in the dialog.
	function openDialog({ title, intro, fields = [], submitLabel, danger, onSubmit }) {
		$("dialog-title").textContent = title;
		const body = $("dialog-body");
		body.replaceChildren(...(intro ? [el("p", {}, intro)] : []), ...fields);
		$("dialog-error").hidden = true;
		const submit = $("dialog-submit");
		submit.textContent = submitLabel;
		submit.className = danger ? "danger" : "primary";
		submit.disabled = false;
		dialogSubmit = onSubmit;
		$("dialog").showModal();
		const first = body.querySelector("input, select, textarea");
		if (first) first.focus();
	}

	function closeDialog() {
		dialogSubmit = null;
		clear($("dialog-body"));
		if ($("dialog").open) $("dialog").close();
	}

	async function submitDialog(event) {
		event.preventDefault();
		if (!dialogSubmit) return;
		const submit = $("dialog-submit");
		submit.disabled = true;
		try {
			await dialogSubmit($("dialog-form").elements);
			closeDialog();
		} catch (err) {
			if (err instanceof SessionEnded) return;
			const box = $("dialog-error");
			box.textContent = describe(err);
			box.hidden = false;
		} finally {
			submit.disabled = false;
		}
	}

	// confirmDelete asks before it sends DELETE path; done is the notice of
	// success, reload refreshes what showed the deleted thing.
	function confirmDelete({ title, intro, submitLabel, path, done, reload }) {
		confirmThen({ title, intro, submitLabel, done, reload, action: () => api("DELETE", path) });
	}

	// confirmThen asks before a destructive or disabling action.
	function confirmThen({ title, intro, submitLabel, done, reload, action }) {
		openDialog({
			title, intro, submitLabel, danger: true,
			async onSubmit() {
				await action();
				notify("ok", done);
				reload();
			},
		});
	}

	// field is a labelled input, select or textarea with an optional hint.
	function field(label, control, hint) {
		return el("label", { class: "field" }, label, control, hint ? el("small", { class: "hint" }, hint) : null);
	}

	function input(name, props = {}) {
		return el("input", { name, ...props });
	}

	// splitList reads a list typed one per line or comma-separated.
	function splitList(text) {
		return text.split(/[\s,]+/).filter(Boolean);
	}

	// ---- paged lists ------------------------------------------------------

	// pagedList renders the items of a list endpoint as a table with cursor
	// paging. path() gives the endpoint with its filters; prepare(items),
	// when given, fetches what the rows show beside the items; row(item,
	// reload, extra) the cells. Narrow screens show each row as a card whose
	// cells carry their column's name (data-label).
	function pagedList({ container, path, headers, row, empty, prepare }) {
		let cursors = [""]; // cursors[i] opens page i
		let page = 0;

		async function load() {
			const base = path();
			const sep = base.includes("?") ? "&" : "?";
			const url = `${base}${sep}limit=${PAGE_SIZE}${cursors[page] ? "&cursor=" + enc(cursors[page]) : ""}`;
			container.classList.add("loading");
			try {
				const answer = await api("GET", url);
				const items = answer.items || [];
				const extra = prepare ? await prepare(items) : undefined;
				cursors = cursors.slice(0, page + 1);
				if (answer.next_cursor) cursors.push(answer.next_cursor);
				render(items, extra);
			} catch (err) {
				if (err instanceof SessionEnded) return;
				container.replaceChildren(el("div", { class: "notice error", role: "alert" }, describe(err), " ", button("Retry", load)));
			} finally {
				container.classList.remove("loading");
			}
		}

		function render(items, extra) {
			const more = page + 1 < cursors.length;
			// A search examines a bounded number of keys per page: an empty
			// page may still go on.
			const none = more ? "Nothing found in this stretch of the list yet: search further with Next." : empty;
			const table = el("table", {},
				el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
				el("tbody", {}, items.length
					? items.map((item) => el("tr", {}, row(item, load, extra).map((cell, i) => el("td", { "data-label": headers[i] || null }, cell))))
					: el("tr", {}, el("td", { colspan: headers.length, class: "empty" }, none))));
			const pager = el("div", { class: "pager" },
				el("button", { type: "button", disabled: page === 0, onclick: () => { page--; load(); } }, "← Previous"),
				el("span", { class: "muted" }, `Page ${page + 1}`),
				el("button", { type: "button", disabled: !more, onclick: () => { page++; load(); } }, "Next →"));
			container.replaceChildren(el("div", { class: "table-wrap" }, table), pager);
		}

		return {
			reload: load,
			restart() {
				cursors = [""];
				page = 0;
				return load();
			},
		};
	}

	// copyButton copies the text of a value shown on the page.
	function copyButton(value, what) {
		return button("Copy", (event) => copy(value, event.target), "small", "Copy " + what);
	}

	async function copy(value, btn) {
		try {
			await navigator.clipboard.writeText(value);
		} catch {
			// No clipboard API (plain HTTP is not a secure context): the old
			// way, through a selected field.
			const area = el("textarea", { readonly: true }, value);
			document.body.append(area);
			area.select();
			document.execCommand("copy");
			area.remove();
		}
		btn.textContent = "Copied";
		setTimeout(() => { btn.textContent = "Copy"; }, 1500);
	}

	// ---- access keys ------------------------------------------------------

	const keyFilter = () => {
		const f = $("key-filter").elements;
		return { q: f.q.value.trim(), enabled: f.enabled.value, kind: f.kind.value };
	};

	const keyLink = (k) => el("a", { href: "#key/" + enc(k.id) }, k.name);

	const keys = pagedList({
		container: $("keys-list"),
		path: () => "keys" + query(keyFilter()),
		headers: ["Name", "Access key ID / API key", "Kind", "State", "Expires", "Last used", "Created", ""],
		empty: "No access keys.",
		row: (k, reload) => [
			[el("strong", {}, keyLink(k)), k.description ? muted(k.description) : null],
			[code(k.id), el("div", {}, code(k.api_key))],
			k.kind,
			keyState(k),
			when(k.expires_at, "never"),
			when(k.last_used_at, "never"),
			when(k.created_at),
			keyActions(k, reload),
		],
	});

	// keyActions are the buttons of a key, in its row and on its page. An
	// imported key's secret is the caller's own: it has no reset.
	function keyActions(k, reload) {
		const of = ` key ${k.name}`;
		return el("div", { class: "row-actions" },
			button("Details", () => { location.hash = "#key/" + enc(k.id); }, null, "Details of" + of),
			button(k.enabled ? "Disable" : "Enable", () => toggleKey(k, reload), null, (k.enabled ? "Disable" : "Enable") + of),
			button("Edit", () => editKey(k, reload), null, "Edit" + of),
			k.kind === "imported" ? null : button("Reset secret", () => resetKey(k, reload), null, "Reset secret of" + of),
			button("Authorize", () => createAuthorization(k), null, "Authorize" + of),
			button("Delete", () => deleteKey(k, reload), "danger", "Delete" + of));
	}

	function toggleKey(k, reload) {
		toggleEnabled({
			path: "keys/" + enc(k.id), enabled: k.enabled, what: `key ${k.name}`, reload,
			intro: `Requests signed with ${k.api_key} are refused until you enable it again.`,
		});
	}

	// toggleEnabled enables at once and disables after a confirmation.
	function toggleEnabled({ path, enabled, what, intro, reload }) {
		const change = () => api("PATCH", path, { enabled: !enabled });
		const done = `${what[0].toUpperCase()}${what.slice(1)} ${enabled ? "disabled" : "enabled"}.`;
		if (!enabled) return run(() => change().then(reload), done);
		confirmThen({ title: `Disable ${what}?`, intro, submitLabel: "Disable", done, reload, action: change });
	}

	function keyState(k) {
		const states = [k.enabled ? badge("enabled", "ok") : badge("disabled", "off")];
		if (isPast(k.expires_at)) states.push(badge("expired", "warn"));
		if (isFuture(k.previous_secret_expires_at)) {
			states.push(el("span", { title: "the previous secret is valid until " + k.previous_secret_expires_at }, badge("old secret in grace", "warn")));
		}
		return states;
	}

	function expiryField(current) {
		return field("Expires", input("expires_at", { type: "datetime-local", value: toInputTime(current) }),
			"Your local time; leave empty for a key that never expires.");
	}

	function createKey() {
		openDialog({
			title: "New access key",
			intro: "The gateway generates the API key and secret. The secret is shown once, on the key's page, right after creation.",
			fields: [
				field("Name", input("name", { required: true, autocomplete: "off" }), "Unique."),
				field("Description", input("description", { autocomplete: "off" })),
				expiryField(null),
			],
			submitLabel: "Create key",
			async onSubmit(f) {
				const name = f.name.value.trim();
				if (!name) throw new CheckError("the key needs a name.");
				const body = { name, description: f.description.value };
				const expires = fromInputTime(f.expires_at.value);
				if (expires) body.expires_at = expires;
				const created = await api("POST", "keys", body);
				showSecretOnce(created, "created", "key/" + created.id);
				location.hash = "#key/" + enc(created.id);
			},
		});
	}

	function importKey() {
		openDialog({
			title: "Import an access key",
			intro: "Bring an existing AK/SK pair (for example a JD Cloud account AK) under the gateway's control.",
			fields: [
				field("Name", input("name", { required: true, autocomplete: "off" })),
				field("API key (AK)", input("api_key", { required: true, autocomplete: "off", spellcheck: "false" })),
				field("API secret (SK)", input("api_secret", { type: "password", required: true, autocomplete: "new-password" }),
					"Stored encrypted; never shown again."),
				field("Description", input("description", { autocomplete: "off" })),
			],
			submitLabel: "Import key",
			async onSubmit(f) {
				if (!f.name.value.trim() || !f.api_key.value.trim() || !f.api_secret.value) {
					throw new CheckError("name, API key and API secret are all needed.");
				}
				const k = await api("POST", "keys", {
					name: f.name.value.trim(), kind: "imported", api_key: f.api_key.value.trim(),
					api_secret: f.api_secret.value, description: f.description.value,
				});
				notify("ok", `Key ${k.name} imported as ${k.id}.`);
				location.hash = "#key/" + enc(k.id);
			},
		});
	}

	function editKey(k, reload) {
		openDialog({
			title: "Edit key " + k.name,
			fields: [
				field("Name", input("name", { required: true, value: k.name, autocomplete: "off" })),
				field("Description", input("description", { value: k.description, autocomplete: "off" })),
				expiryField(k.expires_at),
			],
			submitLabel: "Save",
			async onSubmit(f) {
				if (!f.name.value.trim()) throw new CheckError("the key needs a name.");
				await api("PATCH", "keys/" + enc(k.id), {
					name: f.name.value.trim(), description: f.description.value, expires_at: fromInputTime(f.expires_at.value),
				});
				notify("ok", `Key ${f.name.value.trim()} saved.`);
				reload();
			},
		});
	}

	function resetKey(k, reload) {
		openDialog({
			title: "Reset the secret of " + k.name,
			intro: "A new API secret is generated and shown once. Without a grace period the current secret stops working at once.",
			fields: [field("Grace period", input("grace", { placeholder: "e.g. 24h", autocomplete: "off" }),
				"How long the current secret stays valid too (Go duration: 30m, 24h). Empty: none.")],
			submitLabel: "Reset secret",
			danger: true,
			async onSubmit(f) {
				const grace = f.grace.value.trim();
				if (grace && !/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(grace)) throw new CheckError("the grace period is a duration such as 30m or 24h.");
				const answer = await api("POST", "keys/" + enc(k.id) + "/reset", grace ? { grace } : {});
				showSecretOnce(answer, "reset");
				reload();
			},
		});
	}

	function deleteKey(k, reload) {
		confirmDelete({
			title: "Delete key " + k.name + "?",
			intro: `Requests signed with ${k.api_key} are refused from now on. This cannot be undone.`,
			submitLabel: "Delete key",
			path: "keys/" + enc(k.id),
			done: `Key ${k.name} deleted.`,
			reload() {
				if (location.hash.startsWith("#key/")) location.hash = "#keys";
				else reload();
			},
		});
	}

	// ---- the secret shown once ---------------------------------------------

	// showSecretOnce shows a new secret with copy buttons. The API never
	// answers it again, so the card stays, whatever page one goes to, until
	// it is dismissed; leaving the console meanwhile asks first.
	function showSecretOnce(k, how, home) {
		secretHome = home || current;
		const line = (label, id, value) => el("div", { class: "secret-line" },
			el("label", { for: id }, label),
			el("input", { id, readonly: true, value, spellcheck: "false" }),
			copyButton(value, label));
		$("secret-once").replaceChildren(el("div", { class: "card secret", role: "alert" },
			el("h3", {}, `Key ${k.name} ${how}: save the API secret now`),
			el("p", { class: "warning" }, "The API secret will not be shown again. Copy it into your client's configuration or a secret store before you close this box."),
			line("Access key ID", "once-id", k.id),
			line("API key", "once-api-key", k.api_key),
			line("API secret", "once-api-secret", k.api_secret),
			el("div", { class: "actions" }, button("I have saved the secret", dismissSecret, "primary"))));
		$("once-api-secret").select();
	}

	const secretShown = () => $("secret-once").childElementCount > 0;
	let secretHome = ""; // the page the secret was shown on

	function dismissSecret() {
		clear($("secret-once"));
	}

	// leaveSecret asks before a step that would lose the secret (signing
	// out), then takes it.
	function leaveSecret(step) {
		if (!secretShown()) return step();
		openDialog({
			title: "Leave without the secret?",
			intro: "The API secret on this page is shown only once. Once you go on it cannot be shown again; only a reset makes a new one.",
			submitLabel: "Discard the secret and go on",
			danger: true,
			async onSubmit() {
				dismissSecret();
				step();
			},
		});
	}

	// ---- key details ------------------------------------------------------

	// showKey renders the page of one access key: what the caller needs to
	// hand over, its state, its authorization and bindings, the groups it
	// may call, and its usage where the API has it.
	async function showKey(id) {
		const view = $("key-details");
		const reload = () => showKey(id);
		view.classList.add("loading");
		let k, auths, groups;
		try {
			[k, auths, groups] = await Promise.all([
				api("GET", "keys/" + enc(id)),
				api("GET", "authorizations" + query({ access_key_id: id })),
				api("GET", "keys/" + enc(id) + "/groups"),
			]);
		} catch (err) {
			if (err instanceof SessionEnded) return;
			view.replaceChildren(el("div", { class: "notice error", role: "alert" }, describe(err), " ", button("Retry", reload)));
			return;
		} finally {
			view.classList.remove("loading");
		}
		const auth = (auths.items || [])[0];
		const row = (label, ...value) => [el("dt", {}, label), el("dd", {}, ...value)];
		const rotation = isFuture(k.previous_secret_expires_at)
			? ["rotated ", when(k.secret_rotated_at), "; the previous secret stays valid until ", when(k.previous_secret_expires_at)]
			: k.secret_rotated_at ? ["last rotated ", when(k.secret_rotated_at), "; no previous secret valid"] : ["never rotated"];
		const usage = el("section", { id: "key-usage", class: "card", hidden: true, "aria-labelledby": "key-usage-title" });
		view.replaceChildren(
			el("div", { class: "view-head" },
				el("h2", {}, "Access key ", el("span", { id: "key-name" }, k.name)),
				keyActions(k, reload)),
			el("section", { class: "card" },
				el("dl", { class: "details" },
					row("Access key ID", code(k.id), " ", copyButton(k.id, "access key ID")),
					row("API key", code(k.api_key), " ", copyButton(k.api_key, "API key")),
					row("Description", k.description || el("span", { class: "muted" }, "—")),
					row("Kind", k.kind === "imported" ? "imported (the caller's own AK/SK; no reset here)" : "generated"),
					row("State", keyState(k)),
					row("Expires", when(k.expires_at, "never")),
					row("Last used", when(k.last_used_at, "never"), el("small", { class: "hint" }, "approximate: nodes write it every few seconds")),
					row("Secret", ...rotation),
					row("Created", when(k.created_at)))),
			el("section", { class: "card", "aria-labelledby": "key-auth-title" },
				el("h3", { id: "key-auth-title" }, "Authorization"),
				auth ? keyAuthorization(auth, reload, k) : [
					el("p", { class: "hint" }, "No authorization yet: this key can call no API group."),
					button("Authorize", () => createAuthorization(k), "primary", `Authorize key ${k.name}`)]),
			el("section", { class: "card", "aria-labelledby": "key-groups-title" },
				el("h3", { id: "key-groups-title" }, "Groups this key may call"),
				(groups.items || []).length
					? el("ul", { id: "key-groups", class: "plain" }, groups.items.map((b) => el("li", {}, el("span", { class: "chip" }, `${b.group} · ${b.environment === "*" ? "every environment" : b.environment}`))))
					: el("p", { id: "key-groups", class: "hint" }, "None.")),
			usage);
		showUsage(k, usage);
	}

	function keyAuthorization(a, reload, k) {
		return el("div", { id: "key-authorization" },
			el("dl", { class: "details" },
				el("dt", {}, "ID"), el("dd", {}, code(a.id)),
				el("dt", {}, "State"), el("dd", {}, authState(a)),
				el("dt", {}, "Valid"), el("dd", {}, "from ", when(a.valid_from, "any time"), " until ", when(a.valid_until, "open end")),
				el("dt", {}, "Plan"), el("dd", {}, a.plan || el("span", { class: "muted" }, "none")),
				el("dt", {}, "Bindings"), el("dd", {}, bindingChips(a, reload, k))),
			authorizationActions(a, reload, k));
	}

	// showUsage fills the usage section when the API answers
	// keys/{id}/usage: a gauge per quota budget and the daily counts as a
	// chart. Without that endpoint (or plans) the section stays hidden.
	async function showUsage(k, section) {
		let usage;
		try {
			usage = await api("GET", "keys/" + enc(k.id) + "/usage");
		} catch (err) {
			if (err instanceof SessionEnded || (err instanceof ApiError && (err.status === 404 || err.status === 405))) return;
			section.replaceChildren(el("div", { class: "notice error", role: "alert" }, "Usage: " + describe(err)));
			section.hidden = false;
			return;
		}
		const budgets = (usage.budgets || []).filter((b) => b.quota);
		const daily = usage.daily || [];
		if (!budgets.length && !daily.length) return;
		fill(section,
			el("h3", { id: "key-usage-title" }, "Usage"),
			budgets.length ? el("div", { class: "gauges" }, budgets.map(gauge)) : null,
			daily.length ? dailyChart(daily) : el("p", { class: "hint" }, "No requests counted yet."));
		section.hidden = false;
	}

	const SVG = "http://www.w3.org/2000/svg";

	function svg(tag, attrs, ...children) {
		const node = document.createElementNS(SVG, tag);
		for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
		node.append(...children);
		return node;
	}

	// gauge draws one quota budget: used of its requests this period.
	function gauge(b) {
		const limit = b.quota.requests || 1;
		const share = Math.min(1, (b.used || 0) / limit);
		const title = `${b.scope === "group" ? "group " + b.group : "all groups"} · plan ${b.plan}`;
		const label = `${title}: ${b.used} of ${b.quota.requests} requests this ${b.quota.period} used`;
		return el("figure", { class: "gauge" },
			svg("svg", { viewBox: "0 0 200 16", width: 200, height: 16, role: "img", "aria-label": label },
				svg("rect", { x: 0, y: 0, width: 200, height: 16, rx: 4, class: "gauge-track" }),
				svg("rect", { x: 0, y: 0, width: Math.round(200 * share), height: 16, rx: 4, class: share >= 0.9 ? "gauge-fill high" : "gauge-fill" })),
			el("figcaption", {}, label, b.resets_at ? [", resets ", when(b.resets_at)] : null));
	}

	// dailyChart draws the daily counts, every group together: allowed and
	// limited requests stacked per day.
	function dailyChart(daily) {
		const byDate = new Map();
		for (const d of daily) {
			const day = byDate.get(d.date) || { allowed: 0, limited: 0 };
			day.allowed += d.allowed || 0;
			day.limited += d.limited || 0;
			byDate.set(d.date, day);
		}
		const dates = [...byDate.keys()].sort();
		const top = Math.max(1, ...dates.map((d) => byDate.get(d).allowed + byDate.get(d).limited));
		const width = 600, height = 140, step = width / dates.length, bar = Math.max(1, step * 0.8);
		const bars = dates.flatMap((date, i) => {
			const { allowed, limited } = byDate.get(date);
			const ha = (allowed / top) * height, hl = (limited / top) * height;
			return [
				svg("rect", { x: i * step, y: height - ha, width: bar, height: ha, class: "bar-allowed" }, svg("title", {}, `${date}: ${allowed} allowed`)),
				svg("rect", { x: i * step, y: height - ha - hl, width: bar, height: hl, class: "bar-limited" }, svg("title", {}, `${date}: ${limited} limited`)),
			];
		});
		const total = dates.reduce((n, d) => n + byDate.get(d).allowed, 0);
		return el("figure", { class: "chart" },
			svg("svg", { id: "usage-chart", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img",
				"aria-label": `Daily requests from ${dates[0]} to ${dates[dates.length - 1]}: ${total} allowed, at most ${top} a day` }, ...bars),
			el("figcaption", {}, `Requests per day (UTC), ${dates[0]} to ${dates[dates.length - 1]}: allowed `, el("span", { class: "legend allowed" }, "■"), " and limited ", el("span", { class: "legend limited" }, "■"), "."));
	}

	// ---- authorizations ---------------------------------------------------

	const authFilter = () => {
		const f = $("auth-filter").elements;
		return { access_key_id: f.access_key_id.value.trim(), group: f.group.value.trim() };
	};

	const authHeaders = ["Access key", "State", "Valid", "Allowed IPs", "Plan", "Bindings", ""];

	// keysOf fetches the keys the authorizations name, so their rows can
	// show each key's name and state (one page's worth, in parallel).
	async function keysOf(auths) {
		const ids = [...new Set(auths.map((a) => a.access_key_id))];
		const answers = await Promise.allSettled(ids.map((id) => api("GET", "keys/" + enc(id))));
		const byID = new Map();
		answers.forEach((r, i) => { if (r.status === "fulfilled") byID.set(ids[i], r.value); });
		return byID;
	}

	function authorizationRow(a, reload, keysByID) {
		const k = keysByID && keysByID.get(a.access_key_id);
		return [
			[k ? el("strong", {}, keyLink(k)) : el("span", { class: "muted" }, "key not found"), el("div", {}, code(a.access_key_id)), muted(a.api_key),
				k ? el("div", {}, "key ", keyState(k)) : null],
			[authState(a), a.description ? muted(a.description) : null, muted(a.id)],
			el("div", { class: "window" }, el("span", {}, "from ", when(a.valid_from, "any time")), el("span", {}, "until ", when(a.valid_until, "open end"))),
			a.allowed_ips.length ? a.allowed_ips.map((ip) => el("div", {}, code(ip))) : el("span", { class: "muted" }, "any"),
			a.plan || el("span", { class: "muted" }, "none"),
			bindingChips(a, reload, k),
			authorizationActions(a, reload, k),
		];
	}

	// whose names an authorization in accessible names: by its key's name
	// when known.
	const whose = (a, k) => `authorization of ${k ? "key " + k.name : a.access_key_id}`;

	function bindingChips(a, reload, k) {
		return el("div", { class: "chips" },
			a.bindings.map((b) => el("span", { class: "chip" },
				`${b.group} · ${b.environment}${b.plan ? " · plan " + b.plan : ""}`,
				el("button", { type: "button", class: "unbind", title: `Unbind ${b.group} (${b.environment})`,
					"aria-label": `Unbind ${b.group} ${b.environment} from the ${whose(a, k)}`, onclick: () => unbind(a, b, reload) }, "×"))),
			button("+ Bind", () => bind(a, reload), "small", `Bind a group to the ${whose(a, k)}`));
	}

	function authorizationActions(a, reload, k) {
		const of = " the " + whose(a, k);
		return el("div", { class: "row-actions" },
			button(a.enabled ? "Disable" : "Enable", () => toggleAuthorization(a, reload), null, (a.enabled ? "Disable" : "Enable") + of),
			button("Edit", () => editAuthorization(a, reload), null, "Edit" + of),
			button("Delete", () => deleteAuthorization(a, reload), "danger", "Delete" + of));
	}

	function toggleAuthorization(a, reload) {
		toggleEnabled({
			path: "authorizations/" + enc(a.id), enabled: a.enabled, what: `authorization ${a.id}`, reload,
			intro: `The key ${a.api_key} can call none of its groups until you enable it again.`,
		});
	}

	function authState(a) {
		const states = [a.enabled ? badge("enabled", "ok") : badge("disabled", "off")];
		if (isFuture(a.valid_from)) states.push(badge("not yet valid", "warn"));
		if (isPast(a.valid_until)) states.push(badge("expired", "warn"));
		return states;
	}

	const authorizations = pagedList({
		container: $("authorizations-list"),
		path: () => "authorizations" + query(authFilter()),
		headers: authHeaders,
		empty: "No authorizations.",
		prepare: keysOf,
		row: authorizationRow,
	});

	// choices loads up to CHOICES_LIMIT items of a list for a picker.
	async function choices(path) {
		return (await api("GET", `${path}?limit=${CHOICES_LIMIT}`)).items || [];
	}

	function groupSelect(name, groups, label) {
		return el("select", { name, required: true, "aria-label": label },
			el("option", { value: "" }, groups.length ? "— choose a group —" : "— no groups: create one first —"),
			groups.map((g) => el("option", { value: g.name }, g.name + (g.description ? " — " + g.description : ""))));
	}

	function planSelect(name, plans, current, label) {
		return el("select", { name, "aria-label": label },
			el("option", { value: "" }, "none"),
			plans.map((p) => el("option", { value: p.name, selected: p.name === current }, p.name + (p.description ? " — " + p.description : ""))));
	}

	// environmentPicker offers the environments the chosen group knows and
	// * (every one). A new environment takes an explicit "Add environment",
	// so a typo cannot slip in as one.
	function environmentPicker(groupSelectNode, groups, label) {
		const select = el("select", { name: "environment", "aria-label": label });
		const offer = () => {
			const g = groups.find((x) => x.name === groupSelectNode.value);
			fill(select, el("option", { value: "*" }, "* (every environment)"),
				(g ? g.environments : []).filter((e) => e !== "*").map((e) => el("option", { value: e }, e)));
		};
		groupSelectNode.addEventListener("change", offer);
		offer();
		const box = el("div", { class: "environment" }, select);
		const add = button("Add environment", () => {
			const fresh = input("new_environment", { autocomplete: "off", "aria-label": "New environment name", placeholder: "new environment" });
			box.replaceChildren(fresh, button("Cancel", () => { box.replaceChildren(select, add); }, "small", "Cancel the new environment"));
			fresh.focus();
		}, "small", "Add a new environment");
		box.append(add);
		return {
			node: box,
			value() {
				const fresh = box.querySelector("input");
				if (!fresh) return select.value;
				const v = fresh.value.trim();
				if (!v) throw new CheckError("name the new environment, or cancel it.");
				return v;
			},
		};
	}

	// keyPicker finds the access key an authorization names: it searches as
	// one types (name, ID or APIKey) and takes a pasted access key ID or
	// APIKey as it is. Each match shows the access key ID the caller hands
	// over.
	function keyPicker(preset) {
		let chosen = preset || null;
		let seq = 0;
		const box = input("key_search", { autocomplete: "off", spellcheck: "false", role: "combobox", "aria-autocomplete": "list",
			"aria-controls": "key-matches", "aria-expanded": "false", placeholder: "name, access key ID or API key", value: preset ? preset.name : "" });
		const matches = el("ul", { id: "key-matches", role: "listbox", class: "matches", "aria-label": "Matching access keys" });
		const picked = el("p", { id: "key-picked", class: "hint", "aria-live": "polite" });
		const show = () => {
			picked.replaceChildren(...(chosen
				? ["Chosen: ", el("strong", {}, chosen.name), " — access key ID ", code(chosen.id), " — API key ", code(chosen.api_key)]
				: ["No key chosen yet."]));
		};
		const choose = (k) => {
			chosen = k;
			box.value = k.name;
			matches.replaceChildren();
			box.setAttribute("aria-expanded", "false");
			show();
		};
		async function search() {
			const text = box.value.trim();
			const mine = ++seq;
			chosen = null;
			show();
			if (!text) return matches.replaceChildren();
			const lookups = [api("GET", "keys" + query({ q: text, limit: 10 })).then((l) => l.items || [])];
			if (text.startsWith("ak-")) lookups.push(api("GET", "keys/" + enc(text)).then((k) => [k]));
			lookups.push(api("GET", "keys" + query({ api_key: text })).then((l) => l.items || []));
			const found = new Map();
			for (const r of await Promise.allSettled(lookups)) {
				if (r.status === "fulfilled") for (const k of r.value) found.set(k.id, k);
			}
			if (mine !== seq) return; // a later keystroke's search is under way
			const exact = [...found.values()].find((k) => k.id === text || k.api_key === text || k.name === text);
			if (exact) return choose(exact);
			matches.replaceChildren(...(found.size
				? [...found.values()].map((k) => el("li", { role: "option" },
					el("button", { type: "button", class: "match", onclick: () => choose(k), "aria-label": `Choose key ${k.name}, access key ID ${k.id}` },
						el("strong", {}, k.name), " ", code(k.id), " ", el("span", { class: "muted" }, k.api_key), k.enabled ? null : badge("disabled", "off"))))
				: [el("li", { class: "muted" }, "No key matches.")]));
			box.setAttribute("aria-expanded", String(found.size > 0));
		}
		let timer;
		box.addEventListener("input", () => {
			clearTimeout(timer);
			timer = setTimeout(search, 150);
		});
		show();
		return {
			node: el("div", { class: "picker" }, field("Access key", box, "Type to search, or paste the caller's access key ID or API key."), matches, picked),
			key: () => chosen,
		};
	}

	function windowFields(a) {
		return [
			field("Valid from", input("valid_from", { type: "datetime-local", value: toInputTime(a && a.valid_from) }), "Your local time; empty: no start."),
			field("Valid until", input("valid_until", { type: "datetime-local", value: toInputTime(a && a.valid_until) }), "Empty: no end."),
			field("Allowed IPs", el("textarea", { name: "allowed_ips", rows: 2, spellcheck: "false" }, a ? a.allowed_ips.join("\n") : ""),
				"CIDRs or addresses, one per line; empty: any client address."),
		];
	}

	async function createAuthorization(forKey) {
		let groups, plans;
		try {
			[groups, plans] = await Promise.all([choices("groups"), choices("plans")]);
		} catch (err) {
			fail(err);
			return;
		}
		const picker = keyPicker(forKey);
		const bindingRows = el("div", { class: "bindings" });
		const rows = [];
		const addBinding = () => {
			const n = rows.length + 1;
			const group = groupSelect("binding_group", groups, `Group of binding ${n}`);
			const env = environmentPicker(group, groups, `Environment of binding ${n}`);
			const plan = planSelect("binding_plan", plans, "", `Plan of binding ${n}`);
			const rowNode = el("div", { class: "binding-row" }, group, env.node, plan);
			const entry = { group, env, plan, rowNode };
			rowNode.append(button("Remove", () => { rowNode.remove(); rows.splice(rows.indexOf(entry), 1); }, "small", `Remove binding ${n}`));
			rows.push(entry);
			bindingRows.append(rowNode);
		};
		addBinding();
		openDialog({
			title: "New authorization",
			intro: "An authorization lets one access key call the API groups it is bound to.",
			fields: [
				picker.node,
				field("Description", input("description", { autocomplete: "off" })),
				field("Plan", planSelect("plan", plans, "", null), "A usage plan for all the key's calls; a binding's own plan replaces it for its group."),
				...windowFields(null),
				el("fieldset", {}, el("legend", {}, "Bindings (group, environment, optional plan)"),
					bindingRows, button("+ Add binding", addBinding, "small")),
			],
			submitLabel: "Create authorization",
			async onSubmit(f) {
				const k = picker.key();
				const typed = f.key_search.value.trim();
				if (!k && !typed) throw new CheckError("choose the access key to authorize.");
				const bindings = [];
				for (const r of rows) {
					if (r.group.value) bindings.push({ group: r.group.value, environment: r.env.value(), plan: r.plan.value || null });
				}
				const body = {
					description: f.description.value,
					valid_from: fromInputTime(f.valid_from.value),
					valid_until: fromInputTime(f.valid_until.value),
					allowed_ips: splitList(f.allowed_ips.value),
					bindings,
				};
				if (f.plan.value) body.plan = f.plan.value;
				// A pasted ID or APIKey the search has not resolved yet goes
				// as it is: the server knows it or says so.
				if (k) body.access_key_id = k.id;
				else if (typed.startsWith("ak-")) body.access_key_id = typed;
				else body.api_key = typed;
				const a = await api("POST", "authorizations", body);
				notify("ok", `Authorization ${a.id} created for key ${k ? k.name : typed}.`);
				if (location.hash === "#authorizations") authorizations.restart();
				else location.hash = "#authorizations";
			},
		});
	}

	async function editAuthorization(a, reload) {
		let plans;
		try {
			plans = await choices("plans");
		} catch (err) {
			fail(err);
			return;
		}
		openDialog({
			title: "Edit authorization " + a.id,
			fields: [
				field("Description", input("description", { value: a.description, autocomplete: "off" })),
				field("Plan", planSelect("plan", plans, a.plan || "", null)),
				...windowFields(a),
			],
			submitLabel: "Save",
			async onSubmit(f) {
				await api("PATCH", "authorizations/" + enc(a.id), {
					description: f.description.value,
					plan: f.plan.value || null,
					valid_from: fromInputTime(f.valid_from.value),
					valid_until: fromInputTime(f.valid_until.value),
					allowed_ips: splitList(f.allowed_ips.value),
				});
				notify("ok", `Authorization ${a.id} saved.`);
				reload();
			},
		});
	}

	async function bind(a, reload) {
		let groups, plans;
		try {
			[groups, plans] = await Promise.all([choices("groups"), choices("plans")]);
		} catch (err) {
			fail(err);
			return;
		}
		const group = groupSelect("group", groups, null);
		const env = environmentPicker(group, groups, null);
		openDialog({
			title: "Bind a group to " + a.id,
			fields: [
				field("Group", group),
				el("div", { class: "field" }, el("span", { class: "label", id: "environment-label" }, "Environment"), env.node,
					el("small", { class: "hint" }, "* binds every environment of the group; the others are the environments the group knows.")),
				field("Plan", planSelect("plan", plans, "", null), "Optional: this group's own budget for the key."),
			],
			submitLabel: "Bind",
			async onSubmit(f) {
				if (!f.group.value) throw new CheckError("choose a group.");
				const environment = env.value();
				await api("PUT", `authorizations/${enc(a.id)}/bindings/${enc(f.group.value)}${query({ environment, plan: f.plan.value })}`);
				notify("ok", `Bound ${f.group.value} (${environment}) to ${a.id}.`);
				reload();
			},
		});
	}

	function unbind(a, b, reload) {
		confirmDelete({
			title: `Unbind ${b.group}?`,
			intro: `The key ${a.api_key} can no longer call group ${b.group} in environment ${b.environment}.`,
			submitLabel: "Unbind",
			path: `authorizations/${enc(a.id)}/bindings/${enc(b.group)}${query({ environment: b.environment })}`,
			done: `Unbound ${b.group} (${b.environment}) from ${a.id}.`,
			reload,
		});
	}

	function deleteAuthorization(a, reload) {
		confirmDelete({
			title: "Delete authorization " + a.id + "?",
			intro: `The key ${a.api_key} loses every group it is bound to. The key itself stays.`,
			submitLabel: "Delete authorization",
			path: "authorizations/" + enc(a.id),
			done: `Authorization ${a.id} deleted.`,
			reload,
		});
	}

	// ---- groups -----------------------------------------------------------

	const groups = pagedList({
		container: $("groups-list"),
		path: () => "groups",
		headers: ["Group", "Environments", "Routes", "Created", ""],
		empty: "No API groups.",
		row: (g, reload) => [
			[el("strong", {}, g.name), g.description ? muted(g.description) : null],
			g.environments.length ? el("div", { class: "chips" }, g.environments.map((e) => el("span", { class: "chip" }, e))) : el("span", { class: "muted" }, "—"),
			g.configured ? badge("enforced", "ok") : el("span", { title: "no running access_auth route names this group" }, badge("no route", "off")),
			when(g.created_at),
			el("div", { class: "row-actions" },
				button("Authorizations", () => showGroupAuthorizations(g), null, `Authorizations of group ${g.name}`),
				button("Delete", () => deleteGroup(g, reload), "danger", `Delete group ${g.name}`)),
		],
	});

	function createGroup() {
		openDialog({
			title: "New API group",
			fields: [
				field("Name", input("name", { required: true, autocomplete: "off", pattern: "[a-z0-9][a-z0-9_-]{0,63}" }),
					"Lower-case letters, digits, _ and -; the name access_auth routes use."),
				field("Description", input("description", { autocomplete: "off" })),
			],
			submitLabel: "Create group",
			async onSubmit(f) {
				if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(f.name.value.trim())) {
					throw new CheckError("a group's name is lower-case letters, digits, _ and - (at most 64, starting with a letter or digit).");
				}
				const g = await api("POST", "groups", { name: f.name.value.trim(), description: f.description.value });
				notify("ok", `Group ${g.name} created.`);
				groups.restart();
			},
		});
	}

	function deleteGroup(g, reload) {
		confirmDelete({
			title: "Delete group " + g.name + "?",
			intro: "Every binding to this group is removed with it. A running route that names it registers it again.",
			submitLabel: "Delete group",
			path: "groups/" + enc(g.name),
			done: `Group ${g.name} deleted.`,
			reload() {
				clear($("group-authorizations"));
				reload();
			},
		});
	}

	function showGroupAuthorizations(g) {
		const list = el("div");
		$("group-authorizations").replaceChildren(el("div", { class: "card" },
			el("div", { class: "view-head" },
				el("h3", {}, `Authorizations bound to ${g.name}`),
				button("Close", () => clear($("group-authorizations")), "quiet", `Close the authorizations of group ${g.name}`)),
			list));
		pagedList({
			container: list,
			path: () => `groups/${enc(g.name)}/authorizations`,
			headers: authHeaders,
			empty: "No authorization is bound to this group.",
			prepare: keysOf,
			row: authorizationRow,
		}).restart();
	}

	// ---- plans ------------------------------------------------------------

	const perLabels = { "1s": "second", "1m": "minute", "1h": "hour" };

	const plans = pagedList({
		container: $("plans-list"),
		path: () => "plans",
		headers: ["Plan", "Rate", "Burst", "Quota", "Updated", ""],
		empty: "No usage plans.",
		row: (p, reload) => [
			[el("strong", {}, p.name), p.description ? muted(p.description) : null],
			p.rate ? `${p.rate.requests} per ${perLabels[p.rate.per] || p.rate.per}` : el("span", { class: "muted" }, "none"),
			String(p.burst || 0),
			p.quota ? `${p.quota.requests} per ${p.quota.period}` : el("span", { class: "muted" }, "none"),
			when(p.updated_at),
			el("div", { class: "row-actions" },
				button("Edit", () => editPlan(p, reload), null, `Edit plan ${p.name}`),
				button("Delete", () => deletePlan(p, reload), "danger", `Delete plan ${p.name}`)),
		],
	});

	// planFields are the inputs of a plan: a rate, a burst, a quota.
	function planFields(p) {
		const opt = (value, label, current) => el("option", { value, selected: value === current }, label);
		return [
			el("fieldset", {}, el("legend", {}, "Rate (empty: none)"),
				el("div", { class: "inline" },
					field("Requests", input("rate_requests", { type: "number", min: 1, value: p && p.rate ? p.rate.requests : "" })),
					field("Per", el("select", { name: "rate_per" }, ["1s", "1m", "1h"].map((v) => opt(v, perLabels[v], p && p.rate ? p.rate.per : "1s")))),
					field("Burst", input("burst", { type: "number", min: 0, value: p ? p.burst || 0 : 0 }), "Extra requests at once."))),
			el("fieldset", {}, el("legend", {}, "Quota (empty: none)"),
				el("div", { class: "inline" },
					field("Requests", input("quota_requests", { type: "number", min: 1, value: p && p.quota ? p.quota.requests : "" })),
					field("Per", el("select", { name: "quota_period" }, ["day", "week", "month"].map((v) => opt(v, v, p && p.quota ? p.quota.period : "day")))))),
		];
	}

	// planBody reads the plan fields; one of rate and quota is needed.
	function planBody(f) {
		const count = (v, what) => {
			if (v === "") return null;
			const n = Number(v);
			if (!Number.isInteger(n) || n < 1) throw new CheckError(`${what} is a whole number of at least 1.`);
			return n;
		};
		const rate = count(f.rate_requests.value.trim(), "the rate's requests");
		const quota = count(f.quota_requests.value.trim(), "the quota's requests");
		const burst = Number(f.burst.value || 0);
		if (!Number.isInteger(burst) || burst < 0) throw new CheckError("the burst is a whole number, 0 or more.");
		if (rate === null && quota === null) throw new CheckError("a plan needs a rate, a quota or both.");
		return {
			rate: rate === null ? null : { requests: rate, per: f.rate_per.value },
			burst,
			quota: quota === null ? null : { requests: quota, period: f.quota_period.value },
		};
	}

	function createPlan() {
		openDialog({
			title: "New usage plan",
			intro: "A plan limits the calls of the authorizations and bindings that name it.",
			fields: [
				field("Name", input("name", { required: true, autocomplete: "off", pattern: "[a-z0-9][a-z0-9_-]{0,63}" }), "Lower-case letters, digits, _ and -."),
				field("Description", input("description", { autocomplete: "off" })),
				...planFields(null),
			],
			submitLabel: "Create plan",
			async onSubmit(f) {
				const name = f.name.value.trim();
				if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) throw new CheckError("a plan's name is lower-case letters, digits, _ and -.");
				const p = await api("POST", "plans", { name, description: f.description.value, ...planBody(f) });
				notify("ok", `Plan ${p.name} created.`);
				plans.restart();
			},
		});
	}

	function editPlan(p, reload) {
		openDialog({
			title: "Edit plan " + p.name,
			intro: "A change applies to every authorization and binding that names the plan; counts so far are kept.",
			fields: [field("Description", input("description", { value: p.description, autocomplete: "off" })), ...planFields(p)],
			submitLabel: "Save",
			async onSubmit(f) {
				await api("PATCH", "plans/" + enc(p.name), { description: f.description.value, ...planBody(f) });
				notify("ok", `Plan ${p.name} saved.`);
				reload();
			},
		});
	}

	function deletePlan(p, reload) {
		confirmDelete({
			title: "Delete plan " + p.name + "?",
			intro: "A plan that an authorization or binding still names cannot be deleted: choose another plan there first.",
			submitLabel: "Delete plan",
			path: "plans/" + enc(p.name),
			done: `Plan ${p.name} deleted.`,
			reload,
		});
	}

	// ---- audit ------------------------------------------------------------

	const audit = pagedList({
		container: $("audit-list"),
		path: () => "audit",
		headers: ["When", "Actor", "Action", "Target", "Remote address"],
		empty: "No audit records.",
		row: (r) => [when(r.at), r.actor, code(r.action), code(r.target), r.remote_addr || el("span", { class: "muted" }, "—")],
	});
	// ---- pages, sign-in, start --------------------------------------------

	// The page shows in the URL's fragment: #keys, #key/<id>,
	// #authorizations, #groups, #plans, #audit.
	const views = { keys, authorizations, groups, plans, audit };
	let current = "";

	function route() {
		let hash = location.hash.slice(1);
		if (hash !== current && current && secretShown() && hash !== secretHome) {
			// Leaving the page of a new secret asks first.
			const target = hash;
			history.replaceState(null, "", "#" + current);
			leaveSecret(() => { location.hash = "#" + target; });
			return;
		}
		const keyID = hash.startsWith("key/") ? decodeURIComponent(hash.slice(4)) : "";
		if (!keyID && !views[hash]) hash = "keys";
		if (location.hash !== "#" + hash) history.replaceState(null, "", "#" + hash);
		current = hash;
		const tab = keyID ? "keys" : hash;
		for (const name of Object.keys(views)) $("view-" + name).hidden = keyID !== "" || name !== hash;
		$("view-key").hidden = keyID === "";
		for (const link of document.querySelectorAll("[data-tab]")) {
			if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
			else link.removeAttribute("aria-current");
		}
		if (keyID) showKey(keyID);
		else views[hash].restart();
	}

	function signedIn(visible) {
		$("sign-in").hidden = visible;
		$("tabs").hidden = !visible;
		$("sign-out").hidden = !visible;
		$("openapi").hidden = !visible;
		if (!visible) {
			for (const tab of Object.keys(views)) $("view-" + tab).hidden = true;
			$("view-key").hidden = true;
		}
	}

	// signOut forgets the token and every rendered answer.
	function signOut(message) {
		sessionStorage.removeItem(TOKEN_KEY);
		closeDialog();
		current = "";
		for (const id of ["secret-once", "notices", "keys-list", "authorizations-list", "groups-list", "group-authorizations", "plans-list", "audit-list", "key-details"]) clear($(id));
		signedIn(false);
		const error = $("sign-in-error");
		error.textContent = message || "";
		error.hidden = !message;
		$("token").focus();
	}

	// downloadOpenAPI saves the API's OpenAPI description: a plain link
	// would not carry the bearer token.
	async function downloadOpenAPI(event) {
		event.preventDefault();
		await run(async () => {
			const doc = await api("GET", "openapi.json");
			const link = el("a", { href: URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" })), download: "openapi.json" });
			link.click();
			URL.revokeObjectURL(link.href);
		});
	}

	async function signIn(event) {
		event.preventDefault();
		const token = $("token").value.trim();
		const error = $("sign-in-error");
		const show = (text) => {
			error.textContent = text;
			error.hidden = false;
		};
		if (!token) return show("Enter a token.");
		try {
			await api("GET", "groups?limit=1", undefined, token);
		} catch (err) {
			if (err.status === 401) return show("Sign-in failed: the server refused this token (401 unauthenticated). Check it and try again.");
			// A server error (the store down, say) comes from behind the
			// token check: the token is good, the views will show the error.
			if (!(err instanceof ApiError) || err.status < 500) return show("Sign-in failed. " + describe(err));
		}
		sessionStorage.setItem(TOKEN_KEY, token);
		$("token").value = "";
		error.hidden = true;
		signedIn(true);
		route();
	}

	function start() {
		$("sign-in-form").addEventListener("submit", signIn);
		$("sign-out").addEventListener("click", () => leaveSecret(() => signOut("")));
		$("openapi").addEventListener("click", downloadOpenAPI);
		$("dialog-form").addEventListener("submit", submitDialog);
		$("dialog-cancel").addEventListener("click", closeDialog);
		// The close event is queued: under load it may arrive after the
		// next dialog opened (input goes first), which keeps its submit.
		$("dialog").addEventListener("close", () => { if (!$("dialog").open) dialogSubmit = null; });
		$("key-create").addEventListener("click", createKey);
		$("key-import").addEventListener("click", importKey);
		$("auth-create").addEventListener("click", () => createAuthorization(null));
		$("group-create").addEventListener("click", createGroup);
		$("plan-create").addEventListener("click", createPlan);
		const filter = (form, list) => $(form).addEventListener("submit", (event) => {
			event.preventDefault();
			list.restart();
		});
		filter("key-filter", keys);
		filter("auth-filter", authorizations);
		// The key list searches as one types, and filters on a change.
		let typing;
		$("key-filter").elements.q.addEventListener("input", () => {
			clearTimeout(typing);
			typing = setTimeout(() => keys.restart(), 250);
		});
		for (const name of ["enabled", "kind"]) $("key-filter").elements[name].addEventListener("change", () => keys.restart());
		window.addEventListener("hashchange", () => {
			if (sessionStorage.getItem(TOKEN_KEY)) route();
		});
		// Closing the tab or reloading while a secret shows asks the browser's question.
		window.addEventListener("beforeunload", (event) => {
			if (secretShown()) event.preventDefault();
		});
		if (sessionStorage.getItem(TOKEN_KEY)) {
			signedIn(true);
			route();
		} else {
			signOut("");
		}
	}

	start();
})();
