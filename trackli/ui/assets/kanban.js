// Trackli's board: an inbox lane of waiting tasks and the card columns, drawn from `data`; cards and
// tasks moved by drag and drop, keys or a menu. At phone width the inbox opens as a bottom sheet.
// `data.mode === "cards"` draws only the waiting tasks as cards (the Pending page on a phone).
// Every text from Confluence or the person is inserted with textContent, never as HTML.
// Events back to Python (trigger values): move {card, to, before}, open {card}, more {status},
// inbox {action: approve|dismiss|snooze|edit|toggle|more, task, to, before, preset, open}, undo {token},
// add {status, title, due, project}.

const STATE = new WeakMap(); // per mounted board: what must survive a redraw (focus, the open sheet, the column)

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function button(cls, text, onClick) {
  const b = el("button", cls, text);
  b.type = "button";
  b.addEventListener("click", (e) => { e.stopPropagation(); onClick(e); });
  return b;
}

function nonce() {
  return Date.now() + Math.random();
}

function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

// ---- the root, the notice and the events ----------------------------------------------------------

function mount(parentElement) {
  let root = parentElement.querySelector(".tk-board");
  if (!root) {
    root = el("div", "tk-board");
    root.setAttribute("role", "region");
    root.setAttribute("aria-label", "Board");
    parentElement.appendChild(root);
    root.addEventListener("click", (e) => {
      if (!e.target.closest(".tk-menu") && !e.target.closest(".tk-more")) closeMenus(root);
    });
  }
  return root;
}

function closeMenus(root) {
  root.querySelectorAll(".tk-menu").forEach((m) => m.remove());
}

function drawNotice(ui) {
  const notice = el("div", "tk-notice");
  notice.setAttribute("role", "status");
  notice.setAttribute("aria-live", "polite");
  const text = el("span", "tk-notice-text", ui.data.notice || "");
  notice.appendChild(text);
  if (ui.data.notice) notice.classList.add("shown");
  if (ui.data.undo && ui.data.undo.token) {
    notice.appendChild(button("tk-undo", ui.data.undo.label || "Undo", () => ui.send("undo", { token: ui.data.undo.token })));
  }
  ui.root.appendChild(notice);
  // It goes when its Undo does (or after a few seconds), so it never covers the board for long.
  const seconds = ui.data.undo && ui.data.undo.seconds ? ui.data.undo.seconds : 8;
  if (ui.data.notice) setTimeout(() => notice.classList.remove("shown"), seconds * 1000);
  ui.say = (message) => {
    text.textContent = message;
    notice.classList.add("shown");
    setTimeout(() => notice.classList.remove("shown"), 8000);
  };
}

// ---- menus ---------------------------------------------------------------------------------------

function openMenu(ui, anchor, label, items) {
  closeMenus(ui.root);
  const menu = el("li", "tk-menu"); // in the list's flow, under its card: never clipped, fits a phone
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", label);
  for (const [text, action] of items) {
    if (typeof action === "string") { // a link (Open in Confluence): a real anchor, new tab
      const a = el("a", "tk-menu-item", text);
      a.href = action;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.setAttribute("role", "menuitem");
      menu.appendChild(a);
      continue;
    }
    const b = button("tk-menu-item", text, () => { closeMenus(ui.root); action(); });
    b.setAttribute("role", "menuitem");
    menu.appendChild(b);
  }
  menu.addEventListener("keydown", (e) => {
    const entries = Array.from(menu.querySelectorAll(".tk-menu-item"));
    const i = entries.indexOf(e.target);
    if (e.key === "Escape") { closeMenus(ui.root); anchor.focus(); e.preventDefault(); }
    if (e.key === "ArrowDown") { entries[(i + 1) % entries.length].focus(); e.preventDefault(); }
    if (e.key === "ArrowUp") { entries[(i - 1 + entries.length) % entries.length].focus(); e.preventDefault(); }
    e.stopPropagation();
  });
  anchor.after(menu);
  menu.querySelector(".tk-menu-item").focus();
}

// ---- cards ----------------------------------------------------------------------------------------

function neighbours(card) {
  return Array.from(card.closest(".tk-cards").querySelectorAll(".tk-card"));
}

