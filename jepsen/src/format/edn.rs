//! A small EDN reader: enough of the format for Jepsen/Knossos histories, with line numbers.
//!
//! Reads nil, booleans, integers, floats, strings, characters, keywords, symbols, lists,
//! vectors, maps, sets, tagged literals (`#inst "…"`, kept as `Tagged`), `;` comments and `#_`
//! discards. Commas are whitespace. Every form remembers the line it starts on so that the
//! history parser can point at it. Nesting is bounded (`MAX_DEPTH`) so hostile input cannot
//! overflow the stack.

const MAX_DEPTH: usize = 256;

/// An EDN form.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Char(char),
    Keyword(String),
    Symbol(String),
    List(Vec<Node>),
    Vector(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Set(Vec<Node>),
    Tagged(String, Box<Node>),
}

/// A form and the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) edn: Edn,
    pub(crate) line: usize,
}

/// Where the text stops being EDN, and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EdnError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Reads the single form `text` holds (whitespace and comments around it are fine).
/// `None` if the text holds no form at all.
pub(crate) fn read_one(text: &str) -> Result<Option<Node>, EdnError> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
    };
    let Some(node) = reader.next_form(0)? else {
        return Ok(None);
    };
    reader.skip_ignored(0)?;
    if reader.pos < reader.bytes.len() {
        return Err(reader.error("expected the end of the file after the history's one collection"));
    }
    Ok(Some(node))
}

struct Reader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
}

impl Reader<'_> {
    fn error(&self, message: impl Into<String>) -> EdnError {
        EdnError {
            line: self.line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    /// Skips whitespace, commas, comments and `#_` discarded forms.
    fn skip_ignored(&mut self, depth: usize) -> Result<(), EdnError> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                    self.bump();
                }
                b';' => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.bump();
                    }
                }
                b'#' if self.bytes.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    if self.next_form(depth + 1)?.is_none() {
                        return Err(self.error("expected a form after #_"));
                    }
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// The next form, or `None` at the end of the input or before a closing delimiter.
    fn next_form(&mut self, depth: usize) -> Result<Option<Node>, EdnError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("forms nested deeper than {MAX_DEPTH}")));
        }
        self.skip_ignored(depth)?;
        let line = self.line;
        let Some(b) = self.peek() else {
            return Ok(None);
        };
        let edn = match b {
            b')' | b']' | b'}' => return Ok(None),
            b'(' => Edn::List(self.sequence(b')', depth)?),
            b'[' => Edn::Vector(self.sequence(b']', depth)?),
            b'{' => self.map(depth)?,
            b'"' => Edn::Str(self.string()?),
            b'\\' => Edn::Char(self.character()?),
            b'#' => self.dispatch(depth)?,
            _ => self.atom()?,
        };
        Ok(Some(Node { edn, line }))
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Node>, EdnError> {
        let open_line = self.line;
        self.bump();
        let mut items = Vec::new();
        while let Some(node) = self.next_form(depth + 1)? {
            items.push(node);
        }
        match self.bump() {
            Some(b) if b == close => Ok(items),
            Some(b) => Err(self.error(format!(
                "expected '{}' to close the collection opened on line {open_line}, found '{}'",
                close as char, b as char
            ))),
            None => Err(self.error(format!(
                "expected '{}' to close the collection opened on line {open_line}, found the end of the file",
                close as char
            ))),
        }
    }

    fn map(&mut self, depth: usize) -> Result<Edn, EdnError> {
        let open_line = self.line;
        let items = self.sequence(b'}', depth)?;
        if items.len() % 2 != 0 {
            return Err(EdnError {
                line: open_line,
                message: "expected a map with an even number of forms (key value pairs)".into(),
            });
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            pairs.push((k, v));
        }
        Ok(Edn::Map(pairs))
    }

    fn dispatch(&mut self, depth: usize) -> Result<Edn, EdnError> {
        match self.bytes.get(self.pos + 1) {
            Some(b'{') => {
                self.pos += 1;
                Ok(Edn::Set(self.sequence(b'}', depth)?))
            }
            Some(b) if b.is_ascii_alphabetic() => {
                self.pos += 1;
                let tag = self.token().to_owned();
                let Some(inner) = self.next_form(depth + 1)? else {
                    return Err(self.error(format!("expected a form after the tag #{tag}")));
                };
                Ok(Edn::Tagged(tag, Box::new(inner)))
            }
            _ => Err(self.error("expected #{, #_ or a tag after '#'")),
        }
    }

    fn string(&mut self) -> Result<String, EdnError> {
        let open_line = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self.peek().is_some_and(|b| b != b'"' && b != b'\\') {
                self.bump();
            }
            out.push_str(&self.text[start..self.pos]);
            match self.bump() {
                Some(b'"') => return Ok(out),
                Some(_) => out.push(self.escape()?),
                None => {
                    return Err(EdnError {
                        line: open_line,
                        message: "expected a closing '\"' for the string starting here".into(),
                    });
                }
            }
        }
    }

    fn escape(&mut self) -> Result<char, EdnError> {
        match self.bump() {
            Some(b'n') => Ok('\n'),
            Some(b't') => Ok('\t'),
            Some(b'r') => Ok('\r'),
            Some(b'"') => Ok('"'),
            Some(b'\\') => Ok('\\'),
            Some(b'u') => self.unicode_escape(),
            _ => Err(self.error("expected an escape: \\n \\t \\r \\\" \\\\ or \\uXXXX")),
        }
    }

    fn unicode_escape(&mut self) -> Result<char, EdnError> {
        let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
        let code = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
        let c = code.ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        self.pos += 4;
        Ok(c)
    }

    fn character(&mut self) -> Result<char, EdnError> {
        self.pos += 1;
        let token = self.token().to_owned();
        match token.as_str() {
            "newline" => Ok('\n'),
            "space" => Ok(' '),
            "tab" => Ok('\t'),
            "return" => Ok('\r'),
            _ => {
                let mut chars = token.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(c),
                    _ => Err(self.error(format!("expected a character literal, found \\{token}"))),
                }
            }
        }
    }

    /// The run of non-delimiter bytes at the cursor.
    fn token(&mut self) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(|b| !is_delimiter(b)) {
            self.pos += 1;
        }
        if self.pos == start && self.pos < self.bytes.len() {
            // A lone non-ASCII or delimiter byte: take the whole char so slicing stays valid.
            let width = self.text[start..].chars().next().map_or(1, char::len_utf8);
            self.pos += width;
        }
        &self.text[start..self.pos]
    }

    fn atom(&mut self) -> Result<Edn, EdnError> {
        let token = self.token().to_owned();
        if let Some(name) = token.strip_prefix(':') {
            return Ok(Edn::Keyword(name.to_owned()));
        }
        match token.as_str() {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        if starts_number(&token) {
            return self.number(&token);
        }
        Ok(Edn::Symbol(token))
    }

    fn number(&self, token: &str) -> Result<Edn, EdnError> {
        let int = token.strip_suffix('N').unwrap_or(token);
        if let Ok(n) = int.parse::<i64>() {
            return Ok(Edn::Int(n));
        }
        let float = token.strip_suffix('M').unwrap_or(token);
        match float.parse::<f64>() {
            Ok(f)
                if !int
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+') =>
            {
                Ok(Edn::Float(f))
            }
            _ => Err(self.error(format!(
                "expected a number (64-bit integer or float), found {token}"
            ))),
        }
    }
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
    )
}

