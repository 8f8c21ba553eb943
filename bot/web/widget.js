/*
 * Teller chat widget. Embed with one tag:
 *
 *   <script src="https://HOST/widget.js" data-teller-url="https://HOST" defer></script>
 *
 * Optional attributes: data-color ("#0a4a6e"), data-title, data-greeting,
 * data-position ("right" | "left"), data-launcher-label.
 *
 * Everything lives in a shadow root, so the host page's CSS cannot reach it and its
 * CSS cannot leak out. Answers stream over server-sent events; the conversation and any
 * unsent message are kept in localStorage, so a reload loses nothing.
 */
(function () {
  "use strict";

  if (window.__tellerWidgetLoaded) return;
  window.__tellerWidgetLoaded = true;

  var SCRIPT = document.currentScript || document.querySelector("script[data-teller-url]");
  var STYLESHEET = "{{asset:widget.css}}";
  var STORAGE_VERSION = 1;
  var MAX_STORED_MESSAGES = 60;
  var MAX_MESSAGE_LENGTH = 4000;
  var IDLE_TIMEOUT_MS = 60000;
  var HANDOFF_MESSAGE = "I'd like to talk to a person.";
  var REASONS = [
    ["wrong", "Wrong"],
    ["outdated", "Out of date"],
    ["incomplete", "Incomplete"],
    ["unclear", "Unclear"],
  ];
  var ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    send: "M3 11.5L21 3l-8.5 18-2-7.5z",
    up: "M7 10v11H3V10h4zm2 11h8.3a2 2 0 0 0 2-1.6l1.6-7A2 2 0 0 0 19 10h-5l.9-4.3A1.6 1.6 0 0 0 13.3 4L9 10v11z",
    down: "M7 14V3H3v11h4zm2-11h8.3a2 2 0 0 1 2 1.6l1.6 7A2 2 0 0 1 19 14h-5l.9 4.3a1.6 1.6 0 0 1-1.6 1.7L9 14V3z",
    restart: "M4 12a8 8 0 1 0 2.3-5.7M4 4v5h5",
    person: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 8a7 7 0 0 1 14 0",
  };

  // ---------------------------------------------------------------- configuration

  function attr(name, fallback) {
    var value = SCRIPT && SCRIPT.getAttribute("data-" + name);
    return value && value.trim() ? value.trim() : fallback;
  }

  function baseUrl() {
    var fallback = SCRIPT && SCRIPT.src ? new URL(".", SCRIPT.src).href : location.href;
    try {
      return new URL(attr("teller-url", fallback), location.href).href.replace(/\/+$/, "");
    } catch (e) {
      return fallback.replace(/\/+$/, "");
    }
  }

  var config = {
    url: baseUrl(),
    title: attr("title", "Chat with us"),
    greeting: attr("greeting", "Hi! Ask me about our accounts, cards, rates and transfers."),
    position: attr("position", "right") === "left" ? "left" : "right",
    launcherLabel: attr("launcher-label", "Chat"),
    color: attr("color", "#0a4a6e"),
  };

  // ---------------------------------------------------------------- colour contrast

  function parseHex(value) {
    var m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(value || "");
    if (!m) return null;
    var hex = m[1].length === 3 ? m[1].replace(/./g, "$&$&") : m[1];
    return [0, 2, 4].map(function (i) { return parseInt(hex.slice(i, i + 2), 16); });
  }

  function luminance(rgb) {
    var c = rgb.map(function (v) {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }

  function contrast(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  function toHex(rgb) {
    return "#" + rgb.map(function (v) { return ("0" + Math.round(v).toString(16)).slice(-2); }).join("");
  }

  function darken(rgb, against, ratio) {
    var out = rgb.slice();
    for (var i = 0; i < 40 && contrast(out, against) < ratio; i++) {
      out = out.map(function (v) { return v * 0.9; });
    }
    return out;
  }

  // Theme colours that keep text at 4.5:1 or better, whatever colour the host picks.
  function theme(color) {
    var white = [255, 255, 255], ink = [17, 17, 17];
    var accent = parseHex(color) || parseHex("#0a4a6e");
    var onAccent = contrast(accent, white) >= 4.5 ? white : ink;
    if (contrast(accent, onAccent) < 4.5) {
      accent = darken(accent, white, 4.5);
      onAccent = white;
    }
    return {
      accent: toHex(accent),
      onAccent: toHex(onAccent),
      accentText: toHex(darken(accent, white, 4.5)),
    };
  }

  // ---------------------------------------------------------------- storage

  var storageKey = "teller-widget:" + config.url;
  var memoryStore = {};

  function storeGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return Object.prototype.hasOwnProperty.call(memoryStore, key) ? memoryStore[key] : null;
    }
  }

  function storeSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {
      memoryStore[key] = value;
    }
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 3) | 8).toString(16);
    });
  }

  function raterId() {
    var key = "teller-widget:rater";
    var id = storeGet(key);
    if (!id) {
      id = "web-" + randomId();
      storeSet(key, id);
    }
    return id;
  }

  function emptyState() {
    return { v: STORAGE_VERSION, conversationId: null, open: false, handoffReference: null, messages: [] };
  }

  function loadState() {
    try {
      var state = JSON.parse(storeGet(storageKey) || "null");
      if (!state || state.v !== STORAGE_VERSION || !Array.isArray(state.messages)) return emptyState();
      state.messages.forEach(function (m) {
        // A request cut short by the reload: offer to send it again, never drop it.
        if (m.role === "user" && m.status === "sending") m.status = "failed";
        if (m.role === "user" && m.status === "failed" && !m.error) m.error = "This message was not sent.";
        if (m.vote && m.vote.status === "sending") m.vote.status = "failed";
      });
      return state;
    } catch (e) {
      return emptyState();
    }
  }

  var state = loadState();

  function saveState() {
    var keep = state.messages;
    if (keep.length > MAX_STORED_MESSAGES) {
      // Drop the oldest delivered messages; unsent ones are always kept.
      var excess = keep.length - MAX_STORED_MESSAGES;
      keep = keep.filter(function (m) {
        if (excess > 0 && (m.role !== "user" || m.status === "sent")) {
          excess--;
          return false;
        }
        return true;
      });
      state.messages = keep;
    }
    storeSet(storageKey, JSON.stringify(state));
  }

  // ---------------------------------------------------------------- DOM helpers

  function h(tag, props, children) {
    var el = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (key) {
        var value = props[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") el.textContent = value;
        else if (key === "className") el.className = value;
        else if (key.slice(0, 2) === "on") el.addEventListener(key.slice(2), value);
        else el.setAttribute(key, value === true ? "" : value);
      });
    }
    (children || []).forEach(function (child) {
      if (child) el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return el;
  }

  function icon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon icon-" + name);
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  function focusable(container) {
    var selector =
      "a[href], button:not([disabled]), textarea:not([disabled]), input:not([disabled]), " +
      "select:not([disabled]), [tabindex]:not([tabindex='-1'])";
    return Array.prototype.filter.call(container.querySelectorAll(selector), function (el) {
      return el.getClientRects().length > 0;
    });
  }

  // ---------------------------------------------------------------- UI skeleton

  var host = document.createElement("teller-widget");
  var root = host.attachShadow({ mode: "open" });
  var colours = theme(config.color);
  host.style.setProperty("--teller-accent", colours.accent);
  host.style.setProperty("--teller-on-accent", colours.onAccent);
  host.style.setProperty("--teller-accent-text", colours.accentText);

  var link = h("link", { rel: "stylesheet", href: new URL(STYLESHEET, config.url + "/").href });
  var frame = h("div", { className: "teller", "data-position": config.position });
  // Hidden until the stylesheet is in, so the host page never shows an unstyled flash.
  frame.style.visibility = "hidden";
  function reveal() { frame.style.visibility = ""; }
  link.addEventListener("load", reveal);
  link.addEventListener("error", reveal);

  var launcher = h(
    "button",
    {
      type: "button",
      className: "launcher",
      "aria-expanded": "false",
      "aria-controls": "teller-panel",
      "aria-label": "Open chat: " + config.title,
    },
    [icon("chat"), h("span", { className: "launcher-label", text: config.launcherLabel })]
  );

  var titleId = "teller-title";
  var closeButton = h("button", { type: "button", className: "icon-button", "aria-label": "Close chat" }, [icon("close")]);
  var restartButton = h(
    "button",
    { type: "button", className: "icon-button", "aria-label": "Start a new conversation", title: "Start a new conversation" },
    [icon("restart")]
  );
  var log = h("ol", { className: "log", "aria-label": "Conversation", tabindex: "0" });
  var announcer = h("div", { className: "sr-only", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
  var handoffButton = h("button", { type: "button", className: "handoff" }, [icon("person"), "Talk to a person"]);
  var handoffRef = h("span", { className: "handoff-ref", role: "status" });
  var input = h("textarea", {
    id: "teller-input",
    rows: "1",
    maxlength: String(MAX_MESSAGE_LENGTH),
    placeholder: "Type your question",
    autocomplete: "off",
    enterkeyhint: "send",
  });
  var sendButton = h("button", { type: "submit", className: "send", "aria-label": "Send" }, [icon("send")]);
  var composer = h("form", { className: "composer", novalidate: true }, [
    h("label", { for: "teller-input", className: "sr-only", text: "Your message" }),
    input,
    sendButton,
  ]);
  var panel = h(
    "section",
    {
      id: "teller-panel",
      className: "panel",
      role: "dialog",
      "aria-modal": "true",
      "aria-labelledby": titleId,
      hidden: true,
    },
    [
      h("header", { className: "panel-header" }, [
        h("h2", { id: titleId, text: config.title }),
        restartButton,
        closeButton,
      ]),
      log,
      h("div", { className: "handoff-bar" }, [handoffButton, handoffRef]),
      composer,
      h("p", { className: "disclaimer", text: "Answers come from published information. Don't share passwords or card numbers." }),
      announcer,
    ]
  );
  frame.appendChild(launcher);
  frame.appendChild(panel);
  root.appendChild(link);
  root.appendChild(frame);

  // ---------------------------------------------------------------- open / close

  function setOpen(open, opts) {
    state.open = open;
    saveState();
    panel.hidden = !open;
    frame.classList.toggle("is-open", open);
    launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      renderAll();
      if (!opts || opts.focus !== false) input.focus();
      scrollToEnd();
    } else if (!opts || opts.focus !== false) {
      launcher.focus();
    }
  }

  launcher.addEventListener("click", function () { setOpen(!state.open); });
  closeButton.addEventListener("click", function () { setOpen(false); });
  restartButton.addEventListener("click", function () {
    var unsent = state.messages.filter(function (m) { return m.role === "user" && m.status !== "sent"; });
    state = emptyState();
    state.open = true;
    state.messages = unsent.map(function (m) { m.status = "failed"; return m; });
    saveState();
    renderAll();
    announce("Started a new conversation.");
    input.focus();
  });

  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      setOpen(false);
      return;
    }
    if (event.key !== "Tab") return;
    // Keep focus inside the open panel.
    var items = focusable(panel);
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1];
    var active = root.activeElement;
    if (event.shiftKey && (active === first || !panel.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && active === last) {
      event.preventDefault();
      first.focus();
    }
  });

  // ---------------------------------------------------------------- rendering

  var nodes = {}; // message id -> <li>

  function announce(text) {
    announcer.appendChild(h("p", { text: text }));
    while (announcer.childNodes.length > 5) announcer.removeChild(announcer.firstChild);
  }

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  function renderAll() {
    log.textContent = "";
    nodes = {};
    log.appendChild(h("li", { className: "msg bot greeting" }, [h("p", { className: "bubble", text: config.greeting })]));
    state.messages.forEach(function (m) { log.appendChild(renderMessage(m)); });
    renderHandoffRef();
  }

  function rerender(message) {
    var old = nodes[message.id];
    var fresh = renderMessage(message);
    if (old && old.parentNode) old.parentNode.replaceChild(fresh, old);
    else log.appendChild(fresh);
    return fresh;
  }

  function renderHandoffRef() {
    handoffRef.textContent = state.handoffReference ? "Your reference: " + state.handoffReference : "";
  }

  function renderMessage(m) {
    var li = m.role === "user" ? renderUser(m) : renderBot(m);
    li.setAttribute("data-id", m.id);
    nodes[m.id] = li;
    return li;
  }

  function renderUser(m) {
    var li = h("li", { className: "msg user", "data-status": m.status }, [
      h("p", { className: "bubble" }, [h("span", { className: "sr-only", text: "You: " }), m.text]),
    ]);
    if (m.status === "queued" || m.status === "sending") {
      li.appendChild(h("p", { className: "meta", text: m.status === "queued" ? "Waiting to send…" : "Sending…" }));
    } else if (m.status === "failed") {
      li.appendChild(
        h("div", { className: "error", role: "alert" }, [
          h("span", { text: m.error || "This message was not sent." }),
          h("button", { type: "button", className: "retry", onclick: retry }, ["Retry"]),
        ])
      );
    }
    return li;
  }

  function renderBot(m) {
    var bubble = h("div", { className: "bubble" }, [h("span", { className: "sr-only", text: config.title + ": " })]);
    var text = h("p", { className: "text", text: m.text });
    bubble.appendChild(text);
    var li = h("li", { className: "msg bot", "aria-busy": m.streaming ? "true" : null }, [bubble]);
    if (m.streaming && !m.text) {
      li.classList.add("typing");
      text.appendChild(h("span", { className: "dots", "aria-hidden": "true" }, [h("span"), h("span"), h("span")]));
      text.appendChild(h("span", { className: "sr-only", text: "Answering…" }));
    }
    var answer = m.answer;
    if (!answer) return li;
    if (answer.citations && answer.citations.length) bubble.appendChild(renderSources(answer.citations));
    if (answer.handoff_reference) {
      bubble.appendChild(
        h("p", { className: "handoff-card" }, [
          h("strong", { text: "Reference " + answer.handoff_reference }),
          " Give this reference to a colleague and they will see this conversation.",
        ])
      );
    }
    if (answer.choices && answer.choices.length && m.choicesOpen) {
      var group = h("div", { className: "choices", role: "group", "aria-label": "Suggested replies" });
      answer.choices.forEach(function (choice) {
        group.appendChild(
          h("button", {
            type: "button",
            className: "choice",
            text: choice,
            onclick: function () {
              m.choicesOpen = false;
              saveState();
              rerender(m);
              send(choice);
              input.focus();
            },
          })
        );
      });
      li.appendChild(group);
    }
    if (answer.answer_id) li.appendChild(renderFeedback(m));
    return li;
  }

  function renderSources(citations) {
    var list = h("ol", { className: "sources-list" });
    citations.forEach(function (c) {
      var label = [c.title].concat(c.section || []).join(" › ");
      var item = c.url
        ? h("a", { href: c.url, target: "_blank", rel: "noopener noreferrer", text: label })
        : h("span", { text: label });
      list.appendChild(h("li", { value: String(c.number) }, [item]));
    });
    return h("div", { className: "sources" }, [h("p", { className: "sources-title", text: "Sources" }), list]);
  }

  function renderFeedback(m) {
    var vote = m.vote || {};
    var wrap = h("div", { className: "feedback" });
    var upButton = h(
      "button",
      {
        type: "button",
        className: "vote",
        "aria-label": "Helpful",
        title: "Helpful",
        "aria-pressed": String(vote.rating === "up"),
        onclick: function () {
          m.vote = { rating: "up", reasons: [], comment: null, status: "sending" };
          submitVote(m);
        },
      },
      [icon("up")]
    );
    var downButton = h(
      "button",
      {
        type: "button",
        className: "vote",
        "aria-label": "Not helpful",
        title: "Not helpful",
        "aria-pressed": String(vote.rating === "down"),
        "aria-expanded": String(!!m.reasonsOpen),
        onclick: function () {
          m.reasonsOpen = !m.reasonsOpen;
          var li = rerender(m);
          var first = li.querySelector(".reasons input");
          if (first) {
            first.focus();
            li.querySelector(".reasons").scrollIntoView({ block: "nearest" });
          }
          else li.querySelectorAll(".vote")[1].focus();
        },
      },
      [icon("down")]
    );
    wrap.appendChild(h("div", { className: "votes", role: "group", "aria-label": "Rate this answer" }, [upButton, downButton]));
    if (m.reasonsOpen) wrap.appendChild(renderReasons(m));
    // Shown here, announced once through the live region (see submitVote).
    var status = h("p", { className: "vote-status" });
    if (vote.status === "sent") status.textContent = "Thanks for your feedback.";
    else if (vote.status === "sending") status.textContent = "Sending feedback…";
    wrap.appendChild(status);
    if (vote.status === "failed") {
      wrap.appendChild(
        h("div", { className: "error", role: "alert" }, [
          h("span", { text: vote.error || "Your feedback was not sent." }),
          h("button", {
            type: "button",
            className: "retry",
            text: "Retry",
            onclick: function () {
              m.vote.status = "sending";
              submitVote(m);
            },
          }),
        ])
      );
    }
    return wrap;
  }

  function renderReasons(m) {
    var previous = (m.vote && m.vote.rating === "down" && m.vote.reasons) || [];
    var name = "reason-" + m.id;
    var boxes = REASONS.map(function (r) {
      var id = name + "-" + r[0];
      return h("div", { className: "reason" }, [
        h("input", { type: "checkbox", id: id, name: name, value: r[0], checked: previous.indexOf(r[0]) >= 0 }),
        h("label", { for: id, text: r[1] }),
      ]);
    });
    var commentId = "comment-" + m.id;
    var comment = h("textarea", { id: commentId, rows: "2", maxlength: "1000" });
    comment.value = (m.vote && m.vote.comment) || "";
    var form = h("form", { className: "reasons", novalidate: true }, [
      h("fieldset", {}, [h("legend", { text: "What was wrong with this answer?" })].concat(boxes)),
      h("label", { for: commentId, className: "comment-label", text: "Comment (optional)" }),
      comment,
      h("div", { className: "form-actions" }, [
        h("button", { type: "submit", className: "primary", text: "Send feedback" }),
        h("button", {
          type: "button",
          className: "secondary",
          text: "Cancel",
          onclick: function () {
            m.reasonsOpen = false;
            rerender(m).querySelectorAll(".vote")[1].focus();
          },
        }),
      ]),
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var reasons = Array.prototype.filter
        .call(form.querySelectorAll("input[type=checkbox]"), function (b) { return b.checked; })
        .map(function (b) { return b.value; });
      m.reasonsOpen = false;
      m.vote = { rating: "down", reasons: reasons, comment: comment.value.trim() || null, status: "sending" };
      submitVote(m);
    });
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        m.reasonsOpen = false;
        rerender(m).querySelectorAll(".vote")[1].focus();
      }
    });
    return form;
  }

  // ---------------------------------------------------------------- feedback

  function submitVote(m) {
    var hadFocus = root.activeElement && nodes[m.id] && nodes[m.id].contains(root.activeElement);
    saveState();
    var li = rerender(m);
    if (hadFocus) li.querySelectorAll(".vote")[m.vote.rating === "up" ? 0 : 1].focus();
    var body = { rating: m.vote.rating, rater: { kind: "customer", id: raterId() } };
    if (m.vote.reasons && m.vote.reasons.length) body.reasons = m.vote.reasons;
    if (m.vote.comment) body.comment = m.vote.comment;
    fetch(config.url + "/v1/answers/" + encodeURIComponent(m.answer.answer_id) + "/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    })
      .then(function (response) {
        if (!response.ok) return errorFrom(response).then(function (e) { throw e; });
        m.vote.status = "sent";
        announce("Thanks for your feedback.");
      })
      .catch(function (error) {
        m.vote.status = "failed";
        m.vote.error = "Your feedback was not sent" + (error && error.userMessage ? ": " + error.userMessage : ".");
      })
      .then(function () {
        saveState();
        var focused = root.activeElement && nodes[m.id] && nodes[m.id].contains(root.activeElement);
        var fresh = rerender(m);
        if (focused) fresh.querySelectorAll(".vote")[m.vote.rating === "up" ? 0 : 1].focus();
      });
  }

  // ---------------------------------------------------------------- sending

  var busy = false;

  function send(text, opts) {
    text = (text || "").trim();
    if (!text) return;
    // A new message first retries the ones that failed, so the order is kept.
    state.messages.forEach(function (m) {
      if (m.role === "user" && m.status === "failed") m.status = "queued";
    });
    state.messages.forEach(function (m) { if (m.role === "bot") m.choicesOpen = false; });
    var message = { id: randomId(), role: "user", text: text, status: "queued", handoff: !!(opts && opts.handoff) };
    state.messages.push(message);
    saveState();
    renderAll();
    scrollToEnd();
    pump();
  }

  function retry() {
    state.messages.forEach(function (m) {
      if (m.role === "user" && m.status === "failed") m.status = "queued";
    });
    saveState();
    renderAll();
    input.focus();
    pump();
  }

  // Messages go out one at a time, in order; a failed one holds the rest until retried.
  function pump() {
    if (busy) return;
    var next = state.messages.find(function (m) { return m.role === "user" && m.status !== "sent"; });
    if (!next || next.status !== "queued") return;
    busy = true;
    deliver(next).then(
      function () { busy = false; pump(); },
      function () { busy = false; }
    );
  }

  function errorFrom(response) {
    return response
      .json()
      .catch(function () { return {}; })
      .then(function (body) {
        var error = new Error("HTTP " + response.status);
        error.status = response.status;
        error.userMessage = (body && body.error && body.error.message) || null;
        return error;
      });
  }

  function describe(error) {
    if (error && error.status === 429) return "We're busy right now. Please try again in a moment.";
    if (error && error.status >= 500) return "Something went wrong on our side. Please try again.";
    if (error && error.userMessage) return "Not sent: " + error.userMessage;
    if (error && error.name === "AbortError") return "The answer took too long. Please try again.";
    if (!navigator.onLine) return "You're offline. Check your connection and try again.";
    return "We couldn't reach the chat service. Please try again.";
  }

  function deliver(message) {
    message.status = "sending";
    saveState();
    rerender(message);
    var reply = { id: randomId(), role: "bot", text: "", streaming: true };
    state.messages.splice(state.messages.indexOf(message) + 1, 0, reply);
    var replyNode = renderMessage(reply);
    var messageNode = nodes[message.id];
    messageNode.parentNode.insertBefore(replyNode, messageNode.nextSibling);
    scrollToEnd();

    var controller = new AbortController();
    var timer = null;
    function touch() {
      clearTimeout(timer);
      timer = setTimeout(function () { controller.abort(); }, IDLE_TIMEOUT_MS);
    }
    touch();

    var final = null;
    function onEvent(event, data) {
      touch();
      if (event === "token") {
        reply.text = data.replace ? data.text : reply.text + data.text;
        // Look the node up each time: the panel may have been re-rendered meanwhile.
        var node = nodes[reply.id];
        if (!node || node.classList.contains("typing")) node = rerender(reply);
        node.querySelector(".text").textContent = reply.text;
        scrollToEnd();
      } else if (event === "final") {
        final = data;
      } else if (event === "error") {
        var error = new Error(data.message || "error");
        error.status = data.status;
        error.userMessage = data.status && data.status < 500 ? data.message : null;
        throw error;
      }
    }

    var body = { message: message.text, channel: "web" };
    if (state.conversationId) body.conversation_id = state.conversationId;
    return fetch(config.url + "/v1/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: controller.signal,
    })
      .then(function (response) {
        if (!response.ok) return errorFrom(response).then(function (e) { throw e; });
        var type = response.headers.get("content-type") || "";
        if (type.indexOf("text/event-stream") < 0) {
          return response.json().then(function (data) { final = data; });
        }
        return readEvents(response, onEvent);
      })
      .then(function () {
        if (!final) throw new Error("The answer was interrupted.");
        clearTimeout(timer);
        finish(message, reply, final);
      })
      .catch(function (error) {
        clearTimeout(timer);
        if (error && error.status === 422 && /conversation_id/.test(error.userMessage || "")) {
          state.conversationId = null; // a stored id the server no longer accepts
        }
        state.messages.splice(state.messages.indexOf(reply), 1);
        if (nodes[reply.id] && nodes[reply.id].parentNode) nodes[reply.id].parentNode.removeChild(nodes[reply.id]);
        message.status = "failed";
        message.error = describe(error);
        saveState();
        rerender(message);
        announce(message.error);
        scrollToEnd();
        throw error;
      });
  }

  function finish(message, reply, final) {
    message.status = "sent";
    delete message.error;
    state.conversationId = final.conversation_id || state.conversationId;
    reply.streaming = false;
    reply.text = final.text;
    reply.answer = {
      answer_id: final.answer_id,
      kind: final.kind,
      citations: final.citations || [],
      choices: final.choices || [],
      handoff_reference: final.handoff_reference || null,
      confidence: final.confidence,
    };
    reply.choicesOpen = !!(final.choices && final.choices.length);
    if (final.handoff_reference) state.handoffReference = final.handoff_reference;
    saveState();
    rerender(message);
    rerender(reply);
    renderHandoffRef();
    announce(config.title + ": " + final.text);
    scrollToEnd();
  }

  // Server-sent events over fetch: EventSource cannot POST.
  function readEvents(response, onEvent) {
    if (!response.body || !response.body.getReader) {
      return response.text().then(function (text) { parseBlocks(text + "\n\n", onEvent); });
    }
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function step() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          buffer += decoder.decode();
          if (buffer.trim()) parseBlocks(buffer + "\n\n", onEvent);
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        buffer = parseBlocks(buffer, onEvent);
        return step();
      });
    }
    return step().catch(function (error) {
      try { reader.cancel(); } catch (e) { /* already closed */ }
      throw error;
    });
  }

  function parseBlocks(buffer, onEvent) {
    buffer = buffer.replace(/\r\n?/g, "\n");
    var end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      var block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      var event = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (!line || line[0] === ":") return;
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      });
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
    return buffer;
  }

  // ---------------------------------------------------------------- input

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) {
      input.focus();
      return;
    }
    input.value = "";
    autosize();
    send(text);
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit ? composer.requestSubmit() : composer.dispatchEvent(new Event("submit"));
    }
  });

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }
  input.addEventListener("input", autosize);

  handoffButton.addEventListener("click", function () {
    send(HANDOFF_MESSAGE, { handoff: true });
    input.focus();
  });

  window.addEventListener("online", function () {
    if (state.messages.some(function (m) { return m.role === "user" && m.status === "failed"; })) retry();
  });

  // ---------------------------------------------------------------- start

  function mount() {
    document.body.appendChild(host);
    if (state.open) setOpen(true, { focus: false });
    else renderAll();
    pump();
  }

  window.Teller = {
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    send: function (text) { send(text); },
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
