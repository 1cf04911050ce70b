//! Command-line flags parsed the way etcdctl's library (spf13/pflag) parses them, so that
//! cairnctl accepts exactly etcdctl's spellings (`--limit=1`, `--limit 1`, `-w json`,
//! `-wjson`, `--prefix=false`, `--` to end flags, flags before or after positionals) and
//! fails with pflag's messages (`unknown flag: --bogus`, `flag needs an argument: --limit`,
//! `invalid argument "x" for "--limit" flag: ...`).

use std::collections::BTreeMap;

use crate::go_duration::{self, GoDuration};
use crate::go_strconv;

/// The type of a flag's value, which decides how it parses and how usage shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// A boolean: `--x` means true, `--x=false` is allowed, `--x false` is not.
    Bool,
    /// A string.
    Str,
    /// A 64-bit integer, parsed like Go's `ParseInt(s, 0, 64)`.
    Int64,
    /// A Go duration (`5s`).
    Duration,
    /// A comma-separated list; the first use replaces the default, later ones append.
    StrList,
}

/// One flag: its names, type, default (as usage prints it) and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagDef {
    /// The long name, without `--`.
    pub name: &'static str,
    /// The one-letter name, if any.
    pub shorthand: Option<char>,
    /// The value type.
    pub kind: FlagKind,
    /// The default, written as etcdctl's usage shows it (`false`, `0`, `l`, `2s`,
    /// `[127.0.0.1:2379]`).
    pub default: &'static str,
    /// The help text.
    pub usage: &'static str,
}

impl FlagDef {
    /// A boolean flag (default false).
    pub const fn bool(name: &'static str, usage: &'static str) -> FlagDef {
        FlagDef {
            name,
            shorthand: None,
            kind: FlagKind::Bool,
            default: "false",
            usage,
        }
    }

    /// A string flag.
    pub const fn str(name: &'static str, default: &'static str, usage: &'static str) -> FlagDef {
        FlagDef {
            name,
            shorthand: None,
            kind: FlagKind::Str,
            default,
            usage,
        }
    }

    /// An integer flag (default 0).
    pub const fn int64(name: &'static str, usage: &'static str) -> FlagDef {
        FlagDef {
            name,
            shorthand: None,
            kind: FlagKind::Int64,
            default: "0",
            usage,
        }
    }

    /// The same flag with another default (as usage prints it).
    pub const fn default_to(self, default: &'static str) -> FlagDef {
        FlagDef { default, ..self }
    }

    /// The same flag with a one-letter name.
    pub const fn short(self, shorthand: char) -> FlagDef {
        FlagDef {
            shorthand: Some(shorthand),
            ..self
        }
    }

    /// The name pflag uses in value errors: `--name`, or `-s, --name` with a shorthand.
    fn display_name(&self) -> String {
        match self.shorthand {
            Some(s) => format!("-{s}, --{}", self.name),
            None => format!("--{}", self.name),
        }
    }
}

/// A parsed flag value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    /// [`FlagKind::Bool`].
    Bool(bool),
    /// [`FlagKind::Str`].
    Str(String),
    /// [`FlagKind::Int64`].
    Int(i64),
    /// [`FlagKind::Duration`], in nanoseconds.
    Duration(GoDuration),
    /// [`FlagKind::StrList`].
    List(Vec<String>),
}

/// The values of a set of flags: defaults, overwritten by what was given.
#[derive(Debug, Clone, Default)]
pub struct FlagValues {
    values: BTreeMap<&'static str, (FlagValue, bool)>,
    defs: Vec<FlagDef>,
}

impl FlagValues {
    /// Every flag in `defs` at its default.
    pub fn defaults(defs: &[FlagDef]) -> FlagValues {
        let mut values = BTreeMap::new();
        for def in defs {
            values.insert(def.name, (default_value(def), false));
        }
        FlagValues {
            values,
            defs: defs.to_vec(),
        }
    }

    /// Sets `name` from text, as pflag's `FlagSet.Set` does (and marks it changed).
    pub fn set(&mut self, name: &str, raw: &str) -> Result<(), String> {
        let def = self
            .def(name)
            .ok_or_else(|| format!("no such flag -{name}"))?;
        let entry = self
            .values
            .get_mut(def.name)
            .ok_or_else(|| format!("no such flag -{name}"))?;
        let value = parse_value(&def, raw, &entry.0, entry.1).map_err(|why| {
            format!(
                "invalid argument {} for {} flag: {why}",
                go_strconv::quote(raw),
                go_strconv::quote(&def.display_name())
            )
        })?;
        *entry = (value, true);
        Ok(())
    }