function bump(list, by) {
  const count = list.closest(".tk-lane").querySelector(".tk-count");
  const n = Number(count.dataset.n) + by;
  count.dataset.n = String(n);
  count.textContent = String(n);
}

function moveCard(ui, card, to, beforeId) {
  // Instant: the card goes where it was dropped and says it is saving; the server's answer redraws the board.
  const list = ui.root.querySelector(`.tk-cards[data-status="${to}"]`);
  const before = beforeId ? list.querySelector(`.tk-card[data-id="${beforeId}"]`) : null;
  const from = card.closest(".tk-cards");
  list.querySelectorAll(".tk-empty").forEach((m) => m.remove());
  list.insertBefore(card, before);
  markSaving(card);
  if (from !== list) { bump(from, -1); bump(list, 1); }
  ui.state.focus = card.dataset.id;
  card.focus();
  ui.send("move", { card: Number(card.dataset.id), to, before: beforeId ? Number(beforeId) : null });
}

function markSaving(node) {
  node.classList.add("saving");
  const state = node.querySelector(".tk-state");
  if (state) state.textContent = "Saving…";
}

function cardMenu(ui, card) {
  const here = card.closest(".tk-cards").dataset.status;
  const items = ui.statuses.filter((s) => s !== here).map((s) => [`Move to ${ui.labels[s]}`, () => moveCard(ui, card, s, null)]);
  const list = neighbours(card);
  if (list[0] !== card) items.push(["Move to top", () => moveCard(ui, card, here, list[0].dataset.id)]);
  if (list[list.length - 1] !== card) items.push(["Move to bottom", () => moveCard(ui, card, here, null)]);
  items.push(["Open details", () => ui.send("open", { card: Number(card.dataset.id) })]);
  openMenu(ui, card, "Move card", items);
}

function meta(c) {
  const row = el("div", "tk-meta");
  if (c.project) row.appendChild(el("span", "tk-project", c.project));
  if (c.due_label) { // empty when there is no due date: nothing is drawn, not "None"
    const due = el("span", `tk-due due-${c.due_kind || "later"}`, c.due_label);
    if (c.due) due.title = c.due;
    row.appendChild(due);
  }
  if (c.page) row.appendChild(el("span", "tk-page", c.page));
  if (c.space) row.appendChild(el("span", "tk-space", c.space));
  if (c.site) row.appendChild(el("span", "tk-site", c.site));
  if (c.returned) row.appendChild(el("span", "tk-returned", "Back from snooze"));
  return row;
}

function cardKeys(ui, card, e) {
  const list = neighbours(card);
  const i = list.indexOf(card);
  const status = card.closest(".tk-cards").dataset.status;
  const s = ui.statuses.indexOf(status);
  if (e.key === "Enter" || e.key === " ") ui.send("open", { card: Number(card.dataset.id) });
  else if (e.key === "m" || e.key === "M" || e.key === "ContextMenu") cardMenu(ui, card);
  else if (e.shiftKey && e.key === "ArrowUp" && i > 0) moveCard(ui, card, status, list[i - 1].dataset.id);
  else if (e.shiftKey && e.key === "ArrowDown" && i < list.length - 1) moveCard(ui, card, status, i + 2 < list.length ? list[i + 2].dataset.id : null);
  else if (e.shiftKey && e.key === "ArrowLeft" && s > 0) moveCard(ui, card, ui.statuses[s - 1], null);
  else if (e.shiftKey && e.key === "ArrowRight" && s < ui.statuses.length - 1) moveCard(ui, card, ui.statuses[s + 1], null);
  else if (!e.shiftKey && e.key === "ArrowUp" && i > 0) list[i - 1].focus();
  else if (!e.shiftKey && e.key === "ArrowDown" && i < list.length - 1) list[i + 1].focus();
  else if (!e.shiftKey && (e.key === "ArrowLeft" || e.key === "ArrowRight")) {
    const next = ui.statuses[s + (e.key === "ArrowLeft" ? -1 : 1)];
    const target = next ? ui.root.querySelector(`.tk-cards[data-status="${next}"] .tk-card`)
      : (e.key === "ArrowLeft" ? ui.root.querySelector(".tk-inbox .tk-task") : null);
    if (target) target.focus();
  } else return;
  e.preventDefault();
}

