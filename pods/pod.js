/* Vouch pod: verify the caller, then reset their Microsoft 365 password.
 *
 * The controller, and the module the page loads (`<script type="module">`, no build step):
 * it holds the state, wires the page's events, calls the API client (`pod/api.js`) and asks
 * the view (`pod/view.js`) to show the state after every change. Served by Vouch with a
 * strict CSP (script-src 'self'; style-src 'self'): no inline scripts, handlers or styles.
 */

import { PodError, createClient, idempotencyKey, isAbort } from "./pod/api.js";
import {
  METHODS,
  NOT_VERIFIED_REASON,
  createView,
  expiredHere,
  possessive,
  shieldModel,
  whoFor,
} from "./pod/view.js";

const UNREACHABLE = "Vouch cannot be reached; retrying…";

/** The reset confirmation ignores clicks this soon after it opens (a double click on Reset). */
const CONFIRM_GRACE_MS = 600;

/** Whether trying the same request again may help: Vouch or an upstream was unavailable. */
const retryable = (err) => !!err && (err.retryable === true || err.status === 429);

// The <body> data attributes the server fills in; the token leaves the DOM once read.
const data = document.body.dataset;
const config = {
  psa: (data.psa || "").toLowerCase(),
  connection: data.connection || "",
  ticket: data.ticket || "",
  api: (data.api || "").replace(/\/+$/, ""),
  session: data.session || "",
  token: data.token || "",
};
document.body.removeAttribute("data-token");

const client = createClient(config);
const view = createView(document);
const { el } = view;

/** Everything the page shows follows from this (and the context inside it). */
const state = {
  ctx: null, // the last context from the server (its shield may be patched locally)
  pending: null, // {id, method, who, shield} of the verification being waited on
  loadingText: "Loading…",
  // What is under way; the view disables and marks busy what each one blocks. Set by `act`
  // alone. `start` holds the method being started (false when none is).
  busy: { start: false, cancel: false, code: false, fix: false, reset: false, resend: false },
  error: null, // {code, message, source, canFix, offerSms, retry}; source: "context" | "poll" | "action" | "fatal"
  fixAsked: false, // "Make Authenticator the default" waits for its confirmation
  fixToken: null, // the server's offer to fix the default method of the user the refused push was for
  notice: null, // {text, offerPush}
  otherError: null, // {field: "email" | "reason", message} of "Verify someone else"
  codeInvalid: false,
  dialog: null, // the open reset dialog: {key, error, target, openedAt}; one idempotency key per dialog
  outcome: null, // the last reset: {result, phone} or {error}
  password: "", // shown once, when the MSP lets technicians see it
  copyLabel: "Copy",
  lastAttempt: null, // {method, other} of the last method button press
};

// The controller's own bookkeeping, which nothing shows.
const settled = new Set(); // verifications seen decided (a stale context must not revive them)
let pollCtl = null; // AbortController of the long poll
let contextCtl = null; // AbortController of the context load under way
let lastContextAt = 0;
let announcedKey = null; // the shield state last announced (or first shown)
let holdingAnnouncement = false; // a decision is shown provisionally until the context confirms it
const timers = { hold: 0, expiry: 0, live: 0, copy: 0 };

// ---------------------------------------------------------------------------------------
// Rendering, announcements and the countdown
// ---------------------------------------------------------------------------------------

function render() {
  const now = client.now();
  const shield = shieldModel(state.ctx, state.pending, now);
  view.render(state, shield, now);
  if (!state.ctx) return;
  announceShield(shield);
  scheduleExpiry(shield);
}

function announce(text) {
  clearTimeout(timers.live);
  view.speak("");
  if (!text) return;
  timers.live = setTimeout(() => view.speak(text), 80);
}

/** Announces changes of the shield's state (not every minute of the countdown). */
function announceShield(shield) {
  if (holdingAnnouncement) return;
  const key = shield.state + "|" + shield.label;
  if (announcedKey !== null && announcedKey !== key) {
    announce(shield.detail ? `${shield.label}. ${shield.detail}` : shield.label);
  }
  announcedKey = key;
}

