#!/usr/bin/env node
/* drive.mjs - drives the kiosk touch UI in Debian's headless Chromium for the integration tests.
 *
 * The Python tests run it as a child and talk JSON lines: one command a line on stdin, one answer a line on
 * stdout ({"ok": true, ...} or {"ok": false, "error": "..."}; a bad command never ends the driver). It uses the
 * system browser (Debian's chromium package) through playwright-core, which downloads nothing.
 *
 *   node tests/browser/drive.mjs URL SHOTDIR     drive the page at URL, screenshots go to SHOTDIR
 *   node tests/browser/drive.mjs --check         exit 0 if chromium and playwright-core are usable
 *
 * Commands:
 *   {"cmd":"open"}                                 load URL; answers once a screen (or the not-responding
 *                                                  overlay) shows: {"ok":true,"screen":NAME|null}
 *   {"cmd":"wait","screen":NAME,"timeout_ms":N,"after":SEQ?}
 *                                                  until the page shows that screen (with a seq > SEQ if
 *                                                  given) and no overlay; "not_responding" waits for the
 *                                                  overlay. Answers {"ok":true,"state":STATE} (the state as
 *                                                  the page last received it)
 *   {"cmd":"tap","testid":ID,"timeout_ms":N?}      click the visible element, once no press is on its way
 *                                                  and it is enabled; answers {"ok":true,"seq":SEQ}, the
 *                                                  seq of the screen it was made on (wait with "after")
 *   {"cmd":"type","testid":ID,"text":T}            type into a field by tapping the on-screen keys: the
 *                                                  staff keyboard (switching layers), or a keypad for digits
 *   {"cmd":"shot","name":N}                        full-page PNG SHOTDIR/N.png -> {"ok":true,"path":P}
 *   {"cmd":"text","testid":ID}                     {"ok":true,"text":visible text}
 *   {"cmd":"state"}                                {"ok":true,"state":STATE} without waiting
 *   {"cmd":"viewport","width":W,"height":H}        resize the window (default 1024x768 or HF_UI_VIEWPORT=WxH)
 *   {"cmd":"errors"}                               console errors, page errors and CSP refusals seen so
 *                                                  far, then forgets them: {"ok":true,"errors":[...]}
 *   {"cmd":"quit"}                                 close the browser and exit 0
 *
 * HF_CHROMIUM overrides the browser (default /usr/bin/chromium, Debian's path for the package).
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

const CHROMIUM = process.env.HF_CHROMIUM || '/usr/bin/chromium';
const DEFAULT_TIMEOUT_MS = 10000;

function parseViewport(s) {
	const m = /^(\d{3,4})x(\d{3,4})$/.exec(s || '');
	return m ? { width: Number(m[1]), height: Number(m[2]) } : { width: 1024, height: 768 };
}

function firstLine(e) {
	const msg = ((e && e.message) ? e.message : String(e)).replace(/\x1b\[[0-9;]*m/g, '');
	/* Playwright appends a call log; the first lines say what failed. */
	return msg.split('\n').filter((l) => l.trim() !== '').slice(0, 3).join(' | ').slice(0, 600);
}

async function loadPlaywright() {
	const mod = await import('playwright-core');
	return mod.chromium;
}

async function launch() {
	accessSync(CHROMIUM, constants.X_OK);
	const chromium = await loadPlaywright();
	/* Root in CI: playwright passes --no-sandbox unless chromiumSandbox is set. */
	return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--disable-gpu', '--no-first-run', '--disable-extensions'] });
}

async function check() {
	let browser = null;
	try {
		browser = await launch();
		const page = await browser.newPage();
		await page.setContent('<p id="x">ok</p>');
		const t = await page.textContent('#x');
		if (t !== 'ok') throw new Error('the page did not render');
		process.stdout.write(`ok chromium ${browser.version()}\n`);
		return 0;
	} catch (e) {
		process.stdout.write(`not usable: ${firstLine(e)}\n`);
		return 1;
	} finally {
		if (browser) await browser.close().catch(() => {});
	}
}

function byTestid(id) {
	return `[data-testid=${JSON.stringify(String(id))}]`;
}

class Driver {
	constructor(url, shotDir) {
		this.url = url;
		this.shotDir = shotDir;
		this.browser = null;
		this.page = null;
		this.errors = [];
	}

