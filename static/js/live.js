// Live updates over the WebSocket ws(s)://<host>/ws/samples/, authenticated by the session
// cookie. docs/asyncapi.yaml describes every message.
//
//   import { Live, statusBadge } from "./live.js";
//   const live = new Live({
//     onMessage: ({ type, payload }) => { … },       // sample | violation | ack_update |
//                                                    // limits_update | statistics_update
//     onStatus: statusBadge(document.querySelector("[data-live-status]")),
//     onReconnect: (ids) => { … },                    // catch up: GET /api/v1/samples/?since=…
//     onError: (message) => { … },                    // the server's {"type": "error", …}
//   });
//   live.subscribe([3, 4]);
//
// The connection opens at once and, when it drops, reopens after 1 s, 2 s, 4 s … up to 30 s,
// subscribes again to every id and then calls onReconnect(ids): events committed while it was
// away are not replayed, so the page fetches them. Status: "live" while connected,
// "reconnecting" while waiting to reopen, "offline" when the browser is offline or the server
// refused the connection for good (signed out: close code 4401; not allowed: 4403).

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
const PING_MS = 60_000;
const IDS_PER_MESSAGE = 500; // the server's limit per subscribe message
const FINAL_CLOSE_CODES = new Set([4401, 4403]);

function samplesUrl() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws/samples/`;
}

export class Live {
  constructor({ onMessage = () => {}, onStatus = () => {}, onReconnect = () => {}, onError = () => {}, url = samplesUrl() } = {}) {
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.onReconnect = onReconnect;
    this.onError = onError;
    this.url = url;
    this.ids = new Set();
    this.delay = FIRST_DELAY_MS;
    this.opened = false; // once opened, a later open is a reconnect
    this.catchingUp = false;
    this.stopped = false;
    this.socket = null;
    this.retryTimer = null;
    this.pingTimer = null;
    window.addEventListener("online", () => this.retryNow());
    window.addEventListener("offline", () => this.status("offline"));
    this.connect();
  }

  subscribe(ids) {
    const fresh = ids.map(Number).filter((id) => id > 0 && !this.ids.has(id));
    fresh.forEach((id) => this.ids.add(id));
    if (this.isOpen()) this.sendIds("subscribe", fresh);
  }

  unsubscribe(ids) {
    const known = ids.map(Number).filter((id) => this.ids.delete(id));
    if (this.isOpen()) this.sendIds("unsubscribe", known);
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.socket?.close(1000);
    this.status("offline");
  }

  // --- internals ---

  isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  status(value) {
    if (value !== this.lastStatus) {
      this.lastStatus = value;
      this.onStatus(value);
    }
  }

  send(message) {
    if (this.isOpen()) this.socket.send(JSON.stringify(message));
  }

  sendIds(type, ids) {
    for (let i = 0; i < ids.length; i += IDS_PER_MESSAGE) {
      this.send({ type, characteristic_ids: ids.slice(i, i + IDS_PER_MESSAGE) });
    }
  }

  connect() {
    if (this.stopped) return;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => this.handleOpen(socket));
    socket.addEventListener("message", (event) => this.handleMessage(event));
    socket.addEventListener("close", (event) => this.handleClose(socket, event));
  }

  handleOpen(socket) {
    if (socket !== this.socket) return;
    const reconnect = this.opened;
    this.opened = true;
    this.delay = FIRST_DELAY_MS;
    this.status("live");
    this.sendIds("subscribe", [...this.ids]);
    if (reconnect) {
      // The server handles one connection's messages in order: its pong means every subscribe
      // above is in force, so a catch-up fetched from now on misses nothing.
      this.catchingUp = true;
      this.send({ type: "ping" });
    }
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.send({ type: "ping" }), PING_MS);
  }

  handleMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (message.type) {
      case "pong":
        if (this.catchingUp) {
          this.catchingUp = false;
          this.onReconnect([...this.ids]);
        }
        break;
      case "subscribed":
      case "unsubscribed":
        break;
      case "error":
        this.onError(message.message ?? "The live connection reported an error.", message);
        break;
      default:
        this.onMessage(message);
    }
  }

  handleClose(socket, event) {
    if (socket !== this.socket) return;
    clearInterval(this.pingTimer);
    this.socket = null;
    this.catchingUp = false;
    if (this.stopped) return;
    if (FINAL_CLOSE_CODES.has(event.code)) {
      this.stopped = true;
      this.status("offline");
      return;
    }
    this.status(navigator.onLine === false ? "offline" : "reconnecting");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
  }

  retryNow() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.retryTimer);
    this.status("reconnecting");
    this.connect();
  }
}

const STATUS_TEXT = {
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

// An onStatus for base.html's badge ([data-live-status]): text, icon (CSS) and colour.
export function statusBadge(element) {
  if (!element) return () => {};
  element.hidden = false;
  return (status) => {
    element.dataset.status = status;
    element.textContent = STATUS_TEXT[status] ?? status;
  };
}