/** Until the context confirms a decision, the provisional shield is shown but not announced. */
function holdAnnouncement() {
  holdingAnnouncement = true;
  clearTimeout(timers.hold);
  timers.hold = setTimeout(() => releaseAnnouncement(true), 4000);
}

function releaseAnnouncement(rerender) {
  clearTimeout(timers.hold);
  if (!holdingAnnouncement) return;
  holdingAnnouncement = false;
  if (rerender) render();
}

/** Re-renders when the next minute of "N min left" passes, and at expiry. */
function scheduleExpiry(shield) {
  clearTimeout(timers.expiry);
  if (shield.state !== "verified" || !shield.expiresIn) return;
  const left = shield.expiresIn;
  const wait = left <= 60000 ? left : left % 60000 || 60000;
  timers.expiry = setTimeout(onMinuteTick, wait + 50);
}

function onMinuteTick() {
  const ctx = state.ctx;
  if (!ctx) return;
  const shield = shieldModel(ctx, state.pending, client.now());
  if (expiredHere(ctx, shield)) {
    // The verification ran out: nothing may be reset on it any more.
    ctx.shield = {
      ...ctx.shield,
      state: "not_verified",
      label: shield.label,
      detail: shield.detail,
    };
    ctx.reset = { ...(ctx.reset || {}), allowed: false, reason: NOT_VERIFIED_REASON };
    render();
    if (state.dialog && !state.busy.reset) closeResetDialog();
    loadContext();
    return;
  }
  render();
}

// ---------------------------------------------------------------------------------------
// Errors and notices
// ---------------------------------------------------------------------------------------

function showError(err, { source = "action", canFix = false, offerSms = false, retry = null } = {}) {
  // "Try again" only where trying again can help; the message says what to do otherwise.
  const again = retry && retryable(err) ? retry : null;
  state.error = { code: (err && err.code) || "error", message: err && err.message, source, canFix, offerSms, retry: again };
  state.fixAsked = false;
  render();
}

/** Clears the error; with `source`, only an error shown by that source. */
function clearError(source) {
  if (!state.error || (source && state.error.source !== source)) return;
  state.error = null;
  state.fixAsked = false;
  render();
}

function fatal(err, retry) {
  showError(err, { source: "fatal", retry });
}

// ---------------------------------------------------------------------------------------
// The one busy scaffold
// ---------------------------------------------------------------------------------------

/**
 * Runs one of the technician's actions. While `work()` runs, `state.busy[name]` holds
 * `mark`, so the view disables what the action blocks and marks its button busy; whatever
 * happens, it is cleared again and the page re-rendered. `failed(err)` handles an error
 * (an AbortError only means the panel is going away). Either may return a function to run
 * once the busy mark is gone: moving the focus, mostly, which a disabled button cannot take.
 */
async function act(name, work, failed, mark = true) {
  if (state.busy[name]) return;
  state.busy[name] = mark;
  render();
  let then = null;
  try {
    then = await work();
  } catch (err) {
    if (isAbort(err)) return;
    then = failed(err);
  } finally {
    state.busy[name] = false;
    render();
  }
  if (typeof then === "function") then();
}

// ---------------------------------------------------------------------------------------
// Context
// ---------------------------------------------------------------------------------------

/** Fetches the context (the client retries with backoff while Vouch cannot be reached). */
function loadContext() {
  if (contextCtl) contextCtl.abort(); // only the newest answer counts
  const ctl = new AbortController();
  contextCtl = ctl;
  const onRetry = (err) => {
    if (!state.ctx) state.loadingText = "Retrying…";
    showError({ code: err.code, message: err.status ? `${err.message} Retrying…` : UNREACHABLE }, { source: "context" });
  };
  return client.context({ signal: ctl.signal, onRetry }).then(
    (ctx) => {
      if (contextCtl !== ctl) return;
      contextCtl = null;
      clearError("context");
      clearError("fatal");
      applyContext(ctx);
    },
    (err) => {
      if (isAbort(err) || contextCtl !== ctl) return;
      contextCtl = null;
      if (state.ctx) showError(err, { source: "context", retry: loadContext });
      else fatal(err, loadContext);
    },
  );
}