function draggable(ui, node, payload) {
  node.draggable = true;
  node.addEventListener("dragstart", (e) => {
    closeMenus(ui.root);
    e.dataTransfer.setData("text/plain", payload);
    e.dataTransfer.effectAllowed = "move";
    ui.root.dataset.dragging = payload;
    requestAnimationFrame(() => node.classList.add("dragging"));
  });
  node.addEventListener("dragend", () => {
    node.classList.remove("dragging");
    delete ui.root.dataset.dragging;
    ui.root.querySelectorAll(".tk-marker").forEach((m) => m.remove());
  });
}

function drawCard(ui, c) {
  const card = el("li", "tk-card");
  card.dataset.id = String(c.id);
  card.tabIndex = 0;
  card.setAttribute("aria-roledescription", "card");
  if (c.project_colour) card.style.setProperty("--project", c.project_colour);
  card.appendChild(el("div", "tk-title", c.title));
  const row = meta(c);
  row.appendChild(el("span", `tk-state s-${c.gone ? "gone" : c.sync}`, c.gone ? "Gone from Confluence" : c.sync_label || ""));
  card.appendChild(row);
  const more = button("tk-more", "⋯", () => cardMenu(ui, card));
  more.tabIndex = -1;
  more.setAttribute("aria-label", `Move or open ${c.title}`);
  card.appendChild(more);
  card.setAttribute("aria-label", [c.title, c.project, c.due_label, c.gone ? "gone from Confluence" : c.sync_label].filter(Boolean).join(", "));
  card.addEventListener("click", () => ui.send("open", { card: c.id }));
  card.addEventListener("focus", () => { ui.state.focus = card.dataset.id; });
  card.addEventListener("keydown", (e) => cardKeys(ui, card, e));
  draggable(ui, card, `card:${c.id}`);
  return card;
}

// ---- waiting tasks (the inbox lane, the phone's sheet and cards) ---------------------------------

function approveTask(ui, node, to, beforeId) {
  // Instant, like a move: the task sits where it was dropped, saving; a refusal redraws it back with the reason.
  const list = ui.root.querySelector(`.tk-cards[data-status="${to}"]`);
  if (list && node.closest(".tk-inbox")) {
    const before = beforeId ? list.querySelector(`.tk-card[data-id="${beforeId}"]`) : null;
    list.querySelectorAll(".tk-empty").forEach((m) => m.remove());
    bump(node.closest(".tk-cards"), -1);
    node.classList.remove("tk-task");
    node.classList.add("tk-card");
    list.insertBefore(node, before);
    bump(list, 1);
  }
  markSaving(node);
  taskEvent(ui, node, "approve", { to, before: beforeId ? Number(beforeId) : null });
}

function taskEvent(ui, node, action, extra) {
  ui.send("inbox", Object.assign({ action, task: Number(node.dataset.task) }, extra || {}));
}

function taskMenu(ui, node, t) {
  const items = ui.statuses.map((s) => [`Approve to ${ui.labels[s]}`, () => approveTask(ui, node, s, null)]);
  items.push(["Edit…", () => taskEvent(ui, node, "edit")]);
  for (const p of ui.data.inbox.presets || []) items.push([`Snooze: ${p}`, () => { markSaving(node); taskEvent(ui, node, "snooze", { preset: p }); }]);
  items.push(["Dismiss", () => { markSaving(node); taskEvent(ui, node, "dismiss"); }]);
  const url = safeUrl(t.url);
  if (url) items.push(["Open in Confluence", url]);
  openMenu(ui, node, "Triage task", items);
}

