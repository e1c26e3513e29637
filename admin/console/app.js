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
		for (const child of children.flat()) {
			if (child !== undefined && child !== null && child !== false) node.append(child);
		}
		return node;
	}

	function button(label, onclick, cls) {
		return el("button", { type: "button", class: cls, onclick }, label);
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

	// What the user should know about an error code, beyond the API's message.
	const explanations = {
		key_in_use: "This key is named by an authorization: delete that authorization first, then the key.",
		authorization_exists: "This key already has an authorization (one per key): bind groups to that one instead.",
		name_taken: "That name (or imported API key) is taken already.",
		group_not_found: "There is no such group: create it under API groups first.",
		not_found: "It does not exist (any more): it may have been deleted meanwhile.",
		store_unavailable: "The store is unavailable right now. Try again in a moment.",
		invalid_argument: "The server refused a value.",
		unauthenticated: "The token was refused.",
		network: "The server did not answer.",
	};

	// describe turns an error into one readable line.
	function describe(err) {
		if (!(err instanceof ApiError)) return "Unexpected error: " + err.message;
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
		openDialog({
			title, intro, submitLabel, danger: true,
			async onSubmit() {
				await api("DELETE", path);
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
	// paging. path() gives the endpoint with its filters; row(item) the cells.
	function pagedList({ container, path, headers, row, empty }) {
		let cursors = [""]; // cursors[i] opens page i
		let page = 0;

		async function load() {
			const base = path();
			const sep = base.includes("?") ? "&" : "?";
			const url = `${base}${sep}limit=${PAGE_SIZE}${cursors[page] ? "&cursor=" + enc(cursors[page]) : ""}`;
			container.classList.add("loading");
			try {
				const answer = await api("GET", url);
				cursors = cursors.slice(0, page + 1);
				if (answer.next_cursor) cursors.push(answer.next_cursor);
				render(answer.items || []);
			} catch (err) {
				if (err instanceof SessionEnded) return;
				container.replaceChildren(el("div", { class: "notice error", role: "alert" }, describe(err), " ", button("Retry", load)));
			} finally {
				container.classList.remove("loading");
			}
		}

		function render(items) {
			const table = el("table", {},
				el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
				el("tbody", {}, items.length
					? items.map((item) => el("tr", {}, row(item, load).map((cell) => el("td", {}, cell))))
					: el("tr", {}, el("td", { colspan: headers.length, class: "empty" }, empty))));
			const pager = el("div", { class: "pager" },
				el("button", { type: "button", disabled: page === 0, onclick: () => { page--; load(); } }, "← Previous"),
				el("span", { class: "muted" }, `Page ${page + 1}`),
				el("button", { type: "button", disabled: page + 1 >= cursors.length, onclick: () => { page++; load(); } }, "Next →"));
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

	// ---- access keys ------------------------------------------------------

	const keyFilter = () => {
		const f = $("key-filter").elements;
		return { name: f.name.value.trim(), enabled: f.enabled.value };
	};

	const keys = pagedList({
		container: $("keys-list"),
		path: () => "keys" + query(keyFilter()),
		headers: ["Name", "API key", "Kind", "State", "Expires", "Last used", "Created", ""],
		empty: "No access keys.",
		row: (k, reload) => [
			[el("strong", {}, k.name), k.description ? muted(k.description) : null],
			[code(k.api_key), muted(k.id)],
			k.kind,
			keyState(k),
			when(k.expires_at, "never"),
			when(k.last_used_at, "never"),
			when(k.created_at),
			el("div", { class: "row-actions" },
				button(k.enabled ? "Disable" : "Enable", () => run(
					() => api("PATCH", "keys/" + enc(k.id), { enabled: !k.enabled }).then(reload),
					`Key ${k.name} ${k.enabled ? "disabled" : "enabled"}.`)),
				button("Edit", () => editKey(k, reload)),
				button("Reset secret", () => resetKey(k, reload)),
				button("Authorize", () => createAuthorization(k)),
				button("Delete", () => deleteKey(k, reload), "danger")),
		],
	});

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
			intro: "The gateway generates the API key and secret. The secret is shown once, right after creation.",
			fields: [
				field("Name", input("name", { required: true, autocomplete: "off" }), "Unique."),
				field("Description", input("description", { autocomplete: "off" })),
				expiryField(null),
			],
			submitLabel: "Create key",
			async onSubmit(f) {
				const body = { name: f.name.value.trim(), description: f.description.value };
				const expires = fromInputTime(f.expires_at.value);
				if (expires) body.expires_at = expires;
				const created = await api("POST", "keys", body);
				showSecretOnce(created, "created");
				keys.restart();
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
				const k = await api("POST", "keys", {
					name: f.name.value.trim(), kind: "imported", api_key: f.api_key.value.trim(),
					api_secret: f.api_secret.value, description: f.description.value,
				});
				notify("ok", `Key ${k.name} imported as ${k.id}.`);
				keys.restart();
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
			reload,
		});
	}

	// showSecretOnce shows a new secret with copy buttons until dismissed;
	// the API never answers it again.
	function showSecretOnce(k, how) {
		const line = (label, id, value) => el("div", { class: "secret-line" },
			el("label", { for: id }, label),
			el("input", { id, readonly: true, value, spellcheck: "false" }),
			button("Copy", (event) => copy($(id), event.target)));
		$("secret-once").replaceChildren(el("div", { class: "card secret", role: "alert" },
			el("h3", {}, `Key ${k.name} ${how}: save the API secret now`),
			el("p", { class: "warning" }, "The API secret will not be shown again. Copy it into your client's configuration or a secret store before you close this box."),
			line("Access key ID", "once-id", k.id),
			line("API key", "once-api-key", k.api_key),
			line("API secret", "once-api-secret", k.api_secret),
			el("div", { class: "actions" }, button("I have saved the secret", () => clear($("secret-once")), "primary"))));
		$("once-api-secret").select();
	}

	async function copy(from, btn) {
		try {
			await navigator.clipboard.writeText(from.value);
		} catch {
			// No clipboard API (plain HTTP is not a secure context): the
			// selection is copied the old way.
			from.select();
			document.execCommand("copy");
		}
		btn.textContent = "Copied";
		setTimeout(() => { btn.textContent = "Copy"; }, 1500);
	}

	// ---- authorizations ---------------------------------------------------

	const authFilter = () => {
		const f = $("auth-filter").elements;
		return { access_key_id: f.access_key_id.value.trim(), group: f.group.value.trim() };
	};

	const authHeaders = ["Authorization", "Access key", "State", "Valid", "Allowed IPs", "Bindings", ""];

	function authorizationRow(a, reload) {
		return [
			[code(a.id), a.description ? muted(a.description) : null],
			[code(a.api_key), muted(a.access_key_id)],
			authState(a),
			el("div", { class: "window" }, el("span", {}, "from ", when(a.valid_from, "any time")), el("span", {}, "until ", when(a.valid_until, "open end"))),
			a.allowed_ips.length ? a.allowed_ips.map((ip) => el("div", {}, code(ip))) : el("span", { class: "muted" }, "any"),
			el("div", { class: "chips" },
				a.bindings.map((b) => el("span", { class: "chip" },
					`${b.group} · ${b.environment}`,
					el("button", { type: "button", class: "unbind", title: `Unbind ${b.group} (${b.environment})`, "aria-label": `Unbind ${b.group} ${b.environment}`, onclick: () => unbind(a, b, reload) }, "×"))),
				button("+ Bind", () => bind(a, reload), "small")),
			el("div", { class: "row-actions" },
				button(a.enabled ? "Disable" : "Enable", () => run(
					() => api("PATCH", "authorizations/" + enc(a.id), { enabled: !a.enabled }).then(reload),
					`Authorization ${a.id} ${a.enabled ? "disabled" : "enabled"}.`)),
				button("Edit", () => editAuthorization(a, reload)),
				button("Delete", () => deleteAuthorization(a, reload), "danger")),
		];
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
		row: authorizationRow,
	});

	// choices loads up to CHOICES_LIMIT items of a list for a picker.
	async function choices(path) {
		return (await api("GET", `${path}?limit=${CHOICES_LIMIT}`)).items || [];
	}

	function groupSelect(name, groups) {
		return el("select", { name, required: true },
			el("option", { value: "" }, groups.length ? "— choose a group —" : "— no groups: create one first —"),
			groups.map((g) => el("option", { value: g.name }, g.name + (g.description ? " — " + g.description : ""))));
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
		let keyList, groups;
		try {
			[keyList, groups] = await Promise.all([choices("keys"), choices("groups")]);
		} catch (err) {
			fail(err);
			return;
		}
		const bindingRows = el("div", { class: "bindings" });
		const addBinding = () => bindingRows.append(el("div", { class: "binding-row" },
			groupSelect("binding_group", groups),
			input("binding_environment", { value: "*", "aria-label": "environment", autocomplete: "off" }),
			button("Remove", (event) => event.target.parentElement.remove())));
		addBinding();
		openDialog({
			title: "New authorization",
			intro: "An authorization lets one access key call the API groups it is bound to.",
			fields: [
				field("Access key", el("select", { name: "access_key_id", required: true },
					el("option", { value: "" }, "— choose a key —"),
					keyList.map((k) => el("option", { value: k.id, selected: forKey && k.id === forKey.id }, `${k.name} — ${k.api_key}`)))),
				field("Description", input("description", { autocomplete: "off" })),
				...windowFields(null),
				el("fieldset", {}, el("legend", {}, "Bindings (group and environment; * is every environment)"),
					bindingRows, button("+ Add binding", addBinding, "small")),
			],
			submitLabel: "Create authorization",
			async onSubmit(f) {
				const bindings = [];
				for (const row of bindingRows.children) {
					const group = row.querySelector("select").value;
					if (group) bindings.push({ group, environment: row.querySelector("input").value.trim() || "*" });
				}
				const a = await api("POST", "authorizations", {
					access_key_id: f.access_key_id.value,
					description: f.description.value,
					valid_from: fromInputTime(f.valid_from.value),
					valid_until: fromInputTime(f.valid_until.value),
					allowed_ips: splitList(f.allowed_ips.value),
					bindings,
				});
				notify("ok", `Authorization ${a.id} created.`);
				showTab("authorizations");
			},
		});
	}

	function editAuthorization(a, reload) {
		openDialog({
			title: "Edit authorization " + a.id,
			fields: [field("Description", input("description", { value: a.description, autocomplete: "off" })), ...windowFields(a)],
			submitLabel: "Save",
			async onSubmit(f) {
				await api("PATCH", "authorizations/" + enc(a.id), {
					description: f.description.value,
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
		let groups;
		try {
			groups = await choices("groups");
		} catch (err) {
			fail(err);
			return;
		}
		openDialog({
			title: "Bind a group to " + a.id,
			fields: [
				field("Group", groupSelect("group", groups)),
				field("Environment", input("environment", { value: "*", autocomplete: "off" }), "* binds every environment of the group."),
			],
			submitLabel: "Bind",
			async onSubmit(f) {
				if (!f.group.value) throw new ApiError(0, "invalid_argument", "choose a group");
				const environment = f.environment.value.trim() || "*";
				await api("PUT", `authorizations/${enc(a.id)}/bindings/${enc(f.group.value)}${query({ environment })}`);
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
				button("Authorizations", () => showGroupAuthorizations(g)),
				button("Delete", () => deleteGroup(g, reload), "danger")),
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
				button("Close", () => clear($("group-authorizations")), "quiet")),
			list));
		pagedList({
			container: list,
			path: () => `groups/${enc(g.name)}/authorizations`,
			headers: authHeaders,
			empty: "No authorization is bound to this group.",
			row: authorizationRow,
		}).restart();
	}

	// ---- audit ------------------------------------------------------------

	const audit = pagedList({
		container: $("audit-list"),
		path: () => "audit",
		headers: ["When", "Actor", "Action", "Target", "Remote address"],
		empty: "No audit records.",
		row: (r) => [when(r.at), r.actor, code(r.action), code(r.target), r.remote_addr || el("span", { class: "muted" }, "—")],
	});

	// ---- tabs, sign-in, start ---------------------------------------------

	const views = { keys, authorizations, groups, audit };

	function showTab(name) {
		if (!views[name]) name = "keys";
		if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
		for (const tab of Object.keys(views)) {
			$("view-" + tab).hidden = tab !== name;
			document.querySelector(`[data-tab="${tab}"]`).classList.toggle("active", tab === name);
		}
		if (name !== "keys") clear($("secret-once"));
		views[name].restart();
	}

	function signedIn(visible) {
		$("sign-in").hidden = visible;
		$("tabs").hidden = !visible;
		$("sign-out").hidden = !visible;
		$("openapi").hidden = !visible;
		if (!visible) for (const tab of Object.keys(views)) $("view-" + tab).hidden = true;
	}

	// signOut forgets the token and every rendered answer.
	function signOut(message) {
		sessionStorage.removeItem(TOKEN_KEY);
		closeDialog();
		for (const id of ["secret-once", "notices", "keys-list", "authorizations-list", "groups-list", "group-authorizations", "audit-list"]) clear($(id));
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
		showTab(location.hash.slice(1));
	}

	function start() {
		$("sign-in-form").addEventListener("submit", signIn);
		$("sign-out").addEventListener("click", () => signOut(""));
		$("openapi").addEventListener("click", downloadOpenAPI);
		$("dialog-form").addEventListener("submit", submitDialog);
		$("dialog-cancel").addEventListener("click", closeDialog);
		$("dialog").addEventListener("close", () => { dialogSubmit = null; });
		for (const tab of document.querySelectorAll("[data-tab]")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
		$("key-create").addEventListener("click", createKey);
		$("key-import").addEventListener("click", importKey);
		$("auth-create").addEventListener("click", () => createAuthorization(null));
		$("group-create").addEventListener("click", createGroup);
		const filter = (form, list) => $(form).addEventListener("submit", (event) => {
			event.preventDefault();
			list.restart();
		});
		filter("key-filter", keys);
		filter("auth-filter", authorizations);
		window.addEventListener("hashchange", () => {
			if (sessionStorage.getItem(TOKEN_KEY)) showTab(location.hash.slice(1));
		});
		if (sessionStorage.getItem(TOKEN_KEY)) {
			signedIn(true);
			showTab(location.hash.slice(1));
		} else {
			signOut("");
		}
	}

	start();
})();
