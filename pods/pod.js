/* Vouch pod: verify the caller, then reset their Microsoft 365 password.
 *
 * Served by Vouch with a strict CSP (script-src 'self'; style-src 'self'): no inline
 * scripts, handlers or style attributes; state is shown with classes, data attributes and
 * the `hidden` attribute. The pod token lives in memory only (third-party cookies and
 * storage are unreliable in PSA iframes).
 */
(() => {
  "use strict";

  // ---------------------------------------------------------------------------------------
  // Configuration (from the <body> data attributes the server fills in)
  // ---------------------------------------------------------------------------------------

  const body = document.body;
  const data = body.dataset;
  const cfg = {
    psa: (data.psa || "").toLowerCase(),
    connection: data.connection || "",
    ticket: data.ticket || "",
    api: (data.api || "").replace(/\/+$/, ""),
    session: data.session || "",
  };
  let token = data.token || "";
  // Keep the token out of the DOM once read.
  body.removeAttribute("data-token");

  const METHODS = ["push", "sms_code", "sms_link"];
  const METHOD_NAMES = {
    push: "Authenticator push",
    sms_code: "SMS code",
    sms_link: "SMS link",
  };
  const NOT_VERIFIED_REASON = "Verify the user's identity first";
  const UNREACHABLE = "Vouch cannot be reached; retrying…";
  const HANDSHAKE_TIMEOUT_MS = 10000;
  const REQUEST_TIMEOUT_MS = 20000;
  const POLL_WAIT_SECONDS = 25;
  const POLL_TIMEOUT_MS = (POLL_WAIT_SECONDS + 20) * 1000;
  const RESET_TIMEOUT_MS = 90000;
  const MAX_BACKOFF_MS = 30000;

  // ---------------------------------------------------------------------------------------
  // Elements
  // ---------------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const el = {
    main: $("vouch"),
    loading: $("vouch-loading"),
    loadingText: $("vouch-loading-text"),
    content: $("vouch-content"),
    error: $("vouch-error"),
    errorText: $("vouch-error-text"),
    retry: $("vouch-retry"),
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
    otherEmail: $("vouch-other-email"),
    otherReason: $("vouch-other-reason"),
    otherError: $("vouch-other-error"),
    reset: $("vouch-reset"),
    resetWrap: $("vouch-reset-wrap"),
    resetReason: $("vouch-reset-reason"),
    outcome: $("vouch-outcome"),
    outcomeText: $("vouch-outcome-text"),
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
  };
  const methodButtons = {};
  const methodDetails = {};
  for (const m of METHODS) {
    methodButtons[m] = $("vouch-method-" + m);
    methodDetails[m] = $("vouch-method-" + m + "-detail");
  }

  // ---------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------

  const state = {
    ctx: null, // the last context from the server (shield may be patched locally)
    pending: null, // {id, method, who} of the verification being waited on
    pollCtl: null, // AbortController of the long-poll loop
    settled: new Set(), // ids of verifications seen decided (a stale context must not revive them)
    starting: null, // method being started
    cancelling: false,
    submittingCode: false,
    fixing: false,
    resetting: false,
    dialogOpen: false,
    idempotencyKey: null,
    lastAttempt: null, // {method, other} of the last method button press
    errorSource: null, // "context" | "poll" | "action" | "fatal"
    retryAction: null,
    announcedKey: null, // the shield state last announced (or first shown)
    holdAnnouncement: false, // a decision is shown provisionally until the context confirms it
    holdTimer: 0,
    clockSkewMs: 0, // server clock minus local clock
    lastContextAt: 0,
    contextSeq: 0,
    expiryTimer: 0,
    liveTimer: 0,
    copyTimer: 0,
    lifetime: new AbortController(), // aborted when the panel goes away
  };

  // ---------------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------------

  class PodError extends Error {
    constructor(code, message, status = 0, payload = null) {
      super(message);
      this.code = code;
      this.status = status;
      this.payload = payload;
      // Worth trying again unchanged: the network or the server was in trouble.
      this.retryable = status === 0 || status >= 500;
    }
  }

  const isAbort = (err) => err && err.name === "AbortError";

  function abortError() {
    return new DOMException("Aborted", "AbortError");
  }

  function sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal && signal.aborted) {
        reject(abortError());
        return;
      }
      const timer = setTimeout(() => {
        if (signal) signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      function onAbort() {
        clearTimeout(timer);
        reject(abortError());
      }
      if (signal) signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  const jitter = (ms) => Math.round(ms * (0.8 + Math.random() * 0.4));

  const now = () => Date.now() + state.clockSkewMs;

  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function setText(node, text) {
    const value = text == null ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  /** Sets text made of strings and {keep: "..."} parts that must not wrap (phone numbers). */
  function setParts(node, parts) {
    const nodes = parts.filter((p) => p !== "" && p != null).map((p) => {
      if (typeof p === "string") return document.createTextNode(p);
      const span = document.createElement("span");
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

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: "short",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
  });

  function parseTime(value) {
    if (!value) return NaN;
    const t = Date.parse(value);
    return Number.isNaN(t) ? NaN : t;
  }

  function formatTime(value) {
    const t = parseTime(value);
    return Number.isNaN(t) ? "" : timeFormat.format(new Date(t));
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

  /** Who is being verified, for sentences: "Dana", "sam@contoso.example" or "the user". */
  function whoFor(pending) {
    if (pending && pending.who) return pending.who;
    const ctx = state.ctx;
    if (!ctx) return "the user";
    return (
      firstName(ctx.user && ctx.user.display_name) ||
      firstName(ctx.contact && ctx.contact.name) ||
      "the user"
    );
  }

  function announce(text) {
    clearTimeout(state.liveTimer);
    el.live.textContent = "";
    if (!text) return;
    state.liveTimer = setTimeout(() => {
      el.live.textContent = text;
    }, 80);
  }

  function focusIfLost(target) {
    const active = document.activeElement;
    if (!active || active === body || active.hidden || active.disabled || !active.isConnected) {
      target.focus();
    } else if (active.closest && active.closest("[hidden]")) {
      target.focus();
    }
  }

  /** How a history entry reads: short, with a glyph so colour is not the only signal. */
  function statusView(item) {
    const text = typeof item.label === "string" && item.label ? item.label : "Failed";
    switch (item.status) {
      case "approved":
        return { tone: "ok", glyph: "✓", text: "Approved" };
      case "pending":
        return { tone: "wait", glyph: "…", text: "Pending" };
      case "cancelled":
        return { tone: "idle", glyph: "–", text: "Cancelled" };
      case "expired":
        return { tone: "idle", glyph: "⏱", text };
      default:
        return { tone: "bad", glyph: "✕", text };
    }
  }

  // ---------------------------------------------------------------------------------------
  // HTTP
  // ---------------------------------------------------------------------------------------

  const apiUrl = (path) => cfg.api + path;

  function noteServerClock(res) {
    const date = parseTime(res.headers.get("Date"));
    if (Number.isNaN(date)) return;
    // The Date header has a one-second resolution: only correct clocks that are clearly off.
    const skew = date + 500 - Date.now();
    state.clockSkewMs = Math.abs(skew) > 5000 ? skew : 0;
  }

  /**
   * One JSON request. Resolves to {status, body}; rejects with a PodError (or an AbortError
   * when `signal` is aborted). A 401 on ConnectWise runs the handshake again, once.
   */
  async function request(method, url, opts = {}) {
    const { json, headers = {}, auth = true, timeout = REQUEST_TIMEOUT_MS, signal, reauth = true } = opts;
    const ctl = new AbortController();
    const signals = [state.lifetime.signal, signal].filter(Boolean);
    const onAbort = () => ctl.abort();
    for (const s of signals) {
      if (s.aborted) throw abortError();
      s.addEventListener("abort", onAbort, { once: true });
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, timeout);
    const h = { Accept: "application/json", ...headers };
    if (json !== undefined) h["Content-Type"] = "application/json";
    if (auth && token) h.Authorization = "Bearer " + token;
    let res;
    let text = "";
    try {
      res = await fetch(url, {
        method,
        headers: h,
        body: json === undefined ? undefined : JSON.stringify(json),
        signal: ctl.signal,
        cache: "no-store",
        credentials: "same-origin",
      });
      text = await res.text();
    } catch (err) {
      if (!timedOut && signals.some((s) => s.aborted)) throw abortError();
      throw new PodError(
        "network",
        timedOut ? "Vouch took too long to answer." : "Vouch cannot be reached.",
      );
    } finally {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener("abort", onAbort);
    }
    noteServerClock(res);
    let payload = null;
    if (text) {
      try {
        payload = JSON.parse(text);
      } catch (_) {
        payload = null;
      }
    }
    if (res.ok) return { status: res.status, body: payload };
    if (res.status === 401 && auth && reauth && canReauthenticate()) {
      await authenticate();
      return request(method, url, { ...opts, reauth: false });
    }
    const code = payload && typeof payload.code === "string" ? payload.code : `http_${res.status}`;
    const message =
      payload && typeof payload.message === "string" && payload.message
        ? payload.message
        : res.status >= 500
          ? `Vouch had a problem (HTTP ${res.status}).`
          : `Vouch refused the request (HTTP ${res.status}).`;
    throw new PodError(code, message, res.status, payload);
  }

  // ---------------------------------------------------------------------------------------
  // ConnectWise Hosted API handshake
  // ---------------------------------------------------------------------------------------

  function referrerOrigin() {
    try {
      if (!document.referrer) return null;
      const origin = new URL(document.referrer).origin;
      return origin && origin !== "null" ? origin : null;
    } catch (_) {
      return null;
    }
  }

  /** The member authentication from the ConnectWise window hosting this pod. */
  function hostedMemberAuthentication() {
    return new Promise((resolve, reject) => {
      if (window.parent === window) {
        reject(new PodError("not_embedded", "Open this panel from a ticket in ConnectWise PSA."));
        return;
      }
      let parentOrigin = referrerOrigin();
      let frameId = null;
      let done = false;
      let readyTimer = 0;

      const post = (message) => {
        try {
          window.parent.postMessage(JSON.stringify(message), parentOrigin || "*");
        } catch (_) {
          /* a bad origin string: the timeout reports it */
        }
      };
      const finish = (err, value) => {
        if (done) return;
        done = true;
        clearTimeout(timeout);
        clearInterval(readyTimer);
        window.removeEventListener("message", onMessage);
        state.lifetime.signal.removeEventListener("abort", onGone);
        if (err) reject(err);
        else resolve(value);
      };
      const onGone = () => finish(abortError());
      const timeout = setTimeout(
        () => finish(new PodError("connectwise_timeout", "ConnectWise did not answer; reload the ticket.")),
        HANDSHAKE_TIMEOUT_MS,
      );

      function onMessage(event) {
        if (event.source !== window.parent) return;
        if (parentOrigin && event.origin !== parentOrigin) return;
        if (typeof event.data !== "string") return;
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (_) {
          return;
        }
        if (!message || typeof message !== "object" || Array.isArray(message)) return;
        const key = (name) => Object.keys(message).find((k) => k.toLowerCase() === name);

        const frameKey = key("messageframeid");
        if (frameId === null && frameKey !== undefined) {
          const frame = message[frameKey];
          if (frame === null || frame === undefined || frame === "") return;
          if (!parentOrigin) {
            if (!event.origin || event.origin === "null") return;
            parentOrigin = event.origin; // learnt from the answer to the first "ready"
          }
          frameId = frame;
          clearInterval(readyTimer);
          post({ hosted_request: "getMemberAuthentication", frameID: frameId });
          return;
        }

        const responseKey = key("response");
        const response = responseKey === undefined ? null : message[responseKey];
        if (frameId !== null && typeof response === "string" && response.toLowerCase() === "getmemberauthentication") {
          const dataKey = key("data");
          const member = dataKey === undefined ? null : message[dataKey];
          if (member && typeof member === "object") finish(null, member);
          else finish(new PodError("connectwise_no_member", "ConnectWise did not say who is signed in; reload the ticket."));
        }
      }

      window.addEventListener("message", onMessage);
      state.lifetime.signal.addEventListener("abort", onGone, { once: true });
      post({ message: "ready" });
      // The host may attach its listener a moment after the pod loads: repeat "ready" until it answers.
      readyTimer = setInterval(() => {
        if (frameId === null) post({ message: "ready" });
      }, 1500);
    });
  }

  const canReauthenticate = () => cfg.psa === "connectwise" && window.parent !== window && !!cfg.session;

  let authenticating = null;

  /** ConnectWise: handshake with the host, then trade the member authentication for a pod token. */
  function authenticate() {
    if (!authenticating) {
      authenticating = (async () => {
        const member = await hostedMemberAuthentication();
        const { body: res } = await request("POST", cfg.session, {
          auth: false,
          json: { connection_id: cfg.connection, ticket_id: cfg.ticket, member },
        });
        if (!res || typeof res.token !== "string" || !res.token) {
          throw new PodError("session_failed", "Vouch did not open a session; reload the ticket.");
        }
        token = res.token;
      })().finally(() => {
        authenticating = null;
      });
    }
    return authenticating;
  }

  // ---------------------------------------------------------------------------------------
  // Errors and notices
  // ---------------------------------------------------------------------------------------

  function showError(err, opts = {}) {
    const { source = "action", canFix = false, retry = null } = opts;
    el.error.dataset.code = (err && err.code) || "error";
    setText(el.errorText, (err && err.message) || "Something went wrong.");
    el.fix.hidden = !canFix;
    el.fixConfirm.hidden = true;
    el.retry.hidden = !retry;
    state.retryAction = retry;
    state.errorSource = source;
    el.error.hidden = false;
  }

  /** Clears the error; with `source`, only an error shown by that source. */
  function clearError(source) {
    if (source && state.errorSource !== source) return;
    if (el.error.hidden) return;
    el.error.hidden = true;
    el.error.dataset.code = "";
    setText(el.errorText, "");
    el.fix.hidden = true;
    el.fixConfirm.hidden = true;
    el.retry.hidden = true;
    state.retryAction = null;
    state.errorSource = null;
  }

  function showNotice(text, offerPush) {
    setText(el.noticeText, text);
    el.fixPush.hidden = !offerPush;
    el.notice.hidden = false;
  }

  function clearNotice() {
    el.notice.hidden = true;
    el.fixPush.hidden = true;
    setText(el.noticeText, "");
  }

  function fatal(err, retry) {
    el.loading.hidden = true;
    el.main.setAttribute("aria-busy", "false");
    showError(err, { source: "fatal", retry });
  }

  // ---------------------------------------------------------------------------------------
  // Context
  // ---------------------------------------------------------------------------------------

  /** Fetches the context, retrying with backoff while Vouch cannot be reached. */
  async function loadContext() {
    const seq = ++state.contextSeq;
    let delay = 1000;
    for (;;) {
      try {
        const { body: ctx } = await request("GET", apiUrl("/context"));
        if (seq !== state.contextSeq) return;
        if (!ctx || typeof ctx !== "object") throw new PodError("bad_context", "Vouch sent an unreadable answer.", 502);
        clearError("context");
        if (state.errorSource === "fatal") clearError("fatal");
        applyContext(ctx);
        return;
      } catch (err) {
        if (isAbort(err) || seq !== state.contextSeq) return;
        if (err.retryable) {
          showError({ code: err.code, message: err.status ? `${err.message} Retrying…` : UNREACHABLE }, { source: "context" });
          if (!state.ctx) setText(el.loadingText, "Retrying…");
          try {
            await sleep(jitter(delay), state.lifetime.signal);
          } catch (_) {
            return;
          }
          if (seq !== state.contextSeq) return;
          delay = Math.min(delay * 2, MAX_BACKOFF_MS);
          continue;
        }
        if (state.ctx) showError(err, { source: "context", retry: () => loadContext() });
        else fatal(err, () => loadContext());
        return;
      }
    }
  }

  function applyContext(ctx) {
    state.ctx = ctx;
    releaseAnnouncement(false);
    state.lastContextAt = Date.now();
    const shield = ctx.shield || {};
    if (shield.state === "pending" && shield.verification_id && !state.settled.has(shield.verification_id)) {
      if (!state.pending || state.pending.id !== shield.verification_id) {
        state.pending = { id: shield.verification_id, method: shield.method || "push", who: null };
        startPolling();
      } else if (!state.pollCtl) {
        startPolling();
      }
    }
    render();
  }

  // ---------------------------------------------------------------------------------------
  // Rendering
  // ---------------------------------------------------------------------------------------

  /** What the shield shows now: {state, label, detail, expiresIn}. */
  function shieldView() {
    const ctx = state.ctx;
    const pending = state.pending;
    if (pending) {
      const who = whoFor(pending);
      let label;
      if (pending.method === "sms_code") label = `Waiting for ${who} to read out the code we texted…`;
      else if (pending.method === "sms_link") label = `Waiting for ${who} to tap the link we texted…`;
      else label = `Waiting for ${who} to approve on their phone…`;
      return { state: "pending", label, detail: "" };
    }
    // Everything the shield says comes from the server; only the countdown is local.
    const shield = (ctx && ctx.shield) || { state: "not_verified", label: "", detail: "" };
    const label = shield.label || "";
    const detail = shield.detail || "";
    if (shield.state === "verified") {
      const until = parseTime(shield.verified_until);
      if (!Number.isNaN(until)) {
        const left = until - now();
        if (left <= 0) {
          return { state: "not_verified", label: shield.expired_label || label, detail: shield.expired_detail || "" };
        }
        return { state: "verified", label, detail: [timeLeft(left), detail].filter(Boolean).join(" · "), expiresIn: left };
      }
    }
    return { state: shield.state || "not_verified", label, detail };
  }

  function render() {
    const ctx = state.ctx;
    el.loading.hidden = !!ctx || state.errorSource === "fatal";
    el.content.hidden = !ctx;
    el.main.setAttribute("aria-busy", ctx ? "false" : "true");
    if (!ctx) return;

    if (el.error.parentNode !== el.content) {
      // Before the context, errors show at the top; from now on next to the actions.
      el.content.insertBefore(el.error, el.methods);
      el.content.insertBefore(el.notice, el.methods);
    }
    renderHeader(ctx);
    const view = renderShield();
    renderCode();
    renderMethods(ctx);
    renderReset(ctx, view);
    renderHistory(ctx);
  }

  function renderHeader(ctx) {
    const contact = ctx.contact || {};
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
    const userError = ctx.user_error || (!ctx.user ? { code: "user_unknown", message: "No Microsoft 365 user is known for this contact." } : null);
    if (userError) {
      el.userError.hidden = false;
      el.userError.dataset.code = userError.code || "";
      setText(el.userErrorText, userError.message || "This contact cannot be matched to a Microsoft 365 user.");
    } else {
      el.userError.hidden = true;
      el.userError.dataset.code = "";
      setText(el.userErrorText, "");
    }

    const tech = ctx.technician && ctx.technician.name;
    setText(el.technician, tech ? `Signed in as ${tech}` : "");
    const ticket = ctx.ticket || {};
    setText(el.ticket, ticket.id ? `Ticket #${ticket.id}${ticket.summary ? ": " + ticket.summary : ""}` : "");
  }

  function renderShield() {
    const view = shieldView();
    el.shield.dataset.state = view.state;
    setText(el.shieldLabel, view.label);
    setText(el.shieldDetail, view.detail);
    el.cancel.hidden = view.state !== "pending" || !state.pending;
    el.cancel.disabled = state.cancelling;
    setBusy(el.cancel, state.cancelling);

    // Announce changes of state (not every minute of the countdown).
    const key = view.state + "|" + view.label;
    if (!state.holdAnnouncement) {
      if (state.announcedKey !== null && state.announcedKey !== key) {
        announce(view.detail ? `${view.label}. ${view.detail}` : view.label);
      }
      state.announcedKey = key;
    }

    scheduleExpiry(view);
    return view;
  }

  /** Re-renders when the next minute of "N min left" passes, and at expiry. */
  function scheduleExpiry(view) {
    clearTimeout(state.expiryTimer);
    if (view.state !== "verified" || !view.expiresIn) return;
    const left = view.expiresIn;
    const wait = left <= 60000 ? left : left % 60000 || 60000;
    state.expiryTimer = setTimeout(onMinuteTick, wait + 50);
  }

  function onMinuteTick() {
    const ctx = state.ctx;
    if (!ctx) return;
    const view = shieldView();
    if (view.state === "not_verified" && ctx.shield && ctx.shield.state === "verified") {
      // The verification ran out: nothing may be reset on it any more.
      ctx.shield = {
        ...ctx.shield,
        state: "not_verified",
        label: ctx.shield.expired_label || ctx.shield.label,
        detail: ctx.shield.expired_detail || "",
      };
      ctx.reset = { ...(ctx.reset || {}), allowed: false, reason: NOT_VERIFIED_REASON };
      render();
      if (state.dialogOpen && !state.resetting) closeResetDialog();
      loadContext();
      return;
    }
    render();
  }

  function renderCode() {
    const show = !!state.pending && state.pending.method === "sms_code";
    el.codeForm.hidden = !show;
    if (show) {
      const who = whoFor(state.pending);
      setText(el.codeLabel, who === "the user" ? "Code the caller reads out" : `Code ${who} reads out`);
    }
    el.codeSubmit.disabled = state.submittingCode;
    setBusy(el.codeSubmit, state.submittingCode);
  }

  function renderMethods(ctx) {
    const list = Array.isArray(ctx.methods) ? ctx.methods : [];
    const hasUser = !!(ctx.user && ctx.user.upn) && !ctx.user_error;
    const blocked = !!state.pending || !!state.starting || state.cancelling || state.fixing;
    for (const m of METHODS) {
      const button = methodButtons[m];
      const option = list.find((o) => o && o.method === m);
      const available = !!(option && option.available);
      const detail = (option && option.detail) || (option ? "" : "Not offered for this user");
      setText(methodDetails[m], detail);
      button.disabled = !hasUser || !available || blocked;
      setTitle(button, available ? "" : detail);
      setBusy(button, state.starting === m);
    }
  }

  function resetTarget(ctx) {
    const r = ctx.reset || {};
    const user = ctx.user || {};
    return {
      name: r.display_name || user.display_name || "",
      upn: r.upn || user.upn || "",
      phone: r.masked_phone || "",
    };
  }

  function renderReset(ctx, view) {
    const r = ctx.reset || {};
    const expired = view.state === "not_verified" && ctx.shield && ctx.shield.state === "verified";
    const allowed = !!r.allowed && !expired && !!r.verification_id;
    let reason = "";
    if (!allowed) reason = (!expired && r.reason) || NOT_VERIFIED_REASON;
    el.reset.disabled = !allowed || state.resetting;
    setTitle(el.reset, reason);
    setTitle(el.resetWrap, reason);
    if (allowed) {
      const t = resetTarget(ctx);
      setParts(el.resetReason, t.phone ? ["The new password goes by SMS to ", { keep: t.phone }, "."] : []);
    } else {
      setText(el.resetReason, reason);
    }
  }

  function renderHistory(ctx) {
    const items = (Array.isArray(ctx.history) ? ctx.history : [])
      .filter((h) => h && typeof h === "object")
      .slice()
      .sort((a, b) => (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0))
      .slice(0, 10);
    const fragment = document.createDocumentFragment();
    for (const item of items) {
      const view = statusView(item);
      const li = document.createElement("li");
      li.className = "history-item";
      li.dataset.tone = view.tone;
      if (item.id) li.dataset.id = item.id;

      const time = document.createElement("time");
      time.className = "history-time";
      if (item.created_at) time.dateTime = item.created_at;
      time.textContent = formatDateTime(item.created_at) || "—";

      const method = document.createElement("span");
      method.className = "history-method";
      method.textContent = METHOD_NAMES[item.method] || item.method || "";

      const status = document.createElement("span");
      status.className = "history-status";
      const glyph = document.createElement("span");
      glyph.className = "history-glyph";
      glyph.setAttribute("aria-hidden", "true");
      glyph.textContent = view.glyph;
      status.append(glyph, view.text);

      li.append(time, " ", method, " ", status);
      fragment.append(li);
    }
    el.history.replaceChildren(fragment);
    el.historyEmpty.hidden = items.length > 0;
  }

  // ---------------------------------------------------------------------------------------
  // Verifications
  // ---------------------------------------------------------------------------------------

  /** Marks one "Verify someone else" input as wrong, next to it as well as in #vouch-error. */
  function flagOther(input, err) {
    clearOtherFlags();
    el.other.open = true;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", el.otherError.id);
    setText(el.otherError, err.message);
    el.otherError.hidden = false;
    input.focus();
  }

  function clearOtherFlags() {
    for (const input of [el.otherEmail, el.otherReason]) {
      input.removeAttribute("aria-invalid");
      if (input.getAttribute("aria-describedby") === el.otherError.id) input.removeAttribute("aria-describedby");
    }
    el.otherEmail.setAttribute("aria-describedby", "vouch-other-hint");
    el.otherError.hidden = true;
    setText(el.otherError, "");
  }

  /** The "Verify someone else" inputs: null when unused, false when incomplete. */
  function readOther() {
    clearOtherFlags();
    if (!el.other.open) return null;
    const email = el.otherEmail.value.trim();
    const reason = el.otherReason.value.trim();
    if (!email && !reason) return null;
    if (!email || !el.otherEmail.checkValidity()) {
      const err = { code: "email_required", message: "Enter the e-mail address of the person to verify." };
      showError(err);
      flagOther(el.otherEmail, err);
      return false;
    }
    if (!reason) {
      const err = { code: "reason_required", message: "Give the reason for verifying someone other than the ticket's contact." };
      showError(err);
      flagOther(el.otherReason, err);
      return false;
    }
    return { email, reason };
  }

  async function startVerification(method, presetOther) {
    if (state.pending || state.starting) return;
    clearError();
    clearNotice();
    const other = presetOther !== undefined ? presetOther : readOther();
    if (other === false) return;
    clearPassword(); // a password from an earlier reset does not stay on screen
    state.lastAttempt = { method, other };
    state.starting = method;
    render();
    try {
      const { body: v } = await request("POST", apiUrl("/verifications"), { json: { method, other_user: other } });
      if (!v || !v.id) throw new PodError("bad_verification", "Vouch sent an unreadable answer.", 502);
      if (other) {
        clearOtherFlags();
        el.otherEmail.value = "";
        el.otherReason.value = "";
        el.other.open = false;
      }
      state.starting = null;
      if (!v.status || v.status === "pending") {
        state.pending = { id: v.id, method: v.method || method, who: other ? other.email : null };
        render();
        startPolling();
        if (state.pending.method === "sms_code") el.codeInput.focus();
        else focusIfLost(el.cancel);
      } else {
        state.pending = { id: v.id, method: v.method || method, who: other ? other.email : null };
        settle(v);
      }
    } catch (err) {
      if (isAbort(err)) return;
      state.starting = null;
      const canFix = err.code === "preferred_method_mismatch" && !!(err.payload && err.payload.can_fix);
      showError(err, { canFix });
      if (err.code === "reason_required") {
        flagOther(el.otherReason, err);
      } else if (err.code === "push_already_pending") {
        loadContext();
      }
      render();
      if (canFix) el.fix.focus();
      else focusIfLost(methodButtons[method]);
    } finally {
      state.starting = null;
      render();
    }
  }

  function stopPolling() {
    if (state.pollCtl) {
      state.pollCtl.abort();
      state.pollCtl = null;
    }
  }

  /** Long-polls the pending verification until it is decided. */
  function startPolling() {
    stopPolling();
    const pending = state.pending;
    if (!pending) return;
    const ctl = new AbortController();
    state.pollCtl = ctl;
    const stillWaiting = () => !ctl.signal.aborted && state.pending && state.pending.id === pending.id;
    (async () => {
      let delay = 1000;
      while (stillWaiting()) {
        const started = Date.now();
        try {
          const { body: v } = await request(
            "GET",
            apiUrl(`/verifications/${encodeURIComponent(pending.id)}?wait_seconds=${POLL_WAIT_SECONDS}`),
            { signal: ctl.signal, timeout: POLL_TIMEOUT_MS },
          );
          clearError("poll");
          delay = 1000;
          if (!stillWaiting()) return;
          if (v && v.status && v.status !== "pending") {
            settle(v);
            return;
          }
          // Still pending. Never spin if the server answers at once.
          if (Date.now() - started < 1000) await sleep(2000, ctl.signal);
        } catch (err) {
          if (isAbort(err) || !stillWaiting()) return;
          if (err.retryable) {
            showError({ code: err.code, message: UNREACHABLE }, { source: "poll" });
            try {
              await sleep(jitter(delay), ctl.signal);
            } catch (_) {
              return;
            }
            delay = Math.min(delay * 2, MAX_BACKOFF_MS);
            continue;
          }
          // The verification is gone or not ours: stop waiting and show what the server says.
          if (state.pollCtl === ctl) state.pollCtl = null;
          state.pending = null;
          showError(err);
          render();
          loadContext();
          return;
        }
      }
    })();
  }

  /** Until the context confirms a decision, the provisional shield is shown but not announced. */
  function holdAnnouncement() {
    state.holdAnnouncement = true;
    clearTimeout(state.holdTimer);
    state.holdTimer = setTimeout(() => releaseAnnouncement(true), 4000);
  }

  function releaseAnnouncement(rerender) {
    clearTimeout(state.holdTimer);
    if (!state.holdAnnouncement) return;
    state.holdAnnouncement = false;
    if (rerender) render();
  }

  /** A verification was decided (approved, denied, expired, failed or cancelled). */
  function settle(v) {
    if (!state.pending || state.pending.id !== v.id) {
      loadContext(); // already settled (e.g. the code and the long poll both answered)
      return;
    }
    stopPolling();
    state.settled.add(v.id);
    state.pending = null;
    el.codeInput.value = "";
    el.codeInput.removeAttribute("aria-invalid");
    clearError("poll");

    const ctx = state.ctx;
    if (ctx) {
      // Show the decision at once; the context fetched below replaces it.
      if (v.shield) ctx.shield = v.shield;
    }
    if (v.status === "cancelled") {
      announce("Verification cancelled.");
      state.announcedKey = null; // the next render records the new state without announcing it
    } else {
      holdAnnouncement();
    }
    render();
    focusIfLost(el.shield);
    loadContext();
  }

  async function cancelPending() {
    const pending = state.pending;
    if (!pending || state.cancelling) return;
    state.cancelling = true;
    stopPolling();
    render();
    try {
      const { body: v } = await request("POST", apiUrl(`/verifications/${encodeURIComponent(pending.id)}/cancel`));
      state.cancelling = false;
      if (v && v.id && v.status && v.status !== "pending") settle(v);
      else {
        state.pending = null;
        loadContext();
      }
    } catch (err) {
      if (isAbort(err)) return;
      state.cancelling = false;
      showError(err);
      if (err.retryable) {
        startPolling(); // still pending as far as we know
      } else {
        state.pending = null;
        loadContext();
      }
    } finally {
      state.cancelling = false;
      render();
      focusIfLost(el.shield);
    }
  }

  async function submitCode(event) {
    event.preventDefault();
    const pending = state.pending;
    if (!pending || state.submittingCode) return;
    const code = el.codeInput.value.replace(/\D/g, "");
    if (code.length !== 6) {
      el.codeInput.setAttribute("aria-invalid", "true");
      showError({ code: "code_format", message: "Enter the 6-digit code the caller reads out." });
      el.codeInput.focus();
      return;
    }
    clearError();
    state.submittingCode = true;
    render();
    try {
      const { body: v } = await request("POST", apiUrl(`/verifications/${encodeURIComponent(pending.id)}/code`), {
        json: { code },
      });
      state.submittingCode = false;
      if (v && v.id && v.status && v.status !== "pending") settle(v);
    } catch (err) {
      if (isAbort(err)) return;
      state.submittingCode = false;
      showError(err);
      if (err.code === "code_incorrect" || err.retryable) {
        el.codeInput.setAttribute("aria-invalid", "true");
        render();
        el.codeInput.focus();
        el.codeInput.select();
      } else {
        // too_many_attempts, code_expired, or the verification is otherwise over.
        if (state.pending && state.pending.id === pending.id) {
          stopPolling();
          state.pending = null;
        }
        render();
        focusIfLost(el.shield);
        loadContext();
      }
    } finally {
      state.submittingCode = false;
      render();
    }
  }

  // ---------------------------------------------------------------------------------------
  // "Make Authenticator the default"
  // ---------------------------------------------------------------------------------------

  function askFix() {
    const who = whoFor(state.lastAttempt && state.lastAttempt.other ? { who: state.lastAttempt.other.email } : null);
    setText(
      el.fixQuestion,
      `Make the Microsoft Authenticator push ${who === "the user" ? "the user's" : who + "'s"} default sign-in method? This changes how they sign in to Microsoft 365.`,
    );
    el.fix.hidden = true;
    el.fixConfirm.hidden = false;
    el.fixYes.focus();
  }

  function dropFix() {
    el.fixConfirm.hidden = true;
    el.fix.hidden = false;
    el.fix.focus();
  }

  async function applyFix() {
    if (state.fixing) return;
    state.fixing = true;
    el.fixYes.disabled = true;
    el.fixNo.disabled = true;
    setBusy(el.fixYes, true);
    render();
    try {
      await request("POST", apiUrl("/default-method"), { json: { confirm: true } });
      clearError();
      const who = whoFor(state.lastAttempt && state.lastAttempt.other ? { who: state.lastAttempt.other.email } : null);
      showNotice(`Authenticator is now ${who === "the user" ? "the user's" : who + "'s"} default sign-in method.`, true);
      announce("Authenticator is now the default sign-in method.");
      state.fixing = false;
      render();
      el.fixPush.focus();
      loadContext();
    } catch (err) {
      if (isAbort(err)) return;
      showError(err);
      focusIfLost(el.shield);
    } finally {
      state.fixing = false;
      el.fixYes.disabled = false;
      el.fixNo.disabled = false;
      setBusy(el.fixYes, false);
      render();
    }
  }

  function pushAgain() {
    const other = state.lastAttempt ? state.lastAttempt.other : null;
    clearNotice();
    startVerification("push", other);
  }

  // ---------------------------------------------------------------------------------------
  // Password reset
  // ---------------------------------------------------------------------------------------

  function openResetDialog() {
    const ctx = state.ctx;
    if (!ctx || el.reset.disabled || state.dialogOpen) return;
    const t = resetTarget(ctx);
    const who = t.name && t.upn ? `${t.name} (${t.upn})` : t.name || t.upn || "this user";
    setParts(el.question, [
      `Reset the Microsoft 365 password of ${who}? The new password will be sent as a one-time secure link by SMS to `,
      t.phone ? { keep: t.phone } : "the user's mobile phone",
      ".",
    ]);
    // One key per dialog: double clicks and retries are one reset.
    state.idempotencyKey = uuid();
    el.dialogError.hidden = true;
    el.dialogError.dataset.code = "";
    setText(el.dialogError, "");
    setText(el.go, "Reset password");
    el.go.disabled = false;
    el.goCancel.disabled = false;
    el.dialog.hidden = false;
    el.main.inert = true;
    state.dialogOpen = true;
    el.goCancel.focus();
  }

  function closeResetDialog(focusTarget) {
    if (!state.dialogOpen || state.resetting) return;
    state.dialogOpen = false;
    state.idempotencyKey = null;
    el.dialog.hidden = true;
    el.main.inert = false;
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

  async function doReset() {
    const ctx = state.ctx;
    if (!ctx || state.resetting || !state.dialogOpen) return;
    const verificationId = ctx.reset && ctx.reset.verification_id;
    const key = state.idempotencyKey || (state.idempotencyKey = uuid());
    state.resetting = true;
    el.go.disabled = true;
    el.goCancel.disabled = true;
    setBusy(el.go, true);
    setText(el.go, "Resetting…");
    el.dialogError.hidden = true;
    announce("Resetting the password…");
    try {
      const { body: result } = await request("POST", apiUrl("/reset"), {
        headers: { "Idempotency-Key": key },
        json: { verification_id: verificationId, confirm: true },
        timeout: RESET_TIMEOUT_MS,
      });
      state.resetting = false;
      setBusy(el.go, false);
      showOutcome(result || {});
      closeResetDialog(el.outcome);
      loadContext();
    } catch (err) {
      if (isAbort(err)) return;
      state.resetting = false;
      setBusy(el.go, false);
      if (err.retryable) {
        // The outcome is unknown: keep the dialog (and its key) so a retry cannot reset twice.
        el.dialogError.dataset.code = err.code;
        setText(
          el.dialogError,
          `${err.status ? err.message : "Vouch could not be reached, so it is not known whether the password was reset."} Try again: the password will not be reset twice.`,
        );
        el.dialogError.hidden = false;
        setText(el.go, "Try again");
        el.go.disabled = false;
        el.goCancel.disabled = false;
        el.go.focus();
        return;
      }
      showOutcomeError(err);
      closeResetDialog(el.outcome);
      loadContext();
    } finally {
      setBusy(el.go, false);
      render();
    }
  }

  function clearPassword() {
    el.password.value = "";
    el.passwordBox.hidden = true;
  }

  function showOutcome(result) {
    const status = result.status || "failed";
    const ctx = state.ctx;
    const phone = result.sent_to || (ctx && ctx.reset && ctx.reset.masked_phone);
    const to = phone ? { keep: phone } : "the user's mobile phone";
    const until = formatTime(result.link_expires_at);
    let parts;
    if (status === "completed") {
      parts = ["Password reset. A secure link was sent to ", to, "."];
      if (until) parts.push(` It works until ${until}.`);
    } else if (status === "completed_sms_failed") {
      parts = ["The password was reset, but the text message to ", to, " could not be sent."];
      parts.push(
        result.password
          ? " Give the user the password below."
          : " Verify the user again and reset again to send a new link.",
      );
    } else {
      const reason = result.message || (result.failure_code ? result.failure_code.replace(/_/g, " ") : "");
      parts = [reason ? `The password was not reset: ${reason}` : "The password was not reset."];
    }
    el.outcome.dataset.status = status;
    el.outcome.dataset.code = result.failure_code || "";
    setParts(el.outcomeText, parts);
    if (typeof result.password === "string" && result.password) {
      el.password.value = result.password;
      el.passwordBox.hidden = false;
      setText(el.passwordCopy, "Copy");
    } else {
      clearPassword();
    }
  }

  function showOutcomeError(err) {
    clearPassword();
    el.outcome.dataset.status = "error";
    el.outcome.dataset.code = err.code || "error";
    setText(el.outcomeText, err.message);
  }

  async function copyPassword() {
    const value = el.password.value;
    if (!value) return;
    let copied = false;
    try {
      await navigator.clipboard.writeText(value);
      copied = true;
    } catch (_) {
      el.password.focus();
      el.password.select();
      try {
        copied = document.execCommand("copy");
      } catch (__) {
        copied = false;
      }
    }
    setText(el.passwordCopy, copied ? "Copied" : "Press Ctrl+C");
    announce(copied ? "Password copied." : "The password is selected: press Ctrl+C to copy it.");
    clearTimeout(state.copyTimer);
    state.copyTimer = setTimeout(() => setText(el.passwordCopy, "Copy"), 3000);
  }

  // ---------------------------------------------------------------------------------------
  // Wiring
  // ---------------------------------------------------------------------------------------

  for (const m of METHODS) {
    methodButtons[m].addEventListener("click", () => startVerification(m));
  }
  el.cancel.addEventListener("click", cancelPending);
  el.codeForm.addEventListener("submit", submitCode);
  el.codeInput.addEventListener("input", () => {
    const digits = el.codeInput.value.replace(/\D/g, "").slice(0, 6);
    if (digits !== el.codeInput.value) el.codeInput.value = digits;
    el.codeInput.removeAttribute("aria-invalid");
  });
  el.otherEmail.addEventListener("input", clearOtherFlags);
  el.otherReason.addEventListener("input", clearOtherFlags);

  el.fix.addEventListener("click", askFix);
  el.fixNo.addEventListener("click", dropFix);
  el.fixYes.addEventListener("click", applyFix);
  el.fixConfirm.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !state.fixing) {
      event.preventDefault();
      dropFix();
    }
  });
  el.fixPush.addEventListener("click", pushAgain);
  el.retry.addEventListener("click", () => {
    const action = state.retryAction;
    clearError();
    if (!state.ctx) el.loading.hidden = false;
    if (action) action();
  });

  el.reset.addEventListener("click", openResetDialog);
  el.go.addEventListener("click", doReset);
  el.goCancel.addEventListener("click", () => closeResetDialog());
  el.dialog.addEventListener("keydown", dialogKeydown);
  el.passwordCopy.addEventListener("click", copyPassword);

  // Refresh a stale view when the technician comes back to the tab.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !state.ctx || !token) return;
    if (Date.now() - state.lastContextAt > 60000 && !state.resetting) loadContext();
  });

  // The panel is going away: stop long polls and retries politely.
  window.addEventListener("pagehide", () => {
    stopPolling();
    state.lifetime.abort();
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    state.lifetime = new AbortController();
    if (token) loadContext();
    if (state.pending) startPolling();
  });

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------

  async function boot() {
    if (!cfg.api || cfg.api.includes("{{")) {
      fatal({ code: "not_served", message: "This panel must be opened through Vouch." });
      return;
    }
    el.loading.hidden = false;
    if (!token) {
      if (cfg.psa !== "connectwise") {
        fatal({ code: "missing_token", message: "This panel has no Vouch session; reload the ticket." });
        return;
      }
      setText(el.loadingText, "Connecting to ConnectWise…");
      try {
        await authenticate();
      } catch (err) {
        if (isAbort(err)) return;
        fatal(err, boot);
        return;
      }
    }
    setText(el.loadingText, "Loading…");
    await loadContext();
  }

  boot();
})();
