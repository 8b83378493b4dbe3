// The sandbox's Slack client: renders what the fake Slack keeps, sends what people do.
// Plain JavaScript, no build step. State comes from a long poll on /ui/state; every
// action is a POST that the server turns into the request real Slack would send.
"use strict";

const EMOJI = {
  "+1": "👍", thumbsup: "👍", arrows_counterclockwise: "🔄", arrow_down: "⬇️", arrow_up: "⬆️",
  bar_chart: "📊", bell: "🔔", black_square_for_stop: "⏹️", bulb: "💡", calendar: "📆",
  chart_with_downwards_trend: "📉", chart_with_upwards_trend: "📈", clock1: "🕐", cloud: "☁️",
  construction: "🚧", dollar: "💵", eyes: "👀", fire: "🔥", gear: "⚙️", hammer_and_wrench: "🛠️",
  heavy_check_mark: "✔️", heavy_minus_sign: "➖", hourglass: "⌛", hourglass_flowing_sand: "⏳",
  inbox_tray: "📥", information_source: "ℹ️", large_blue_circle: "🔵", large_green_circle: "🟢",
  large_orange_circle: "🟠", large_yellow_circle: "🟡", lock: "🔒", mag: "🔍", memo: "📝",
  money_with_wings: "💸", moneybag: "💰", no_entry: "⛔", no_entry_sign: "🚫", ok: "🆗",
  raised_hand: "✋", recycle: "♻️", red_circle: "🔴", repeat: "🔁", robot_face: "🤖", rocket: "🚀",
  rotating_light: "🚨", sleeping: "😴", small_red_triangle: "🔺", small_red_triangle_down: "🔻",
  sparkles: "✨", stopwatch: "⏱️", tada: "🎉", warning: "⚠️", wastebasket: "🗑️",
  white_check_mark: "✅", white_circle: "⚪", x: "❌", zzz: "💤", package: "📦",
  octagonal_sign: "🛑", pencil2: "✏️", speech_balloon: "💬",
  card_file_box: "🗃️", desktop_computer: "🖥️", floppy_disk: "💾", globe_with_meridians: "🌐",
  electric_plug: "🔌", satellite: "📡", chart: "💹", receipt: "🧾", hourglass_done: "⌛",
  arrow_down_small: "🔽", arrow_up_small: "🔼", paperclip: "📎", thread: "🧵", clipboard: "📋",
};

const app = {
  me: null,
  channel: null,
  thread: null, // {channel, ts}
  state: null,
  version: -1,
  poll: null,
  dismissed: new Set(),
  modalKey: null,
  home: false, // the Home tab is shown instead of a channel
};

// -- text ------------------------------------------------------------------------------

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]
  ));
}

// A known code becomes its emoji, in a span whose fonts are the emoji fonts first; an
// unknown one stays as typed, as Slack shows an emoji it does not have.
function emoji(html) {
  return html.replace(/:([a-z0-9_+\-]+):/g, (all, name) => (
    EMOJI[name] ? `<span class="emoji" title=":${name}:">${EMOJI[name]}</span>` : all
  ));
}

function clock(ts) {
  const when = new Date(parseFloat(ts) * 1000);
  if (Number.isNaN(when.getTime())) return "";
  const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return `<time class="time" datetime="${when.toISOString()}" title="${esc(when.toLocaleString())}">${time}</time>`;
}

function personName(id) {
  const s = app.state;
  if (!s) return id;
  if (s.bot && s.bot.id === id) return s.bot.name;
  const p = (s.people || []).find((x) => x.id === id);
  return p ? p.name : id;
}

function channelName(id) {
  const c = ((app.state && app.state.channels) || []).find((x) => x.id === id);
  return c ? c.name : id;
}

function control(inner) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@")) {
    return `<span class="mention">@${esc(label || personName(target.slice(1)))}</span>`;
  }
  if (target.startsWith("#")) {
    return `<span class="mention">#${esc(label || channelName(target.slice(1)))}</span>`;
  }
  if (target.startsWith("!")) {
    const name = label || target.slice(1).split("^")[0];
    return `<span class="mention">@${esc(name.replace(/^@/, ""))}</span>`;
  }
  if (/^(https?:|mailto:)/.test(target)) {
    return `<a href="${esc(target)}" target="_blank" rel="noopener">${esc(label || target)}</a>`;
  }
  return esc(label || target);
}

