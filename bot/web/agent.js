/*
 * Teller agent console. The agent signs in with an API key of scope "agent", types or
 * pastes what the caller says, and gets suggested answers with sources, confidence and
 * current rates. Copying, editing or rejecting a suggestion is recorded as feedback of
 * kind "agent"; an edit is sent as a correction.
 *
 * The key lives in sessionStorage (gone when the tab closes). Lines not yet synced with
 * the server are kept there too, so a reload or a network error never loses a line.
 */
(function () {
  "use strict";

  var AUTH_KEY = "teller-agent:auth";
  var DRAFT_KEY = "teller-agent:draft";
  var REASONS = [
    ["wrong", "Wrong"],
    ["outdated", "Out of date"],
    ["incomplete", "Incomplete"],
    ["unclear", "Unclear"],
  ];

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    signin: $("signin"),
    signinForm: $("signin-form"),
    apiKey: $("api-key"),
    agentId: $("agent-id"),
    signinError: $("signin-error"),
    console: $("console"),
    who: $("who"),
    whoName: $("who-name"),
    signOut: $("sign-out"),
    kbForm: $("kb-search"),
    kbQuery: $("kb-query"),
    searchResults: $("search-results"),
    searchTitle: $("search-title"),
    searchStatus: $("search-status"),
    searchList: $("search-list"),
    closeSearch: $("close-search"),
    newCall: $("new-call"),
    callList: $("call-list"),
    callsStatus: $("calls-status"),
    callId: $("call-id"),
    turns: $("turns"),
    lineForm: $("line-form"),
    line: $("line"),
    assistTitle: $("assist-title"),
    assistFor: $("assist-for"),
    assistStatus: $("assist-status"),
    suggestions: $("suggestions"),
    rates: $("rates"),
    passages: $("passages"),
  };

  // ------------------------------------------------------------------ state

  var auth = readJSON(AUTH_KEY);
  var call = newCall();
  var syncing = false;

  function newCall() {
    return { conversationId: null, lines: [], turns: {}, selected: null };
  }

  function readJSON(key) {
    try {
      return JSON.parse(sessionStorage.getItem(key) || "null");
    } catch (e) {
      return null;
    }
  }

  function writeJSON(key, value) {
    try {
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or disabled: the console still works for this page */
    }
  }

  function saveDraft() {
    writeJSON(DRAFT_KEY, {
      conversationId: call.conversationId,
      lines: call.lines.filter(function (l) { return l.status !== "synced"; }).map(function (l) {
        return { speaker: l.speaker, text: l.text };
      }),
    });
  }

  // ------------------------------------------------------------------ helpers

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
      if (child !== null && child !== undefined && child !== false) {
        el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return el;
  }

  function api(method, path, body) {
    var headers = { Accept: "application/json", Authorization: "Bearer " + (auth ? auth.key : "") };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(
      function (response) {
        return response
          .json()
          .catch(function () { return null; })
          .then(function (data) {
            if (response.ok) return data;
            var error = new Error((data && data.error && data.error.message) || "HTTP " + response.status);
            error.status = response.status;
            if (response.status === 401) signOut("Your key was not accepted. Please sign in again.");
            throw error;
          });
      },
      function () {
        var error = new Error("Teller could not be reached. Check your connection.");
        error.status = 0;
        throw error;
      }
    );
  }

  function stripMarkers(text) {
    return text.replace(/\s*\[\d+(?:\s*[-–,;]\s*\d+)*\]/g, "").trim();
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }

  function legacyCopy(text) {
    var active = document.activeElement;
    var area = h("textarea", { className: "offscreen", readonly: true, "aria-hidden": "true" });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    if (active && active.focus) active.focus();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function confidenceLabel(value) {
    var pct = Math.round((value || 0) * 100);
    var level = value >= 0.7 ? "high" : value >= 0.5 ? "medium" : "low";
    return { text: "Confidence " + pct + "% (" + level + ")", level: level };
  }

  function heading(item) {
    return [item.title].concat(item.section || []).filter(Boolean).join(" › ");
  }

  // ------------------------------------------------------------------ sign in / out

  function showSignIn(message) {
    els.console.hidden = true;
    els.kbForm.hidden = true;
    els.who.hidden = true;
    els.signin.hidden = false;
    els.signinError.textContent = message || "";
    if (auth && auth.agentId) els.agentId.value = auth.agentId;
    els.apiKey.focus();
  }

  function showConsole() {
    els.signin.hidden = true;
    els.console.hidden = false;
    els.kbForm.hidden = false;
    els.who.hidden = false;
    els.whoName.textContent = "Signed in as " + auth.agentId;
  }

  function signOut(message) {
    auth = auth ? { agentId: auth.agentId } : null;
    writeJSON(AUTH_KEY, null);
    showSignIn(message);
  }

  els.signinForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var key = els.apiKey.value.trim();
    var agentId = els.agentId.value.trim();
    if (!key || !agentId) {
      els.signinError.textContent = !key ? "Enter your API key." : "Enter your agent ID.";
      (key ? els.agentId : els.apiKey).focus();
      return;
    }
    els.signinError.textContent = "Checking your key…";
    auth = { key: key, agentId: agentId };
    api("GET", "/v1/assist?limit=20").then(
      function (data) {
        writeJSON(AUTH_KEY, auth);
        els.apiKey.value = "";
        showConsole();
        renderCalls(data.conversations);
        startFromLocation();
      },
      function (error) {
        auth = null;
        var message =
          error.status === 401 ? "That key was not accepted." :
          error.status === 403 ? "That key does not have the agent scope." :
          error.message;
        els.signinError.textContent = message;
        els.apiKey.focus();
      }
    );
  });

  els.signOut.addEventListener("click", function () { signOut("You are signed out."); });

  // ------------------------------------------------------------------ calls

  function loadCalls() {
    return api("GET", "/v1/assist?limit=20").then(
      function (data) { renderCalls(data.conversations); },
      function (error) { els.callsStatus.textContent = "Could not load calls: " + error.message; }
    );
  }

  function renderCalls(conversations) {
    els.callList.textContent = "";
    els.callsStatus.textContent = conversations.length ? "" : "No calls yet.";
    conversations.forEach(function (c) {
      var when = new Date(c.updated_at).toLocaleString();
      var current = c.conversation_id === call.conversationId;
      els.callList.appendChild(
        h("li", {}, [
          h(
            "a",
            {
              href: "#call=" + encodeURIComponent(c.conversation_id),
              "aria-current": current ? "true" : null,
            },
            [
              h("span", { className: "preview", text: c.preview || "(no caller line yet)" }),
              h("span", { className: "muted small", text: when + " · " + c.turns + " lines" }),
            ]
          ),
        ])
      );
    });
  }

  function startFromLocation() {
    var match = /^#call=([A-Za-z0-9_-]{8,36})$/.exec(location.hash);
    var draft = readJSON(DRAFT_KEY);
    if (match) {
      reopen(match[1], draft && draft.conversationId === match[1] ? draft.lines : []);
    } else {
      call = newCall();
      if (draft && !draft.conversationId && draft.lines && draft.lines.length) {
        draft.lines.forEach(function (l) { call.lines.push({ speaker: l.speaker, text: l.text, status: "pending" }); });
      }
      renderCall();
      els.line.focus();
      sync();
    }
  }

  function reopen(conversationId, pendingLines) {
    els.assistStatus.textContent = "Opening the call…";
    api("GET", "/v1/assist/" + encodeURIComponent(conversationId)).then(
      function (data) {
        call = newCall();
        call.conversationId = data.conversation_id;
        call.lines = data.transcript.map(function (t) { return { speaker: t.speaker, text: t.text, status: "synced" }; });
        data.turns.forEach(function (t) {
          call.turns[t.turn] = {
            suggestions: t.suggestions.map(function (s) { s.action = actionFrom(s.feedback); return s; }),
            passages: t.passages,
            rates: t.rates,
          };
        });
        (pendingLines || []).forEach(function (l) { call.lines.push({ speaker: l.speaker, text: l.text, status: "pending" }); });
        call.selected = lastCustomerIndex();
        els.assistStatus.textContent = "Reopened the call with " + call.lines.length + " lines.";
        renderCall();
        loadCalls();
        sync();
      },
      function (error) {
        els.assistStatus.textContent = "";
        els.assistFor.textContent = "Could not open that call: " + error.message;
      }
    );
  }

  window.addEventListener("hashchange", function () {
    if (!auth || !auth.key) return;
    var match = /^#call=([A-Za-z0-9_-]{8,36})$/.exec(location.hash);
    if (match && match[1] !== call.conversationId) reopen(match[1], []);
    else if (!match && location.hash === "") startFromLocation();
  });

  els.newCall.addEventListener("click", function () {
    if (call.lines.some(function (l) { return l.status !== "synced"; })) {
      els.assistStatus.textContent = "Some lines of this call are not saved yet: wait for them, or retry the ones that failed.";
      return;
    }
    call = newCall();
    writeJSON(DRAFT_KEY, null);
    history.pushState(null, "", location.pathname);
    renderCall();
    loadCalls();
    els.line.focus();
  });

  function actionFrom(feedback) {
    if (!feedback || !feedback.length) return null;
    var vote = feedback[feedback.length - 1];
    var base = { status: "sent" };
    if (vote.correction) return Object.assign(base, { type: "edited", correction: vote.correction });
    if (vote.rating === "down") return Object.assign(base, { type: "rejected", reasons: vote.reasons || [] });
    return Object.assign(base, { type: "copied" });
  }

  // ------------------------------------------------------------------ transcript

  function busyEditing() {
    var turn = call.selected === null ? null : call.turns[call.selected];
    return !!(turn && turn.suggestions.some(function (s) { return s.editing || s.rejecting; }));
  }

  function lastCustomerIndex() {
    for (var i = call.lines.length - 1; i >= 0; i--) if (call.lines[i].speaker === "customer") return i;
    return null;
  }

  function currentSpeaker() {
    return document.querySelector("input[name=speaker]:checked").value;
  }

  function setSpeaker(value) {
    $("speaker-" + value).checked = true;
  }

  function addLines(raw) {
    var added = 0;
    raw.split(/\r?\n/).forEach(function (text) {
      var speaker = currentSpeaker();
      var m = /^\s*(agent|me|rep)\s*:\s*/i.exec(text);
      if (m) {
        speaker = "agent";
        text = text.slice(m[0].length);
      } else if ((m = /^\s*(customer|caller|client)\s*:\s*/i.exec(text))) {
        speaker = "customer";
        text = text.slice(m[0].length);
      }
      text = text.trim();
      if (!text) return;
      call.lines.push({ speaker: speaker, text: text.slice(0, 4000), status: "pending" });
      added++;
    });
    if (!added) return;
    saveDraft();
    renderTranscript();
    sync();
  }

  els.lineForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var value = els.line.value;
    if (!value.trim()) {
      els.line.focus();
      return;
    }
    els.line.value = "";
    addLines(value);
    els.line.focus();
  });

  els.line.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.lineForm.requestSubmit();
    } else if (event.altKey && (event.key === "c" || event.key === "C")) {
      event.preventDefault();
      setSpeaker("customer");
    } else if (event.altKey && (event.key === "m" || event.key === "M")) {
      event.preventDefault();
      setSpeaker("agent");
    }
  });

  function renderCall() {
    els.callId.textContent = call.conversationId ? "Call " + call.conversationId.slice(0, 8) : "New call";
    renderTranscript();
    renderAssist();
  }

  function renderTranscript() {
    els.turns.textContent = "";
    call.lines.forEach(function (line, index) {
      var customer = line.speaker === "customer";
      var item = h("li", { className: "turn " + line.speaker, "data-status": line.status }, [
        h("span", { className: "speaker-label", text: customer ? "Caller" : "Me" }),
        h("p", { className: "turn-text", text: line.text }),
      ]);
      if (line.status === "pending") {
        item.appendChild(h("span", { className: "muted small", text: customer ? "Getting suggestions…" : "Saving…" }));
      } else if (line.status === "failed") {
        item.appendChild(
          h("div", { className: "error", role: "alert" }, [
            h("span", { text: "Not saved: " + (line.error || "network error") + " " }),
            h("button", { type: "button", className: "small", text: "Retry", onclick: retry }),
          ])
        );
      } else if (customer && call.turns[index]) {
        var count = call.turns[index].suggestions.length;
        item.appendChild(
          h("button", {
            type: "button",
            className: "small show-suggestions",
            "aria-pressed": String(call.selected === index),
            text: count + (count === 1 ? " suggestion" : " suggestions"),
            onclick: function () {
              call.selected = index;
              renderTranscript();
              renderAssist();
              els.assistTitle.focus();
            },
          })
        );
      }
      els.turns.appendChild(item);
    });
    els.turns.scrollTop = els.turns.scrollHeight;
  }

  function retry() {
    call.lines.forEach(function (l) { if (l.status === "failed") l.status = "pending"; });
    renderTranscript();
    sync();
  }

  // Lines are synced one at a time, in order; each request carries the call so far.
  function sync() {
    if (syncing || !auth || !auth.key) return;
    var index = call.lines.findIndex(function (l) { return l.status !== "synced"; });
    if (index < 0 || call.lines[index].status !== "pending") return;
    syncing = true;
    var line = call.lines[index];
    var body = {
      transcript: call.lines.slice(0, index + 1).map(function (l) { return { speaker: l.speaker, text: l.text }; }),
    };
    if (call.conversationId) body.conversation_id = call.conversationId;
    if (line.speaker === "customer") els.assistStatus.textContent = "Getting suggestions…";
    var forCall = call;
    api("POST", "/v1/assist", body).then(
      function (data) {
        syncing = false;
        if (forCall !== call) return;
        line.status = "synced";
        var isNew = !call.conversationId;
        call.conversationId = data.conversation_id;
        if (isNew) history.replaceState(null, "", "#call=" + encodeURIComponent(data.conversation_id));
        var switchTo = false;
        if (data.turn !== null && data.turn !== undefined) {
          var known = call.turns[data.turn];
          call.turns[data.turn] = {
            suggestions: data.suggestions.map(function (s, i) {
              s.action = known && known.suggestions[i] && known.suggestions[i].answer_id === s.answer_id
                ? known.suggestions[i].action : null;
              return s;
            }),
            passages: data.passages,
            rates: data.rates,
          };
          if (line.speaker === "customer") {
            var n = data.suggestions.length;
            var what = n + (n === 1 ? " suggestion" : " suggestions") + " for: " + line.text;
            // Never pull the panel away from a suggestion the agent is editing or rejecting.
            switchTo = !busyEditing();
            els.assistStatus.textContent = switchTo ? what : what + " (open them from the transcript)";
            if (switchTo) call.selected = data.turn;
          }
        }
        saveDraft();
        els.callId.textContent = "Call " + call.conversationId.slice(0, 8);
        renderTranscript();
        if (switchTo) renderAssist();
        if (isNew || line.speaker === "customer") loadCalls();
        sync();
      },
      function (error) {
        syncing = false;
        if (forCall !== call) return;
        if (error.status === 401) {
          line.status = "pending";
          saveDraft();
          return;
        }
        line.status = "failed";
        line.error = error.message;
        els.assistStatus.textContent = "A line was not saved: " + error.message;
        saveDraft();
        renderTranscript();
      }
    );
  }

  // ------------------------------------------------------------------ suggestions

  function renderAssist() {
    els.suggestions.textContent = "";
    els.rates.textContent = "";
    els.passages.textContent = "";
    var index = call.selected;
    var turn = index === null ? null : call.turns[index];
    if (!turn) {
      els.assistFor.textContent = call.lines.length
        ? "Suggestions appear here for each line the caller says."
        : "Start typing what the caller says: suggestions appear here.";
      return;
    }
    els.assistFor.textContent = "";
    els.assistFor.appendChild(document.createTextNode("For the caller's line: "));
    els.assistFor.appendChild(h("q", { text: call.lines[index].text }));
    if (!turn.suggestions.length) {
      els.suggestions.appendChild(h("p", { className: "muted", text: "No suggestions for this line." }));
    }
    turn.suggestions.forEach(function (s, i) { els.suggestions.appendChild(renderSuggestion(s, i)); });
    if (turn.rates && turn.rates.length) els.rates.appendChild(renderRates(turn.rates));
    if (turn.passages && turn.passages.length) els.passages.appendChild(renderPassages(turn.passages));
  }

  function renderSuggestion(s, i) {
    var id = "suggestion-" + s.answer_id;
    var conf = confidenceLabel(s.confidence);
    var action = s.action;
    var card = h("article", { className: "suggestion", id: id, "aria-labelledby": id + "-title", "data-answer-id": s.answer_id }, [
      h("header", {}, [
        h("h3", { id: id + "-title", text: "Suggestion " + (i + 1) }),
        h("span", { className: "confidence " + conf.level, text: conf.text }),
      ]),
    ]);
    var shown = action && action.type === "edited" ? action.correction : s.text;
    card.appendChild(h("p", { className: "suggestion-text", text: shown }));
    if (action && action.type === "edited") {
      card.appendChild(h("details", { className: "original" }, [h("summary", { text: "Original suggestion" }), h("p", { text: s.text })]));
    }
    if (s.handoff_reference) {
      card.appendChild(h("p", { className: "muted", text: "Handoff reference " + s.handoff_reference }));
    }
    if (s.citations && s.citations.length) {
      var list = h("ol", { className: "sources" });
      s.citations.forEach(function (c) {
        var label = heading(c);
        list.appendChild(
          h("li", { value: String(c.number) }, [
            c.url ? h("a", { href: c.url, target: "_blank", rel: "noopener noreferrer", text: label }) : h("span", { text: label }),
          ])
        );
      });
      card.appendChild(h("div", { className: "sources-wrap" }, [h("p", { className: "label", text: "Sources" }), list]));
    }
    if (s.editing) card.appendChild(renderEditor(s));
    else if (s.rejecting) card.appendChild(renderReject(s));
    else card.appendChild(renderActions(s));
    // Shown on the card; announced once through the panel's live region (see record).
    var status = h("p", { className: "action-status" });
    if (action) {
      var words = { copied: "Copied", edited: "Edited", rejected: "Rejected" }[action.type];
      if (action.status === "sending") status.textContent = words + " · recording…";
      else if (action.status === "sent") status.textContent = words + " · recorded" + (action.copyFailed ? " (copy to clipboard failed: select the text instead)" : "");
      else if (action.status === "failed") status.textContent = "";
    }
    card.appendChild(status);
    if (action && action.status === "failed") {
      card.appendChild(
        h("div", { className: "error", role: "alert" }, [
          h("span", { text: "Your choice was not recorded: " + (action.error || "network error") + " " }),
          h("button", { type: "button", className: "small", text: "Retry", onclick: function () { record(s, action); } }),
        ])
      );
    }
    return card;
  }

  function renderActions(s) {
    return h("div", { className: "actions" }, [
      h("button", {
        type: "button",
        className: "primary small",
        text: "Copy",
        onclick: function () {
          var text = stripMarkers(s.action && s.action.type === "edited" ? s.action.correction : s.text);
          copyText(text).then(
            function () { record(s, { type: "copied", status: "sending" }, "copy"); },
            function () { record(s, { type: "copied", status: "sending", copyFailed: true }, "copy"); }
          );
        },
      }),
      h("button", {
        type: "button",
        className: "small",
        text: "Edit",
        onclick: function () {
          s.editing = true;
          rerenderSuggestion(s).querySelector("textarea").focus();
        },
      }),
      h("button", {
        type: "button",
        className: "small danger",
        text: "Reject",
        onclick: function () {
          s.rejecting = true;
          rerenderSuggestion(s).querySelector("input").focus();
        },
      }),
    ]);
  }

  function renderEditor(s) {
    var areaId = "edit-" + s.answer_id;
    var area = h("textarea", { id: areaId, rows: "5", maxlength: "4000" });
    area.value = typeof s.draft === "string"
      ? s.draft
      : stripMarkers(s.action && s.action.type === "edited" ? s.action.correction : s.text);
    area.addEventListener("input", function () { s.draft = area.value; });
    var form = h("form", { className: "editor", novalidate: true }, [
      h("label", { for: areaId, text: "Edit the answer before using it" }),
      area,
      h("div", { className: "actions" }, [
        h("button", { type: "submit", className: "primary small", text: "Save and copy" }),
        h("button", { type: "button", className: "small", text: "Cancel", onclick: cancel }),
      ]),
    ]);
    function cancel() {
      s.editing = false;
      delete s.draft;
      focusAction(rerenderSuggestion(s), "Edit");
    }
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        cancel();
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = area.value.trim();
      if (!text) {
        area.focus();
        return;
      }
      s.editing = false;
      delete s.draft;
      var unchanged = text === stripMarkers(s.text);
      var action = unchanged
        ? { type: "copied", status: "sending" }
        : { type: "edited", status: "sending", correction: text };
      copyText(text).then(
        function () { record(s, action, "copy"); },
        function () { action.copyFailed = true; record(s, action, "copy"); }
      );
    });
    return form;
  }

  function renderReject(s) {
    var name = "reject-" + s.answer_id;
    var commentId = name + "-comment";
    var boxes = REASONS.map(function (r) {
      var id = name + "-" + r[0];
      return h("div", { className: "reason" }, [
        h("input", { type: "checkbox", id: id, value: r[0] }),
        h("label", { for: id, text: r[1] }),
      ]);
    });
    var comment = h("textarea", { id: commentId, rows: "2", maxlength: "1000" });
    var form = h("form", { className: "reject", novalidate: true }, [
      h("fieldset", {}, [h("legend", { text: "Why reject this suggestion?" })].concat(boxes)),
      h("label", { for: commentId, text: "Comment (optional)" }),
      comment,
      h("div", { className: "actions" }, [
        h("button", { type: "submit", className: "danger small", text: "Reject suggestion" }),
        h("button", { type: "button", className: "small", text: "Cancel", onclick: cancel }),
      ]),
    ]);
    function cancel() {
      s.rejecting = false;
      focusAction(rerenderSuggestion(s), "Reject");
    }
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        cancel();
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var reasons = Array.prototype.filter
        .call(form.querySelectorAll("input[type=checkbox]"), function (b) { return b.checked; })
        .map(function (b) { return b.value; });
      s.rejecting = false;
      record(s, { type: "rejected", status: "sending", reasons: reasons, comment: comment.value.trim() || null }, "reject");
    });
    return form;
  }

  function focusAction(card, label) {
    var button = Array.prototype.find.call(card.querySelectorAll(".actions button"), function (b) {
      return b.textContent === label;
    });
    (button || card).focus();
  }

  function rerenderSuggestion(s) {
    var old = document.getElementById("suggestion-" + s.answer_id);
    var index = Array.prototype.indexOf.call(els.suggestions.children, old);
    var fresh = renderSuggestion(s, index < 0 ? 0 : index);
    if (old) old.parentNode.replaceChild(fresh, old);
    return fresh;
  }

  function record(s, action, focusLabel) {
    action.status = "sending";
    s.action = action;
    var card = rerenderSuggestion(s);
    focusAction(card, focusLabel === "reject" ? "Reject" : "Copy");
    var body = { rater: { kind: "agent", id: auth.agentId } };
    if (action.type === "copied") body.rating = "up";
    else if (action.type === "edited") {
      body.rating = "down";
      body.correction = action.correction;
    } else {
      body.rating = "down";
      body.reasons = action.reasons;
      if (action.comment) body.comment = action.comment;
    }
    api("POST", "/v1/answers/" + encodeURIComponent(s.answer_id) + "/feedback", body).then(
      function () {
        action.status = "sent";
        var words = { copied: "Copied", edited: "Edited", rejected: "Rejected" }[action.type];
        els.assistStatus.textContent = words + " and recorded.";
      },
      function (error) {
        action.status = "failed";
        action.error = error.message;
        els.assistStatus.textContent = "Not recorded: " + error.message;
      }
    ).then(function () {
      if (s.action !== action) return;
      var had = document.activeElement && document.getElementById("suggestion-" + s.answer_id).contains(document.activeElement);
      var fresh = rerenderSuggestion(s);
      if (had) focusAction(fresh, focusLabel === "reject" ? "Reject" : "Copy");
    });
  }

  function renderRates(rates) {
    var asOf = rates.map(function (r) { return r.effective_from; }).sort().pop();
    var body = h("tbody");
    rates.forEach(function (r) {
      body.appendChild(
        h("tr", {}, [
          h("th", { scope: "row", text: r.product }),
          h("td", { text: r.term || "—" }),
          h("td", { text: r.tier || "—" }),
          h("td", { className: "num", text: r.rate_percent + "%" }),
          h("td", { className: "num", text: r.apr_percent ? r.apr_percent + "%" : "—" }),
          h("td", { className: "num", text: r.apy_percent ? r.apy_percent + "%" : "—" }),
          h("td", { text: r.effective_from }),
        ])
      );
    });
    return h("div", { className: "rates" }, [
      h("table", {}, [
        h("caption", { text: "Current rates (latest change " + asOf + ")" }),
        h("thead", {}, [
          h("tr", {}, ["Product", "Term", "Tier", "Rate", "APR", "APY", "As of"].map(function (t) {
            return h("th", { scope: "col", text: t });
          })),
        ]),
        body,
      ]),
    ]);
  }

  function renderPassages(passages) {
    var list = h("ol", { className: "passages" });
    passages.forEach(function (p) { list.appendChild(renderPassage(p)); });
    return h("details", { className: "passages-wrap" }, [
      h("summary", { text: "Knowledge base passages (" + passages.length + ")" }),
      list,
    ]);
  }

  function renderPassage(p) {
    var text = p.text.length > 600 ? p.text.slice(0, 600) + "…" : p.text;
    var status = h("span", { className: "muted small", role: "status" });
    return h("li", { className: "passage" }, [
      h("p", { className: "passage-title" }, [
        p.url ? h("a", { href: p.url, target: "_blank", rel: "noopener noreferrer", text: heading(p) }) : heading(p),
      ]),
      h("p", { className: "passage-text", text: text }),
      h("div", { className: "actions" }, [
        h("button", {
          type: "button",
          className: "small",
          text: "Copy passage",
          onclick: function () {
            copyText(p.text).then(
              function () { status.textContent = "Copied."; },
              function () { status.textContent = "Copy failed: select the text instead."; }
            );
          },
        }),
        status,
      ]),
    ]);
  }

  // ------------------------------------------------------------------ knowledge search

  els.kbForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var query = els.kbQuery.value.trim();
    if (!query) {
      els.kbQuery.focus();
      return;
    }
    els.searchResults.hidden = false;
    els.searchList.textContent = "";
    els.searchStatus.textContent = "Searching…";
    api("POST", "/v1/search", { query: query, k: 8 }).then(
      function (data) {
        els.searchStatus.textContent = data.hits.length + " passages for “" + query + "”.";
        data.hits.forEach(function (hit) {
          els.searchList.appendChild(
            renderPassage({ title: hit.title || hit.doc_id, section: hit.section.filter(function (s) { return s !== hit.title; }), text: hit.text, url: hit.metadata && hit.metadata.url })
          );
        });
        els.searchTitle.focus();
      },
      function (error) {
        els.searchStatus.textContent = "Search failed: " + error.message;
      }
    );
  });

  els.closeSearch.addEventListener("click", function () {
    els.searchResults.hidden = true;
    els.kbQuery.focus();
  });

  // ------------------------------------------------------------------ start

  window.addEventListener("online", function () {
    if (call.lines.some(function (l) { return l.status === "failed"; })) retry();
  });

  if (auth && auth.key) {
    api("GET", "/v1/assist?limit=20").then(
      function (data) {
        showConsole();
        renderCalls(data.conversations);
        startFromLocation();
      },
      function (error) {
        if (error.status !== 401) showSignIn(error.status === 403 ? "That key does not have the agent scope." : error.message);
      }
    );
  } else {
    showSignIn();
  }
})();
