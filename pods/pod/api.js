/* Vouch pod: the client of Vouch's pod API (`/api/v1/pod`).
 *
 * JSON requests with timeouts, the pod token (from the page, or on ConnectWise from the
 * Hosted API handshake with the hosting window), the server's clock, and the two loops that
 * wait: the context load that backs off while Vouch cannot be reached, and the long poll of
 * a pending verification. It knows nothing of the page: answers and errors go back to the
 * caller as they are.
 */

const HANDSHAKE_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 20000;
const POLL_WAIT_SECONDS = 25;
const POLL_TIMEOUT_MS = (POLL_WAIT_SECONDS + 20) * 1000;
const RESET_TIMEOUT_MS = 90000;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;

/** A request that failed: `code` is the server's published error code (or a local one). */
export class PodError extends Error {
  constructor(code, message, status = 0, payload = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.payload = payload;
    // Worth trying again unchanged: the network or the server was in trouble.
    this.retryable = status === 0 || status >= 500;
  }
}

/** Whether `err` only says that the work was called off (the panel is going away). */
export const isAbort = (err) => !!err && err.name === "AbortError";

function abortError() {
  return new DOMException("Aborted", "AbortError");
}

/** Waits `ms`, or rejects with an AbortError as soon as one of `signals` aborts. */
function sleep(ms, ...signals) {
  const live = signals.filter(Boolean);
  return new Promise((resolve, reject) => {
    if (live.some((s) => s.aborted)) {
      reject(abortError());
      return;
    }
    const done = () => {
      for (const s of live) s.removeEventListener("abort", onAbort);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      done();
      reject(abortError());
    }
    for (const s of live) s.addEventListener("abort", onAbort, { once: true });
  });
}

/** Exponential backoff with jitter, from one second up to thirty. */
function backoff() {
  let delay = FIRST_BACKOFF_MS;
  return {
    next() {
      const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      return wait;
    },
    reset() {
      delay = FIRST_BACKOFF_MS;
    },
  };
}