function drawTask(ui, t) {
  const node = el("li", "tk-task");
  node.dataset.task = String(t.id);
  node.tabIndex = 0;
  node.setAttribute("aria-roledescription", "waiting task");
  node.appendChild(el("div", "tk-title", t.title));
  const row = meta(t);
  row.appendChild(el("span", "tk-state s-waiting", ""));
  node.appendChild(row);
  const more = button("tk-more", "⋯", () => taskMenu(ui, node, t));
  more.tabIndex = -1;
  more.setAttribute("aria-label", `Approve, dismiss or snooze ${t.title}`);
  node.appendChild(more);
  node.setAttribute("aria-label", [t.title, t.due_label, t.page].filter(Boolean).join(", "));
  node.addEventListener("click", () => taskEvent(ui, node, "edit"));
  node.addEventListener("keydown", (e) => {
    const list = Array.from(node.closest(".tk-cards").querySelectorAll(".tk-task"));
    const i = list.indexOf(node);
    if (e.key === "Enter" || e.key === " ") taskEvent(ui, node, "edit");
    else if (e.key === "m" || e.key === "M" || e.key === "ContextMenu") taskMenu(ui, node, t);
    else if (e.shiftKey && e.key === "ArrowRight") approveTask(ui, node, ui.approveTo, null);
    else if (!e.shiftKey && e.key === "ArrowUp" && i > 0) list[i - 1].focus();
    else if (!e.shiftKey && e.key === "ArrowDown" && i < list.length - 1) list[i + 1].focus();
    else if (!e.shiftKey && e.key === "ArrowRight") {
      const target = ui.root.querySelector(".tk-cards[data-status] .tk-card");
      if (target) target.focus();
    } else return;
    e.preventDefault();
  });
  draggable(ui, node, `task:${t.id}`);
  return node;
}

function drawTriageCard(ui, t) {
  // A phone's waiting task: big buttons, no drag; a tap on the text edits it. In the keyboard list
  // (Pending's List view) it is focusable and has a tick box for acting on several at once.
  const node = el("li", "tk-triage");
  node.dataset.task = String(t.id);
  if (ui.data.keys) {
    node.tabIndex = 0;
    node.setAttribute("aria-label", [t.title, t.due_label, t.page].filter(Boolean).join(", "));
    const tick = el("input", "tk-tick");
    tick.type = "checkbox";
    tick.checked = ui.state.ticked.has(String(t.id));
    tick.setAttribute("aria-label", `Select ${t.title}`);
    tick.addEventListener("click", (e) => e.stopPropagation());
    tick.addEventListener("change", () => setTick(ui, node, tick.checked));
    node.appendChild(tick);
    node.classList.toggle("ticked", tick.checked);
    node.addEventListener("focus", () => { ui.state.focus = String(t.id); });
  }
  const body = el("div", "tk-triage-body");
  body.appendChild(el("div", "tk-title", t.title));
  body.appendChild(meta(t));
  body.addEventListener("click", () => taskEvent(ui, node, "edit"));
  node.appendChild(body);
  const actions = el("div", "tk-triage-actions");
  actions.appendChild(button("tk-act primary", "Approve", () => { markSaving(node); taskEvent(ui, node, "approve", { to: ui.approveTo, before: null }); }));
  actions.appendChild(button("tk-act", "Dismiss", () => { markSaving(node); taskEvent(ui, node, "dismiss"); }));
  const snooze = button("tk-act", "Snooze", () => {
    openMenu(ui, actions, "Snooze until", (ui.data.inbox.presets || []).map((p) => [p, () => { markSaving(node); taskEvent(ui, node, "snooze", { preset: p }); }]));
  });
  actions.appendChild(snooze);
  node.appendChild(actions);
  return node;
}

function moreTasks(ui, parent) {
  const inbox = ui.data.inbox;
  if (inbox.count > inbox.tasks.length) {
    parent.appendChild(button("tk-show-more", `Show more (${inbox.count - inbox.tasks.length} not shown)`,
      () => ui.send("inbox", { action: "more" })));
  }
}