    /// Whether `name` was given.
    pub fn changed(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|(_, changed)| *changed)
    }

    /// A boolean flag's value (false for an unknown name).
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.value(name), Some(FlagValue::Bool(true)))
    }

    /// A string flag's value ("" for an unknown name).
    pub fn str(&self, name: &str) -> &str {
        match self.value(name) {
            Some(FlagValue::Str(s)) => s,
            _ => "",
        }
    }

    /// An integer flag's value (0 for an unknown name).
    pub fn int(&self, name: &str) -> i64 {
        match self.value(name) {
            Some(FlagValue::Int(v)) => *v,
            _ => 0,
        }
    }

    /// A duration flag's value in nanoseconds (0 for an unknown name).
    pub fn duration(&self, name: &str) -> GoDuration {
        match self.value(name) {
            Some(FlagValue::Duration(v)) => *v,
            _ => 0,
        }
    }

    /// A list flag's value (empty for an unknown name).
    pub fn list(&self, name: &str) -> &[String] {
        match self.value(name) {
            Some(FlagValue::List(v)) => v,
            _ => &[],
        }
    }

    fn value(&self, name: &str) -> Option<&FlagValue> {
        debug_assert!(
            self.values.contains_key(name),
            "flag --{name} is not defined here"
        );
        self.values.get(name).map(|(v, _)| v)
    }

    fn def(&self, name: &str) -> Option<FlagDef> {
        self.defs.iter().find(|d| d.name == name).copied()
    }

    fn def_by_shorthand(&self, c: char) -> Option<FlagDef> {
        self.defs.iter().find(|d| d.shorthand == Some(c)).copied()
    }
}

fn default_value(def: &FlagDef) -> FlagValue {
    match def.kind {
        FlagKind::Bool => FlagValue::Bool(def.default == "true"),
        FlagKind::Str => FlagValue::Str(def.default.to_string()),
        FlagKind::Int64 => FlagValue::Int(go_strconv::parse_int(def.default, 0).unwrap_or(0)),
        FlagKind::Duration => FlagValue::Duration(go_duration::parse(def.default).unwrap_or(0)),
        FlagKind::StrList => FlagValue::List(split_list(def.default.trim_matches(['[', ']']))),
    }
}

fn parse_value(
    def: &FlagDef,
    raw: &str,
    current: &FlagValue,
    changed: bool,
) -> Result<FlagValue, String> {
    Ok(match def.kind {
        FlagKind::Bool => FlagValue::Bool(go_strconv::parse_bool(raw).map_err(|e| e.to_string())?),
        FlagKind::Str => FlagValue::Str(raw.to_string()),
        FlagKind::Int64 => {
            FlagValue::Int(go_strconv::parse_int(raw, 0).map_err(|e| e.to_string())?)
        }
        FlagKind::Duration => FlagValue::Duration(go_duration::parse(raw)?),
        FlagKind::StrList => match (current, changed) {
            (FlagValue::List(old), true) => {
                FlagValue::List([old.clone(), split_list(raw)].concat())
            }
            _ => FlagValue::List(split_list(raw)),
        },
    })
}

fn split_list(raw: &str) -> Vec<String> {
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(',').map(str::to_string).collect()
}

/// The outcome of parsing a command line against a set of flags.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Every flag's value.
    pub values: FlagValues,
    /// The positional arguments, in order.
    pub args: Vec<String>,
    /// How many positional arguments came before a `--` (cobra's `ArgsLenAtDash`), if
    /// there was one.
    pub args_at_dash: Option<usize>,
}

/// Parses `argv` (the command line without the command's own name) against `defs`, with
/// flags and positionals interspersed, as pflag does.
pub fn parse(defs: &[FlagDef], argv: &[String]) -> Result<Parsed, String> {
    let mut values = FlagValues::defaults(defs);
    let mut args = Vec::new();
    let mut args_at_dash = None;
    let mut rest = argv;
    while let Some((first, tail)) = rest.split_first() {
        rest = tail;
        if first == "--" {
            args_at_dash = Some(args.len());
            args.extend(rest.iter().cloned());
            break;
        }
        if first.len() < 2 || !first.starts_with('-') {
            args.push(first.clone());
            continue;
        }
        rest = match first.strip_prefix("--") {
            Some(long) => parse_long(&mut values, first, long, rest)?,
            None => parse_shorthands(&mut values, &first[1..], rest)?,
        };
    }
    Ok(Parsed {
        values,
        args,
        args_at_dash,
    })
}

/// `--name`, `--name=value` or `--name value`; returns the arguments left.
fn parse_long<'a>(
    values: &mut FlagValues,
    arg: &str,
    long: &str,
    rest: &'a [String],
) -> Result<&'a [String], String> {
    if long.is_empty() || long.starts_with(['-', '=']) {
        return Err(format!("bad flag syntax: {arg}"));
    }
    let (name, inline) = match long.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (long, None),
    };
    let def = values
        .def(name)
        .ok_or_else(|| format!("unknown flag: --{name}"))?;
    match (inline, def.kind, rest.split_first()) {
        (Some(v), _, _) => values.set(name, v).map(|()| rest),
        (None, FlagKind::Bool, _) => values.set(name, "true").map(|()| rest),
        (None, _, Some((v, tail))) => values.set(name, v).map(|()| tail),
        (None, _, None) => Err(format!("flag needs an argument: {arg}")),
    }
}

