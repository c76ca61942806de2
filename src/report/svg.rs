//! An allow-list sanitiser for SVG drawings inlined into the report. A report is sent to other
//! people, so an SVG from a run folder must not carry a script, an event handler or a reference
//! that makes the reader's browser fetch or open anything.
//!
//! The drawing is parsed and written anew from what the parse kept: only the elements and
//! attributes plotters' SVG backend emits (and a few plain shape relatives) survive, every
//! attribute value and every text is escaped again on output, and an element not on the list is
//! dropped with everything inside it (`<script>`, `<foreignObject>`, `<image>`, `<use>`, `<a>`,
//! `<style>`, …). Namespaced attributes (`xlink:href`), `href`, `style`, event handlers (`on*`)
//! and any value holding `url(`, a scheme (`:`) or a CSS escape (`\`) are dropped. Input that is
//! not well-formed, or declares its own entities, is refused as a whole.

use super::html::escape;

/// Elements kept: what plotters emits (`svg`, `rect`, `line`, `polyline`, `polygon`, `circle`,
/// `text`) and plain shapes and grouping that cannot reference anything.
const ELEMENTS: &[&str] = &[
    "svg", "g", "rect", "line", "polyline", "polygon", "circle", "ellipse", "path", "text",
    "tspan", "title", "desc",
];

/// Attributes kept: geometry, presentation and text layout.
const ATTRIBUTES: &[&str] = &[
    "width",
    "height",
    "viewBox",
    "preserveAspectRatio",
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "points",
    "d",
    "dx",
    "dy",
    "opacity",
    "fill",
    "fill-opacity",
    "fill-rule",
    "stroke",
    "stroke-width",
    "stroke-opacity",
    "stroke-dasharray",
    "stroke-linecap",
    "stroke-linejoin",
    "text-anchor",
    "dominant-baseline",
    "font-family",
    "font-size",
    "font-weight",
    "font-style",
    "transform",
];

/// The one namespace declaration kept (it names the SVG namespace; nothing is fetched).
const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

/// Deepest element nesting accepted (plotters nests two levels).
const MAX_DEPTH: usize = 256;

/// The drawing `text` rewritten with only allowed elements and attributes, or why it was
/// refused (not well-formed, no `<svg>` root, nested too deep, its own entities).
pub fn sanitize_svg(text: &str) -> Result<String, String> {
    let mut parser = Parser {
        rest: text,
        out: String::with_capacity(text.len()),
        open: Vec::new(),
        root_done: false,
    };
    parser.run()?;
    if !parser.root_done {
        return Err("no complete <svg> element".into());
    }
    Ok(parser.out)
}

struct Parser<'a> {
    rest: &'a str,
    out: String,
    /// Open elements: name and whether it (and all above it) are kept.
    open: Vec<(String, bool)>,
    root_done: bool,
}

/// One start tag: its name, attributes (values decoded) and whether it closes itself.
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
    empty: bool,
}

impl Parser<'_> {
    fn run(&mut self) -> Result<(), String> {
        while !self.rest.is_empty() && !self.root_done {
            if let Some(after) = self.rest.strip_prefix("<!--") {
                self.rest = skip_past(after, "-->")?;
            } else if let Some(after) = self.rest.strip_prefix("<?") {
                self.rest = skip_past(after, "?>")?;
            } else if let Some(after) = self.rest.strip_prefix("<![CDATA[") {
                let end = after.find("]]>").ok_or("unterminated CDATA")?;
                self.text(&after[..end]);
                self.rest = &after[end + 3..];
            } else if let Some(after) = self.rest.strip_prefix("<!") {
                self.rest = skip_declaration(after)?;
            } else if let Some(after) = self.rest.strip_prefix("</") {
                self.rest = after;
                self.end_tag()?;
            } else if let Some(after) = self.rest.strip_prefix('<') {
                self.rest = after;
                let tag = self.start_tag()?;
                self.open_element(tag)?;
            } else {
                let end = self.rest.find('<').unwrap_or(self.rest.len());
                let text = decode_entities(&self.rest[..end])?;
                self.text(&text);
                self.rest = &self.rest[end..];
            }
        }
        Ok(())
    }

    /// Whether content at the current position is kept (inside the root, no dropped ancestor).
    fn keeping(&self) -> bool {
        self.open.last().is_some_and(|(_, kept)| *kept)
    }

    fn text(&mut self, text: &str) {
        if self.keeping() {
            self.out.push_str(&escape(text));
        }
    }

    fn open_element(&mut self, tag: Tag) -> Result<(), String> {
        if self.open.is_empty() && tag.name != "svg" {
            return Err(format!("root element <{}> is not <svg>", tag.name));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err("elements nested too deep".into());
        }
        let kept = (self.open.is_empty() || self.keeping()) && ELEMENTS.contains(&&*tag.name);
        if kept {
            self.out.push('<');
            self.out.push_str(&tag.name);
            for (name, value) in &tag.attributes {
                if attribute_allowed(name, value) {
                    self.out.push_str(&format!(" {name}=\"{}\"", escape(value)));
                }
            }
            self.out.push_str(if tag.empty { "/>" } else { ">" });
        }
        if tag.empty {
            self.root_done = self.open.is_empty();
        } else {
            self.open.push((tag.name, kept));
        }
        Ok(())
    }

    fn end_tag(&mut self) -> Result<(), String> {
        let name = self.name();
        self.rest = self.rest.trim_start();
        self.rest = self
            .rest
            .strip_prefix('>')
            .ok_or_else(|| format!("malformed end tag </{name}"))?;
        let (open, kept) = self
            .open
            .pop()
            .ok_or_else(|| format!("end tag </{name}> without a start"))?;
        if open != name {
            return Err(format!("<{open}> closed by </{name}>"));
        }
        if kept {
            self.out.push_str(&format!("</{name}>"));
        }
        self.root_done = self.open.is_empty();
        Ok(())
    }

    /// Parses `name attr="value" … >` or `… />` after the `<`.
    fn start_tag(&mut self) -> Result<Tag, String> {
        let name = self.name();
        if name.is_empty() {
            return Err("a '<' that starts no element".into());
        }
        let mut attributes = Vec::new();
        loop {
            self.rest = self.rest.trim_start();
            if let Some(after) = self.rest.strip_prefix("/>") {
                self.rest = after;
                return Ok(Tag {
                    name,
                    attributes,
                    empty: true,
                });
            }
            if let Some(after) = self.rest.strip_prefix('>') {
                self.rest = after;
                return Ok(Tag {
                    name,
                    attributes,
                    empty: false,
                });
            }
            let attribute = self.name();
            if attribute.is_empty() {
                return Err(format!("malformed attribute in <{name}>"));
            }
            self.rest = self.rest.trim_start();
            self.rest = self
                .rest
                .strip_prefix('=')
                .ok_or_else(|| format!("attribute {attribute} of <{name}> has no value"))?
                .trim_start();
            let quote = self
                .rest
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
                .ok_or_else(|| format!("attribute {attribute} of <{name}> is not quoted"))?;
            let body = &self.rest[1..];
            let end = body
                .find(quote)
                .ok_or_else(|| format!("attribute {attribute} of <{name}> is not closed"))?;
            let value = decode_entities(&body[..end])?;
            if value.contains('<') {
                return Err(format!("'<' in attribute {attribute} of <{name}>"));
            }
            attributes.push((attribute, value));
            self.rest = &body[end + 1..];
        }
    }

    /// An element or attribute name at the current position (possibly empty).
    fn name(&mut self) -> String {
        let end = self
            .rest
            .find(|c: char| c.is_whitespace() || matches!(c, '=' | '/' | '>' | '<' | '"' | '\''))
            .unwrap_or(self.rest.len());
        let name = self.rest[..end].to_string();
        self.rest = &self.rest[end..];
        name
    }
}