function drawInbox(ui, cols) {
  const inbox = ui.data.inbox;
  const lane = el("section", "tk-lane tk-inbox" + (inbox.open ? "" : " closed"));
  lane.setAttribute("aria-label", "Inbox: tasks waiting for approval");
  const head = el("header", "tk-head");
  const toggle = button("tk-toggle", inbox.open ? "‹" : "›", () => ui.send("inbox", { action: "toggle", open: !inbox.open }));
  toggle.setAttribute("aria-label", inbox.open ? "Close the inbox" : "Open the inbox");
  toggle.setAttribute("aria-expanded", String(!!inbox.open));
  head.appendChild(toggle);
  head.appendChild(el("h3", "tk-label", "Inbox"));
  const count = el("span", "tk-count", inbox.count);
  count.dataset.n = String(inbox.count);
  head.appendChild(count);
  lane.appendChild(head);
  const list = el("ol", "tk-cards");
  list.dataset.inbox = "1";
  if (inbox.open) {
    for (const t of inbox.tasks) list.appendChild(drawTask(ui, t));
    if (!inbox.tasks.length) list.appendChild(el("li", "tk-empty", "Nothing waiting: new Confluence tasks arrive here"));
  }
  lane.appendChild(list);
  if (inbox.open) moreTasks(ui, lane);
  cols.appendChild(lane);
}

function drawSheet(ui) {
  // Phone width: "Inbox (12)" opens a bottom sheet of the waiting tasks as triage cards.
  const inbox = ui.data.inbox;
  const opener = button("tk-sheet-open", `Inbox (${inbox.count})`, () => {
    ui.state.sheet = true;
    sheet.classList.add("open");
  });
  opener.setAttribute("aria-haspopup", "dialog");
  ui.root.appendChild(opener);
  const sheet = el("div", "tk-sheet" + (ui.state.sheet ? " open" : ""));
  sheet.setAttribute("role", "dialog");
  sheet.setAttribute("aria-label", "Inbox");
  const head = el("header", "tk-sheet-head");
  head.appendChild(el("h3", "tk-label", `Inbox · ${inbox.count}`));
  head.appendChild(button("tk-sheet-close", "Close", () => { ui.state.sheet = false; sheet.classList.remove("open"); }));
  sheet.appendChild(head);
  sheet.appendChild(triageList(ui));
  ui.root.appendChild(sheet);
}

// ---- the keyboard list (Pending's List view) ---------------------------------------------------------

const KEYS = [["j / ↓", "next task"], ["k / ↑", "previous task"], ["x", "tick or untick the task"],
  ["a", "approve (the ticked tasks, or this one)"], ["d", "dismiss"], ["s", "snooze (then pick when)"],
  ["e / Enter", "edit the task"], ["?", "show or hide these keys"], ["Esc", "close this list or a menu"]];

function setTick(ui, node, on) {
  const id = node.dataset.task;
  if (on) ui.state.ticked.add(id); else ui.state.ticked.delete(id);
  node.classList.toggle("ticked", on);
  const box = node.querySelector(".tk-tick");
  if (box) box.checked = on;
  const n = ui.state.ticked.size;
  const count = ui.root.querySelector(".tk-ticked-count");
  if (count) count.textContent = n ? `${n} ticked: a, d and s act on them` : "";
}

function chosen(ui, node) {
  // The ticked tasks that are still drawn, or else the task in focus.
  const drawn = new Set(Array.from(ui.root.querySelectorAll(".tk-triage")).map((n) => n.dataset.task));
  const ticked = Array.from(ui.state.ticked).filter((id) => drawn.has(id));
  return ticked.length ? ticked.map(Number) : (node ? [Number(node.dataset.task)] : []);
}

function act(ui, node, action, extra) {
  const ids = chosen(ui, node);
  if (!ids.length) return;
  // After the redraw the focus goes to the next task still waiting (the list moves up under it).
  const cards = Array.from(ui.root.querySelectorAll(".tk-triage"));
  const from = node ? cards.indexOf(node) : 0;
  const next = cards.slice(from).concat(cards.slice(0, from)).find((c) => !ids.includes(Number(c.dataset.task)));
  ui.state.focus = next ? next.dataset.task : null;
  for (const id of ids) {
    const n = ui.root.querySelector(`.tk-triage[data-task="${CSS.escape(String(id))}"]`);
    if (n) markSaving(n);
  }
  ui.state.ticked.clear();
  ui.send("inbox", Object.assign({ action, task: ids[0], tasks: ids }, extra || {}));
}

