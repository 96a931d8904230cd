/*
 * A tiny, safe Markdown renderer for the browser chat.
 *
 * It builds DOM nodes and sets only textContent and (http/https/mailto) href, never
 * innerHTML, so model output cannot inject markup. It knows what Claude writes most:
 * fenced code blocks, headings, bullet and numbered lists, paragraphs with line breaks,
 * `inline code`, **bold**, *italic* / _italic_ and [links](https://…). Anything else is
 * shown as the text it is. An unclosed fence (a reply still streaming) runs to the end.
 */
(function () {
  "use strict";

  const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
  const NUMBERED = /^\s{0,3}\d{1,9}[.)]\s+(.*)$/;
  // One inline token: code span, bold, italic, or link.
  const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*\n]+?)\*\*|__([^_\n]+?)__|\*([^*\s][^*\n]*?)\*|(?<![\w])_([^_\s][^_\n]*?)_(?![\w])|\[([^\]\n]+)\]\(([^)\s]+)\)/g;
  const SAFE_URL = /^(https?:\/\/|mailto:)/i;

  function el(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function inline(parent, text) {
    // A fresh matcher per call: the calls nest (bold inside a link), and a shared global
    // regex would have its position moved under the outer loop.
    const matcher = new RegExp(INLINE.source, "g");
    let last = 0;
    for (let match = matcher.exec(text); match; match = matcher.exec(text)) {
      if (match.index > last) parent.append(text.slice(last, match.index));
      if (match[2] !== undefined) {
        const code = el("code");
        code.textContent = match[2].replace(/^ (.*) $/, "$1");
        parent.append(code);
      } else if (match[3] !== undefined || match[4] !== undefined) {
        const strong = el("strong");
        inline(strong, match[3] !== undefined ? match[3] : match[4]);
        parent.append(strong);
      } else if (match[5] !== undefined || match[6] !== undefined) {
        const em = el("em");
        inline(em, match[5] !== undefined ? match[5] : match[6]);
        parent.append(em);
      } else if (SAFE_URL.test(match[8])) {
        const link = el("a");
        link.href = match[8];
        link.rel = "noopener noreferrer nofollow";
        link.target = "_blank";
        inline(link, match[7]);
        parent.append(link);
      } else {
        parent.append(match[0]);
      }
      last = matcher.lastIndex;
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  function paragraph(lines) {
    const p = el("p");
    lines.forEach(function (line, index) {
      if (index > 0) p.append(el("br"));
      inline(p, line);
    });
    return p;
  }

  function list(lines, ordered) {
    const node = el(ordered ? "ol" : "ul");
    const pattern = ordered ? NUMBERED : BULLET;
    let item = null;
    lines.forEach(function (line) {
      const match = pattern.exec(line);
      if (match || !item) {
        item = el("li");
        node.append(item);
        inline(item, match ? match[1] : line.trim());
      } else {
        item.append(el("br"));
        inline(item, line.trim());
      }
    });
    return node;
  }

  // A run of non-blank, non-fence lines: headings, lists and paragraphs. An indented line
  // right after a list item continues that item.
  function block(lines, out) {
    let kind = null;
    let run = [];
    const flush = function () {
      if (kind === "ul") out.append(list(run, false));
      else if (kind === "ol") out.append(list(run, true));
      else if (run.length) out.append(paragraph(run));
      kind = null;
      run = [];
    };
    lines.forEach(function (line) {
      const heading = HEADING.exec(line);
      if (heading) {
        flush();
        const h = el("h" + Math.min(6, heading[1].length + 2), "md-heading");
        inline(h, heading[2]);
        out.append(h);
        return;
      }
      let lineKind = BULLET.test(line) ? "ul" : NUMBERED.test(line) ? "ol" : "p";
      if (lineKind === "p" && kind !== "p" && kind !== null && /^\s+\S/.test(line)) lineKind = kind;
      if (lineKind !== kind) flush();
      kind = lineKind;
      run.push(line);
    });
    flush();
  }

  function render(text) {
    const out = document.createDocumentFragment();
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    let prose = [];
    let i = 0;
    const flushProse = function () {
      block(prose, out);
      prose = [];
    };
    while (i < lines.length) {
      const fence = FENCE.exec(lines[i]);
      if (fence) {
        flushProse();
        const marker = fence[1];
        const code = [];
        i += 1;
        while (i < lines.length && lines[i].trim() !== marker) {
          code.push(lines[i]);
          i += 1;
        }
        const pre = el("pre");
        const codeEl = el("code");
        if (fence[2]) codeEl.dataset.language = fence[2];
        codeEl.textContent = code.join("\n");
        pre.append(codeEl);
        out.append(pre);
      } else if (!lines[i].trim()) {
        flushProse();
      } else {
        prose.push(lines[i]);
      }
      i += 1;
    }
    flushProse();
    return out;
  }

  window.ChatMarkdown = { render: render };
})();