function applyContext(ctx) {
  state.ctx = ctx;
  releaseAnnouncement(false);
  lastContextAt = Date.now();
  const shield = ctx.shield || {};
  if (shield.state === "pending" && shield.verification_id && !settled.has(shield.verification_id)) {
    if (!state.pending || state.pending.id !== shield.verification_id) {
      state.pending = { id: shield.verification_id, method: shield.method || "push", who: null, shield };
      startPolling();
    } else {
      state.pending.shield = shield;
      if (!pollCtl) startPolling();
    }
  }
  render();
}

// ---------------------------------------------------------------------------------------
// Verifications
// ---------------------------------------------------------------------------------------

/** Marks one "Verify someone else" input as wrong, next to it as well as in #vouch-error. */
function flagOther(field, err) {
  state.otherError = { field, message: err.message };
  render();
  view.focusOther(field);
}

/** The "Verify someone else" inputs: null when unused, false when incomplete. */
function readOther() {
  state.otherError = null;
  const other = view.readOther();
  if (!other.open || (!other.email && !other.reason)) return null;
  if (!other.email || !other.emailValid) {
    const err = { code: "email_required", message: "Enter the e-mail address of the person to verify." };
    showError(err);
    flagOther("email", err);
    return false;
  }
  if (!other.reason) {
    const err = { code: "reason_required", message: "Give the reason for verifying someone other than the ticket's contact." };
    showError(err);
    flagOther("reason", err);
    return false;
  }
  return { email: other.email, reason: other.reason };
}

function startVerification(method, presetOther) {
  if (state.pending || state.busy.start) return;
  state.error = null;
  state.notice = null;
  const other = presetOther !== undefined ? presetOther : readOther();
  if (other === false) return;
  state.password = ""; // a password from an earlier reset does not stay on screen
  state.lastAttempt = { method, other };
  act(
    "start",
    async () => {
      const { body: v } = await client.start(method, other);
      if (!v || !v.id) throw new PodError("bad_verification", "Vouch sent an unreadable answer.", 502);
      if (other) {
        state.otherError = null;
        view.clearOther();
      }
      const pending = { id: v.id, method: v.method || method, who: other ? other.email : null, shield: v.shield || null };
      state.pending = pending;
      if (v.status && v.status !== "pending") {
        settle(v); // decided at once
        return null;
      }
      startPolling();
      return () => (pending.method === "sms_code" ? el.codeInput.focus() : view.focusIfLost(el.cancel));
    },
    (err) => {
      const payload = err.payload || {};
      const fixToken =
        err.code === "preferred_method_mismatch" && payload.can_fix && typeof payload.fix_token === "string"
          ? payload.fix_token
          : null;
      const canFix = !!fixToken;
      state.fixToken = fixToken;
      const smsOption = state.ctx && Array.isArray(state.ctx.methods) && state.ctx.methods.find((o) => o && o.method === "sms_code");
      const offerSms = err.code === "authenticator_not_registered" && !!(smsOption && smsOption.available);
      showError(err, { canFix, offerSms });
      if (err.code === "reason_required") flagOther("reason", err);
      else if (err.code === "push_already_pending") loadContext();
      return () => (canFix ? el.fix.focus() : view.focusIfLost(el.methodButtons[method]));
    },
    method,
  );
}

function stopPolling() {
  if (pollCtl) {
    pollCtl.abort();
    pollCtl = null;
  }
}