function listKeys(ui, e) {
  const cards = Array.from(ui.root.querySelectorAll(".tk-triage"));
  const inside = e.composedPath ? e.composedPath()[0] : e.target;
  const current = inside && inside.closest ? inside.closest(".tk-triage") : null;
  const i = current ? cards.indexOf(current) : -1;
  const go = (k) => { if (cards[k]) { cards[k].focus(); cards[k].scrollIntoView({ block: "nearest" }); } };
  if (e.key === "j" || e.key === "ArrowDown") go(Math.min(i + 1, cards.length - 1));
  else if (e.key === "k" || e.key === "ArrowUp") go(Math.max(i - 1, 0));
  else if (e.key === "?") toggleKeys(ui);
  else if (e.key === "Escape") { toggleKeys(ui, false); closeMenus(ui.root); }
  else if (!current) { if (e.key.length === 1 && "xadse".includes(e.key)) go(0); else return; }
  else if (e.key === "x") setTick(ui, current, !current.classList.contains("ticked"));
  else if (e.key === "a") act(ui, current, "approve", { to: ui.approveTo, before: null });
  else if (e.key === "d") act(ui, current, "dismiss");
  else if (e.key === "e" || e.key === "Enter") taskEvent(ui, current, "edit");
  else if (e.key === "s") {
    openMenu(ui, current, "Snooze until", (ui.data.inbox.presets || []).map((p) => [p, () => act(ui, current, "snooze", { preset: p })]));
  } else return;
  e.preventDefault();
}

function toggleKeys(ui, show) {
  const panel = ui.root.querySelector(".tk-keys");
  if (panel) panel.hidden = show === undefined ? !panel.hidden : !show;
}

function typing(e) {
  // Keys typed into a field, or while a dialog is open, are not shortcuts.
  const target = e.composedPath ? e.composedPath()[0] : e.target;
  if (e.ctrlKey || e.metaKey || e.altKey) return true;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName || "")) &&
      !(target.classList && target.classList.contains("tk-tick"))) return true;
  return !!document.querySelector('[role="dialog"]');
}

function keyboardHelp(ui) {
  const head = el("div", "tk-keys-hint");
  head.appendChild(el("span", null, "Keys: j/k move · x tick · a approve · d dismiss · s snooze · e edit · ? all keys"));
  head.appendChild(el("span", "tk-ticked-count", ""));
  const panel = el("dl", "tk-keys");
  panel.hidden = true;
  panel.setAttribute("aria-label", "Keyboard shortcuts");
  for (const [k, what] of KEYS) { panel.appendChild(el("dt", null, k)); panel.appendChild(el("dd", null, what)); }
  return [head, panel];
}

function listenForKeys(ui, parentElement) {
  // One listener per mounted list, on the document (so keys work before anything is focused); it
  // always acts on the list as last drawn.
  ui.state.ui = ui;
  if (ui.state.keysBound) return;
  ui.state.keysBound = true;
  document.addEventListener("keydown", (e) => {
    if (!parentElement.isConnected || !ui.state.ui || !ui.state.ui.data.keys || typing(e)) return;
    listKeys(ui.state.ui, e);
  });
}

function triageList(ui) {
  const wrap = el("div", "tk-triage-list");
  if (ui.data.keys) wrap.append(...keyboardHelp(ui));
  const list = el("ol", "tk-cards");
  for (const t of ui.data.inbox.tasks) list.appendChild(drawTriageCard(ui, t));
  if (!ui.data.inbox.tasks.length) list.appendChild(el("li", "tk-empty", "Nothing waiting for approval"));
  wrap.appendChild(list);
  moreTasks(ui, wrap);
  return wrap;
}

// ---- columns ---------------------------------------------------------------------------------------

function dropSpot(list, y) {
  // The card the dragged one would sit above, by the pointer's height; null for the end.
  for (const card of list.querySelectorAll(".tk-card:not(.dragging)")) {
    const box = card.getBoundingClientRect();
    if (y < box.top + box.height / 2) return card;
  }
  return null;
}

