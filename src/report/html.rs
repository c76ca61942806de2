//! A self-contained HTML report: sections of text, figures (PNG inlined as base64, SVG inlined
//! as markup after [`sanitize_svg`]), tables and callouts, with a table of contents. It opens
//! from disk with no network and no external files.

use base64::Engine;

use super::svg::sanitize_svg;

/// An image embedded in the report.
#[derive(Clone, Debug)]
pub enum Picture {
    /// PNG bytes.
    Png(Vec<u8>),
    /// SVG markup; only what [`sanitize_svg`] keeps of it reaches the HTML.
    Svg(String),
}

/// A captioned figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The picture.
    pub picture: Picture,
    /// What it shows and how to read it.
    pub caption: String,
    /// Display width in CSS pixels (natural size if `None`).
    pub width: Option<u32>,
}

/// Severity of a callout box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Neutral information.
    Info,
    /// A finding the reader must not miss (e.g. a shortcut).
    Warning,
    /// A passed check.
    Good,
}

/// One element of a section.
#[derive(Clone, Debug)]
pub enum Block {
    /// A paragraph of plain text (HTML-escaped).
    Text(String),
    /// A highlighted box with a title and text.
    Callout {
        /// Colour/severity.
        tone: Tone,
        /// Bold first line.
        title: String,
        /// Body text.
        text: String,
    },
    /// One figure.
    Figure(Figure),
    /// Figures side by side (e.g. a colour bar beside a grid).
    Row(Vec<Figure>),
    /// A grid of small images: row labels × column labels.
    Grid {
        /// Column headings.
        columns: Vec<String>,
        /// Row label and one picture per column (`None` leaves a cell empty).
        rows: Vec<(String, Vec<Option<Picture>>)>,
        /// Caption under the grid.
        caption: String,
        /// Cell width in CSS pixels.
        cell: u32,
    },
    /// A table with a caption; cells are plain text.
    Table {
        /// What the table lists.
        caption: String,
        /// Column headings.
        headers: Vec<String>,
        /// Rows of cells.
        rows: Vec<Vec<String>>,
    },
    /// Key–value pairs (e.g. parameters of a run).
    Facts(Vec<(String, String)>),
    /// A two-column table of names and values with a caption (e.g. a study's conventions).
    Pairs {
        /// What the pairs are.
        caption: String,
        /// `(name, value)` rows.
        rows: Vec<(String, String)>,
    },
    /// Preformatted text (commands, versions).
    Code(String),
    /// A bulleted list of plain-text items.
    List(Vec<String>),
}

/// A titled section with an anchor.
#[derive(Clone, Debug)]
pub struct Section {
    /// Anchor id (letters, digits, dashes).
    pub id: String,
    /// Heading.
    pub title: String,
    /// Content.
    pub blocks: Vec<Block>,
}

impl Section {
    /// An empty section.
    pub fn new(id: &str, title: &str) -> Self {
        Section {
            id: id.to_string(),
            title: title.to_string(),
            blocks: Vec::new(),
        }
    }

    /// Appends a block (builder style).
    pub fn with(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    /// Appends a block.
    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }
}