function unslack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

// Slack's mrkdwn: <controls>, ```pre```, `code`, *bold*, _italic_, ~strike~, > quotes.
function mrkdwn(source) {
  const held = [];
  const hold = (html) => `\u0000${held.push(html) - 1}\u0000`;
  let text = String(source ?? "");
  text = text.replace(/```([\s\S]*?)```/g, (all, body) => hold(`<pre>${esc(unslack(body.replace(/<([^<>]+)>/g, (a, c) => c.split("|").pop())))}</pre>`));
  // Code before controls: what is inside backticks reads literally, `<name>` included.
  text = text.replace(/`([^`\n]+)`/g, (all, body) => hold(`<code>${esc(unslack(body))}</code>`));
  text = text.replace(/<([^<>\n]+)>/g, (all, inner) => hold(control(inner)));
  let html = esc(unslack(text));
  const edge = "(^|[\\s(\\u0000>])";
  const after = "(?=$|[\\s).,!?:;\\u0000<])";
  html = html.replace(new RegExp(`${edge}\\*([^*\\n]+?)\\*${after}`, "g"), "$1<b>$2</b>");
  html = html.replace(new RegExp(`${edge}_([^_\\n]+?)_${after}`, "g"), "$1<i>$2</i>");
  html = html.replace(new RegExp(`${edge}~([^~\\n]+?)~${after}`, "g"), "$1<s>$2</s>");
  html = html.replace(/(^|\n)&gt; ?([^\n]*)/g, "$1<blockquote>$2</blockquote>");
  html = emoji(html).replace(/\n/g, "<br>");
  return html.replace(/\u0000(\d+)\u0000/g, (all, n) => held[Number(n)]);
}

function textObject(obj) {
  if (!obj) return "";
  if (typeof obj === "string") return mrkdwn(obj);
  if (obj.type === "mrkdwn") return mrkdwn(obj.text);
  return emoji(esc(obj.text));
}

function fileUrl(file) {
  if (!file) return "";
  if (file.id) return `/files/${encodeURIComponent(file.id)}`;
  return file.url || "";
}

// -- blocks ----------------------------------------------------------------------------

function renderButton(el, blockId) {
  const style = el.style ? ` ${esc(el.style)}` : "";
  const attrs = `data-action-id="${esc(el.action_id || "")}" data-block-id="${esc(blockId || "")}"`;
  const url = el.url ? ` data-url="${esc(el.url)}"` : "";
  const confirm = el.confirm ? ` data-confirm="${esc(JSON.stringify(el.confirm))}"` : "";
  return `<button type="button" class="btn${style}" ${attrs}${url}${confirm}>${textObject(el.text)}</button>`;
}

function renderElement(el, blockId) {
  if (el.type === "button") return renderButton(el, blockId);
  if (el.type === "image") {
    const src = el.image_url || fileUrl(el.slack_file);
    return `<img src="${esc(src)}" alt="${esc(el.alt_text || "")}">`;
  }
  if (el.type === "mrkdwn" || el.type === "plain_text") return `<span>${textObject(el)}</span>`;
  const label = el.placeholder ? textObject(el.placeholder) : esc(el.type);
  return `<span class="unsupported">[${label}]</span>`;
}

function renderInput(block, modal) {
  const el = block.element || {};
  const id = `input-${block.block_id}-${el.action_id}`;
  const label = `${textObject(block.label)}${block.optional ? ' <span class="optional">(optional)</span>' : ""}`;
  const error = modal && modal.errors && modal.errors[block.block_id];
  const initial = esc(el.initial_value || "");
  const attrs = `id="${esc(id)}" data-block-id="${esc(block.block_id)}" data-action-id="${esc(el.action_id)}"`
    + (el.max_length ? ` maxlength="${Number(el.max_length)}"` : "")
    + (el.placeholder ? ` placeholder="${esc(el.placeholder.text)}"` : "");
  const field = el.multiline
    ? `<textarea rows="4" ${attrs}>${initial}</textarea>`
    : `<input type="text" ${attrs} value="${initial}">`;
  const hint = block.hint ? `<div class="blk-context">${textObject(block.hint)}</div>` : "";
  return `<div class="blk blk-input"><label for="${esc(id)}">${label}</label>${field}${hint}`
    + `${error ? `<div class="error">${esc(error)}</div>` : ""}</div>`;
}

function renderBlock(block, modal) {
  switch (block.type) {
    case "header":
      return `<div class="blk blk-header">${textObject(block.text)}</div>`;
    case "section": {
      const text = block.text ? `<div class="text">${textObject(block.text)}</div>` : "";
      const fields = (block.fields || []).map((f) => `<div>${textObject(f)}</div>`).join("");
      let accessory = "";
      const acc = block.accessory;
      if (acc && acc.type === "image") {
        accessory = `<img class="accessory-image" src="${esc(acc.image_url || fileUrl(acc.slack_file))}" alt="${esc(acc.alt_text || "")}">`;
      } else if (acc) {
        accessory = `<div>${renderElement(acc, block.block_id)}</div>`;
      }
      return `<div class="blk blk-section"><div class="main">${text}`
        + `${fields ? `<div class="fields">${fields}</div>` : ""}</div>${accessory}</div>`;
    }
    case "context":
      return `<div class="blk blk-context">${(block.elements || []).map((e) => renderElement(e, block.block_id)).join("")}</div>`;
    case "divider":
      return '<hr class="blk-divider">';
    case "image": {
      const src = block.image_url || fileUrl(block.slack_file);
      const title = block.title ? `<div class="title">${textObject(block.title)}</div>` : "";
      return `<div class="blk blk-image">${title}<img src="${esc(src)}" alt="${esc(block.alt_text || "")}"></div>`;
    }
    case "actions":
      return `<div class="blk blk-actions">${(block.elements || []).map((e) => renderElement(e, block.block_id)).join("")}</div>`;
    case "input":
      return renderInput(block, modal);
    case "rich_text":
      return `<div class="blk text">${esc(richText(block))}</div>`;
    default:
      return `<div class="blk unsupported">[${esc(block.type)} block]</div>`;
  }
}

function richText(node) {
  if (!node) return "";
  if (typeof node.text === "string") return node.text;
  return (node.elements || []).map(richText).join("");
}

function renderBlocks(blocks, modal) {
  return (blocks || []).map((b) => renderBlock(b, modal)).join("");
}

// -- messages --------------------------------------------------------------------------

// Replies anyone can see, and those only this person was shown (a mention's private
// answer lives in the thread of the message that mentioned the bot).
function replyCount(message) {
  const s = app.state;
  const shown = s.messages.filter((m) => m.channel === message.channel && m.thread_ts === message.ts);
  const mine = s.ephemerals.filter((e) => e.channel === message.channel && e.thread_ts === message.ts
    && !app.dismissed.has(e.ts));
  return shown.length + mine.length;
}

function renderFiles(files) {
  if (!files || !files.length) return "";
  const items = files.map((f) => {
    const url = `/files/${encodeURIComponent(f.id)}`;
    if (/\.(png|jpe?g|gif|svg|webp)$/i.test(f.name || "")) {
      return `<a href="${url}" target="_blank" data-enlarge="${url}" title="Click to see it larger">`
        + `<img src="${url}" alt="${esc(f.title || f.name)}"></a>`;
    }
    return `<div><a href="${url}" target="_blank">📄 ${esc(f.title || f.name)}</a></div>`;
  });
  return `<div class="files">${items.join("")}</div>`;
}

function renderMessage(m, { inThread }) {
  const bot = app.state.bot && m.user === app.state.bot.id;
  const name = personName(m.user);
  const content = m.blocks && m.blocks.length ? renderBlocks(m.blocks) : `<div class="text">${mrkdwn(m.text)}</div>`;
  const edited = m.edited ? ' <span class="edited">(edited)</span>' : "";
  let replies = "";
  if (!inThread && !m.thread_ts) {
    const n = replyCount(m);
    if (n) replies = `<button type="button" class="replies" data-open-thread="${esc(m.ts)}">${n} ${n === 1 ? "reply" : "replies"}</button>`;
  }
  return `<div class="message" data-ts="${esc(m.ts)}" data-channel="${esc(m.channel)}" data-ephemeral="false">`
    + `<div class="avatar${bot ? " bot" : ""}">${esc(name.slice(0, 1))}</div>`
    + `<div class="msg-body"><div class="meta"><span class="author">${esc(name)}</span>`
    + `${bot ? '<span class="badge">APP</span>' : ""}${clock(m.ts)}${edited}</div>`
    + `${content}${renderFiles(m.files)}${replies}</div></div>`;
}

function renderEphemeral(e) {
  const content = e.blocks && e.blocks.length ? renderBlocks(e.blocks) : `<div class="text">${mrkdwn(e.text)}</div>`;
  return `<div class="message ephemeral" data-ts="${esc(e.ts)}" data-channel="${esc(e.channel || "")}" data-ephemeral="true">`
    + '<div class="avatar bot">A</div><div class="msg-body">'
    + '<div class="only-you">👁 Only visible to you · '
    + `<button type="button" class="dismiss" data-dismiss="${esc(e.ts)}">Dismiss</button></div>`
    + `<div class="meta"><span class="author">Agentbot</span><span class="badge">APP</span>${clock(e.ts)}</div>`
    + `${content}</div></div>`;
}

function byTs(a, b) {
  return parseFloat(a.ts) - parseFloat(b.ts);
}

function renderList(container, items) {
  const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
  container.innerHTML = items.length ? items.map((i) => i.html).join("") : '<div class="empty">Nothing here yet. Type <code>/agent help</code> below.</div>';
  if (nearBottom) container.scrollTop = container.scrollHeight;
}

function render() {
  const s = app.state;
  if (!s) return;
  if (!app.channel || !s.channels.some((c) => c.id === app.channel)) app.channel = s.channels[0].id;

  const select = document.getElementById("user");
  if (select.options.length !== s.people.length) {
    select.innerHTML = s.people.map((p) => `<option value="${esc(p.id)}">${esc(p.name)} (${esc(p.title)})</option>`).join("");
  }
  select.value = app.me;

  document.getElementById("channels").innerHTML = s.channels.map((c) => {
    const count = s.messages.filter((m) => m.channel === c.id && !m.thread_ts).length;
    const active = c.id === app.channel && !app.home ? " active" : "";
    return `<li><button type="button" class="channel${active}" data-channel="${esc(c.id)}"># ${esc(c.name)}${count ? ` <small>(${count})</small>` : ""}</button></li>`;
  }).join("");
  document.getElementById("notes").innerHTML = Object.values(s.notes || {})
    .map((note) => `<li>${esc(note)}</li>`).join("");
  document.getElementById("channel-header").textContent = `# ${channelName(app.channel)}`;
  document.getElementById("composer").placeholder = `Message #${channelName(app.channel)} — try /agent help or @agentbot help`;

  const visible = (e) => !app.dismissed.has(e.ts);
  const top = s.messages.filter((m) => m.channel === app.channel && !m.thread_ts)
    .map((m) => ({ ts: m.ts, html: renderMessage(m, { inThread: false }) }));
  const mine = s.ephemerals.filter((e) => e.channel === app.channel && !e.thread_ts && visible(e))
    .map((e) => ({ ts: e.ts, html: renderEphemeral(e) }));
  renderList(document.getElementById("messages"), top.concat(mine).sort(byTs));
  renderHome();

  const pane = document.getElementById("thread-pane");
  if (app.thread) {
    const root = s.messages.find((m) => m.channel === app.thread.channel && m.ts === app.thread.ts);
    if (!root) {
      app.thread = null;
    } else {
      const replies = s.messages.filter((m) => m.channel === root.channel && m.thread_ts === root.ts)
        .map((m) => ({ ts: m.ts, html: renderMessage(m, { inThread: true }) }));
      const whispers = s.ephemerals.filter((e) => e.thread_ts === root.ts && visible(e))
        .map((e) => ({ ts: e.ts, html: renderEphemeral(e) }));
      const items = [{ ts: root.ts, html: renderMessage(root, { inThread: true }) }].concat(replies.concat(whispers).sort(byTs));
      renderList(document.getElementById("thread-messages"), items);
    }
  }
  pane.hidden = !app.thread;
  renderModal();
}

