//! The pages of the review server, rendered on the server. Every text that comes from a file
//! or a rater (class and model names, rater names, tags) goes through [`escape`]; the script
//! and style are fixed strings served from the binary, and the page's content security policy
//! allows no other script.

use super::items::Item;

/// `text` safe inside HTML element content and quoted attribute values (the report's escaping).
pub use crate::report::html::escape;

/// `text` as one URL query value (RFC 3986 unreserved characters kept, the rest %-encoded).
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/review.css\"></head>\
         <body>{body}<script src=\"/review.js\"></script></body></html>\n",
        escape(title)
    )
}

/// The first page: who is rating.
pub fn start_page(run: &str, items: usize, blind: bool) -> String {
    let blind_note = if blind {
        "<p>Blind review: model and method are hidden and each rater sees the items in an order of their own.</p>"
    } else {
        ""
    };
    document(
        "relevance review",
        &format!(
            "<main class=\"start\"><h1>relevance review</h1>\
             <p>{items} explanations from <code>{}</code>.</p>{blind_note}\
             <form method=\"get\" action=\"/rate\"><label for=\"rater\">Your name</label> \
             <input id=\"rater\" name=\"rater\" maxlength=\"64\" required autofocus> \
             <button type=\"submit\">Start</button></form>\
             <p class=\"help\">Answers are saved under your name; you can stop and come back.</p></main>",
            escape(run)
        ),
    )
}

/// What the rating page says about the rater's previous answer.
pub struct LastAnswer {
    /// The answer.
    pub answer: String,
    /// Its tags.
    pub tags: String,
}

/// The page of one item for one rater.
pub struct RatePage<'a> {
    /// The rater.
    pub rater: &'a str,
    /// The item.
    pub item: &'a Item,
    /// 1-based position among the rater's items.
    pub position: usize,
    /// Number of items.
    pub total: usize,
    /// Hide model and method.
    pub blind: bool,
    /// The rater's previous answer.
    pub last: Option<LastAnswer>,
}

impl RatePage<'_> {
    /// The HTML.
    pub fn render(&self) -> String {
        let info = &self.item.info;
        let id = &info.id;
        let mut facts = Vec::new();
        if !self.blind {
            facts.push(("model", info.model.clone()));
            facts.push(("method", info.method.clone()));
        }
        facts.push(("class", info.class.clone()));
        if let Some(p) = info.prob {
            facts.push(("probability", format!("{:.1} %", 100.0 * p)));
        }
        let facts: String = facts
            .iter()
            .map(|(k, v)| format!("<dt>{k}</dt><dd id=\"fact-{k}\">{}</dd>", escape(v)))
            .collect();
        let input = match self.item.has_input() {
            true => format!(
                "<figure><div class=\"frame\"><img id=\"input\" class=\"clickable\" \
                 src=\"/item/{id}/input\" alt=\"input\"><div class=\"marker\" hidden></div></div>\
                 <figcaption>input</figcaption></figure>"
            ),
            false => String::new(),
        };
        let last = match &self.last {
            Some(l) if l.tags.is_empty() => format!("Saved: {}.", escape(&l.answer)),
            Some(l) => format!("Saved: {} — tags: {}.", escape(&l.answer), escape(&l.tags)),
            None => String::new(),
        };
        document(
            &format!("relevance review — {} of {}", self.position, self.total),
            &format!(
                "<header><span>relevance review</span><span id=\"who\">rater: {rater}</span>\
                 <span id=\"progress\">item {pos} of {total}</span></header>\
                 <main id=\"item\" data-item=\"{id}\" data-rater=\"{rater}\">\
                 <div class=\"pictures\">{input}\
                 <figure><div class=\"frame\"><img id=\"overlay\" class=\"clickable\" \
                 src=\"/item/{id}/overlay\" alt=\"explanation\"><div class=\"marker\" hidden></div></div>\
                 <figcaption>explanation</figcaption></figure>\
                 <figure id=\"rawfig\" hidden><div class=\"frame\"><img id=\"raw\" \
                 data-src=\"/item/{id}/map\" alt=\"raw map\"></div><figcaption>raw map</figcaption></figure>\
                 </div><dl class=\"facts\">{facts}</dl>\
                 <div class=\"answers\">\
                 <button data-answer=\"correct\"><kbd>C</kbd> correct</button>\
                 <button data-answer=\"partly\"><kbd>P</kbd> partly</button>\
                 <button data-answer=\"wrong\"><kbd>W</kbd> wrong</button>\
                 <button data-answer=\"unsure\"><kbd>U</kbd> unsure</button></div>\
                 <p><label for=\"tags\"><kbd>T</kbd> tags</label> <input id=\"tags\" maxlength=\"500\" \
                 placeholder=\"eye socket, skull edge, text marker\"></p>\
                 <p class=\"help\">Does the explanation point at the relevant structure? Click an \
                 image to mark where it should point (<kbd>Esc</kbd> clears), <kbd>M</kbd> shows the \
                 raw map, <kbd>Enter</kbd> leaves the tags box.</p>\
                 <p id=\"status\" role=\"status\">{last}</p></main>",
                rater = escape(self.rater),
                pos = self.position,
                total = self.total,
            ),
        )
    }
}

