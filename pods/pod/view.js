/* Vouch pod: the view. State in, DOM out.
 *
 * `render(state, shield)` makes the page show the controller's state: no requests, no
 * timers, no state of its own. Under the pod's strict CSP (style-src 'self') the state is
 * shown with text, classes, data attributes and the `hidden` attribute, never with inline
 * styles. The few other functions read what the technician typed, or move the focus.
 *
 * What the shield says comes from the server (`label`, `detail`, `expired_label`,
 * `expired_detail`); the view adds only the countdown, and picks what to show by the
 * published enum values (`ShieldState`, the verification status and method), never by the
 * server's sentences.
 */

export const METHODS = ["push", "sms_code", "sms_link"];

const METHOD_NAMES = {
  push: "Authenticator push",
  sms_code: "SMS code",
  sms_link: "SMS link",
};

/** The shield's headline by `ShieldState`, only should the server's answer lack one. */
const SHIELD_FALLBACK = {
  not_verified: "Not verified",
  pending: "Waiting for an answer…",
  verified: "Verified",
  failed: "Failed",
};

/** The reset button's reason when the server gives none, or the verification ran out here. */
export const NOT_VERIFIED_REASON = "Verify the user's identity first";

/** How long the reset confirmation's button stays asleep after the dialog opens. */
const CONFIRM_WAKE_MS = 600;

// ---------------------------------------------------------------------------------------
// Pure wording (no DOM)
// ---------------------------------------------------------------------------------------

function parseTime(value) {
  if (!value) return NaN;
  const t = Date.parse(value);
  return Number.isNaN(t) ? NaN : t;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "numeric",
  minute: "2-digit",
});

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric" });

/** The calendar day of `ms`, local time, as a comparable number. */
function dayNumber(ms) {
  const d = new Date(ms);
  return Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) / 86400000;
}

/**
 * A moment ahead, with its day and how far it is: "today, 10:21 PM (15 min)",
 * "tomorrow, 10:21 PM (24 h)", "Fri, Dec 5, 10:21 PM (3 days)". Empty when unknown.
 */
export function formatUntil(value, nowMs) {
  const t = parseTime(value);
  if (Number.isNaN(t)) return "";
  const days = dayNumber(t) - dayNumber(nowMs);
  const day = days === 0 ? "today" : days === 1 ? "tomorrow" : dayFormat.format(new Date(t));
  const minutes = Math.max(1, Math.ceil((t - nowMs) / 60000));
  let span;
  if (minutes < 60) span = `${minutes} min`;
  else if (minutes < 48 * 60) span = `${Math.round(minutes / 60)} h`;
  else span = `${Math.round(minutes / 1440)} days`;
  return `${day}, ${timeFormat.format(new Date(t))} (${span})`;
}

function formatDateTime(value) {
  const t = parseTime(value);
  return Number.isNaN(t) ? "" : dateTimeFormat.format(new Date(t));
}

