/* app.js - the kiosk touch screen: draws the screen the daemon says is current and forwards each press.
 *
 * Every decision is the daemon's (kiosk/flow.c); the contract is kiosk/ui.h. This file only:
 *  - long-polls GET /api/state?after=SEQ and draws each new state (texts come from state.texts, already in
 *    the person's language; the only words written here are the last-resort "not responding" line used
 *    before any state has ever arrived);
 *  - sends a press as POST /api/action {action, value, seq} with the seq of the screen it was made on, and
 *    disables every button until the next state, so a double tap cannot act twice;
 *  - keeps what the staff member types on the on-screen keyboard in the page until OK (the daemon gets the
 *    whole field), and forgets it as soon as the screen changes;
 *  - shows "the kiosk is not responding" over everything while the daemon cannot be reached, and reconnects.
 * Tests find things by data-testid; the <main> element carries data-screen and data-seq of what is drawn.
 */
'use strict';

(function () {
	/* The daemon holds a long-poll up to 20 s; give up a little later so a hung connection is noticed. */
	const POLL_TIMEOUT_MS = 25000;
	/* An action answers at once (blocking work runs on the daemon's worker while the screen says "working").
	 * One that has not answered in ACTION_TRY_MS is sent again, with the same seq, on a new connection: a
	 * keep-alive connection can sit behind the long-poll on the server's side, and the seq makes a repeat
	 * harmless (if the first arrived, the second is stale and only returns the state). */
	const ACTION_TIMEOUT_MS = 10000;
	const ACTION_TRY_MS = 1200;
	const ACTION_TRIES = 3;
	/* A single failed request is not shown: the overlay appears only when the daemon stays unreachable. */
	const DOWN_AFTER_MS = 1500;
	const RETRY_MIN_MS = 300;
	const RETRY_MAX_MS = 3000;
	/* Shown only if the daemon has never answered, so there is no text in any language to show. */
	const NO_ANSWER_FALLBACK = 'Kioski hakijibu \u00b7 The kiosk is not responding \u00b7 Le kiosque ne r\u00e9pond pas';

	let state = null;	/* the last state drawn (as received) */
	let texts = {};		/* texts of the last state, kept for the overlay */
	let pending = false;	/* a press is on its way: buttons are disabled */
	let local = null;	/* page-only input of the current screen (staff keyboard); null = none */
	let downTimer = 0;
	let downShown = false;
	let needFresh = true;	/* next poll asks without ?after= (first load, after a failure) */
	let idleTimer = 0;

	const $ = (id) => document.getElementById(id);

	/* ---- small DOM helpers (no innerHTML: texts are data, never markup) ---- */

	function el(tag, props, children) {
		const e = document.createElement(tag);
		if (props) {
			for (const k of Object.keys(props)) {
				const v = props[k];
				if (v === undefined || v === null || v === false) continue;
				if (k === 'cls') e.className = v;
				else if (k === 'text') e.textContent = v;
				else if (k === 'testid') e.dataset.testid = v;
				else if (k === 'data') Object.assign(e.dataset, v);
				else if (k === 'onclick') e.addEventListener('click', v);
				else e.setAttribute(k, v === true ? '' : String(v));
			}
		}
		for (const c of children || []) {
			if (c === null || c === undefined || c === false) continue;
			e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
		}
		return e;
	}

	/* Icons are the files in icons/, fetched once at start and drawn inline (stroke = the text colour), so a
	 * screen never shows before its pictures have loaded. */
	const ICON_NAMES = ['back', 'calendar', 'cancel', 'card', 'collect', 'erase', 'error', 'eye', 'eye-off', 'finger',
		'grievance', 'help', 'info', 'language', 'locked', 'money', 'offline', 'ok', 'online', 'person', 'pin',
		'place', 'queue', 'receipt', 'shift', 'sms', 'staff', 'status', 'wait'];
	const ICONS = {};
	let iconsLoading = null;

	function loadIcons() {
		if (!iconsLoading) iconsLoading = fetchIcons().finally(() => { iconsLoading = null; });
		return iconsLoading;
	}

	async function fetchIcons() {
		const parser = new DOMParser();
		await Promise.all(ICON_NAMES.filter((n) => !ICONS[n]).map(async (n) => {
			const ctl = new AbortController();
			const timer = setTimeout(() => ctl.abort(), ACTION_TIMEOUT_MS);
			try {
				const r = await fetch('icons/' + n + '.svg', { signal: ctl.signal });
				if (!r.ok) return;
				const svg = parser.parseFromString(await r.text(), 'image/svg+xml').documentElement;
				if (!svg || svg.localName !== 'svg') return;
				svg.setAttribute('stroke', 'currentColor');
				svg.setAttribute('aria-hidden', 'true');
				svg.setAttribute('focusable', 'false');
				ICONS[n] = document.importNode(svg, true);
			} catch (e) {
				/* drawn without it; tried again when the daemon answers */
			} finally {
				clearTimeout(timer);
			}
		}));
		for (const span of document.querySelectorAll('.icon[data-icon]')) fillIcon(span);
		window.kioskIconsReady = ICON_NAMES.every((n) => ICONS[n]);
	}

	function fillIcon(span) {
		const tpl = ICONS[span.dataset.icon];
		if (tpl && !span.firstChild) span.appendChild(tpl.cloneNode(true));
	}

	function icon(name, extra) {
		const span = el('span', { cls: 'icon' + (extra ? ' ' + extra : ''), 'aria-hidden': 'true', data: { icon: name } });
		fillIcon(span);
		return span;
	}

	function setIcon(span, name) {
		if (span.dataset.icon === name && span.firstChild) return;
		span.dataset.icon = name;
		span.replaceChildren();
		fillIcon(span);
	}

	/* A text of the current state with {name} placeholders filled from vars. A missing key draws nothing
	 * (the icon still speaks) and is marked on the element so a test can spot it. */
	const missing = new Set();
	function t(key, vars) {
		let s = texts[key];
		if (typeof s !== 'string') {
			if (!missing.has(key)) {
				missing.add(key);
				console.warn('kiosk ui: no text for key', key);
			}
			return '';
		}
		if (vars) {
			s = s.replace(/\{([a-z_]+)\}/g, (m, name) =>
				(vars[name] === undefined || vars[name] === null) ? m : String(vars[name]));
		}
		return s;
	}

	function txt(tag, key, vars, props) {
		const p = Object.assign({}, props || {});
		const s = t(key, vars);
		p.text = s;
		const e = el(tag, p);
		if (!s) e.dataset.missingText = key;
		return e;
	}

	/* A text whose {name} is a code to be read out or copied (a reference, a receipt number): the code
	 * never breaks across lines, even at its hyphens. */
	function txtCode(tag, key, name, value, props) {
		const e = txt(tag, key, null, props);
		const s = e.textContent;
		const at = s.indexOf('{' + name + '}');
		if (at < 0) return e;
		e.replaceChildren(s.slice(0, at), el('span', { cls: 'code', text: value }), s.slice(at + name.length + 2));
		return e;
	}

	function str(v) {
		return (typeof v === 'string' || typeof v === 'number') ? String(v) : '';
	}

	/* A button that sends an action. opts: icon, label (text key), kind (go, stop, plain, choice), testid,
	 * value, cls, content (nodes instead of icon + label). */
	function actionButton(action, opts) {
		const o = opts || {};
		const kids = o.content || [o.icon ? icon(o.icon) : null, o.label ? txt('span', o.label, o.vars, { cls: 'label' }) : null];
		return el('button', {
			type: 'button',
			cls: 'btn btn-' + (o.kind || 'plain') + (o.cls ? ' ' + o.cls : ''),
			testid: o.testid || action,
			data: { action: action },
			onclick: (ev) => press(action, o.value, ev.currentTarget)
		}, kids);
	}

	/* A button that only changes the page (keyboard keys, show/hide): never sent, never disabled by a press
	 * in flight except while one is pending. */
	function localButton(testid, cls, kids, fn, data) {
		return el('button', { type: 'button', cls: 'btn ' + cls, testid: testid, data: Object.assign({ local: '1' }, data || {}), onclick: fn }, kids);
	}

	function heading(key, vars, iconName) {
		return el('h1', { cls: 'title', testid: 'title' }, [iconName ? icon(iconName) : null, txt('span', key, vars)]);
	}

	function actionsBar(buttons) {
		return el('div', { cls: 'actions' }, buttons);
	}

	/* ---- network ---- */

	async function fetchJSON(url, opts, timeoutMs) {
		const ctl = new AbortController();
		const timer = setTimeout(() => ctl.abort(), timeoutMs);
		try {
			const r = await fetch(url, Object.assign({ cache: 'no-store', signal: ctl.signal }, opts));
			const body = await r.json().catch(() => null);
			if (body && typeof body.seq === 'number' && typeof body.screen === 'string') return { ok: true, http: r.status, state: body };
			/* A refusal (4xx) without a state is not the daemon being down: the caller refetches. */
			if (r.status >= 400 && r.status < 500) return { ok: false, http: r.status };
			throw new Error('bad answer ' + r.status);
		} finally {
			clearTimeout(timer);
		}
	}

	function sleep(ms) {
		return new Promise((res) => setTimeout(res, ms));
	}

	function noteUp() {
		if (downTimer) {
			clearTimeout(downTimer);
			downTimer = 0;
		}
		if (!window.kioskIconsReady) loadIcons();
		if (downShown) {
			downShown = false;
			$('overlay').hidden = true;
			document.body.classList.remove('down');
		}
	}

	function noteDown() {
		needFresh = true;
		if (downShown || downTimer) return;
		downTimer = setTimeout(() => {
			downTimer = 0;
			downShown = true;
			const title = t('no_answer');
			$('overlay-title').textContent = title || NO_ANSWER_FALLBACK;
			$('overlay-hint').textContent = title ? t('no_answer_hint') : '';
			$('overlay').hidden = false;
			document.body.classList.add('down');
		}, DOWN_AFTER_MS);
	}

	/* The long-poll loop. An answer with seq > after is news; seq == after means the wait timed out; seq <
	 * after means the daemon restarted (its seq began again), so its state is taken as it is. */
	async function pollLoop() {
		let retry = RETRY_MIN_MS;
		for (;;) {
			const after = (state && !needFresh) ? state.seq : -1;
			const url = after >= 0 ? '/api/state?after=' + after : '/api/state';
			try {
				const r = await fetchJSON(url, { method: 'GET' }, POLL_TIMEOUT_MS);
				if (!r.ok) throw new Error('state refused ' + r.http);
				noteUp();
				needFresh = false;
				retry = RETRY_MIN_MS;
				const s = r.state;
				if (after < 0 || s.seq < after || s.seq > state.seq) show(s);
				else if (s.seq === state.seq) showStatus(s.status, s.texts);
			} catch (e) {
				noteDown();
				await sleep(retry);
				retry = Math.min(retry * 2, RETRY_MAX_MS);
			}
		}
	}

	/* A press: sent once with the seq of the screen it was made on; every button waits for the next state. */
	async function press(action, value, button) {
		if (pending || !state || downShown) return;
		const body = { action: action, seq: state.seq };
		if (value !== undefined && value !== null) body.value = String(value);
		setPending(true, button);
		try {
			const s = await send(body);
			/* The staff sign-in: the field is handed over with "text", then "ok" on the screen that answered. */
			if (action === 'text' && s && s.screen === 'fallback_staff' && state && state.screen === 'fallback_staff' &&
			    dataOf(s).field === dataOf(state).field) {
				if (s.seq > state.seq) show(s);
				const s2 = await send({ action: 'ok', seq: s.seq });
				if (s2) accept(s2);
			} else if (s) {
				accept(s);
			}
		} catch (e) {
			noteDown();
			probe();
		} finally {
			setPending(false);
		}
	}

	/* After a press failed: ask at once whether the daemon is there, rather than leave the overlay up until
	 * the long-poll in flight ends. */
	async function probe() {
		try {
			const r = await fetchJSON('/api/state', { method: 'GET' }, ACTION_TIMEOUT_MS);
			if (!r.ok) return;
			noteUp();
			accept(r.state);
		} catch (e) {
			/* still down: the poll loop keeps trying */
		}
	}

	async function send(body) {
		let r = null;
		for (let i = 1; !r; i++) {
			try {
				r = await fetchJSON('/api/action', {
					method: 'POST',
					headers: { 'Content-Type': 'application/json' },
					body: JSON.stringify(body)
				}, ACTION_TRY_MS);
			} catch (e) {
				if (i >= ACTION_TRIES) throw e;
			}
		}
		noteUp();
		if (r.ok) return r.state;
		/* Refused without a state (unknown action, bad body): ask for the current state, draw it if new. */
		needFresh = true;
		const g = await fetchJSON('/api/state', { method: 'GET' }, ACTION_TIMEOUT_MS);
		return g.ok ? g.state : null;
	}

	/* An answer to a press: drawn only if newer than what is shown (a long-poll may have been faster). */
	function accept(s) {
		if (!state || s.seq > state.seq) show(s);
		else if (s.seq === state.seq) showStatus(s.status, s.texts);
	}

	function setPending(on, button) {
		pending = on;
		document.body.classList.toggle('busy', on);
		for (const b of document.querySelectorAll('#screen button')) b.disabled = on;
		if (on && button) button.classList.add('pressed');
		if (!on) for (const b of document.querySelectorAll('#screen .pressed')) b.classList.remove('pressed');
	}

	/* ---- drawing ---- */

	function dataOf(s) {
		return (s && s.data && typeof s.data === 'object') ? s.data : {};
	}

	function show(s) {
		state = s;
		texts = (s.texts && typeof s.texts === 'object') ? s.texts : {};
		window.kioskState = s; /* for the browser tests (tests/browser/drive.mjs) */
		const d = dataOf(s);
		/* Page-only input lives as long as its screen and field: anything else forgets it. */
		const localKey = s.screen + '/' + str(d.field);
		if (!local || local.key !== localKey) local = { key: localKey, value: '', layer: 'lower', reveal: false };

		if (typeof s.lang === 'string' && s.lang) document.documentElement.lang = s.lang;
		const main = $('screen');
		const draw = SCREENS[s.screen] || drawUnknown;
		const kids = draw(d, s);
		main.replaceChildren(...kids);
		main.dataset.screen = s.screen;
		main.dataset.seq = String(s.seq);
		main.className = 'screen screen-' + s.screen.replace(/[^a-z_]/g, '');
		showStatus(s.status, texts);
		showIdle(s);
		/* A state that arrives while a press is still on its way (a long-poll was faster) is drawn with its
		 * buttons disabled too; the press's end enables them. */
		if (pending) for (const b of main.querySelectorAll('button')) b.disabled = true;
	}

	function showStatus(st, tx) {
		if (tx && typeof tx === 'object') texts = tx;
		const status = (st && typeof st === 'object') ? st : {};
		$('bar-name').textContent = t('app_name');

		const on = $('bar-online');
		const online = status.online !== false;
		on.dataset.state = online ? 'online' : 'offline';
		setIcon(on.querySelector('.icon'), online ? 'online' : 'offline');
		on.querySelector('.bar-text').textContent = t(online ? 'st_online' : 'st_offline');

		const rd = $('bar-reader');
		const reader = ['ok', 'absent', 'failed'].includes(status.reader) ? status.reader : 'absent';
		rd.dataset.state = reader;
		rd.querySelector('.bar-text').textContent = t('st_reader_' + reader);

		const q = $('bar-queue');
		const n = Number.isInteger(status.queue) ? status.queue : 0;
		q.hidden = n <= 0;
		q.dataset.count = String(n);
		q.querySelector('.bar-text').textContent = n > 0 ? t('st_queue', { queue: n }) : '';

		const lk = $('bar-locked');
		lk.hidden = status.locked !== true;
		lk.querySelector('.bar-text').textContent = status.locked === true ? t('st_locked') : '';
	}

	/* A thin bar that empties as the idle timeout runs out, so a person sees the screen will not wait for
	 * ever. The daemon enforces the timeout; this only shows it, restarting at every new state. */
	function showIdle(s) {
		const bar = $('idle');
		const fill = $('idle-fill');
		clearTimeout(idleTimer);
		const ms = Number.isInteger(s.idle_ms) ? s.idle_ms : 0;
		if (ms <= 0 || s.screen === 'start' || s.screen === 'locked' || s.screen === 'working') {
			bar.hidden = true;
			return;
		}
		bar.hidden = false;
		fill.style.transition = 'none';
		fill.style.transform = 'scaleX(1)';
		void fill.offsetWidth; /* restart the transition from full */
		fill.style.transition = 'transform ' + ms + 'ms linear';
		fill.style.transform = 'scaleX(0)';
		idleTimer = setTimeout(() => { bar.hidden = true; }, ms);
	}

	/* ---- keypads and keyboard ---- */

	/* The numeric keypad. onKey(kind, digit) for local input; without it every key is an action. */
	function keypad(onKey) {
		const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'erase', '0', 'ok'];
		return el('div', { cls: 'keypad', testid: 'keypad' }, keys.map((k) => {
			if (k === 'erase') {
				const c = [icon('erase'), txt('span', 'btn_erase', null, { cls: 'label' })];
				return onKey ? localButton('key-erase', 'key key-erase', c, () => onKey('erase'))
					: actionButton('erase', { testid: 'key-erase', cls: 'key key-erase', content: c });
			}
			if (k === 'ok') {
				const c = [icon('ok'), txt('span', 'btn_ok', null, { cls: 'label' })];
				return onKey ? localButton('key-ok', 'key key-ok btn-go', c, () => onKey('ok'))
					: actionButton('ok', { testid: 'key-ok', cls: 'key key-ok', kind: 'go', content: c });
			}
			const c = [el('span', { cls: 'digit', text: k })];
			return onKey ? localButton('key-' + k, 'key key-digit', c, () => onKey('digit', k), { char: k })
				: actionButton('digit', { testid: 'key-' + k, cls: 'key key-digit', value: k, content: c });
		}));
	}

	/* Keyboard layouts: QWERTY when the screen is wide enough for ten keys of at least 64 px, else an ABC
	 * grid of six columns (portrait). Layers: lower, upper (shift toggles), sym (digits and signs); every sign
	 * that is not a letter is on the sym layer (tests/browser/drive.mjs relies on it). */
	const KB = {
		wide: {
			lower: ['qwertyuiop', 'asdfghjkl', ['SHIFT', ...'zxcvbnm', 'BKSP'], ['SYM', 'SPACE', '.', 'OK']],
			upper: ['QWERTYUIOP', 'ASDFGHJKL', ['SHIFT', ...'ZXCVBNM', 'BKSP'], ['SYM', 'SPACE', '.', 'OK']],
			sym: ['1234567890', '@#$%&*-+=_', [...'!?.,:;/()', 'BKSP'], ['ABC', 'SPACE', "'", 'OK']]
		},
		narrow: {
			lower: ['abcdef', 'ghijkl', 'mnopqr', 'stuvwx', ['SHIFT', ...'yz-.', 'BKSP'], ['SYM', 'SPACE', 'OK']],
			upper: ['ABCDEF', 'GHIJKL', 'MNOPQR', 'STUVWX', ['SHIFT', ...'YZ-.', 'BKSP'], ['SYM', 'SPACE', 'OK']],
			sym: ['123456', '7890-.', '@#$%&*', '+=_!?,', [...":;/()", 'BKSP'], ['ABC', 'SPACE', 'OK']]
		}
	};
	const FIELD_MAX = 128; /* the daemon caps it too; this only stops a stuck key from growing it */

	function keyboard(onChange, onOk) {
		const layout = window.innerWidth >= 700 ? KB.wide : KB.narrow;
		const rows = layout[local.layer] || layout.lower;
		const kb = el('div', { cls: 'keyboard', testid: 'keyboard', data: { layer: local.layer } });
		for (const row of rows) {
			const r = el('div', { cls: 'kb-row' });
			for (const k of (typeof row === 'string' ? [...row] : row)) r.appendChild(kbKey(k, onChange, onOk));
			kb.appendChild(r);
		}
		return kb;
	}

	function kbKey(k, onChange, onOk) {
		const layer = (to) => () => { local.layer = to; redraw(); };
		switch (k) {
		case 'SHIFT':
			return localButton('kb-shift', 'kb-key kb-wide' + (local.layer === 'upper' ? ' kb-on' : ''), [icon('shift')],
				layer(local.layer === 'upper' ? 'lower' : 'upper'), { to: local.layer === 'upper' ? 'lower' : 'upper' });
		case 'SYM':
			return localButton('kb-sym', 'kb-key kb-wide', [el('span', { text: '123' })], layer('sym'), { to: 'sym' });
		case 'ABC':
			return localButton('kb-abc', 'kb-key kb-wide', [el('span', { text: 'abc' })], layer('lower'), { to: 'lower' });
		case 'BKSP':
			return localButton('kb-bksp', 'kb-key kb-wide', [icon('erase')], () => onChange(local.value.slice(0, -1)));
		case 'SPACE':
			return localButton('kb-space', 'kb-key kb-space', [txt('span', 'key_space')], () => onChange(local.value + ' '), { char: ' ' });
		case 'OK':
			return localButton('kb-ok', 'kb-key kb-enter btn-go', [icon('ok'), txt('span', 'btn_ok', null, { cls: 'label' })], onOk);
		default:
			return localButton('kb-' + k, 'kb-key', [el('span', { text: k })], () => onChange(local.value + k), { char: k });
		}
	}

	/* Redraws the current state after a page-only change (a key of the staff keyboard). */
	function redraw() {
		const main = $('screen');
		main.replaceChildren(...(SCREENS[state.screen] || drawUnknown)(dataOf(state), state));
		if (pending) for (const b of main.querySelectorAll('button')) b.disabled = true;
	}

	/* ---- the screens (kiosk/ui.h) ---- */

	const SCREENS = {
		start: function (d, s) {
			/* An enrolment station records fingers instead of paying out (kiosk/flow.c). */
			const enrol = d.enrolment === true || (s.status && s.status.enrolment === true);
			return [
				el('div', { cls: 'welcome' }, [txt('h1', 'start_title', null, { cls: 'title', testid: 'title' }), txt('p', 'start_hint', null, { cls: 'hint' })]),
				el('div', { cls: 'tiles' }, [
					enrol ? actionButton('enrol', { testid: 'start-enrol', icon: 'finger', label: 'start_enrol', kind: 'go', cls: 'tile' })
						: actionButton('collect', { testid: 'start-collect', icon: 'collect', label: 'start_collect', kind: 'go', cls: 'tile' }),
					actionButton('status', { testid: 'start-status', icon: 'status', label: 'start_status', kind: 'blue', cls: 'tile' }),
					actionButton('grievance', { testid: 'start-grievance', icon: 'grievance', label: 'start_grievance', kind: 'amber', cls: 'tile' })
				]),
				actionsBar([
					actionButton('language', { testid: 'start-language', icon: 'language', label: 'start_language' }),
					actionButton('help', { testid: 'start-help', icon: 'help', label: 'start_help' })
				])
			];
		},

		language: function (d, s) {
			/* ui.h puts the choices in data; the daemon also sends them with every state as "languages". */
			const choices = Array.isArray(d.choices) ? d.choices : Array.isArray(s.languages) ? s.languages : [];
			return [
				heading('lang_title', null, 'language'),
				el('div', { cls: 'choices choices-lang' }, choices.map((c) =>
					actionButton('choose', {
						testid: 'lang-' + str(c.code), value: str(c.code), cls: 'choice' + (c.code === state.lang ? ' current' : ''),
						content: [el('span', { cls: 'label', text: str(c.name), lang: str(c.code) })]
					}))),
				actionsBar([actionButton('back', { icon: 'back', label: 'btn_back' })])
			];
		},

		enter_ben: function (d) {
			const purpose = ['collect', 'status', 'grievance', 'enrol'].includes(d.purpose) ? d.purpose : 'collect';
			const typed = str(d.typed);
			return [el('div', { cls: 'split' }, [
				el('div', { cls: 'side' }, [
					el('p', { cls: 'purpose', testid: 'purpose', data: { purpose: purpose } }, [icon(purpose === 'enrol' ? 'finger' : purpose), txt('span', 'start_' + purpose)]),
					heading('ben_title', null, 'card'),
					txt('p', 'ben_hint', null, { cls: 'hint' }),
					purpose === 'grievance' ? txt('p', 'ben_skip', null, { cls: 'hint', testid: 'ben-skip' }) : null,
					el('div', { cls: 'display digits' + (typed ? '' : ' empty') + (typed.length > 12 ? ' longer' : typed.length > 8 ? ' long' : ''),
						testid: 'ben-display', data: { input: 'keypad', typed: typed } },
						[el('span', { cls: 'display-text', text: typed.replace(/(\d{4})(?=\d)/g, '$1 ') }), el('span', { cls: 'caret' })]),
					actionsBar([actionButton('back', { icon: 'back', label: 'btn_back' })])
				]),
				keypad()
			])];
		},

		scan: function (d, s) {
			const phases = ['place', 'reading', 'retry', 'no_match'];
			const phase = phases.includes(d.phase) ? d.phase : 'place';
			const attempts = Number.isInteger(d.attempts) && d.attempts > 0 ? Math.min(d.attempts, 10) : 3;
			const attempt = Number.isInteger(d.attempt) ? Math.max(1, Math.min(d.attempt, attempts)) : 1;
			const dots = el('div', { cls: 'attempt-dots', 'aria-hidden': 'true' });
			for (let i = 1; i <= attempts; i++) dots.appendChild(el('span', { cls: 'dot' + (i < attempt ? ' used' : i === attempt ? ' now' : '') }));
			return [
				el('div', { cls: 'center scan scan-' + phase + (s.finger_needed === true ? ' wanted' : ''), testid: 'scan-phase',
					data: { phase: phase } }, [
					el('div', { cls: 'finger-pad' }, [icon('finger', 'huge')]),
					txt('h1', 'scan_' + phase, null, { cls: 'title', testid: 'title' }),
					el('div', { cls: 'attempt', testid: 'scan-attempt', data: { attempt: String(attempt), attempts: String(attempts) } },
						[dots, txt('span', 'scan_attempt', { attempt: attempt, attempts: attempts })])
				]),
				actionsBar([actionButton('cancel', { icon: 'cancel', label: 'btn_cancel', kind: 'stop' })])
			];
		},

		fallback_offer: function (d) {
			/* Why the PIN is offered (no_match, no_template, reader_fault) picks the title when it has a text. */
			const why = typeof d.why === 'string' && /^[a-z_]+$/.test(d.why) ? d.why : '';
			const key = why && typeof texts['offer_' + why] === 'string' ? 'offer_' + why : 'offer_title';
			return [
				el('div', { cls: 'center' }, [
					el('div', { cls: 'icon-pair' }, [icon('pin', 'big'), icon('staff', 'big')]),
					txt('h1', key, null, { cls: 'title', testid: 'title', data: { why: why } }),
					txt('p', 'offer_text', null, { cls: 'lead' })
				]),
				actionsBar([
					actionButton('cancel', { icon: 'cancel', label: 'btn_cancel', kind: 'stop' }),
					actionButton('fallback', { icon: 'pin', label: 'btn_fallback', kind: 'go' })
				])
			];
		},

		fallback_pin: function (d) {
			const n = Number.isInteger(d.typed) && d.typed > 0 ? Math.min(d.typed, 12) : 0;
			const dots = el('div', { cls: 'display pin-dots', testid: 'pin-dots', data: { input: 'keypad', count: String(n) } });
			for (let i = 0; i < Math.max(4, n); i++) dots.appendChild(el('span', { cls: 'pin-dot' + (i < n ? ' full' : '') }));
			return [el('div', { cls: 'split' }, [
				el('div', { cls: 'side' }, [
					heading('pin_title', null, 'pin'),
					txt('p', 'pin_hint', null, { cls: 'hint' }),
					dots,
					actionsBar([actionButton('cancel', { icon: 'cancel', label: 'btn_cancel', kind: 'stop' })])
				]),
				keypad()
			])];
		},

		fallback_staff: function (d) {
			const field = ['user', 'password', 'totp'].includes(d.field) ? d.field : 'user';
			const secret = field !== 'user';
			const shown = !secret || local.reveal;
			const value = local.value;
			const change = (v) => { local.value = v.slice(0, FIELD_MAX); redraw(); };
			const submit = () => press('text', local.value);
			const show = field === 'password' ? localButton('staff-reveal', 'btn-plain reveal', [icon(local.reveal ? 'eye-off' : 'eye'),
				txt('span', local.reveal ? 'staff_hide' : 'staff_show', null, { cls: 'label' })], () => { local.reveal = !local.reveal; redraw(); }) : null;
			const display = el('div', { cls: 'display field' + (value ? '' : ' empty'), testid: 'staff-input',
				data: { field: field, input: field === 'totp' ? 'keypad-local' : 'keyboard', length: String(value.length) } }, [
				el('span', { cls: 'display-text', text: shown ? value : '\u25cf'.repeat(value.length) }), el('span', { cls: 'caret' })]);
			const user = str(d.typed_user);
			const top = el('div', { cls: 'staff-top' }, [
				el('div', { cls: 'staff-head' }, [
					heading('staff_title', null, 'staff'),
					txt('p', 'staff_hint', null, { cls: 'hint' })
				]),
				actionButton('cancel', { icon: 'cancel', label: 'btn_cancel', kind: 'stop', cls: 'compact' })
			]);
			const fieldRow = el('div', { cls: 'field-row' }, [
				el('label', { cls: 'field-label', testid: 'staff-field', data: { field: field } }, [icon(field === 'user' ? 'person' : field === 'password' ? 'locked' : 'sms'), txt('span', 'staff_' + field)]),
				user && field !== 'user' ? el('span', { cls: 'typed-user', testid: 'staff-user' }, [icon('person'), el('span', { text: user })]) : null,
				display, show
			]);
			if (field === 'totp') {
				const onKey = (kind, digit) => {
					if (kind === 'digit') change(local.value + digit);
					else if (kind === 'erase') change(local.value.slice(0, -1));
					else submit();
				};
				return [top, el('div', { cls: 'split' }, [el('div', { cls: 'side' }, [fieldRow]), keypad(onKey)])];
			}
			return [top, fieldRow, keyboard(change, submit)];
		},

		payments: function (d) {
			const items = Array.isArray(d.items) ? d.items : [];
			return [
				heading('pay_title', null, 'collect'),
				el('div', { cls: 'choices choices-pay' }, items.map((it, i) =>
					actionButton('choose', {
						testid: 'payment-' + i, value: str(it.payment), cls: 'choice pay-item', content: [
							icon('money'),
							el('span', { cls: 'pay-text' }, [
								el('span', { cls: 'amount', text: str(it.amount_text) }),
								el('span', { cls: 'programme', text: str(it.programme) }),
								it.pay_until ? txt('span', 'pay_until', { pay_until: str(it.pay_until) }, { cls: 'until' }) : null
							])
						]
					}))),
				actionsBar([actionButton('cancel', { icon: 'cancel', label: 'btn_cancel', kind: 'stop' })])
			];
		},

		confirm: function (d) {
			return [
				el('div', { cls: 'center' }, [
					txt('h1', 'confirm_title', null, { cls: 'title', testid: 'title' }),
					el('div', { cls: 'money-card' }, [
						icon('money', 'big'),
						el('span', { cls: 'amount huge', testid: 'confirm-amount', text: str(d.amount_text) }),
						el('span', { cls: 'programme', testid: 'confirm-programme', text: str(d.programme) })
					])
				]),
				actionsBar([
					actionButton('cancel', { icon: 'cancel', label: 'btn_no', kind: 'stop', cls: 'wide' }),
					actionButton('confirm', { icon: 'ok', label: 'btn_confirm', kind: 'go', cls: 'wide' })
				])
			];
		},

		working: function (d) {
			const what = ['verifying', 'collecting', 'checking', 'enrolling', 'sending'].includes(d.what) ? d.what : 'checking';
			return [el('div', { cls: 'center', testid: 'working', data: { what: what } }, [
				el('span', { cls: 'spinner big' }),
				txt('h1', 'work_' + what, null, { cls: 'title', testid: 'title' }),
				txt('p', 'work_wait', null, { cls: 'lead' })
			])];
		},

		done: function (d) {
			return [
				el('div', { cls: 'center' }, [
					el('span', { cls: 'badge badge-go' }, [icon('ok')]),
					txt('h1', 'done_title', null, { cls: 'title', testid: 'title' }),
					el('span', { cls: 'amount huge', testid: 'done-amount', text: str(d.amount_text) }),
					el('ul', { cls: 'facts' }, [
						el('li', { testid: 'done-receipt' }, [icon('receipt'), txtCode('span', 'done_receipt', 'receipt', str(d.receipt))]),
						el('li', { testid: 'done-printed', data: { printed: d.printed ? '1' : '0' }, cls: d.printed ? '' : 'warn' },
							[icon(d.printed ? 'receipt' : 'error'), txt('span', d.printed ? 'done_printed' : 'done_not_printed')]),
						d.sms ? el('li', { testid: 'done-sms' }, [icon('sms'), txt('span', 'done_sms')]) : null
					])
				]),
				actionsBar([actionButton('finish', { icon: 'ok', label: 'btn_finish', kind: 'go', cls: 'wide' })])
			];
		},

		status: function (d) {
			const ens = Array.isArray(d.enrolments) ? d.enrolments : [];
			const next = d.next && typeof d.next === 'object' ? d.next : null;
			return [
				heading('status_title', null, 'status'),
				d.offline === true ? el('p', { cls: 'note', testid: 'status-offline' }, [icon('offline'), txt('span', 'status_offline')]) : null,
				el('div', { cls: 'status-body' }, [
					ens.length ? el('section', { cls: 'panel' }, [
						txt('h2', 'status_in'),
						el('ul', { cls: 'facts' }, ens.map((e, i) => el('li', { testid: 'status-enrolment-' + i }, [
							icon('card'), el('span', { cls: 'programme', text: str(e.programme) }), el('span', { cls: 'state', text: str(e.status_text) })])))
					]) : null,
					next ? el('section', { cls: 'panel panel-next', testid: 'status-next' }, [
						txt('h2', 'status_next'),
						el('span', { cls: 'amount huge', text: str(next.amount_text) }),
						el('ul', { cls: 'facts' }, [
							el('li', {}, [icon('calendar'), txt('span', 'status_when', { date: str(next.date) })]),
							el('li', {}, [icon('place'), txt('span', 'status_where', { place: str(next.place) })])
						])
					]) : el('section', { cls: 'panel', testid: 'status-none' }, [icon('calendar', 'big'), txt('p', 'status_none', null, { cls: 'lead' })])
				]),
				actionsBar([actionButton('finish', { icon: 'ok', label: 'btn_finish', kind: 'go', cls: 'wide' })])
			];
		},

		grievance_category: function (d) {
			/* ui.h lists the choices in data; without them, every cat_CODE text is a choice, in the file's order. */
			const choices = Array.isArray(d.choices) ? d.choices
				: Object.keys(texts).filter((k) => /^cat_[a-z_]+$/.test(k)).map((k) => ({ code: k.slice(4), text: texts[k] }));
			return [
				heading('griev_title', null, 'grievance'),
				el('div', { cls: 'choices choices-cat' }, choices.map((c) =>
					actionButton('choose', { testid: 'category-' + str(c.code), value: str(c.code), cls: 'choice',
						content: [el('span', { cls: 'label', text: str(c.text) })] }))),
				actionsBar([actionButton('back', { icon: 'back', label: 'btn_back' })])
			];
		},

		grievance_done: function (d) {
			return [
				el('div', { cls: 'center' }, [
					el('span', { cls: 'badge badge-go' }, [icon('ok')]),
					txt('h1', 'griev_done_title', null, { cls: 'title', testid: 'title' }),
					/* Offline the complaint is queued and has no reference yet. */
					str(d.reference) ? txtCode('p', 'griev_done_ref', 'reference', str(d.reference), { cls: 'reference', testid: 'grievance-reference', data: { reference: str(d.reference) } }) : null,
					d.queued === true ? el('p', { cls: 'lead', testid: 'grievance-queued' }, [icon('queue'), txt('span', 'griev_done_queued')]) : null,
					el('p', { cls: 'lead' }, [icon('sms'), txt('span', 'griev_done_hint')])
				]),
				actionsBar([actionButton('finish', { icon: 'ok', label: 'btn_finish', kind: 'go', cls: 'wide' })])
			];
		},

		message: function (d) {
			const kind = d.kind === 'info' ? 'info' : 'error';
			const code = typeof d.code === 'string' && /^[a-z_]+$/.test(d.code) ? d.code : 'error';
			/* The text for the code; a daemon may also send the sentence itself as texts.text. */
			let key = 'msg_' + code;
			if (typeof texts[key] !== 'string') key = typeof texts.text === 'string' ? 'text' : 'msg_error';
			const hintKey = key === 'text' ? 'hint' : key + '_hint';
			return [
				el('div', { cls: 'center message message-' + kind }, [
					el('span', { cls: 'badge badge-' + (kind === 'info' ? 'info' : 'stop') }, [icon(kind === 'info' ? 'info' : 'error')]),
					txt('h1', key, null, { cls: 'title', testid: 'message-text', data: { kind: kind, code: code } }),
					typeof texts[hintKey] === 'string' ? txt('p', hintKey, null, { cls: 'lead', testid: 'message-hint' }) : null
				]),
				actionsBar([actionButton('finish', { icon: 'ok', label: 'btn_finish', kind: 'go', cls: 'wide' })])
			];
		},

		/* Enrolment station: the same finger several times (stage of stages), then done. */
		enrol_scan: function (d, s) {
			const phase = d.phase === 'again' ? 'again' : 'place';
			const stages = Number.isInteger(d.stages) && d.stages > 0 ? Math.min(d.stages, 10) : 5;
			const stage = Number.isInteger(d.stage) ? Math.max(0, Math.min(d.stage, stages)) : 0;
			const dots = el('div', { cls: 'attempt-dots', 'aria-hidden': 'true' });
			for (let i = 1; i <= stages; i++) dots.appendChild(el('span', { cls: 'dot' + (i <= stage ? ' done' : '') }));
			return [
				el('div', { cls: 'center scan scan-' + (phase === 'again' ? 'retry' : 'place') + (s.finger_needed === true ? ' wanted' : ''),
					testid: 'enrol-phase', data: { phase: phase } }, [
					el('div', { cls: 'finger-pad' }, [icon('finger', 'huge')]),
					txt('h1', 'enrol_' + phase, null, { cls: 'title', testid: 'title' }),
					el('div', { cls: 'attempt', testid: 'enrol-stage', data: { stage: String(stage), stages: String(stages) } },
						[dots, txt('span', 'enrol_stage', { stage: stage, stages: stages })])
				]),
				actionsBar([actionButton('cancel', { icon: 'cancel', label: 'btn_cancel', kind: 'stop' })])
			];
		},

		enrol_done: function (d) {
			return [
				el('div', { cls: 'center' }, [
					el('span', { cls: 'badge badge-go' }, [icon('ok')]),
					txt('h1', 'enrol_done_title', null, { cls: 'title', testid: 'title' }),
					d.replaced === true ? txt('p', 'enrol_replaced', null, { cls: 'lead', testid: 'enrol-replaced' }) : null
				]),
				actionsBar([actionButton('finish', { icon: 'ok', label: 'btn_finish', kind: 'go', cls: 'wide' })])
			];
		},

		locked: function (d) {
			const why = ['tamper', 'door', 'staff'].includes(d.why) ? d.why : 'staff';
			return [el('div', { cls: 'center' }, [
				el('span', { cls: 'badge badge-stop' }, [icon('locked')]),
				txt('h1', 'locked_title', null, { cls: 'title', testid: 'title' }),
				txt('p', 'locked_' + why, null, { cls: 'lead', testid: 'locked-text', data: { why: why } }),
				txt('p', 'locked_hint', null, { cls: 'hint' })
			])];
		}
	};

	/* A screen this page does not know (a newer daemon): say nothing wrong, offer nothing. */
	function drawUnknown() {
		return [el('div', { cls: 'center' }, [el('span', { cls: 'spinner big' })])];
	}

	/* ---- start ---- */

	function tickClock() {
		const now = new Date();
		$('bar-clock').textContent = String(now.getHours()).padStart(2, '0') + ':' + String(now.getMinutes()).padStart(2, '0');
	}

	function boot() {
		/* A long press must not open a menu, a drag must not select text: this is a kiosk, not a browser. */
		document.addEventListener('contextmenu', (e) => e.preventDefault());
		document.addEventListener('selectstart', (e) => e.preventDefault());
		let lastWide = window.innerWidth >= 700;
		window.addEventListener('resize', () => {
			const wide = window.innerWidth >= 700;
			if (wide !== lastWide) {
				lastWide = wide;
				if (state) redraw();
			}
		});
		tickClock();
		setInterval(tickClock, 10000);
		loadIcons().then(pollLoop);
	}

	if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
	else boot();
})();
