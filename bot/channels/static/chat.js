// The residents' chat page. Every text from the user or the bot goes into the page with
// textContent, never parsed as HTML, so markup in a message is shown as the characters it is.
(function () {
  "use strict";

  var POLL_MS = 5000;
  var ID_KEY = "dsw-user-id";
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var sendButton = document.getElementById("send");
  var typing = document.getElementById("typing");
  var userId = loadUserId();
  var busy = false;
  var polling = false;
  var seen = {};

  function loadUserId() {
    var id = null;
    try { id = window.localStorage.getItem(ID_KEY); } catch (e) { /* storage blocked: one id per page */ }
    if (!id || !/^web-[0-9a-f]{32}$/.test(id)) {
      var bytes = new Uint8Array(16);
      window.crypto.getRandomValues(bytes);
      id = "web-" + Array.prototype.map.call(bytes, function (b) {
        return (b < 16 ? "0" : "") + b.toString(16);
      }).join("");
      try { window.localStorage.setItem(ID_KEY, id); } catch (e) { /* ignore */ }
    }
    return id;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function addUser(text) {
    var row = el("div", "row user");
    row.appendChild(el("div", "bubble", text));
    log.appendChild(row);
    scrollDown();
  }

  function addNotice(text) {
    var row = el("div", "row notice");
    var bubble = el("div", "bubble", text);
    bubble.setAttribute("role", "alert");
    row.appendChild(bubble);
    log.appendChild(row);
    scrollDown();
  }

  function citationLabel(c) {
    var where = [c.title, c.section].filter(Boolean).join(" · ");
    return "来源：《" + where + "》" + (c.date ? "（" + c.date + "）" : "");
  }

  // The core writes the sources into the text for text-only channels; here they get their own lines.
  function withoutSourceLines(text, citations) {
    if (!citations.length) return text;
    var labels = citations.map(citationLabel);
    var lines = text.split("\n");
    while (lines.length && (labels.indexOf(lines[lines.length - 1].trim()) >= 0 || !lines[lines.length - 1].trim())) {
      lines.pop();
    }
    return lines.join("\n");
  }

  function addBot(reply) {
    var citations = reply.citations || [];
    var row = el("div", "row bot");
    row.appendChild(el("div", "bubble", withoutSourceLines(reply.text || "", citations)));
    if (citations.length) {
      var sources = el("div", "sources");
      citations.forEach(function (c) { sources.appendChild(el("div", "cite", citationLabel(c))); });
      row.appendChild(sources);
    }
    var buttons = reply.buttons || [];
    if (buttons.length) {
      var chips = el("div", "chips");
      chips.setAttribute("role", "group");
      chips.setAttribute("aria-label", "可选操作");
      buttons.forEach(function (b) {
        var chip = el("button", "chip", b.label);
        chip.type = "button";
        chip.dataset.payload = b.payload;
        chips.appendChild(chip);
      });
      row.appendChild(chips);
    }
    log.appendChild(row);
    scrollDown();
  }

  function setBusy(value) {
    busy = value;
    typing.hidden = !value;
    sendButton.disabled = value;
    if (value) scrollDown();
  }

  function errorText(status, data) {
    if (data && typeof data.error === "string" && data.error) return data.error;
    if (status === 429) return "您发得太快了，请稍等一会儿再发。";
    return "抱歉，系统刚才出了点问题，请稍后再试。";
  }

  function post(body, retries) {
    setBusy(true);
    if (retries === undefined) retries = 3;
    return fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (response) {
      if (response.status === 503 && retries > 0) {
        // the service is saturated and has not handled the message: send it again after the pause it asks for
        var wait = parseInt(response.headers.get("Retry-After") || "2", 10) * 1000;
        return new Promise(function (resolve) { setTimeout(resolve, wait); }).then(function () {
          return post(body, retries - 1);
        });
      }
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok || !data || !Array.isArray(data.replies)) {
          addNotice(errorText(response.status, data));
          return false;
        }
        data.replies.forEach(addBot);
        return true;
      });
    }, function () {
      addNotice("网络好像断了，消息没有发出去。请检查网络后再试。");
      return false;
    }).then(function (ok) {
      setBusy(false);
      return ok;
    });
  }

  function sendText(text, shown) {
    if (busy || !text.trim()) return;
    addUser(shown || text);
    post({ user_id: userId, text: text, button: null });
  }

  function pressChip(chip) {
    if (busy) return;
    var group = chip.parentNode;
    if (chip.dataset.text) {
      sendText(chip.dataset.text, chip.textContent);
      return;
    }
    addUser(chip.textContent);
    chip.classList.add("chosen");
    Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) { b.disabled = true; });
    post({ user_id: userId, text: "", button: chip.dataset.payload }).then(function (ok) {
      if (!ok) {  // let the resident try the same choice again
        chip.classList.remove("chosen");
        Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) { b.disabled = false; });
      }
    });
  }

  function poll() {
    if (polling || document.hidden) return;
    polling = true;
    fetch("/api/messages?user_id=" + encodeURIComponent(userId), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        (data && Array.isArray(data.replies) ? data.replies : []).forEach(function (reply) {
          if (reply.id !== undefined && seen[reply.id]) return;
          if (reply.id !== undefined) seen[reply.id] = true;
          addBot(reply);
        });
      }, function () { /* offline: the outbox keeps them until the next poll */ })
      .then(function () { polling = false; });
  }

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    autoGrow();
    sendText(text);
  });

  input.addEventListener("keydown", function (event) {
    // Enter that confirms a pinyin candidate (IME composition) must not send the message.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
  });
  input.addEventListener("input", autoGrow);

  log.addEventListener("click", function (event) {
    var chip = event.target.closest ? event.target.closest("button.chip") : null;
    if (chip && !chip.disabled) pressChip(chip);
  });

  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
  window.setInterval(poll, POLL_MS);
  poll();
})();