// The Home tab: the view the bot last published for this person (views.publish).
function renderHome() {
  const s = app.state;
  document.getElementById("open-home").classList.toggle("active", app.home);
  document.getElementById("home").hidden = !app.home;
  document.getElementById("messages").hidden = app.home;
  document.getElementById("composer-form").hidden = app.home;
  if (!app.home) return;
  document.getElementById("channel-header").textContent = "Agentbot · Home";
  const html = s.home
    ? renderBlocks(s.home.blocks)
    : '<div class="empty">Opening your Home… (the bot publishes it with views.publish)</div>';
  const pane = document.getElementById("home");
  if (pane.dataset.rendered !== html) {
    pane.innerHTML = html;
    pane.dataset.rendered = html;
  }
}

async function openHome() {
  app.home = true;
  app.thread = null;
  render();
  await post("/ui/home", {});
}

// -- modals ----------------------------------------------------------------------------

function renderModal() {
  const root = document.getElementById("modal-root");
  const modal = (app.state.modals || [])[0];
  const key = modal ? `${modal.id}|${JSON.stringify(modal.errors)}` : null;
  if (key === app.modalKey) return;
  const typed = {};
  root.querySelectorAll("[data-block-id][data-action-id]").forEach((el) => { typed[el.id] = el.value; });
  app.modalKey = key;
  if (!modal) {
    root.innerHTML = "";
    return;
  }
  const view = modal.view;
  const general = modal.errors[""] ? `<div class="error">${esc(modal.errors[""])}</div>` : "";
  root.innerHTML = `<div class="overlay"><form class="modal" id="modal" data-view-id="${esc(modal.id)}">`
    + `<header>${textObject(view.title)}</header>`
    + `<div class="modal-body">${renderBlocks(view.blocks, modal)}${general}</div>`
    + `<footer><button type="button" class="btn" id="modal-close">${textObject(view.close || { type: "plain_text", text: "Cancel" })}</button>`
    + (view.submit ? `<button type="submit" class="btn primary" id="modal-submit">${textObject(view.submit)}</button>` : "")
    + "</footer></form></div>";
  Object.entries(typed).forEach(([id, value]) => {
    const el = document.getElementById(id);
    if (el) el.value = value;
  });
  const first = root.querySelector("textarea, input");
  if (first) first.focus();
}