	async start() {
		this.browser = await launch();
		const ctx = await this.browser.newContext({ viewport: parseViewport(process.env.HF_UI_VIEWPORT), deviceScaleFactor: 1 });
		this.page = await ctx.newPage();
		this.page.setDefaultTimeout(DEFAULT_TIMEOUT_MS);
		this.page.on('console', (m) => {
			if (m.type() === 'error' || m.type() === 'warning') this.errors.push({ type: m.type(), text: m.text().slice(0, 500) });
		});
		this.page.on('pageerror', (e) => this.errors.push({ type: 'pageerror', text: firstLine(e) }));
	}

	async currentState() {
		return this.page.evaluate(() => (window.kioskState === undefined ? null : window.kioskState));
	}

	async shown() {
		return this.page.evaluate(() => {
			const m = document.getElementById('screen');
			const o = document.getElementById('overlay');
			return { screen: m ? m.dataset.screen || null : null, seq: m && m.dataset.seq ? Number(m.dataset.seq) : null, down: !!(o && !o.hidden) };
		});
	}

	async open(c) {
		await this.page.goto(this.url, { waitUntil: 'load', timeout: c.timeout_ms || DEFAULT_TIMEOUT_MS });
		await this.page.waitForFunction(() => {
			const m = document.getElementById('screen');
			const o = document.getElementById('overlay');
			return (m && m.dataset.screen) || (o && !o.hidden);
		}, null, { timeout: c.timeout_ms || DEFAULT_TIMEOUT_MS });
		const s = await this.shown();
		return { screen: s.down ? 'not_responding' : s.screen };
	}

	async wait(c) {
		if (typeof c.screen !== 'string' || !c.screen) throw new Error('wait needs "screen"');
		const after = Number.isInteger(c.after) ? c.after : null;
		try {
			await this.page.waitForFunction(([screen, seqAfter]) => {
				const m = document.getElementById('screen');
				const o = document.getElementById('overlay');
				const down = !!(o && !o.hidden);
				if (screen === 'not_responding') return down;
				return !down && m && m.dataset.screen === screen && (seqAfter === null || Number(m.dataset.seq) > seqAfter);
			}, [c.screen, after], { timeout: c.timeout_ms || DEFAULT_TIMEOUT_MS, polling: 50 });
		} catch (e) {
			const s = await this.shown().catch(() => ({}));
			throw new Error(`no screen ${c.screen} in time: showing ${s.down ? 'not_responding over ' : ''}${s.screen} (seq ${s.seq})`);
		}
		return { state: await this.currentState() };
	}

	/* Until no press is on its way (the page disables its buttons meanwhile), so that a tap is made on the
	 * screen the previous one led to, and the seq it reports is that screen's. */
	async settled(timeout) {
		await this.page.waitForFunction(() => !document.body.classList.contains('busy'), null, { timeout, polling: 20 });
	}

	async tap(c) {
		if (!c.testid) throw new Error('tap needs "testid"');
		const timeout = c.timeout_ms || DEFAULT_TIMEOUT_MS;
		await this.settled(timeout);
		const s = await this.shown();
		await this.page.locator(byTestid(c.testid) + ':visible').click({ timeout });
		return { seq: s.seq };
	}

	async type(c) {
		if (!c.testid) throw new Error('type needs "testid"');
		if (typeof c.text !== 'string') throw new Error('type needs "text"');
		const timeout = c.timeout_ms || DEFAULT_TIMEOUT_MS;
		const field = this.page.locator(byTestid(c.testid) + ':visible');
		const kind = await field.getAttribute('data-input', { timeout });
		if (kind === 'keypad' || kind === 'keypad-local') {
			if (!/^[0-9]*$/.test(c.text)) throw new Error('a keypad has digits only');
			for (const ch of c.text) {
				await this.settled(timeout);
				await this.page.locator(byTestid('key-' + ch) + ':visible').click({ timeout });
			}
			await this.settled(timeout);
			return {};
		}
		if (kind !== 'keyboard') throw new Error(`element ${c.testid} is not a typing field`);
		for (const ch of c.text) await this.typeChar(ch, timeout);
		return {};
	}