/** A fresh key for `Idempotency-Key`: one per reset dialog, so retries are one reset. */
export function idempotencyKey() {
  if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function parseTime(value) {
  if (!value) return NaN;
  const t = Date.parse(value);
  return Number.isNaN(t) ? NaN : t;
}

function referrerOrigin() {
  try {
    if (!document.referrer) return null;
    const origin = new URL(document.referrer).origin;
    return origin && origin !== "null" ? origin : null;
  } catch (_) {
    return null;
  }
}

/**
 * The ConnectWise window hosting this pod, as the Hosted API sees it: one listener for the
 * pod's whole life. It acknowledges every event Manage sends (`onLoad`, `beforeSave`: Manage
 * waits for `{event, _id, result: "success"}`), before, during and long after the handshake,
 * and hands the handshake in progress (if any) its answers.
 */
const host = {
  listening: false,
  origin: null, // the referrer's origin, or learnt from the answer to the first "ready"
  frameId: null, // from MessageFrameID; added to every later message
  waiter: null, // the handshake in progress: { onFrame(), onMember(data) }
};

function postToHost(message) {
  try {
    window.parent.postMessage(JSON.stringify(message), host.origin || "*");
  } catch (_) {
    /* a bad origin string: the handshake's timeout reports it */
  }
}

function onHostMessage(event) {
  if (event.source !== window.parent) return;
  if (host.origin && event.origin !== host.origin) return;
  if (typeof event.data !== "string") return;
  let message;
  try {
    message = JSON.parse(event.data);
  } catch (_) {
    return;
  }
  if (!message || typeof message !== "object" || Array.isArray(message)) return;
  const key = (name) => Object.keys(message).find((k) => k.toLowerCase() === name);

  const eventKey = key("event");
  if (eventKey !== undefined && typeof message[eventKey] === "string") {
    // The pod has nothing to add to a save or a load: it only says it is fine with it.
    const ack = { event: message[eventKey], _id: message[key("_id")], result: "success" };
    if (host.frameId !== null) ack.frameID = host.frameId;
    postToHost(ack);
    return;
  }

  const frameKey = key("messageframeid");
  if (host.frameId === null && frameKey !== undefined) {
    const frame = message[frameKey];
    if (frame === null || frame === undefined || frame === "") return;
    if (!host.origin) {
      if (!event.origin || event.origin === "null") return;
      host.origin = event.origin;
    }
    host.frameId = frame;
    if (host.waiter) host.waiter.onFrame();
    return;
  }

  const responseKey = key("response");
  const response = responseKey === undefined ? null : message[responseKey];
  if (host.frameId !== null && typeof response === "string" && response.toLowerCase() === "getmemberauthentication") {
    const dataKey = key("data");
    if (host.waiter) host.waiter.onMember(dataKey === undefined ? null : message[dataKey]);
  }
}

function listenToHost() {
  if (host.listening) return;
  host.listening = true;
  host.origin = referrerOrigin();
  window.addEventListener("message", onHostMessage);
}

/** The member authentication from the ConnectWise window hosting this pod. */
function hostedMemberAuthentication(lifetime) {
  return new Promise((resolve, reject) => {
    if (window.parent === window) {
      reject(new PodError("not_embedded", "Open this panel from a ticket in ConnectWise PSA."));
      return;
    }
    listenToHost();
    let done = false;
    let readyTimer = 0;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timeout);
      clearInterval(readyTimer);
      if (host.waiter === waiter) host.waiter = null;
      lifetime.removeEventListener("abort", onGone);
      if (err) reject(err);
      else resolve(value);
    };
    const onGone = () => finish(abortError());
    const timeout = setTimeout(
      () => finish(new PodError("connectwise_timeout", "ConnectWise did not answer; reload the ticket.")),
      HANDSHAKE_TIMEOUT_MS,
    );
    const waiter = {
      onFrame() {
        clearInterval(readyTimer);
        postToHost({ hosted_request: "getMemberAuthentication", frameID: host.frameId });
      },
      onMember(member) {
        if (member && typeof member === "object") finish(null, member);
        else finish(new PodError("connectwise_no_member", "ConnectWise did not say who is signed in; reload the ticket."));
      },
    };
    host.waiter = waiter;
    lifetime.addEventListener("abort", onGone, { once: true });
    if (host.frameId !== null) {
      // Signing in again: the frame is known, only the member is asked for.
      waiter.onFrame();
      return;
    }
    postToHost({ message: "ready" });
    // The host may attach its listener a moment after the pod loads: repeat "ready" until it answers.
    readyTimer = setInterval(() => {
      if (host.frameId === null) postToHost({ message: "ready" });
    }, 1500);
  });
}

/**
 * The client for one pod page. `config` comes from the page: `psa`, `connection`, `ticket`,
 * `api` (the pod API's base path), `session` (ConnectWise's session endpoint) and `token`
 * (empty on ConnectWise, whose token comes from the handshake). The token lives in memory
 * only: third-party cookies and storage are unreliable in PSA iframes.
 */