function timeLeft(ms) {
  const minutes = Math.max(1, Math.ceil(ms / 60000));
  if (minutes < 60) return `${minutes} min left`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${m} min left` : `${h} h left`;
}

/** "Dana" from "Dana Whitfield" (or "Whitfield, Dana"). */
function firstName(name) {
  if (!name || typeof name !== "string") return "";
  let n = name.trim();
  if (n.includes(",")) n = n.slice(n.indexOf(",") + 1).trim();
  return n.split(/\s+/)[0] || "";
}

/**
 * Who is being verified, for sentences: `who` when given (the e-mail address of someone
 * other than the contact), else the first name of the Microsoft user or of the contact;
 * null when nobody is known ("the user").
 */
export function whoFor(ctx, who) {
  if (who) return who;
  if (!ctx) return null;
  return firstName(ctx.user && ctx.user.display_name) || firstName(ctx.contact && ctx.contact.name) || null;
}

/** "Dana's", or "the user's" when nobody is known. */
export const possessive = (who) => (who ? `${who}'s` : "the user's");

/**
 * What the shield shows at `nowMs` (server time): {state, label, detail, expiresIn}. A
 * verification being waited on shows its own shield, as the server worded it; otherwise the
 * context's shield, turned to its `expired_*` wording once `verified_until` has passed.
 */
export function shieldModel(ctx, pending, nowMs) {
  if (pending) {
    const shield = pending.shield || {};
    return { state: "pending", label: shield.label || SHIELD_FALLBACK.pending, detail: shield.detail || "" };
  }
  const shield = (ctx && ctx.shield) || { state: "not_verified" };
  const state = shield.state || "not_verified";
  const label = shield.label || SHIELD_FALLBACK[state] || "";
  const detail = shield.detail || "";
  if (state === "verified") {
    const until = parseTime(shield.verified_until);
    if (!Number.isNaN(until)) {
      const left = until - nowMs;
      if (left <= 0) {
        return {
          state: "not_verified",
          label: shield.expired_label || SHIELD_FALLBACK.not_verified,
          detail: shield.expired_detail || "",
        };
      }
      return { state, label, detail: [timeLeft(left), detail].filter(Boolean).join(" · "), expiresIn: left };
    }
  }
  return { state, label, detail };
}

/** Whether the context's verification ran out here, before the server said so. */
export const expiredHere = (ctx, shield) =>
  shield.state === "not_verified" && !!ctx && !!ctx.shield && ctx.shield.state === "verified";

/** Whether a reset may be made now, and why not: {allowed, reason}. */
export function resetModel(ctx, shield) {
  const r = (ctx && ctx.reset) || {};
  const expired = expiredHere(ctx, shield);
  const allowed = !!r.allowed && !expired && !!r.verification_id;
  return { allowed, reason: allowed ? "" : (!expired && r.reason) || NOT_VERIFIED_REASON };
}

/** Whose password the contact's "Reset password" resets: {verificationId, name, upn, phone}. */
function contactResetTarget(ctx) {
  const r = ctx.reset || {};
  const user = ctx.user || {};
  return {
    verificationId: r.verification_id || null,
    name: user.display_name || "",
    upn: user.upn || "",
    phone: r.masked_phone || "",
  };
}

/** The same, for someone else verified on this ticket (by their verification's id). */
function otherResetTarget(ctx, verificationId) {
  const other = (Array.isArray(ctx.others) ? ctx.others : []).find(
    (o) => o && o.reset && o.reset.verification_id === verificationId,
  );
  if (!other || !other.reset.allowed) return null;
  const user = other.user || {};
  return { verificationId, name: user.display_name || "", upn: user.upn || "", phone: other.reset.masked_phone || "" };
}

/** How a history entry reads: the server's label, with a glyph so colour is not the only signal. */
function statusView(item) {
  const text = (typeof item.label === "string" && item.label) || item.status || "";
  switch (item.status) {
    case "approved":
      return { tone: "ok", glyph: "✓", text };
    case "pending":
      return { tone: "wait", glyph: "…", text };
    case "cancelled":
      return { tone: "idle", glyph: "–", text };
    case "expired":
      return { tone: "idle", glyph: "⏱", text };
    default:
      return { tone: "bad", glyph: "✕", text };
  }
}

/** The outcome line of a reset: text parts, {keep} for what must not wrap. */
function outcomeParts(outcome, nowMs) {
  if (outcome.error) return [outcome.error.message];
  const result = outcome.result;
  const to = outcome.phone ? { keep: outcome.phone } : "the user's mobile phone";
  if (outcome.resent) {
    const until = formatUntil(result.link_expires_at, nowMs);
    return [
      "The secure link was sent again to ",
      to,
      ".",
      until ? ` It works until ${until}.` : "",
      result.status === "outcome_unknown" ? " Microsoft never confirmed the change: if the password in it does not work, verify the user again and start over." : "",
    ];
  }
  switch (result.status) {
    case "completed": {
      const until = formatUntil(result.link_expires_at, nowMs);
      return ["Password reset. A secure link was sent to ", to, ".", until ? ` It works until ${until}.` : ""];
    }
    case "completed_sms_failed":
      return [
        "The password was reset, but the text message to ",
        to,
        " could not be sent.",
        result.password ? " Give the user the password below, or send the link again." : " Send the link again.",
      ];
    case "outcome_unknown":
      return [
        "Microsoft did not confirm the change, so the password may have been reset. No link was sent. ",
        "Send the link anyway (it holds the password Vouch set), or verify the user again to start over.",
      ];
    default: {
      const reason = result.message || (result.failure_code ? result.failure_code.replace(/_/g, " ") : "");
      return [reason ? `The password was not reset: ${reason}` : "The password was not reset."];
    }
  }
}

// ---------------------------------------------------------------------------------------
// DOM helpers
// ---------------------------------------------------------------------------------------

function setText(node, text) {
  const value = text == null ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** Sets text made of strings and {keep: "..."} parts that must not wrap (phone numbers). */
function setParts(node, parts) {
  const nodes = parts
    .filter((p) => p !== "" && p != null)
    .map((p) => {
      if (typeof p === "string") return node.ownerDocument.createTextNode(p);
      const span = node.ownerDocument.createElement("span");
      span.className = "nowrap";
      span.textContent = p.keep;
      return span;
    });
  node.replaceChildren(...nodes);
}

function setTitle(node, title) {
  if (title) node.title = title;
  else node.removeAttribute("title");
}

function setBusy(node, busy) {
  if (busy) node.setAttribute("aria-busy", "true");
  else node.removeAttribute("aria-busy");
}

function setFlag(node, attribute, on) {
  if (on) node.setAttribute(attribute, "true");
  else node.removeAttribute(attribute);
}

// ---------------------------------------------------------------------------------------
// The view
// ---------------------------------------------------------------------------------------

/** The view of the pod page in `doc`. `el` holds its elements, for the controller's events. */
export function createView(doc) {
  const $ = (id) => doc.getElementById(id);
  const el = {
    main: $("vouch"),
    loading: $("vouch-loading"),
    loadingText: $("vouch-loading-text"),
    content: $("vouch-content"),
    error: $("vouch-error"),
    errorText: $("vouch-error-text"),
    retry: $("vouch-retry"),
    useSms: $("vouch-use-sms"),
    checks: $("vouch-checks"),
    fraud: $("vouch-fraud"),
    fraudText: $("vouch-fraud-text"),
    others: $("vouch-others"),
    othersList: $("vouch-others-list"),
    fix: $("vouch-fix-default"),
    fixConfirm: $("vouch-fix-confirm"),
    fixQuestion: $("vouch-fix-question"),
    fixYes: $("vouch-fix-default-yes"),
    fixNo: $("vouch-fix-default-no"),
    notice: $("vouch-notice"),
    noticeText: $("vouch-notice-text"),
    fixPush: $("vouch-fix-push"),
    contactName: $("vouch-contact-name"),
    contactCompany: $("vouch-contact-company"),
    user: $("vouch-user"),
    userUpn: $("vouch-user-upn"),
    tenant: $("vouch-tenant"),
    userError: $("vouch-user-error"),
    userErrorText: $("vouch-user-error-text"),
    shield: $("vouch-shield"),
    shieldLabel: $("vouch-shield-label"),
    shieldDetail: $("vouch-shield-detail"),
    cancel: $("vouch-cancel"),
    codeForm: $("vouch-code"),
    methods: $("vouch-methods"),
    codeLabel: $("vouch-code-label"),
    codeInput: $("vouch-code-input"),
    codeSubmit: $("vouch-code-submit"),
    other: $("vouch-other"),
    otherHint: $("vouch-other-hint"),
    otherEmail: $("vouch-other-email"),
    otherReason: $("vouch-other-reason"),
    otherError: $("vouch-other-error"),
    reset: $("vouch-reset"),
    resetWrap: $("vouch-reset-wrap"),
    resetReason: $("vouch-reset-reason"),
    outcome: $("vouch-outcome"),
    outcomeText: $("vouch-outcome-text"),
    resendRow: $("vouch-resend-row"),
    resend: $("vouch-resend"),
    passwordBox: $("vouch-password-box"),
    password: $("vouch-password"),
    passwordCopy: $("vouch-password-copy"),
    history: $("vouch-history"),
    historyEmpty: $("vouch-history-empty"),
    technician: $("vouch-technician"),
    ticket: $("vouch-ticket"),
    dialog: $("vouch-reset-confirm"),
    question: $("vouch-reset-question"),
    dialogError: $("vouch-reset-dialog-error"),
    go: $("vouch-reset-go"),
    goCancel: $("vouch-reset-cancel"),
    live: $("vouch-live"),
    methodButtons: {},
    methodDetails: {},
  };
  for (const m of METHODS) {
    el.methodButtons[m] = $("vouch-method-" + m);
    el.methodDetails[m] = $("vouch-method-" + m + "-detail");
  }
  const otherInputs = { email: el.otherEmail, reason: el.otherReason };

  function renderError(state) {
    const error = state.error;
    const canFix = !!(error && error.canFix);
    el.error.hidden = !error;
    el.error.dataset.code = error ? error.code || "error" : "";
    setText(el.errorText, error ? error.message || "Something went wrong." : "");
    el.retry.hidden = !(error && error.retry);
    el.useSms.hidden = !(error && error.offerSms);
    el.useSms.disabled = !!state.busy.start || !!state.pending;
    el.fix.hidden = !canFix || state.fixAsked;
    el.fixConfirm.hidden = !canFix || !state.fixAsked;
    if (canFix && state.fixAsked) {
      const who = whoFor(state.ctx, state.lastAttempt && state.lastAttempt.other && state.lastAttempt.other.email);
      setText(
        el.fixQuestion,
        `Make the Microsoft Authenticator push ${possessive(who)} default sign-in method? This changes how they sign in to Microsoft 365.`,
      );
    }
    el.fixYes.disabled = !!state.busy.fix;
    el.fixNo.disabled = !!state.busy.fix;
    setBusy(el.fixYes, state.busy.fix);

    el.notice.hidden = !state.notice;
    setText(el.noticeText, state.notice ? state.notice.text : "");
    el.fixPush.hidden = !(state.notice && state.notice.offerPush);
  }

  function renderHeader(ctx) {
    // A contact opened from the console has no ticket: the header names the user (the
    // Microsoft 365 line below names the tenant).
    const contact =
      ctx.subject === "contact" && ctx.user ? { name: ctx.user.display_name || ctx.user.upn } : ctx.contact || {};
    setText(el.contactName, contact.name || "Unknown contact");
    setText(el.contactCompany, contact.company || "");

    if (ctx.user && ctx.user.upn) {
      el.user.hidden = false;
      setText(el.userUpn, ctx.user.upn);
      setText(el.tenant, (ctx.tenant && ctx.tenant.name) || "");
      setTitle(el.user, [ctx.user.display_name, ctx.user.upn, ctx.tenant && ctx.tenant.name].filter(Boolean).join(" · "));
    } else {
      el.user.hidden = true;
    }
    const userError =
      ctx.user_error || (!ctx.user ? { code: "user_unknown", message: "No Microsoft 365 user is known for this contact." } : null);
    el.userError.hidden = !userError;
    el.userError.dataset.code = (userError && userError.code) || "";
    setText(
      el.userErrorText,
      userError ? userError.message || "This contact cannot be matched to a Microsoft 365 user." : "",
    );

    const tech = ctx.technician && ctx.technician.name;
    setText(el.technician, tech ? `Signed in as ${tech}` : "");
    const ticket = ctx.ticket || {};
    setText(el.ticket, ticket.id ? `Ticket #${ticket.id}${ticket.summary ? ": " + ticket.summary : ""}` : "");
  }

  function renderShield(state, shield) {
    el.shield.dataset.state = shield.state;
    setText(el.shieldLabel, shield.label);
    setText(el.shieldDetail, shield.detail);
    el.cancel.hidden = shield.state !== "pending" || !state.pending;
    el.cancel.disabled = !!state.busy.cancel;
    setBusy(el.cancel, state.busy.cancel);
  }

  function renderCode(state) {
    const show = !!state.pending && state.pending.method === "sms_code";
    el.codeForm.hidden = !show;
    if (show) {
      const who = whoFor(state.ctx, state.pending.who);
      setText(el.codeLabel, who ? `Code ${who} reads out` : "Code the caller reads out");
    }
    setFlag(el.codeInput, "aria-invalid", state.codeInvalid);
    el.codeSubmit.disabled = !!state.busy.code;
    setBusy(el.codeSubmit, state.busy.code);
  }

  function renderMethods(state) {
    const ctx = state.ctx;
    const list = Array.isArray(ctx.methods) ? ctx.methods : [];
    const hasUser = !!(ctx.user && ctx.user.upn) && !ctx.user_error;
    const blocked = !!state.pending || !!state.busy.start || !!state.busy.cancel || !!state.busy.fix;
    // For someone else, what reaches the contact says nothing: the server checks that person.
    const forOther = el.other.open && el.otherEmail.value.trim() !== "";
    for (const m of METHODS) {
      const button = el.methodButtons[m];
      const option = list.find((o) => o && o.method === m);
      const available = !!(option && option.available);
      const detail = forOther
        ? `For ${el.otherEmail.value.trim()}`
        : (option && option.detail) || (option ? "" : "Not offered for this user");
      setText(el.methodDetails[m], detail);
      button.disabled = (!forOther && (!hasUser || !available)) || blocked;
      setTitle(button, available || forOther ? "" : detail);
      setBusy(button, state.busy.start === m);
    }

    const flagged = state.otherError && state.otherError.field;
    for (const [field, input] of Object.entries(otherInputs)) {
      setFlag(input, "aria-invalid", flagged === field);
      if (flagged === field) input.setAttribute("aria-describedby", el.otherError.id);
      else if (input === el.otherEmail) input.setAttribute("aria-describedby", el.otherHint.id);
      else input.removeAttribute("aria-describedby");
    }
    el.otherError.hidden = !flagged;
    setText(el.otherError, flagged ? state.otherError.message : "");
  }

  function renderReset(state, shield, nowMs) {
    const ctx = state.ctx;
    const { allowed, reason } = resetModel(ctx, shield);
    el.reset.disabled = !allowed || !!state.busy.reset;
    setTitle(el.reset, reason);
    setTitle(el.resetWrap, reason);
    if (allowed) {
      const t = contactResetTarget(ctx);
      setParts(el.resetReason, t.phone ? ["The new password goes by SMS to ", { keep: t.phone }, "."] : []);
    } else {
      setText(el.resetReason, reason);
    }

    const outcome = state.outcome;
    if (outcome) {
      el.outcome.dataset.status = outcome.error ? "error" : outcome.result.status || "failed";
      el.outcome.dataset.code = outcome.error ? outcome.error.code || "error" : outcome.result.failure_code || "";
      setParts(el.outcomeText, outcomeParts(outcome, nowMs));
    } else {
      el.outcome.dataset.status = "";
      el.outcome.dataset.code = "";
      setText(el.outcomeText, "");
    }
    // Sending the link again: the server decides whether it may go (it may refuse: opened,
    // expired, sent too often); the label follows the published reset status.
    const status = outcome && outcome.result ? outcome.result.status : "";
    const resendable = status === "completed" || status === "completed_sms_failed" || status === "outcome_unknown";
    el.resendRow.hidden = !resendable;
    el.resend.disabled = !!state.busy.resend;
    setText(
      el.resend,
      state.busy.resend ? "Sending…" : status === "outcome_unknown" ? "Send the link anyway" : "Send the link again",
    );
    el.passwordBox.hidden = !state.password;
    if (el.password.value !== state.password) el.password.value = state.password;
    setText(el.passwordCopy, state.copyLabel);
  }

  function renderDialog(state) {
    const dialog = state.dialog;
    el.dialog.hidden = !dialog;
    el.main.inert = !!dialog;
    if (!dialog) return;
    const t = dialog.target || {};
    const who = t.name && t.upn ? `${t.name} (${t.upn})` : t.name || t.upn || "this user";
    setParts(el.question, [
      `Reset the Microsoft 365 password of ${who}? The new password will be sent as a one-time secure link by SMS to `,
      t.phone ? { keep: t.phone } : "the user's mobile phone",
      ".",
    ]);
    const error = dialog.error;
    el.dialogError.hidden = !error;
    el.dialogError.dataset.code = error ? error.code : "";
    // The outcome is unknown: the dialog (and its idempotency key) stays for the retry.
    setText(
      el.dialogError,
      error
        ? `${error.status ? error.message : "Vouch could not be reached, so it is not known whether the password was reset."} Try again: the password will not be reset twice.`
        : "",
    );
    const resetting = !!state.busy.reset;
    setText(el.go, resetting ? "Resetting…" : error ? "Try again" : "Reset password");
    // Asleep for a moment after opening: the second click of a double click lands on nothing.
    const waking = typeof dialog.openedAt === "number" && performance.now() - dialog.openedAt < CONFIRM_WAKE_MS;
    el.go.disabled = resetting || waking;
    el.goCancel.disabled = resetting;
    setBusy(el.go, resetting);
  }

  function renderHistory(ctx) {
    const items = (Array.isArray(ctx.history) ? ctx.history : [])
      .filter((h) => h && typeof h === "object")
      .slice()
      .sort((a, b) => (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0))
      .slice(0, 10);
    const fragment = doc.createDocumentFragment();
    for (const item of items) {
      const view = statusView(item);
      const li = doc.createElement("li");
      li.className = "history-item";
      li.dataset.tone = view.tone;
      if (item.id) li.dataset.id = item.id;

      const time = doc.createElement("time");
      time.className = "history-time";
      if (item.created_at) time.dateTime = item.created_at;
      time.textContent = formatDateTime(item.created_at) || "—";

      const method = doc.createElement("span");
      method.className = "history-method";
      method.textContent = METHOD_NAMES[item.method] || item.method || "";

      const status = doc.createElement("span");
      status.className = "history-status";
      const glyph = doc.createElement("span");
      glyph.className = "history-glyph";
      glyph.setAttribute("aria-hidden", "true");
      glyph.textContent = view.glyph;
      status.append(glyph, view.text);

      li.append(time, " ", method, " ", status);
      if (typeof item.elsewhere === "string" && item.elsewhere) {
        // Made on another ticket: history here, not something a reset from here can use.
        const where = doc.createElement("span");
        where.className = "history-where";
        where.textContent = ` · ${item.elsewhere}`;
        li.append(where);
      }
      fragment.append(li);
    }
    el.history.replaceChildren(fragment);
    el.historyEmpty.hidden = items.length > 0;
  }

  /** What to know before sending anything; the default-method check offers its fix. */
  function renderChecks(state) {
    const checks = (Array.isArray(state.ctx.checks) ? state.ctx.checks : []).filter(
      (c) => c && typeof c.message === "string",
    );
    el.checks.hidden = checks.length === 0;
    const blocked = !!state.busy.fix || !!state.pending;
    const key = JSON.stringify([blocked, checks]);
    if (el.checks.dataset.key === key) return;
    el.checks.dataset.key = key;
    const fragment = doc.createDocumentFragment();
    for (const check of checks) {
      const li = doc.createElement("li");
      li.className = "check";
      li.dataset.code = check.code || "";
      const text = doc.createElement("p");
      text.className = "check-text";
      text.textContent = check.message;
      li.append(text);
      if (typeof check.fix_token === "string" && check.fix_token) {
        const button = doc.createElement("button");
        button.type = "button";
        button.className = "btn btn-small";
        button.dataset.fixToken = check.fix_token;
        button.textContent = "Make Authenticator the default";
        button.disabled = blocked;
        li.append(button);
      }
      fragment.append(li);
    }
    el.checks.replaceChildren(fragment);
  }

  /** Others verified on this ticket: who, why, time left, and their own reset button. */
  function renderOthers(state, nowMs) {
    const ctx = state.ctx;
    const others = (Array.isArray(ctx.others) ? ctx.others : []).filter((o) => o && o.user && o.reset);
    el.others.hidden = others.length === 0;
    const busy = !!state.busy.reset || !!state.dialog;
    const models = others.map((other) => shieldModel({ shield: other.shield }, null, nowMs));
    // Rebuilt only when what it shows changes, so a focused button keeps the focus.
    const key = JSON.stringify([busy, others, models.map((m) => [m.state, m.label, m.detail])]);
    if (el.othersList.dataset.key === key) return;
    el.othersList.dataset.key = key;
    const fragment = doc.createDocumentFragment();
    others.forEach((other, i) => {
      const model = models[i];
      const li = doc.createElement("li");
      li.className = "other-person";
      li.dataset.state = model.state;
      const who = doc.createElement("span");
      who.className = "other-person-who";
      who.textContent = other.user.upn;
      const detail = doc.createElement("span");
      detail.className = "other-person-detail";
      detail.textContent = [model.label, model.detail, other.reason ? `Reason: ${other.reason}` : ""].filter(Boolean).join(" · ");
      who.append(detail);
      const button = doc.createElement("button");
      button.type = "button";
      button.className = "btn btn-small";
      button.dataset.verification = other.reset.verification_id || "";
      button.textContent = `Reset ${other.user.upn}'s password`;
      button.disabled = busy || !other.reset.allowed || model.state !== "verified";
      setTitle(button, other.reset.allowed ? "" : other.reset.reason || NOT_VERIFIED_REASON);
      li.append(who, button);
      fragment.append(li);
    });
    el.othersList.replaceChildren(fragment);
  }

  /**
   * Shows `state` (the controller's), with `shield` from `shieldModel`. Safe to call at any
   * time, as often as wanted: it sets what differs and nothing else.
   */
  function render(state, shield, nowMs = Date.now()) {
    const ctx = state.ctx;
    const fatal = !!state.error && state.error.source === "fatal";
    el.loading.hidden = !!ctx || fatal;
    setText(el.loadingText, state.loadingText);
    el.content.hidden = !ctx;
    el.main.setAttribute("aria-busy", ctx || fatal ? "false" : "true");
    if (ctx && el.error.parentNode !== el.content) {
      // Before the context, errors show at the top; from then on next to the actions.
      el.content.insertBefore(el.error, el.methods);
      el.content.insertBefore(el.notice, el.methods);
    }
    renderError(state);
    if (!ctx) return;
    renderHeader(ctx);
    const fraud = ctx.fraud && typeof ctx.fraud.message === "string" ? ctx.fraud.message : "";
    el.fraud.hidden = !fraud;
    setText(el.fraudText, fraud);
    renderChecks(state);
    renderShield(state, shield);
    renderCode(state);
    renderMethods(state);
    renderReset(state, shield, nowMs);
    renderOthers(state, nowMs);
    renderDialog(state);
    renderHistory(ctx);
  }

  return {
    el,
    render,
    contactResetTarget,
    otherResetTarget,

    /** Puts `text` in the live region (empty it first, for it to be read again). */
    speak(text) {
      el.live.textContent = text;
    },

    /** Focuses `target` unless the focus is on something still usable. */
    focusIfLost(target) {
      const active = doc.activeElement;
      if (!active || active === doc.body || active.hidden || active.disabled || !active.isConnected) {
        target.focus();
      } else if (active.closest && active.closest("[hidden]")) {
        target.focus();
      }
    },

    /** What "Verify someone else" holds: {open, email, emailValid, reason}. */
    readOther() {
      return {
        open: el.other.open,
        email: el.otherEmail.value.trim(),
        emailValid: el.otherEmail.checkValidity(),
        reason: el.otherReason.value.trim(),
      };
    },

    /** Opens "Verify someone else" on its input `field` ("email" or "reason"). */
    focusOther(field) {
      el.other.open = true;
      otherInputs[field].focus();
    },

    /** Empties and closes "Verify someone else" (its person was verified). */
    clearOther() {
      el.otherEmail.value = "";
      el.otherReason.value = "";
      el.other.open = false;
    },

    /** The code typed so far, kept to its first six digits as it is typed. */
    codeDigits() {
      const digits = el.codeInput.value.replace(/\D/g, "").slice(0, 6);
      if (digits !== el.codeInput.value) el.codeInput.value = digits;
      return digits;
    },

    clearCode() {
      el.codeInput.value = "";
    },

    /** Focuses the code, selected, for the technician to type it again. */
    selectCode() {
      el.codeInput.focus();
      el.codeInput.select();
    },

    /** Selects the password, for the technician to copy it by hand. */
    selectPassword() {
      el.password.focus();
      el.password.select();
    },
  };
}