/** Long-polls the pending verification until it is decided. */
function startPolling() {
  stopPolling();
  const pending = state.pending;
  if (!pending) return;
  const ctl = new AbortController();
  pollCtl = ctl;
  const stillWaiting = () => !ctl.signal.aborted && !!state.pending && state.pending.id === pending.id;
  client
    .watch(pending.id, {
      signal: ctl.signal,
      onRetry: (err) => {
        if (stillWaiting()) showError({ code: err.code, message: UNREACHABLE }, { source: "poll" });
      },
      onAnswer: () => {
        if (stillWaiting()) clearError("poll");
        else ctl.abort();
      },
    })
    .then(
      (v) => {
        if (stillWaiting()) settle(v);
      },
      (err) => {
        if (isAbort(err) || !stillWaiting()) return;
        // The verification is gone or not ours: stop waiting and show what the server says.
        if (pollCtl === ctl) pollCtl = null;
        state.pending = null;
        showError(err);
        loadContext();
      },
    );
}

/** A verification was decided (approved, denied, expired, failed or cancelled). */
function settle(v) {
  if (!state.pending || state.pending.id !== v.id) {
    loadContext(); // already settled (e.g. the code and the long poll both answered)
    return;
  }
  stopPolling();
  settled.add(v.id);
  state.pending = null;
  view.clearCode();
  state.codeInvalid = false;
  clearError("poll");
  // Show the decision at once; the context fetched below replaces it.
  if (state.ctx && v.shield) state.ctx.shield = v.shield;
  if (v.status === "cancelled") {
    announce("Verification cancelled.");
    announcedKey = null; // the next render records the new state without announcing it
  } else {
    holdAnnouncement();
  }
  render();
  view.focusIfLost(el.shield);
  loadContext();
}

function cancelPending() {
  const pending = state.pending;
  if (!pending || state.busy.cancel) return;
  stopPolling();
  act(
    "cancel",
    async () => {
      const { body: v } = await client.cancel(pending.id);
      if (v && v.id && v.status && v.status !== "pending") settle(v);
      else {
        state.pending = null;
        loadContext();
      }
      return () => view.focusIfLost(el.shield);
    },
    (err) => {
      showError(err);
      if (err.retryable) {
        startPolling(); // still pending as far as we know
      } else {
        state.pending = null;
        loadContext();
      }
      return () => view.focusIfLost(el.shield);
    },
  );
}

function submitCode(event) {
  event.preventDefault();
  const pending = state.pending;
  if (!pending || state.busy.code) return;
  const code = view.codeDigits();
  if (code.length !== 6) {
    state.codeInvalid = true;
    showError({ code: "code_format", message: "Enter the 6-digit code the caller reads out." });
    el.codeInput.focus();
    return;
  }
  clearError();
  act(
    "code",
    async () => {
      const { body: v } = await client.submitCode(pending.id, code);
      if (v && v.id && v.status && v.status !== "pending") settle(v);
    },
    (err) => {
      showError(err);
      if (err.code === "code_incorrect" || err.retryable) {
        state.codeInvalid = true;
        return () => view.selectCode();
      }
      // too_many_attempts, code_expired, or the verification is otherwise over.
      if (state.pending && state.pending.id === pending.id) {
        stopPolling();
        state.pending = null;
      }
      loadContext();
      return () => view.focusIfLost(el.shield);
    },
  );
}

// ---------------------------------------------------------------------------------------
// "Make Authenticator the default"
// ---------------------------------------------------------------------------------------

/** Who the last method press was for: the other person's address, or the user's name. */
const lastAttemptWho = () =>
  whoFor(state.ctx, state.lastAttempt && state.lastAttempt.other && state.lastAttempt.other.email);

function askFix() {
  state.fixAsked = true;
  render();
  el.fixYes.focus();
}

/** The fix offered by a check when the pod loaded: asked the same way as after a refused push. */
function fixFromCheck(event) {
  const button = event.target.closest("button[data-fix-token]");
  if (!button || button.disabled) return;
  const check = ((state.ctx && state.ctx.checks) || []).find((c) => c && c.fix_token === button.dataset.fixToken);
  if (!check) return;
  state.fixToken = check.fix_token;
  state.lastAttempt = { method: "push", other: null };
  showError({ code: check.code, message: check.message }, { canFix: true });
  askFix();
}