function dropZone(ui, lane, list, status) {
  // The whole lane takes the drop, top to bottom: below a short column's last card is its end.
  lane.addEventListener("dragover", (e) => {
    if (!ui.root.dataset.dragging) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
    const spot = dropSpot(list, e.clientY);
    let marker = ui.root.querySelector(".tk-marker");
    if (!marker) marker = el("li", "tk-marker");
    if (marker.parentElement !== list || marker.nextElementSibling !== spot) list.insertBefore(marker, spot);
  });
  lane.addEventListener("dragleave", (e) => {
    if (!lane.contains(e.relatedTarget)) lane.querySelectorAll(".tk-marker").forEach((m) => m.remove());
  });
  lane.addEventListener("drop", (e) => {
    e.preventDefault();
    const payload = e.dataTransfer.getData("text/plain") || ui.root.dataset.dragging || "";
    ui.root.querySelectorAll(".tk-marker").forEach((m) => m.remove());
    const [kind, id] = payload.split(":");
    const spot = dropSpot(list, e.clientY);
    if (kind === "task") {
      const node = ui.root.querySelector(`.tk-task[data-task="${CSS.escape(id || "")}"]`);
      if (node) approveTask(ui, node, status, spot ? spot.dataset.id : null);
      return;
    }
    const card = ui.root.querySelector(`.tk-card[data-id="${CSS.escape(id || "")}"]`);
    if (!card) return;
    const sameSlot = card.closest(".tk-cards") === list &&
      (spot === card.nextElementSibling || (spot === null && card === list.lastElementChild));
    if (!sameSlot) moveCard(ui, card, status, spot ? spot.dataset.id : null);
  });
}

// ---- quick add at the foot of each column -----------------------------------------------------------

function option(value, label) {
  const o = el("option", null, label);
  o.value = value;
  return o;
}

function quickAdd(ui, lane, status) {
  // "+ Add a card" opens a small form in place: a title (Enter adds, Esc closes), a due date and a
  // project if wanted. It stays open for the next card, across the redraw that shows the new one.
  const opener = button("tk-add-open", "+ Add a card", () => show(true));
  const form = el("form", "tk-add");
  form.hidden = true;
  const title = el("textarea", "tk-add-title");
  title.rows = 2;
  title.maxLength = ui.data.max_title || 500;
  title.placeholder = "Title — Enter to add, Esc to close";
  title.setAttribute("aria-label", `New card in ${ui.labels[status]}`);
  const due = el("input", "tk-add-due");
  due.type = "date";
  due.setAttribute("aria-label", "Due (optional)");
  const project = el("select", "tk-add-project");
  project.setAttribute("aria-label", "Project (optional)");
  project.appendChild(option("", "No project"));
  for (const p of ui.data.projects || []) project.appendChild(option(String(p.id), p.name));
  const fields = el("div", "tk-add-row");
  fields.append(due, project);
  const go = el("button", "tk-add-go", "Add card");
  go.type = "submit";
  const actions = el("div", "tk-add-row");
  actions.append(go, button("tk-add-cancel", "Cancel", () => { show(false); opener.focus(); }));
  form.append(title, fields, actions);

  function show(open, focus = true) {
    form.hidden = !open;
    opener.hidden = open;
    ui.state.adding = open ? status : null;
    if (open && focus) requestAnimationFrame(() => title.focus()); // after the redraw has put the form in the page
    else { title.value = ""; ui.state.draft = ""; }
  }
  function submit() {
    const text = title.value.trim();
    if (!text) { title.focus(); return; }
    const list = lane.querySelector(".tk-cards");
    list.querySelectorAll(".tk-empty").forEach((m) => m.remove());
    const ghost = el("li", "tk-card saving");
    ghost.appendChild(el("div", "tk-title", text));
    const row = el("div", "tk-meta");
    row.appendChild(el("span", "tk-state", "Saving…"));
    ghost.appendChild(row);
    list.appendChild(ghost);
    bump(list, 1);
    ui.state.draft = "";
    ui.send("add", { status, title: text, due: due.value || null, project: project.value ? Number(project.value) : null });
    title.value = "";
    title.focus();
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  title.addEventListener("input", () => { ui.state.draft = title.value; });
  title.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); }
    else if (e.key === "Escape") { e.preventDefault(); show(false); opener.focus(); }
  });
  lane.append(opener, form);
  const refused = ui.data.draft && ui.data.draft.status === status ? ui.data.draft : null;
  if (refused || ui.state.adding === status) {
    // Open again after the redraw, with what was typed meanwhile (or what was not saved); focused again
    // only if the person was typing in it (a redraw never takes the focus from elsewhere).
    show(true, !!refused || ui.addFocused);
    title.value = refused ? refused.title : (ui.state.draft || "");
  }
}