// -- talking to the server -------------------------------------------------------------

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: app.me, ...body }),
  });
  const data = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
  if (!data.ok) toast(data.error || "that did not work");
  return data;
}

function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

async function pollLoop() {
  for (;;) {
    const me = app.me;
    const controller = new AbortController();
    app.poll = controller;
    try {
      const url = `/ui/state?user=${encodeURIComponent(me)}&since=${app.version}`;
      const response = await fetch(url, { signal: controller.signal });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || response.status);
      if (me !== app.me) continue;
      app.state = data;
      app.version = data.version;
      setConnection(true);
      render();
    } catch (err) {
      if (controller.signal.aborted) continue;
      setConnection(false);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function setConnection(up) {
  const el = document.getElementById("connection");
  el.textContent = up ? "connected to the sandbox" : "sandbox unreachable — is agentbot dev running?";
  el.classList.toggle("down", !up);
}

function switchUser(id) {
  app.me = id;
  localStorage.setItem("agentbot-sandbox-user", id);
  app.version = -1;
  app.modalKey = null;
  if (app.poll) app.poll.abort();
  // Slack sends app_home_opened for whoever looks at the tab.
  if (app.home) post("/ui/home", {});
}

async function send(textarea, threadTs) {
  const text = textarea.value.trim();
  if (!text) return;
  textarea.value = "";
  if (text.startsWith("/")) {
    const command = text.split(/\s/, 1)[0];
    if (command !== "/agent") {
      toast(`${command} is not a valid command. In the sandbox, only /agent is installed.`);
      return;
    }
    await post("/ui/command", { channel: threadTs ? app.thread.channel : app.channel, text });
    return;
  }
  // A plain message; the fake Slack turns `@agentbot` into the bot's mention and, as
  // Slack does, delivers it to the app as an app_mention event.
  await post("/ui/message", { channel: threadTs ? app.thread.channel : app.channel, text, thread_ts: threadTs || null });
}

// -- events ----------------------------------------------------------------------------

function wire() {
  document.getElementById("user").addEventListener("change", (e) => switchUser(e.target.value));

  document.getElementById("composer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    send(document.getElementById("composer"), null);
  });
  document.getElementById("thread-form").addEventListener("submit", (e) => {
    e.preventDefault();
    send(document.getElementById("thread-composer"), app.thread && app.thread.ts);
  });
  for (const id of ["composer", "thread-composer"]) {
    document.getElementById(id).addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        e.target.form.requestSubmit();
      }
    });
  }
  document.getElementById("close-thread").addEventListener("click", () => {
    app.thread = null;
    render();
  });

  document.addEventListener("click", (e) => {
    const link = e.target.closest("a[data-enlarge]");
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    enlarge(link.dataset.enlarge, link.querySelector("img").alt);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeEnlarged();
  });

  document.addEventListener("click", async (e) => {
    const target = e.target.closest("button");
    if (!target) return;
    if (target.dataset.home) {
      await openHome();
    } else if (target.dataset.channel && target.classList.contains("channel")) {
      app.channel = target.dataset.channel;
      app.home = false;
      app.thread = null;
      render();
    } else if (target.dataset.suggest) {
      const composer = document.getElementById("composer");
      composer.value = target.dataset.suggest;
      composer.focus();
    } else if (target.dataset.openThread) {
      const message = target.closest(".message");
      app.thread = { channel: message.dataset.channel, ts: target.dataset.openThread };
      render();
    } else if (target.dataset.dismiss) {
      app.dismissed.add(target.dataset.dismiss);
      render();
    } else if (target.id === "modal-close") {
      await post("/ui/close", { view_id: document.getElementById("modal").dataset.viewId });
    } else if (target.dataset.actionId !== undefined && target.classList.contains("btn")) {
      await clickButton(target);
    }
  });

  document.getElementById("modal-root").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const values = {};
    form.querySelectorAll("[data-block-id][data-action-id]").forEach((el) => {
      values[el.dataset.blockId] = { ...(values[el.dataset.blockId] || {}), [el.dataset.actionId]: el.value };
    });
    const submit = document.getElementById("modal-submit");
    if (submit) submit.disabled = true;
    await post("/ui/submit", { view_id: form.dataset.viewId, values });
    if (submit) submit.disabled = false;
  });
}

