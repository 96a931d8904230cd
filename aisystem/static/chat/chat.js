/*
 * The browser chat page: one WebSocket to /ws/chat/ (protocol in aisystem/chat/consumers.py).
 *
 * Text from the server is rendered with ChatMarkdown (DOM nodes and textContent only, never
 * innerHTML). The socket reconnects with exponential backoff and jitter; a 4401 close sends
 * the visitor to the sign-in page.
 *
 * An answer that proposes a change (its reply or history entry has pending_action_id) gets
 * Confirm and Cancel buttons; a press sends a "decide" frame and disables them, and the
 * "decided" outcome is shown as an assistant message. The Connections panel (present only
 * when staff configured a provider) lists the user's accounts from /chat/connections/.
 *
 * A "file" event (the JSON of /export) becomes a download link under its reply: the bytes
 * arrive base64 in the event and are handed to the browser as a Blob, never as markup.
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
  // action id -> the Confirm/Cancel group under the answer that proposed it
  const decisions = new Map();
  // client id of a "decide" frame in flight -> its group (an error re-enables it)
  const deciding = new Map();

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

  function sizeText(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.ceil(bytes / 1024) + " KB";
    return bytes + " bytes";
  }

  function attachment(row, event) {
    let bytes;
    try {
      const raw = window.atob(event.data || "");
      bytes = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    } catch (error) {
      return; // not base64: nothing to offer
    }
    const link = document.createElement("a");
    link.className = "attachment";
    link.href = URL.createObjectURL(new Blob([bytes], { type: event.mime_type || "application/octet-stream" }));
    link.download = event.file_name || "file";
    link.textContent = "Download " + link.download + " (" + sizeText(bytes.length) + ")";
    row.append(link);
  }

  // --- Confirm / Cancel -----------------------------------------------------------------

  function setDecisionEnabled(group, on) {
    group.querySelectorAll("button").forEach(function (button) { button.disabled = !on; });
  }

  function settle(group) {
    group.dataset.state = "settled";
    setDecisionEnabled(group, false);
  }

  function decisionButtons(row, actionId) {
    const key = String(actionId);
    if (decisions.has(key)) return;
    // A new proposal replaces the older one still waiting (the server cancels it).
    decisions.forEach(settle);
    const group = document.createElement("div");
    group.className = "decision";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Confirm or cancel this change");
    group.dataset.actionId = key;
    [["confirm", "Confirm", "decision-confirm"], ["cancel", "Cancel", "decision-cancel secondary"]].forEach(function (spec) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = spec[2];
      button.textContent = spec[1];
      button.dataset.decision = spec[0];
      button.addEventListener("click", function () { decide(group, actionId, spec[0]); });
      group.append(button);
    });
    row.append(group);
    decisions.set(key, group);
  }

  function decide(group, actionId, decision) {
    if (!isOpen()) {
      showBanner("Not connected. Press the button again once reconnected.");
      return;
    }
    setDecisionEnabled(group, false);
    group.dataset.state = "sent";
    const id = "decide-" + clientId();
    deciding.set(id, group);
    socket.send(JSON.stringify({ type: "decide", action_id: actionId, decision: decision, id: id }));
  }

  // --- Server events --------------------------------------------------------------------

  const handlers = {
    history: function (event) {
      const interrupted = pending.size > 0;
      pending.clear();
      decisions.clear();
      deciding.clear();
      list.querySelectorAll(".message, .divider").forEach(function (node) { node.remove(); });
      empty.hidden = event.messages.length > 0;
      event.messages.forEach(function (m) {
        const row = bubble(m.role, m.text, m.role === "user" ? "" : m.status);
        if (m.pending_action_id) decisionButtons(row, m.pending_action_id);
      });
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
        if (event.pending_action_id) decisionButtons(row, event.pending_action_id);
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
    file: function (event) {
      const entry = event.id ? pending.get(event.id) : null;
      const row = entry ? replyRow(entry) : bubble("assistant", "", "answered");
      if (entry) typing(row, false);
      attachment(row, event);
      scrollDown(false);
    },
    decided: function (event) {
      const group = deciding.get(event.id) || decisions.get(String(event.action_id));
      deciding.delete(event.id);
      if (group) {
        if (event.settled) {
          settle(group);
        } else {
          delete group.dataset.state; // still waiting: the person may press again
          setDecisionEnabled(group, true);
        }
      }
      if (event.text) bubble("assistant", event.text, "answered");
      scrollDown(false);
    },
    error: function (event) {
      const group = event.id ? deciding.get(event.id) : null;
      if (group) {
        deciding.delete(event.id);
        delete group.dataset.state;
        setDecisionEnabled(group, true);
      }
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

  // --- Connections ----------------------------------------------------------------------

  const panel = document.getElementById("connections");
  const panelToggle = document.getElementById("connections-toggle");

  function connectionsPanel() {
    const items = document.getElementById("connections-list");
    const result = document.getElementById("connections-result");
    const csrf = panel.dataset.csrf;

    function stateText(connection) {
      const account = connection.account;
      if (!account) return "Not connected";
      if (account.status === "needs_reconnect") return account.login + ": needs reconnecting";
      return "Connected as " + account.login;
    }

    function connectForm(connection) {
      // A form, not a script-opened window: a new tab from a submit is never blocked.
      const form = document.createElement("form");
      form.method = "post";
      form.action = connection.connect_url;
      form.target = "_blank";
      form.className = "inline";
      const token = document.createElement("input");
      token.type = "hidden";
      token.name = "csrfmiddlewaretoken";
      token.value = csrf;
      const button = document.createElement("button");
      button.type = "submit";
      button.className = "secondary";
      button.textContent = connection.account ? "Reconnect" : "Connect";
      button.setAttribute("aria-label", button.textContent + " " + connection.label);
      form.append(token, button);
      form.addEventListener("submit", function () {
        result.textContent = "A new tab opens to connect " + connection.label + ". Come back here when you are done.";
      });
      return form;
    }

    function disconnectButton(connection) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = "Disconnect";
      button.setAttribute("aria-label", "Disconnect " + connection.label);
      button.addEventListener("click", function () {
        button.disabled = true;
        result.textContent = "Disconnecting " + connection.label + "…";
        fetch(connection.disconnect_url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRFToken": csrf, Accept: "application/json" },
        }).then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (body) {
            result.textContent = body.message || "That did not work. Please try again.";
          });
        }).catch(function () {
          result.textContent = "Not connected to the server. Please try again.";
        }).then(load);
      });
      return button;
    }

    function render(connections) {
      items.replaceChildren();
      connections.forEach(function (connection) {
        const item = document.createElement("li");
        item.className = "connection-item";
        item.dataset.provider = connection.provider;
        item.dataset.status = connection.account ? connection.account.status : "none";
        const name = document.createElement("span");
        name.className = "connection-name";
        name.textContent = connection.label;
        const state = document.createElement("span");
        state.className = "connection-state";
        state.textContent = stateText(connection);
        item.append(name, state);
        if (!connection.account || connection.account.status === "needs_reconnect") {
          item.append(connectForm(connection));
        }
        if (connection.account) item.append(disconnectButton(connection));
        items.append(item);
      });
      if (!connections.length) {
        const none = document.createElement("li");
        none.className = "connection-item";
        none.textContent = "Nothing can be connected here any more.";
        items.append(none);
      }
    }

    function load() {
      items.setAttribute("aria-busy", "true");
      return fetch(panel.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) {
            window.location.assign(app.dataset.loginUrl);
            return null;
          }
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (body) { if (body) render(body.connections); })
        .catch(function () { result.textContent = "Your connections could not be loaded. Try again in a moment."; })
        .then(function () { items.removeAttribute("aria-busy"); });
    }

    function show(open) {
      panel.hidden = !open;
      panelToggle.setAttribute("aria-expanded", String(open));
      if (open) {
        load();
        panel.querySelector("h2").focus();
      } else {
        panelToggle.focus();
      }
    }

    panel.querySelector("h2").tabIndex = -1;
    panelToggle.addEventListener("click", function () { show(panel.hidden); });
    document.getElementById("connections-close").addEventListener("click", function () { show(false); });
    // Back from the tab where the account was connected: show it.
    window.addEventListener("focus", function () { if (!panel.hidden) load(); });
  }

  if (panel && panelToggle) connectionsPanel();

  connect();
})();