/// Whether an attribute survives: on the list, and a value that references nothing. A value
/// with `url(`, a scheme's `:` or a CSS escape `\` could make the browser fetch something.
fn attribute_allowed(name: &str, value: &str) -> bool {
    if name == "xmlns" {
        return value == SVG_NAMESPACE;
    }
    if !ATTRIBUTES.contains(&name) {
        return false;
    }
    let compact: String = value
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    !compact.contains("url(") && !compact.contains([':', '\\', '@'])
}

/// What follows the end marker `end`.
fn skip_past<'a>(text: &'a str, end: &str) -> Result<&'a str, String> {
    text.find(end)
        .map(|i| &text[i + end.len()..])
        .ok_or_else(|| format!("unterminated markup (no '{end}')"))
}

/// Skips a `<!DOCTYPE …>`; one with an internal subset (its own entities) is refused.
fn skip_declaration(text: &str) -> Result<&str, String> {
    let end = text.find('>').ok_or("unterminated declaration")?;
    if text[..end].contains('[') {
        return Err("a DOCTYPE with its own declarations".into());
    }
    Ok(&text[end + 1..])
}

/// `text` with XML's five named entities and numeric references replaced by their characters.
fn decode_entities(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .filter(|&e| e <= 10)
            .ok_or("an '&' that starts no entity")?;
        let entity = &after[..end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => numeric_entity(entity).ok_or_else(|| format!("unknown entity &{entity};"))?,
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn numeric_entity(entity: &str) -> Option<char> {
    let code = if let Some(hex) = entity.strip_prefix("#x") {
        u32::from_str_radix(hex, 16).ok()?
    } else {
        entity.strip_prefix('#')?.parse().ok()?
    };
    char::from_u32(code).filter(|c| *c != '\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_plotters_draws() {
        let svg = "<svg width=\"60\" height=\"40\" viewBox=\"0 0 60 40\" \
                   xmlns=\"http://www.w3.org/2000/svg\">\n<rect x=\"0\" y=\"0\" width=\"60\" \
                   height=\"40\" opacity=\"1\" fill=\"#FFFFFF\" stroke=\"none\"/>\n<text x=\"3\" \
                   y=\"4\" dy=\"0.76em\" transform=\"rotate(270, 3, 4)\">a &lt; b</text>\n</svg>\n";
        assert_eq!(sanitize_svg(svg).unwrap(), svg.trim_end());
    }

    #[test]
    fn drops_scripts_handlers_and_references() {
        let svg = "<?xml version=\"1.0\"?><!DOCTYPE svg><svg onload=\"x()\" \
                   xmlns:xlink=\"http://www.w3.org/1999/xlink\"><script>a()</script>\
                   <foreignObject><p>f</p></foreignObject><use href=\"#a\"/>\
                   <rect fill=\"url(#g)\" style=\"background:url(http://e/)\" x=\"1\"/>\
                   <image xlink:href=\"http://e/x.png\"/><text>ok</text></svg>";
        assert_eq!(
            sanitize_svg(svg).unwrap(),
            "<svg><rect x=\"1\"/><text>ok</text></svg>"
        );
    }

    #[test]
    fn refuses_what_is_not_a_well_formed_svg() {
        for bad in [
            "<html><svg></svg></html>",
            "<svg><g></svg>",
            "<svg><rect x=1/></svg>",
            "<svg>&ext;</svg>",
            "<!DOCTYPE svg [<!ENTITY a \"b\">]><svg>&a;</svg>",
            "<svg",
            "plain text",
        ] {
            assert!(sanitize_svg(bad).is_err(), "{bad}");
        }
    }
}