fn starts_number(token: &str) -> bool {
    matches!(
        token.as_bytes(),
        [b'0'..=b'9', ..] | [b'-' | b'+', b'0'..=b'9', ..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Edn {
        read_one(text).unwrap().unwrap().edn
    }

    #[test]
    fn reads_maps_vectors_keywords_and_comments_with_lines() {
        let node = read_one("; header\n[{:a 1, :b nil}\n {:c [1 2] :d \"x\\\"y\"}]")
            .unwrap()
            .unwrap();
        let Edn::Vector(items) = node.edn else {
            panic!("not a vector")
        };
        assert_eq!(items[0].line, 2);
        assert_eq!(items[1].line, 3);
        let Edn::Map(pairs) = &items[1].edn else {
            panic!("not a map")
        };
        assert_eq!(pairs[1].1.edn, Edn::Str("x\"y".into()));
    }

    #[test]
    fn reads_scalars_sets_tags_and_discards() {
        assert_eq!(read("-42"), Edn::Int(-42));
        assert_eq!(read("1.5"), Edn::Float(1.5));
        assert_eq!(read("true"), Edn::Bool(true));
        assert_eq!(read("\\a"), Edn::Char('a'));
        assert_eq!(read("foo/bar"), Edn::Symbol("foo/bar".into()));
        assert!(matches!(read("#{1 2}"), Edn::Set(s) if s.len() == 2));
        assert!(matches!(read("#inst \"2020\""), Edn::Tagged(t, _) if t == "inst"));
        assert!(matches!(read("[#_ 1 2]"), Edn::Vector(v) if v.len() == 1));
    }

    #[test]
    fn unclosed_collection_names_where_it_was_opened() {
        let err = read_one("[\n{:a 1}\n").unwrap_err();
        assert!(err.message.contains("opened on line 1"), "{err:?}");
        let err = read_one("{:a}").unwrap_err();
        assert!(err.message.contains("even number"), "{err:?}");
        let err = read_one("[1] [2]").unwrap_err();
        assert!(err.message.contains("end of the file"), "{err:?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(10_000);
        assert!(read_one(&text).is_err());
    }

    #[test]
    fn empty_input_holds_no_form() {
        assert_eq!(read_one(" ; nothing\n"), Ok(None));
    }
}
