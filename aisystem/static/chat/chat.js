/*
 * The browser chat page: one WebSocket to /ws/chat/ (protocol in aisystem/chat/consumers.py).
 *
 * Text from the server is rendered with ChatMarkdown (DOM nodes and textContent only, never
 * innerHTML). The socket reconnects with exponential backoff and jitter; a 4401 close sends
 * the visitor to the sign-in page.
 */
(function () {
  "use strict";

  const app = document.getElementById("chat-app");
  const list = document.getElementById("messages");
  const empty = document.getElementById("empty");
  const input = document.getElementById("input");
  const sendButton = document.getElementById("send");
  const newButton = document.getElementById("new-conversation");
  const composer = document.getElementById("composer");
  const connection = document.getElementById("connection");
  const workspaceName = document.getElementById("workspace-name");
  const banner = document.getElementById("banner");
  const bannerText = document.getElementById("banner-text");

  const MAX_CHARS = Number(app.dataset.maxChars) || 32000;
  const FRAME_LIMIT = Number(app.dataset.frameLimit) || 65536;
  const CLOSE_UNAUTHENTICATED = 4401;
  const CLOSE_FRAME_TOO_LARGE = 4413;
  const BACKOFF_MAX_MS = 30000;
  const NOTICE_STATUSES = ["rejected", "deferred", "failed"];

  let socket = null;
  let attempts = 0;
  // client id -> {user: element, reply: element|null, text: string, isNew: bool}
  const pending = new Map();

  // --- Helpers --------------------------------------------------------------------------

  function clientId() {
    const bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  }

  function scrollDown(force) {
    if (force || nearBottom()) list.scrollTop = list.scrollHeight;
  }

  function showBanner(text) {
    bannerText.textContent = text;
    banner.hidden = false;
  }

  function hideBanner() {
    banner.hidden = true;
  }

  function setConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
    const online = state === "online";
    sendButton.disabled = !online;
    newButton.disabled = !online;
  }

  function isOpen() {
    return socket !== null && socket.readyState === WebSocket.OPEN;
  }

  // --- Rendering ------------------------------------------------------------------------

  function bubble(role, text, status) {
    empty.hidden = true;
    const row = document.createElement("div");
    row.className = "message " + role;
    const body = document.createElement("div");
    body.className = "bubble";
    row.append(body);
    setText(row, text, status);
    list.append(row);
    return row;
  }

  function setText(row, text, status) {
    const body = row.querySelector(".bubble");
    body.replaceChildren();
    if (row.classList.contains("user")) {
      body.textContent = text; // the user's own words, shown exactly as typed
    } else {
      body.append(window.ChatMarkdown.render(text));
    }
    row.classList.toggle("notice", NOTICE_STATUSES.indexOf(status) !== -1);
    if (status) row.dataset.status = status;
  }

  function typing(row, on) {
    row.classList.toggle("typing", on);
    if (on && !row.querySelector(".dots")) {
      const dots = document.createElement("span");
      dots.className = "dots";
      dots.setAttribute("aria-label", "The assistant is typing");
      dots.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
      row.querySelector(".bubble").append(dots);
    }
  }

  function divider(text) {
    const row = document.createElement("div");
    row.className = "divider";
    row.textContent = text;
    list.append(row);
  }

  function replyRow(entry) {
    if (!entry.reply) entry.reply = bubble("assistant", "", "");
    return entry.reply;
  }

  // --- Server events --------------------------------------------------------------------

  const handlers = {
    history: function (event) {
      const interrupted = pending.size > 0;
      pending.clear();
      list.querySelectorAll(".message, .divider").forEach(function (node) { node.remove(); });
      empty.hidden = event.messages.length > 0;
      event.messages.forEach(function (m) { bubble(m.role, m.text, m.role === "user" ? "" : m.status); });
      if (interrupted) {
        showBanner("The connection dropped while an answer was being written. It is saved: reload the page in a moment to see it.");
      }
      scrollDown(true);
    },
    status: function (event) {
      if (event.workspace) {
        workspaceName.textContent = event.workspace.name;
        workspaceName.title = event.workspace.slug;
      }
    },
    ack: function (event) {
      const entry = pending.get(event.id);
      if (entry) entry.user.dataset.state = "sent";
    },
    typing: function (event) {
      const entry = pending.get(event.id);
      if (entry && !entry.text) typing(replyRow(entry), true);
      scrollDown(false);
    },
    delta: function (event) {
      const entry = pending.get(event.id);
      if (!entry) return;
      entry.text += event.text;
      const row = replyRow(entry);
      typing(row, false);
      setText(row, entry.text, "");
      scrollDown(false);
    },
    reset: function (event) {
      const entry = pending.get(event.id);
      if (!entry) return;
      entry.text = event.text;
      const row = replyRow(entry);
      typing(row, false);
      setText(row, entry.text, "");
      scrollDown(false);
    },
    reply: function (event) {
      const entry = event.id ? pending.get(event.id) : null;
      if (!entry) {
        if (event.text) bubble("assistant", event.text, event.status); // a deferred answer
        scrollDown(false);
        return;
      }
      pending.delete(event.id);
      entry.user.dataset.state = event.status;
      if (event.text) {
        const row = replyRow(entry);
        typing(row, false);
        setText(row, event.text, event.status);
      } else if (entry.reply) {
        entry.reply.remove();
      }
      if (entry.isNew && event.status === "answered") divider("New conversation");
      if (event.reason === "no_matching_rule" && app.dataset.rulesUrl) {
        // Only staff pages carry the address: the refusal itself stays non-revealing.
        showBanner("You're staff: no access rule lets browser messages through yet. Add an Allow rule with transport \u201cBrowser chat\u201d under Admin \u2192 Access rules: " + app.dataset.rulesUrl);
      }
      scrollDown(false);
    },
    error: function (event) {
      const entry = event.id ? pending.get(event.id) : null;
      if (!entry) {
        showBanner(event.message);
        return;
      }
      pending.delete(event.id);
      entry.user.dataset.state = "failed";
      const row = replyRow(entry);
      typing(row, false);
      setText(row, event.message, "failed");
      scrollDown(false);
    },
  };

  // --- The socket -----------------------------------------------------------------------

  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + app.dataset.wsPath;
  }

  function connect() {
    setConnection("connecting", "Connecting…");
    socket = new WebSocket(socketUrl());
    socket.addEventListener("open", function () {
      attempts = 0;
      setConnection("online", "Connected");
    });
    socket.addEventListener("message", function (message) {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      const handler = handlers[event.type];
      if (handler) handler(event);
    });
    socket.addEventListener("close", function (close) {
      socket = null;
      if (close.code === CLOSE_UNAUTHENTICATED) {
        setConnection("offline", "Signed out");
        window.location.assign(app.dataset.loginUrl);
        return;
      }
      if (close.code === CLOSE_FRAME_TOO_LARGE) {
        showBanner("That message was too large to send, so the connection was reset.");
      }
      reconnectLater();
    });
  }

  function reconnectLater() {
    const base = Math.min(BACKOFF_MAX_MS, 1000 * Math.pow(2, attempts));
    const delay = Math.round(base / 2 + Math.random() * base / 2);
    attempts += 1;
    setConnection("offline", "Offline, reconnecting in " + Math.ceil(delay / 1000) + " s…");
    window.setTimeout(connect, delay);
  }

  // --- Sending --------------------------------------------------------------------------

  function send(text) {
    if (!isOpen()) {
      showBanner("Not connected. Your message is still in the box; send it once reconnected.");
      return false;
    }
    if (text.length > MAX_CHARS) {
      showBanner("That message is too long: " + text.length.toLocaleString() + " characters; the limit is " + MAX_CHARS.toLocaleString() + ".");
      return false;
    }
    const id = clientId();
    const frame = JSON.stringify({ type: "message", id: id, text: text });
    if (new TextEncoder().encode(frame).length > FRAME_LIMIT) {
      showBanner("That message is too large to send.");
      return false;
    }
    hideBanner();
    const user = bubble("user", text, "");
    user.dataset.state = "sending";
    pending.set(id, { user: user, reply: null, text: "", isNew: /^\s*\/new(\s|@|$)/i.test(text) });
    socket.send(frame);
    scrollDown(true);
    return true;
  }

  function submit() {
    const text = input.value;
    if (!text.trim()) return;
    if (send(text)) {
      input.value = "";
      autosize();
    }
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 240) + "px";
  }

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
    input.focus();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", autosize);
  newButton.addEventListener("click", function () {
    send("/new");
    input.focus();
  });
  document.getElementById("banner-close").addEventListener("click", hideBanner);

  connect();
})();