// An image seen larger, over the page, as Slack opens one; a click or Escape closes it.
function enlarge(url, alt) {
  closeEnlarged();
  const overlay = document.createElement("div");
  overlay.className = "overlay lightbox";
  overlay.id = "lightbox";
  overlay.innerHTML = `<figure><img src="${esc(url)}" alt="${esc(alt)}"><figcaption>${esc(alt)} · `
    + `<a href="${esc(url)}" target="_blank">open in a new tab</a></figcaption></figure>`;
  overlay.addEventListener("click", (e) => {
    if (!e.target.closest("a")) closeEnlarged();
  });
  document.body.appendChild(overlay);
}

function closeEnlarged() {
  const open = document.getElementById("lightbox");
  if (open) open.remove();
}

async function clickButton(button) {
  if (button.dataset.confirm) {
    const confirm = JSON.parse(button.dataset.confirm);
    const question = [confirm.title && confirm.title.text, confirm.text && confirm.text.text].filter(Boolean).join("\n\n");
    if (!window.confirm(question || "Are you sure?")) return;
  }
  if (button.dataset.url) window.open(button.dataset.url, "_blank", "noopener");
  button.disabled = true;
  if (button.closest("[data-home]")) {
    try {
      await post("/ui/home_click", {
        action_id: button.dataset.actionId,
        block_id: button.dataset.blockId || null,
      });
    } finally {
      button.disabled = false;
    }
    return;
  }
  const message = button.closest(".message");
  try {
    await post("/ui/click", {
      channel: message.dataset.channel,
      ts: message.dataset.ts,
      action_id: button.dataset.actionId,
      block_id: button.dataset.blockId || null,
    });
  } finally {
    button.disabled = false;
  }
}

async function start() {
  const directory = await fetch("/ui/people").then((r) => r.json()).catch(() => ({ people: [] }));
  const ids = (directory.people || []).map((p) => p.id);
  const asked = new URLSearchParams(location.search).get("user");
  const saved = localStorage.getItem("agentbot-sandbox-user");
  app.me = [asked, saved].find((id) => id && ids.includes(id)) || ids[0];
  wire();
  pollLoop();
}

start();