/// A cluster of one-letter flags (`-i`, `-wjson`, `-w json`, `-w=json`).
fn parse_shorthands<'a>(
    values: &mut FlagValues,
    shorthands: &str,
    mut rest: &'a [String],
) -> Result<&'a [String], String> {
    let mut remaining = shorthands;
    while let Some(c) = remaining.chars().next() {
        let after = &remaining[c.len_utf8()..];
        let unknown = || {
            format!(
                "unknown shorthand flag: {} in -{remaining}",
                go_rune_quote(c)
            )
        };
        let def = values.def_by_shorthand(c).ok_or_else(unknown)?;
        if after.len() > 1 && after.starts_with('=') {
            values.set(def.name, &after[1..])?;
            return Ok(rest);
        }
        if def.kind == FlagKind::Bool {
            values.set(def.name, "true")?;
            remaining = after;
            continue;
        }
        if !after.is_empty() {
            values.set(def.name, after)?;
            return Ok(rest);
        }
        let (v, tail) = rest.split_first().ok_or_else(|| {
            format!(
                "flag needs an argument: {} in -{remaining}",
                go_rune_quote(c)
            )
        })?;
        values.set(def.name, v)?;
        rest = tail;
        remaining = "";
    }
    Ok(rest)
}

/// Go's `%q` of a rune: `'x'`.
fn go_rune_quote(c: char) -> String {
    let quoted = go_strconv::quote(&c.to_string());
    let inner = &quoted[1..quoted.len() - 1];
    match inner {
        "\\\"" => "'\"'".to_string(),
        "'" => "'\\''".to_string(),
        _ => format!("'{inner}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: [FlagDef; 5] = [
        FlagDef::bool("prefix", "p"),
        FlagDef::int64("limit", "l"),
        FlagDef::str("write-out", "simple", "w").short('w'),
        FlagDef::bool("interactive", "i").short('i'),
        FlagDef {
            name: "endpoints",
            shorthand: None,
            kind: FlagKind::StrList,
            default: "[127.0.0.1:2379]",
            usage: "e",
        },
    ];

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_and_positionals_intersperse() {
        let p = parse(&DEFS, &argv("a --prefix b --limit=3 -w json c")).unwrap();
        assert_eq!(p.args, ["a", "b", "c"]);
        assert!(p.values.bool("prefix"));
        assert_eq!(p.values.int("limit"), 3);
        assert_eq!(p.values.str("write-out"), "json");
    }

    #[test]
    fn shorthand_clusters_and_attached_values() {
        let p = parse(&DEFS, &argv("-iwjson")).unwrap();
        assert!(p.values.bool("interactive"));
        assert_eq!(p.values.str("write-out"), "json");
        let p = parse(&DEFS, &argv("-w=fields")).unwrap();
        assert_eq!(p.values.str("write-out"), "fields");
    }

    #[test]
    fn double_dash_ends_flags() {
        let p = parse(&DEFS, &argv("k -- -v --prefix")).unwrap();
        assert_eq!(p.args, ["k", "-v", "--prefix"]);
        assert_eq!(p.args_at_dash, Some(1));
        assert!(!p.values.bool("prefix"));
    }

    #[test]
    fn bool_takes_explicit_value_only_with_equals() {
        let p = parse(&DEFS, &argv("--prefix=false x")).unwrap();
        assert!(!p.values.bool("prefix"));
        assert!(p.values.changed("prefix"));
        let p = parse(&DEFS, &argv("--prefix false")).unwrap();
        assert!(p.values.bool("prefix"));
        assert_eq!(p.args, ["false"]);
    }

    #[test]
    fn list_flag_replaces_default_then_appends() {
        let p = parse(&DEFS, &argv("--endpoints a:1,b:2 --endpoints c:3")).unwrap();
        assert_eq!(p.values.list("endpoints"), ["a:1", "b:2", "c:3"]);
        let p = parse(&DEFS, &[]).unwrap();
        assert_eq!(p.values.list("endpoints"), ["127.0.0.1:2379"]);
    }

    #[test]
    fn errors_read_like_pflag() {
        let e = |s: &str| parse(&DEFS, &argv(s)).unwrap_err();
        assert_eq!(e("--bogus"), "unknown flag: --bogus");
        assert_eq!(e("--bogus=1"), "unknown flag: --bogus");
        assert_eq!(e("-x"), "unknown shorthand flag: 'x' in -x");
        assert_eq!(e("-ix"), "unknown shorthand flag: 'x' in -x");
        assert_eq!(e("--limit"), "flag needs an argument: --limit");
        assert_eq!(e("-w"), "flag needs an argument: 'w' in -w");
        assert_eq!(e("---x"), "bad flag syntax: ---x");
        assert_eq!(
            e("--limit abc"),
            r#"invalid argument "abc" for "--limit" flag: strconv.ParseInt: parsing "abc": invalid syntax"#
        );
        assert_eq!(
            e("--prefix=maybe"),
            r#"invalid argument "maybe" for "--prefix" flag: strconv.ParseBool: parsing "maybe": invalid syntax"#
        );
    }
}