/// The page after a rater's last item.
pub fn done_page(rater: &str, total: usize) -> String {
    document(
        "relevance review — done",
        &format!(
            "<main class=\"start\"><h1>Thank you, {}</h1><p id=\"done\">All {total} explanations \
             are rated.</p></main>",
            escape(rater)
        ),
    )
}

/// A page for an error the visitor can act on.
pub fn error_page(message: &str) -> String {
    document(
        "relevance review — error",
        &format!(
            "<main class=\"start\"><h1>Cannot show this</h1><p id=\"error\">{}</p>\
             <p><a href=\"/\">Start page</a></p></main>",
            escape(message)
        ),
    )
}

/// The page's behaviour: answer keys, tags box, click marking, raw map on demand.
pub const SCRIPT: &str = r#""use strict";
(function () {
  const main = document.getElementById("item");
  if (!main) return;
  const shown = performance.now();
  const tags = document.getElementById("tags");
  const status = document.getElementById("status");
  const reference = document.getElementById("input") || document.getElementById("overlay");
  let click = null;
  let sending = false;

  function markAll() {
    document.querySelectorAll(".frame").forEach(function (frame) {
      const img = frame.querySelector("img");
      const marker = frame.querySelector(".marker");
      if (!marker) return;
      if (click === null || !reference.naturalWidth) { marker.hidden = true; return; }
      marker.hidden = false;
      marker.style.left = (100 * click[0] / reference.naturalWidth) + "%";
      marker.style.top = (100 * click[1] / reference.naturalHeight) + "%";
    });
  }
  document.querySelectorAll("img.clickable").forEach(function (img) {
    img.addEventListener("click", function (event) {
      const box = img.getBoundingClientRect();
      const fx = (event.clientX - box.left) / box.width;
      const fy = (event.clientY - box.top) / box.height;
      // Stored in the input picture's pixels, whichever picture was clicked.
      click = [fx * reference.naturalWidth, fy * reference.naturalHeight];
      markAll();
    });
  });

  function toggleRaw() {
    const fig = document.getElementById("rawfig");
    const raw = document.getElementById("raw");
    if (!raw.getAttribute("src")) raw.setAttribute("src", raw.dataset.src);
    fig.hidden = !fig.hidden;
  }

  function send(answer) {
    if (sending) return;
    sending = true;
    status.textContent = "Saving " + answer + "…";
    const body = {
      rater: main.dataset.rater,
      item: main.dataset.item,
      answer: answer,
      tags: tags.value,
      click: click,
      duration_ms: Math.round(performance.now() - shown)
    };
    fetch("/api/answer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) return response.text().then(function (t) { throw new Error(t); });
      window.location.reload();
    }).catch(function (error) {
      sending = false;
      status.textContent = "Not saved: " + error.message;
    });
  }

  document.querySelectorAll("button[data-answer]").forEach(function (button) {
    button.addEventListener("click", function () { send(button.dataset.answer); });
  });
  const keys = { c: "correct", p: "partly", w: "wrong", u: "unsure" };
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target === tags) {
      if (event.key === "Enter" || event.key === "Escape") { tags.blur(); event.preventDefault(); }
      return;
    }
    const key = event.key.toLowerCase();
    if (keys[key]) { event.preventDefault(); send(keys[key]); }
    else if (key === "t") { event.preventDefault(); tags.focus(); }
    else if (key === "m") { toggleRaw(); }
    else if (key === "escape") { click = null; markAll(); }
  });
})();
"#;

/// The page's look.
pub const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f6f4; color: #222; }
header { display: flex; gap: 2em; padding: .6em 1.2em; background: #1f2937; color: #fff; }
main { padding: 1em 1.2em; max-width: 1100px; }
main.start { max-width: 40em; }
.pictures { display: flex; gap: 1em; flex-wrap: wrap; }
figure { margin: 0; }
figcaption { text-align: center; color: #555; font-size: .9em; }
.frame { position: relative; display: inline-block; }
.frame img { width: 320px; image-rendering: pixelated; display: block; border: 1px solid #ccc; }
img.clickable { cursor: crosshair; }
.marker { position: absolute; width: 14px; height: 14px; margin: -9px 0 0 -9px;
  border: 2px solid #0f0; border-radius: 50%; box-shadow: 0 0 0 2px #000; pointer-events: none; }
.facts { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
.facts dt { color: #555; }
.answers { display: flex; gap: .6em; margin: 1em 0; }
.answers button { font-size: 1.05em; padding: .4em .9em; }
kbd { border: 1px solid #999; border-radius: 3px; padding: 0 .3em; background: #fff; color: #222; }
#tags { width: 30em; }
.help { color: #555; font-size: .9em; }
#status { font-weight: 600; }
";