function dropFix() {
  state.fixAsked = false;
  render();
  el.fix.focus();
}

function applyFix() {
  act(
    "fix",
    async () => {
      await client.makePushDefault(state.fixToken);
      state.fixToken = null;
      clearError();
      state.notice = {
        text: `Authenticator is now ${possessive(lastAttemptWho())} default sign-in method.`,
        offerPush: true,
      };
      announce("Authenticator is now the default sign-in method.");
      loadContext();
      return () => el.fixPush.focus();
    },
    (err) => {
      showError(err);
      return () => view.focusIfLost(el.shield);
    },
  );
}

/** "Text a code instead", for a user with no Authenticator: the same person, by SMS. */
function smsInstead() {
  const other = state.lastAttempt ? state.lastAttempt.other : null;
  startVerification("sms_code", other);
}

function pushAgain() {
  const other = state.lastAttempt ? state.lastAttempt.other : null;
  state.notice = null;
  startVerification("push", other);
}

// ---------------------------------------------------------------------------------------
// Password reset
// ---------------------------------------------------------------------------------------

/** Opens the confirmation for `target` ({verificationId, name, upn, phone}). */
function openResetDialog(target) {
  if (!state.ctx || !target || !target.verificationId || state.dialog) return;
  state.dialog = { key: idempotencyKey(), error: null, target, openedAt: performance.now() };
  render();
  el.goCancel.focus();
  // The confirming button wakes up once the grace time has passed.
  setTimeout(render, CONFIRM_GRACE_MS + 20);
}

function openContactReset() {
  if (!state.ctx || el.reset.disabled) return;
  openResetDialog(view.contactResetTarget(state.ctx));
}

function openOtherReset(event) {
  const button = event.target.closest("button[data-verification]");
  if (!button || button.disabled || !state.ctx) return;
  openResetDialog(view.otherResetTarget(state.ctx, button.dataset.verification));
}

function closeResetDialog(focusTarget) {
  if (!state.dialog || state.busy.reset) return;
  state.dialog = null;
  render();
  const target = focusTarget || (el.reset.disabled ? el.outcome : el.reset);
  target.focus();
}

function dialogKeydown(event) {
  if (event.key === "Escape") {
    event.preventDefault();
    event.stopPropagation();
    closeResetDialog();
    return;
  }
  if (event.key === "Tab") {
    const focusables = [el.go, el.goCancel].filter((b) => !b.disabled);
    if (!focusables.length) {
      event.preventDefault();
      return;
    }
    const first = focusables[0];
    const last = focusables[focusables.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    } else if (!el.dialog.contains(document.activeElement)) {
      event.preventDefault();
      first.focus();
    }
  }
}

function doReset() {
  const ctx = state.ctx;
  const dialog = state.dialog;
  if (!ctx || !dialog || state.busy.reset) return;
  // The second click of a double click on "Reset password" confirms nothing.
  if (performance.now() - dialog.openedAt < CONFIRM_GRACE_MS) return;
  const verificationId = dialog.target.verificationId;
  dialog.error = null;
  announce("Resetting the password…");
  act(
    "reset",
    async () => {
      const { body } = await client.reset(verificationId, dialog.key);
      const result = body || {};
      const phone = result.sent_to || dialog.target.phone || "";
      state.outcome = { result, phone };
      state.password = typeof result.password === "string" ? result.password : "";
      state.copyLabel = "Copy";
      loadContext();
      return () => closeResetDialog(el.outcome);
    },
    (err) => {
      if (err.retryable) {
        // The outcome is unknown: keep the dialog (and its key) so a retry cannot reset twice.
        dialog.error = { code: err.code, status: err.status, message: err.message };
        return () => el.go.focus();
      }
      state.outcome = { error: { code: err.code, message: err.message } };
      state.password = "";
      loadContext();
      return () => closeResetDialog(el.outcome);
    },
  );
}