export function createClient(config) {
  let token = config.token || "";
  let lifetime = new AbortController(); // aborted when the panel goes away
  let clockSkewMs = 0; // server clock minus local clock
  let authenticating = null;

  const apiUrl = (path) => config.api + path;
  const canReauthenticate = () => config.psa === "connectwise" && window.parent !== window && !!config.session;

  function noteServerClock(res) {
    const date = parseTime(res.headers.get("Date"));
    if (Number.isNaN(date)) return;
    // The Date header has a one-second resolution: only correct clocks that are clearly off.
    const skew = date + 500 - Date.now();
    clockSkewMs = Math.abs(skew) > 5000 ? skew : 0;
  }

  /**
   * One JSON request. Resolves to {status, body}; rejects with a PodError (or an AbortError
   * when `signal` aborts or the panel goes away). A 401 on ConnectWise runs the handshake
   * again, once.
   */
  async function request(method, url, opts = {}) {
    const { json, headers = {}, auth = true, timeout = REQUEST_TIMEOUT_MS, signal, reauth = true } = opts;
    const ctl = new AbortController();
    const signals = [lifetime.signal, signal].filter(Boolean);
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

  /** ConnectWise: handshake with the host, then trade the member authentication for a pod token. */
  function authenticate() {
    if (!authenticating) {
      authenticating = (async () => {
        const member = await hostedMemberAuthentication(lifetime.signal);
        const { body: res } = await request("POST", config.session, {
          auth: false,
          json: { connection_id: config.connection, ticket_id: config.ticket, member },
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

  const verificationUrl = (id, rest = "") => apiUrl(`/verifications/${encodeURIComponent(id)}${rest}`);

  return {
    /** Whether the pod has a token (or ConnectWise's handshake gave it one). */
    hasToken: () => !!token,

    /** The time on the server's clock, in milliseconds. */
    now: () => Date.now() + clockSkewMs,

    authenticate,

    /**
     * `GET /context`, repeated with backoff while Vouch cannot be reached or is in trouble;
     * `onRetry(err)` hears of each failure before the wait. Rejects with the first error
     * not worth repeating, or an AbortError when `signal` aborts.
     */
    async context({ signal, onRetry }) {
      const wait = backoff();
      for (;;) {
        try {
          const { body } = await request("GET", apiUrl("/context"), { signal });
          if (!body || typeof body !== "object") {
            throw new PodError("bad_context", "Vouch sent an unreadable answer.", 502);
          }
          return body;
        } catch (err) {
          if (isAbort(err) || !err.retryable) throw err;
          onRetry(err);
          await sleep(wait.next(), lifetime.signal, signal);
        }
      }
    },

    /** `POST /verifications`: starts verifying by `method`, of `other` when not the contact. */
    start: (method, other) => request("POST", apiUrl("/verifications"), { json: { method, other_user: other } }),

    /**
     * Long-polls verification `id` until it is decided, and resolves to it. While Vouch
     * cannot be reached it backs off (`onRetry(err)` before each wait); `onAnswer()` hears of
     * every answer. Rejects with the first error not worth repeating (the verification is
     * gone or not ours), or an AbortError when `signal` aborts.
     */
    async watch(id, { signal, onRetry, onAnswer }) {
      const wait = backoff();
      for (;;) {
        const started = Date.now();
        try {
          const { body: v } = await request("GET", verificationUrl(id, `?wait_seconds=${POLL_WAIT_SECONDS}`), {
            signal,
            timeout: POLL_TIMEOUT_MS,
          });
          wait.reset();
          onAnswer();
          if (v && v.status && v.status !== "pending") return v;
          // Still pending. Never spin if the server answers at once.
          if (Date.now() - started < 1000) await sleep(2000, lifetime.signal, signal);
        } catch (err) {
          if (isAbort(err) || !err.retryable) throw err;
          onRetry(err);
          await sleep(wait.next(), lifetime.signal, signal);
        }
      }
    },

    /** `POST /verifications/{id}/cancel`. */
    cancel: (id) => request("POST", verificationUrl(id, "/cancel")),

    /** `POST /verifications/{id}/code`: the code the caller reads out. */
    submitCode: (id, code) => request("POST", verificationUrl(id, "/code"), { json: { code } }),

    /** `POST /default-method`: makes the Authenticator push the user's default. */
    /** `fixToken` names the user the refused push was for: only their default changes. */
    makePushDefault: (fixToken) =>
      request("POST", apiUrl("/default-method"), { json: { confirm: true, fix_token: fixToken } }),

    /** `POST /reset` on the approved verification, once per `key` however often it is sent. */
    reset: (verificationId, key) =>
      request("POST", apiUrl("/reset"), {
        headers: { "Idempotency-Key": key },
        json: { verification_id: verificationId, confirm: true },
        timeout: RESET_TIMEOUT_MS,
      }),

    /** `POST /resets/{id}/resend`: the reset's link again, to the user's registered mobile. */
    resend: (resetId) => request("POST", apiUrl(`/resets/${encodeURIComponent(resetId)}/resend`)),

    /** The panel is going away: abort every request and wait. */
    suspend() {
      lifetime.abort();
    },

    /** The panel is back (from the back-forward cache). */
    resume() {
      lifetime = new AbortController();
    },
  };
}
