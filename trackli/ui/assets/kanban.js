// Trackli's board: columns and cards drawn from `data`, moved by drag and drop, keys or a menu.
// Every text from Confluence or the person is inserted with textContent, never as HTML.
// Events back to Python (trigger values): move {card, to, before}, open {card}, more {status}.

const STATE = new WeakMap(); // per mounted board: what must survive a redraw (focus, the open menu)

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function nonce() {
  return Date.now() + Math.random();
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const state = STATE.get(parentElement) || { focus: null, column: null };
  STATE.set(parentElement, state);
  let root = parentElement.querySelector(".tk-board");
  if (!root) {
    root = el("div", "tk-board");
    root.setAttribute("role", "region");
    root.setAttribute("aria-label", "Board");
    parentElement.appendChild(root);
    root.addEventListener("click", (e) => {
      if (!e.target.closest(".tk-menu") && !e.target.closest(".tk-more")) {
        root.querySelectorAll(".tk-menu").forEach((m) => m.remove());
      }
    });
  }
  const hadFocus = root.contains(parentElement.activeElement || document.activeElement);
  root.replaceChildren();
  root.classList.toggle("compact", data.density === "compact");
  root.dataset.version = String(data.version || "");

  const statuses = data.columns.map((c) => c.status);
  const labels = Object.fromEntries(data.columns.map((c) => [c.status, c.label]));

  const notice = el("div", "tk-notice");
  notice.setAttribute("role", "status");
  notice.setAttribute("aria-live", "polite");
  if (data.notice) {
    notice.textContent = data.notice;
    notice.classList.add("shown");
  }
  root.appendChild(notice);

  // Phone width: one column at a time, picked here (CSS hides this bar on wide screens).
  const tabs = el("div", "tk-tabs");
  tabs.setAttribute("role", "tablist");
  root.appendChild(tabs);
  const cols = el("div", "tk-columns");
  root.appendChild(cols);
  const current = state.column && statuses.includes(state.column) ? state.column : (statuses[1] || statuses[0]);

  function say(text) {
    notice.textContent = text;
    notice.classList.add("shown");
  }

  function send(event, value) {
    setTriggerValue(event, Object.assign({ nonce: nonce() }, value));
  }

  function move(card, to, beforeId) {
    // Instant: the card goes where it was dropped and says it is saving; the server's answer redraws the board.
    const list = root.querySelector(`.tk-cards[data-status="${to}"]`);
    const before = beforeId ? list.querySelector(`.tk-card[data-id="${beforeId}"]`) : null;
    const from = card.closest(".tk-cards");
    list.insertBefore(card, before);
    card.classList.add("saving");
    card.querySelector(".tk-state").textContent = "Saving…";
    for (const l of new Set([from, list])) {
      const count = l.closest(".tk-column").querySelector(".tk-count");
      const n = Number(count.dataset.n) + (l === list ? 1 : -1) * (from === list ? 0 : 1);
      count.dataset.n = String(n);
      count.textContent = String(n);
    }
    state.focus = card.dataset.id;
    card.focus();
    send("move", { card: Number(card.dataset.id), to, before: beforeId ? Number(beforeId) : null });
  }

  function neighbours(card) {
    return Array.from(card.closest(".tk-cards").querySelectorAll(".tk-card"));
  }

  function closeMenus() {
    root.querySelectorAll(".tk-menu").forEach((m) => m.remove());
  }

  function openMenu(card) {
    closeMenus();
    const menu = el("li", "tk-menu"); // in the list's flow, under its card: never clipped, fits a phone
    menu.setAttribute("role", "menu");
    menu.setAttribute("aria-label", "Move card");
    const here = card.closest(".tk-cards").dataset.status;
    const item = (text, action) => {
      const b = el("button", "tk-menu-item", text);
      b.type = "button";
      b.setAttribute("role", "menuitem");
      b.addEventListener("click", (e) => {
        e.stopPropagation();
        closeMenus();
        action();
      });
      menu.appendChild(b);
      return b;
    };
    for (const s of statuses) {
      if (s !== here) item(`Move to ${labels[s]}`, () => move(card, s, null));
    }
    const list = neighbours(card);
    if (list[0] !== card) item("Move to top", () => move(card, here, list[0].dataset.id));
    if (list[list.length - 1] !== card) item("Move to bottom", () => move(card, here, null));
    item("Open details", () => send("open", { card: Number(card.dataset.id) }));
    menu.addEventListener("keydown", (e) => {
      const items = Array.from(menu.querySelectorAll("button"));
      const i = items.indexOf(e.target);
      if (e.key === "Escape") { closeMenus(); card.focus(); e.preventDefault(); }
      if (e.key === "ArrowDown") { items[(i + 1) % items.length].focus(); e.preventDefault(); }
      if (e.key === "ArrowUp") { items[(i - 1 + items.length) % items.length].focus(); e.preventDefault(); }
      e.stopPropagation();
    });
    card.after(menu);
    menu.querySelector("button").focus();
  }

  function drawCard(c) {
    const card = el("li", "tk-card");
    card.dataset.id = String(c.id);
    card.draggable = true;
    card.tabIndex = 0;
    card.setAttribute("aria-roledescription", "card");
    if (c.project_colour) card.style.setProperty("--project", c.project_colour);
    const title = el("div", "tk-title", c.title);
    card.appendChild(title);
    const meta = el("div", "tk-meta");
    if (c.project) meta.appendChild(el("span", "tk-project", c.project));
    if (c.due) {
      const due = el("span", c.overdue ? "tk-due overdue" : "tk-due", (c.overdue ? "overdue " : "due ") + c.due);
      meta.appendChild(due);
    }
    if (c.site) meta.appendChild(el("span", "tk-site", c.site));
    if (c.returned) meta.appendChild(el("span", "tk-returned", "Back from snooze"));
    const st = el("span", `tk-state s-${c.gone ? "gone" : c.sync}`, c.gone ? "Gone from Confluence" : c.sync_label || "");
    meta.appendChild(st);
    card.appendChild(meta);
    const menu = el("button", "tk-more", "⋯");
    menu.type = "button";
    menu.tabIndex = -1;
    menu.setAttribute("aria-label", `Move or open ${c.title}`);
    menu.addEventListener("click", (e) => { e.stopPropagation(); openMenu(card); });
    card.appendChild(menu);
    card.setAttribute("aria-label", [c.title, c.project, c.due ? `due ${c.due}` : "", c.gone ? "gone from Confluence" : c.sync_label].filter(Boolean).join(", "));

    card.addEventListener("click", () => send("open", { card: c.id }));
    card.addEventListener("focus", () => { state.focus = card.dataset.id; });
    card.addEventListener("keydown", (e) => {
      const list = neighbours(card);
      const i = list.indexOf(card);
      const status = card.closest(".tk-cards").dataset.status;
      const s = statuses.indexOf(status);
      if (e.key === "Enter" || e.key === " ") {
        send("open", { card: c.id });
      } else if (e.key === "m" || e.key === "M" || e.key === "ContextMenu") {
        openMenu(card);
      } else if (e.shiftKey && e.key === "ArrowUp" && i > 0) {
        move(card, status, list[i - 1].dataset.id);
      } else if (e.shiftKey && e.key === "ArrowDown" && i < list.length - 1) {
        move(card, status, i + 2 < list.length ? list[i + 2].dataset.id : null);
      } else if (e.shiftKey && e.key === "ArrowLeft" && s > 0) {
        move(card, statuses[s - 1], null);
      } else if (e.shiftKey && e.key === "ArrowRight" && s < statuses.length - 1) {
        move(card, statuses[s + 1], null);
      } else if (!e.shiftKey && e.key === "ArrowUp" && i > 0) {
        list[i - 1].focus();
      } else if (!e.shiftKey && e.key === "ArrowDown" && i < list.length - 1) {
        list[i + 1].focus();
      } else if (!e.shiftKey && (e.key === "ArrowLeft" || e.key === "ArrowRight")) {
        const next = statuses[s + (e.key === "ArrowLeft" ? -1 : 1)];
        const target = next && root.querySelector(`.tk-cards[data-status="${next}"] .tk-card`);
        if (target) target.focus();
      } else {
        return;
      }
      e.preventDefault();
    });
    card.addEventListener("dragstart", (e) => {
      closeMenus();
      e.dataTransfer.setData("text/plain", String(c.id));
      e.dataTransfer.effectAllowed = "move";
      root.dataset.dragging = String(c.id);
      requestAnimationFrame(() => card.classList.add("dragging"));
    });
    card.addEventListener("dragend", () => {
      card.classList.remove("dragging");
      delete root.dataset.dragging;
      root.querySelectorAll(".tk-marker").forEach((m) => m.remove());
    });
    return card;
  }

  function dropSpot(list, y) {
    // The card the dragged one would sit above, by the pointer's height; null for the end.
    for (const card of list.querySelectorAll(".tk-card:not(.dragging)")) {
      const box = card.getBoundingClientRect();
      if (y < box.top + box.height / 2) return card;
    }
    return null;
  }

  for (const column of data.columns) {
    const tab = el("button", "tk-tab", `${column.label} · ${column.count}`);
    tab.type = "button";
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-selected", String(column.status === current));
    tab.addEventListener("click", () => {
      state.column = column.status;
      tabs.querySelectorAll(".tk-tab").forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
      cols.querySelectorAll(".tk-column").forEach((c) => c.classList.toggle("current", c.dataset.status === column.status));
    });
    tabs.appendChild(tab);

    const section = el("section", "tk-column" + (column.status === current ? " current" : ""));
    section.dataset.status = column.status;
    section.setAttribute("aria-label", column.label);
    const head = el("header", "tk-head");
    head.appendChild(el("h3", "tk-label", column.label));
    const count = el("span", "tk-count", column.count);
    count.dataset.n = String(column.count);
    head.appendChild(count);
    section.appendChild(head);
    const list = el("ol", "tk-cards");
    list.dataset.status = column.status;
    for (const c of column.cards) list.appendChild(drawCard(c));
    if (!column.cards.length) list.appendChild(el("li", "tk-empty", column.empty || "Nothing here"));
    list.addEventListener("dragover", (e) => {
      if (!root.dataset.dragging) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      const spot = dropSpot(list, e.clientY);
      let marker = root.querySelector(".tk-marker");
      if (!marker) marker = el("li", "tk-marker");
      if (marker.parentElement !== list || marker.nextElementSibling !== spot) list.insertBefore(marker, spot);
    });
    list.addEventListener("dragleave", (e) => {
      if (!list.contains(e.relatedTarget)) list.querySelectorAll(".tk-marker").forEach((m) => m.remove());
    });
    list.addEventListener("drop", (e) => {
      e.preventDefault();
      const id = e.dataTransfer.getData("text/plain") || root.dataset.dragging;
      const card = root.querySelector(`.tk-card[data-id="${CSS.escape(id)}"]`);
      root.querySelectorAll(".tk-marker").forEach((m) => m.remove());
      if (!card) return;
      const spot = dropSpot(list, e.clientY);
      const sameSlot = card.closest(".tk-cards") === list &&
        (spot === card.nextElementSibling || (spot === null && card === list.lastElementChild));
      if (sameSlot) return;
      list.querySelectorAll(".tk-empty").forEach((m) => m.remove());
      move(card, column.status, spot ? spot.dataset.id : null);
    });
    section.appendChild(list);
    if (column.count > column.cards.length) {
      const more = el("button", "tk-show-more", `Show more (${column.count - column.cards.length} not shown)`);
      more.type = "button";
      more.addEventListener("click", () => send("more", { status: column.status }));
      section.appendChild(more);
    }
    cols.appendChild(section);
  }

  if (state.focus && hadFocus) {
    const again = root.querySelector(`.tk-card[data-id="${CSS.escape(state.focus)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
  root.dataset.ready = "1";
}