/** Sends the last reset's link again (after a failed SMS, or anyway when the outcome is unknown). */
function doResend() {
  const outcome = state.outcome;
  const result = outcome && outcome.result;
  if (!result || !result.id) return;
  announce("Sending the link again…");
  act(
    "resend",
    async () => {
      const { body } = await client.resend(result.id);
      const sent = body || {};
      const phone = sent.sent_to || outcome.phone;
      // The reset keeps its status (an unknown outcome stays unknown); the line says it went.
      state.outcome = { result: { ...result, ...sent, link_expires_at: result.link_expires_at }, phone, resent: true };
      announce("The link was sent again.");
      return () => el.outcome.focus();
    },
    (err) => {
      showError({ code: err.code, message: err.message }, { source: "resend" });
      return null;
    },
  );
}

async function copyPassword() {
  const value = state.password;
  if (!value) return;
  let copied = false;
  try {
    await navigator.clipboard.writeText(value);
    copied = true;
  } catch (_) {
    view.selectPassword();
    try {
      copied = document.execCommand("copy");
    } catch (__) {
      copied = false;
    }
  }
  state.copyLabel = copied ? "Copied" : "Press Ctrl+C";
  render();
  announce(copied ? "Password copied." : "The password is selected: press Ctrl+C to copy it.");
  clearTimeout(timers.copy);
  timers.copy = setTimeout(() => {
    state.copyLabel = "Copy";
    render();
  }, 3000);
}

// ---------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------

for (const m of METHODS) {
  el.methodButtons[m].addEventListener("click", () => startVerification(m));
}
el.cancel.addEventListener("click", cancelPending);
el.codeForm.addEventListener("submit", submitCode);
el.codeInput.addEventListener("input", () => {
  view.codeDigits();
  state.codeInvalid = false;
  render();
});
const clearOtherFlag = () => {
  state.otherError = null;
  render(); // the method buttons follow whom they are for
};
el.otherEmail.addEventListener("input", clearOtherFlag);
el.otherReason.addEventListener("input", clearOtherFlag);
el.other.addEventListener("toggle", () => render());

el.fix.addEventListener("click", askFix);
el.fixNo.addEventListener("click", dropFix);
el.fixYes.addEventListener("click", applyFix);
el.fixConfirm.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !state.busy.fix) {
    event.preventDefault();
    dropFix();
  }
});
el.fixPush.addEventListener("click", pushAgain);
el.useSms.addEventListener("click", smsInstead);
el.checks.addEventListener("click", fixFromCheck);
el.retry.addEventListener("click", () => {
  const action = state.error && state.error.retry;
  clearError();
  if (action) action();
});

el.reset.addEventListener("click", openContactReset);
el.othersList.addEventListener("click", openOtherReset);
el.go.addEventListener("click", doReset);
el.goCancel.addEventListener("click", () => closeResetDialog());
el.dialog.addEventListener("keydown", dialogKeydown);
el.passwordCopy.addEventListener("click", copyPassword);
el.resend.addEventListener("click", doResend);

// Refresh a stale view when the technician comes back to the tab.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible" || !state.ctx || !client.hasToken()) return;
  if (Date.now() - lastContextAt > 60000 && !state.busy.reset) loadContext();
});

// The panel is going away: stop long polls and retries politely.
window.addEventListener("pagehide", () => {
  stopPolling();
  client.suspend();
});
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  client.resume();
  if (client.hasToken()) loadContext();
  if (state.pending) startPolling();
});

// ---------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------

async function boot() {
  if (!config.api || config.api.includes("{{")) {
    fatal({ code: "not_served", message: "This panel must be opened through Vouch." });
    return;
  }
  if (!client.hasToken()) {
    if (config.psa !== "connectwise") {
      fatal({ code: "missing_token", message: "This panel has no Vouch session; reload the ticket." });
      return;
    }
    state.loadingText = "Connecting to ConnectWise…";
    render();
    try {
      await client.authenticate();
    } catch (err) {
      if (isAbort(err)) return;
      fatal(err, boot);
      return;
    }
  }
  state.loadingText = "Loading…";
  render();
  await loadContext();
}

boot();