function drawColumn(ui, column, current) {
  const lane = el("section", "tk-lane tk-column" + (column.status === current ? " current" : ""));
  lane.dataset.status = column.status;
  lane.setAttribute("aria-label", column.label);
  const head = el("header", "tk-head");
  head.appendChild(el("h3", "tk-label", column.label));
  const count = el("span", "tk-count", column.count);
  count.dataset.n = String(column.count);
  head.appendChild(count);
  lane.appendChild(head);
  const list = el("ol", "tk-cards");
  list.dataset.status = column.status;
  for (const c of column.cards) list.appendChild(drawCard(ui, c));
  if (!column.cards.length) list.appendChild(el("li", "tk-empty", column.empty || "Nothing here"));
  lane.appendChild(list);
  if (column.count > column.cards.length) {
    lane.appendChild(button("tk-show-more", `Show more (${column.count - column.cards.length} not shown)`,
      () => ui.send("more", { status: column.status })));
  }
  if (!ui.data.no_add) quickAdd(ui, lane, column.status);
  dropZone(ui, lane, list, column.status);
  return lane;
}

function drawTabs(ui, cols, current) {
  // Phone width: one column at a time, picked here (CSS hides this bar on wide screens).
  const tabs = el("div", "tk-tabs");
  tabs.setAttribute("role", "tablist");
  for (const column of ui.data.columns) {
    const tab = button("tk-tab", `${column.label} · ${column.count}`, () => {
      ui.state.column = column.status;
      tabs.querySelectorAll(".tk-tab").forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
      cols.querySelectorAll(".tk-column").forEach((c) => c.classList.toggle("current", c.dataset.status === column.status));
    });
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-selected", String(column.status === current));
    tabs.appendChild(tab);
  }
  return tabs;
}

// ---- the component -------------------------------------------------------------------------------------

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const state = STATE.get(parentElement) || { focus: null, column: null, sheet: false, ticked: new Set() };
  STATE.set(parentElement, state);
  const root = mount(parentElement);
  const focused = parentElement.activeElement || document.activeElement;
  const hadFocus = root.contains(focused);
  const addFocused = hadFocus && !!focused && focused.classList.contains("tk-add-title");
  root.replaceChildren();
  root.classList.toggle("compact", data.density === "compact");
  root.classList.toggle("cards-only", data.mode === "cards");
  root.classList.toggle("keys", !!data.keys);
  root.classList.toggle("with-inbox", !!(data.inbox && data.inbox.open));
  root.dataset.version = String(data.version || "");

  const columns = data.columns || [];
  const ui = {
    root, data, state, addFocused,
    statuses: columns.map((c) => c.status),
    labels: Object.fromEntries(columns.map((c) => [c.status, c.label])),
    approveTo: data.approve_to || "todo",
    send: (event, value) => setTriggerValue(event, Object.assign({ nonce: nonce() }, value)),
  };
  drawNotice(ui);

  if (data.mode === "cards") { // the Pending page on a phone, or its keyboard list: the waiting tasks as cards
    root.appendChild(triageList(ui));
    if (data.keys) {
      listenForKeys(ui, parentElement);
      const again = state.focus && root.querySelector(`.tk-triage[data-task="${CSS.escape(state.focus)}"]`);
      const next = again || (state.focus && root.querySelector(".tk-triage"));
      if (next && hadFocus) next.focus({ preventScroll: true });
    }
    root.dataset.ready = "1";
    return;
  }
  const current = state.column && ui.statuses.includes(state.column) ? state.column : (ui.statuses[1] || ui.statuses[0]);
  const cols = el("div", "tk-columns");
  root.appendChild(drawTabs(ui, cols, current));
  root.appendChild(cols);
  if (data.inbox) drawInbox(ui, cols);
  for (const column of columns) cols.appendChild(drawColumn(ui, column, current));
  if (data.inbox) drawSheet(ui);

  if (state.focus && hadFocus) {
    const again = root.querySelector(`.tk-card[data-id="${CSS.escape(state.focus)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
  root.dataset.ready = "1";
}