	/* One character on the staff keyboard: tap it if the shown layer has it, else switch layers (towards the
	 * likely one first: a-z lower, A-Z upper, anything else sym) until one has it. */
	async typeChar(ch, timeout) {
		const kb = this.page.locator(byTestid('keyboard') + ':visible');
		const want = /[a-z]/.test(ch) ? 'lower' : /[A-Z]/.test(ch) ? 'upper' : 'sym';
		const seen = new Set();
		for (let i = 0; i < 4; i++) {
			const layer = await kb.getAttribute('data-layer', { timeout });
			seen.add(layer);
			const key = kb.locator(`[data-char=${JSON.stringify(ch)}]:visible`);
			if (await key.count() > 0) {
				await key.first().click({ timeout });
				return;
			}
			const switches = await kb.locator('[data-to]:visible').evaluateAll((els) => els.map((e) => e.dataset.to));
			const next = switches.includes(want) && !seen.has(want) ? want : switches.find((to) => !seen.has(to));
			if (!next) break;
			await kb.locator(`[data-to=${JSON.stringify(next)}]:visible`).first().click({ timeout });
		}
		throw new Error(`no key for ${JSON.stringify(ch)} on the keyboard`);
	}

	async shot(c) {
		const name = String(c.name || '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
		if (!name) throw new Error('shot needs "name"');
		mkdirSync(this.shotDir, { recursive: true });
		/* The page fetches its icons once at start; a picture taken before they arrive would lack them. */
		await this.page.waitForFunction(() => window.kioskIconsReady === true, null, { timeout: 3000 }).catch(() => {});
		const file = path.join(this.shotDir, name.endsWith('.png') ? name : name + '.png');
		await this.page.screenshot({ path: file, fullPage: true, animations: 'disabled', caret: 'hide' });
		return { path: path.resolve(file) };
	}

	async text(c) {
		if (!c.testid) throw new Error('text needs "testid"');
		const t = await this.page.locator(byTestid(c.testid) + ':visible').first().innerText({ timeout: c.timeout_ms || DEFAULT_TIMEOUT_MS });
		return { text: t };
	}

	async viewport(c) {
		if (!Number.isInteger(c.width) || !Number.isInteger(c.height)) throw new Error('viewport needs integer "width" and "height"');
		await this.page.setViewportSize({ width: c.width, height: c.height });
		return {};
	}

	async run(c) {
		switch (c.cmd) {
		case 'open': return this.open(c);
		case 'wait': return this.wait(c);
		case 'tap': return this.tap(c);
		case 'type': return this.type(c);
		case 'shot': return this.shot(c);
		case 'text': return this.text(c);
		case 'state': return { state: await this.currentState() };
		case 'viewport': return this.viewport(c);
		case 'errors': { const e = this.errors; this.errors = []; return { errors: e }; }
		default: throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
		}
	}

	async close() {
		if (this.browser) await this.browser.close().catch(() => {});
		this.browser = null;
	}
}

function answer(obj) {
	process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
	const args = process.argv.slice(2);
	if (args[0] === '--check') process.exit(await check());
	if (args.length !== 2) {
		process.stderr.write('usage: node drive.mjs URL SHOTDIR | node drive.mjs --check\n');
		process.exit(2);
	}
	const driver = new Driver(args[0], args[1]);
	const started = driver.start().then(() => null, (e) => firstLine(e));

	const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
	/* Lines are handled one at a time, in order: a command may wait for seconds. */
	for await (const line of rl) {
		if (line.trim() === '') continue;
		let c;
		try {
			c = JSON.parse(line);
			if (!c || typeof c !== 'object' || typeof c.cmd !== 'string') throw new Error('a command is an object with "cmd"');
		} catch (e) {
			answer({ ok: false, error: 'bad command: ' + firstLine(e) });
			continue;
		}
		if (c.cmd === 'quit') {
			await driver.close();
			answer({ ok: true });
			process.exit(0);
		}
		const launchError = await started;
		if (launchError) {
			answer({ ok: false, error: 'browser not started: ' + launchError });
			continue;
		}
		try {
			answer(Object.assign({ ok: true }, await driver.run(c)));
		} catch (e) {
			answer({ ok: false, error: firstLine(e) });
		}
	}
	await driver.close();
	process.exit(0);
}

main().catch((e) => {
	answer({ ok: false, error: 'driver failed: ' + firstLine(e) });
	process.exit(1);
});