/// The whole report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Page title.
    pub title: String,
    /// Line under the title (data set, date, …).
    pub subtitle: String,
    /// Sections in order.
    pub sections: Vec<Section>,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn picture_html(p: &Picture, width: Option<u32>, alt: &str) -> String {
    let style = width
        .map(|w| format!(" style=\"width:{w}px\""))
        .unwrap_or_default();
    match p {
        Picture::Png(bytes) => format!(
            "<img{style} alt=\"{}\" src=\"data:image/png;base64,{}\">",
            escape(alt),
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
        // Inline SVG scales with the container; the wrapper fixes its width. Every SVG goes
        // through the sanitiser, whoever made it: the HTML is shared with other people.
        Picture::Svg(svg) => match sanitize_svg(svg) {
            Ok(clean) => format!("<div class=\"svg\"{style}>{clean}</div>"),
            Err(why) => format!(
                "<p class=\"omitted\">Figure omitted: its SVG could not be read safely ({}).</p>",
                escape(&why)
            ),
        },
    }
}

fn figure_html(f: &Figure) -> String {
    format!(
        "<figure>{}<figcaption>{}</figcaption></figure>",
        picture_html(&f.picture, f.width, &f.caption),
        escape(&f.caption)
    )
}

fn block_html(b: &Block) -> String {
    match b {
        Block::Text(t) => format!("<p>{}</p>", escape(t)),
        Block::List(items) => {
            let lis: String = items
                .iter()
                .map(|i| format!("<li>{}</li>", escape(i)))
                .collect();
            format!("<ul class=\"findings\">{lis}</ul>")
        }
        Block::Callout { tone, title, text } => {
            let class = match tone {
                Tone::Info => "info",
                Tone::Warning => "warning",
                Tone::Good => "good",
            };
            format!(
                "<div class=\"callout {class}\"><strong>{}</strong><p>{}</p></div>",
                escape(title),
                escape(text)
            )
        }
        Block::Figure(f) => figure_html(f),
        Block::Row(figs) => format!(
            "<div class=\"row\">{}</div>",
            figs.iter().map(figure_html).collect::<String>()
        ),
        Block::Grid {
            columns,
            rows,
            caption,
            cell,
        } => {
            let mut h = String::from("<figure><table class=\"grid\"><thead><tr><th></th>");
            for c in columns {
                h.push_str(&format!("<th>{}</th>", escape(c)));
            }
            h.push_str("</tr></thead><tbody>");
            for (label, pics) in rows {
                h.push_str(&format!(
                    "<tr><th class=\"rowlabel\">{}</th>",
                    escape(label)
                ));
                for p in pics {
                    match p {
                        Some(p) => {
                            h.push_str(&format!("<td>{}</td>", picture_html(p, Some(*cell), label)))
                        }
                        None => h.push_str("<td></td>"),
                    }
                }
                h.push_str("</tr>");
            }
            h.push_str(&format!(
                "</tbody></table><figcaption>{}</figcaption></figure>",
                escape(caption)
            ));
            h
        }
        Block::Table {
            caption,
            headers,
            rows,
        } => {
            let mut h = format!(
                "<table class=\"data\"><caption>{}</caption><thead><tr>",
                escape(caption)
            );
            for c in headers {
                h.push_str(&format!("<th>{}</th>", escape(c)));
            }
            h.push_str("</tr></thead><tbody>");
            for r in rows {
                h.push_str("<tr>");
                for c in r {
                    h.push_str(&format!("<td>{}</td>", escape(c)));
                }
                h.push_str("</tr>");
            }
            h.push_str("</tbody></table>");
            h
        }
        Block::Facts(kv) => {
            let mut h = String::from("<dl class=\"facts\">");
            for (k, v) in kv {
                h.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)));
            }
            h.push_str("</dl>");
            h
        }
        Block::Pairs { caption, rows } => {
            let mut h = format!(
                "<table class=\"data pairs\"><caption>{}</caption><thead><tr><th>name</th>\
                 <th>value</th></tr></thead><tbody>",
                escape(caption)
            );
            for (name, value) in rows {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td></tr>",
                    escape(name),
                    escape(value)
                ));
            }
            h.push_str("</tbody></table>");
            h
        }
        Block::Code(t) => format!("<pre><code>{}</code></pre>", escape(t)),
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#1d2430;background:#f6f7f9;line-height:1.45}
header{background:#1f3b57;color:#fff;padding:22px 40px}
header h1{margin:0 0 4px 0;font-size:26px}
header p{margin:0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #dde2e8;padding:8px 40px;position:sticky;top:0;z-index:2}
nav a{margin-right:18px;color:#1f3b57;text-decoration:none;font-size:14px}
main{max-width:1180px;margin:0 auto;padding:10px 40px 60px}
section{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:8px 24px 18px;margin:18px 0}
h2{font-size:20px;border-bottom:2px solid #e4e8ee;padding-bottom:6px}
figure{margin:14px 0;display:inline-block;vertical-align:top}
figure img,.svg svg{max-width:100%;height:auto;display:block}
.svg{display:block}
figcaption{font-size:13px;color:#4a5566;max-width:900px;margin-top:6px}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.row figure{flex:0 1 auto}
table.grid{border-collapse:collapse}
table.grid th{font-size:12px;font-weight:600;padding:4px;text-align:center}
table.grid th.rowlabel{text-align:right;max-width:140px;overflow-wrap:normal;word-break:normal;hyphens:manual}
table.grid td{padding:2px}
table.grid td img{display:block;image-rendering:pixelated}
table.data{border-collapse:collapse;margin:12px 0;font-size:14px}
table.data caption{caption-side:top;text-align:left;font-size:13px;color:#4a5566;padding-bottom:6px}
table.data th,table.data td{border:1px solid #dde2e8;padding:4px 10px;text-align:right}
table.data th{background:#f0f3f7}
table.data td:first-child,table.data th:first-child{text-align:left}
table.pairs th,table.pairs td{text-align:left;vertical-align:top}
table.pairs td:last-child{max-width:640px}
table.pairs td:first-child{font-family:ui-monospace,monospace;white-space:nowrap}
.callout{border-left:5px solid #3b7dd8;background:#eef4fc;padding:10px 16px;margin:12px 0;border-radius:4px}
.callout.warning{border-color:#d8643b;background:#fdf1ec}
.callout.good{border-color:#3ba55c;background:#edf8f0}
.callout p{margin:4px 0 0 0}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:4px 18px;font-size:14px}
dl.facts dt{color:#4a5566}
dl.facts dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
ul.findings{font-size:14px;line-height:1.5;margin:4px 0 12px 0}
pre{background:#f0f3f7;padding:10px;border-radius:4px;overflow-x:auto;font-size:13px}
";

/// After loading, records on `<body>` how many pictures decoded and how many did not
/// (`data-images-ok`, `data-images-broken`), so a headless browser's DOM dump shows whether the
/// report rendered completely. `report.html?only=ID` shows only the section `ID` (for printing
/// or screenshotting one section). Neither changes what a reader sees by default.
const LOAD_CHECK: &str = "<script>(function(){\
var only=new URLSearchParams(location.search).get('only');\
if(only){document.querySelectorAll('main>section').forEach(function(s){\
if(s.id!==only){s.style.display='none'}})}})();\
window.addEventListener('load',function(){\
var ok=0,bad=0;document.querySelectorAll('img').forEach(function(i){\
if(i.complete&&i.naturalWidth>0){ok++}else{bad++}});\
document.body.setAttribute('data-images-ok',ok);\
document.body.setAttribute('data-images-broken',bad);\
document.body.setAttribute('data-svgs',document.querySelectorAll('svg').length);});</script>";

impl Report {
    /// Renders the report as one HTML document.
    pub fn to_html(&self) -> String {
        let mut h = String::from("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
        h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        h.push_str(&format!(
            "<title>{}</title><style>{STYLE}</style></head><body>",
            escape(&self.title)
        ));
        h.push_str(&format!(
            "<header><h1>{}</h1><p>{}</p></header><nav>",
            escape(&self.title),
            escape(&self.subtitle)
        ));
        for s in &self.sections {
            h.push_str(&format!(
                "<a href=\"#{}\">{}</a>",
                escape(&s.id),
                escape(&s.title)
            ));
        }
        h.push_str("</nav><main>");
        for s in &self.sections {
            h.push_str(&format!(
                "<section id=\"{}\"><h2>{}</h2>",
                escape(&s.id),
                escape(&s.title)
            ));
            for b in &s.blocks {
                h.push_str(&block_html(b));
            }
            h.push_str("</section>");
        }
        h.push_str("</main>");
        h.push_str(LOAD_CHECK);
        h.push_str("</body></html>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_inlines_pictures() {
        let report = Report {
            title: "A <b> & \"c\"".into(),
            subtitle: String::new(),
            sections: vec![
                Section::new("models", "Models")
                    .with(Block::Text("x < y".into()))
                    .with(Block::Figure(Figure {
                        picture: Picture::Png(vec![1, 2, 3]),
                        caption: "c".into(),
                        width: None,
                    }))
                    .with(Block::Figure(Figure {
                        picture: Picture::Svg(
                            "<?xml version=\"1.0\"?><svg width=\"1\"></svg>".into(),
                        ),
                        caption: "s".into(),
                        width: Some(200),
                    })),
            ],
        };
        let html = report.to_html();
        assert!(html.contains("<title>A &lt;b&gt; &amp; &quot;c&quot;</title>"));
        assert!(html.contains("<p>x &lt; y</p>"));
        assert!(html.contains("data:image/png;base64,AQID"));
        assert!(
            html.contains("<div class=\"svg\" style=\"width:200px\"><svg width=\"1\"></svg></div>")
        );
        assert!(!html.contains("<?xml"));
        assert!(html.contains("<a href=\"#models\">Models</a>"));
    }
}
