//! A minimal pickle *reader*: the stack machine of Python's `pickle` for the opcodes protocols
//! 2–5 emit, which builds plain values and never runs code.
//!
//! Where a real unpickler would import a module and call a function (`GLOBAL`/`STACK_GLOBAL`
//! followed by `REDUCE`/`NEWOBJ`), this reader asks a [`Resolver`]: it accepts or refuses each
//! referenced name (an allow-list) and interprets the calls it accepted, returning data. A
//! pickle naming anything else — `os.system`, `builtins.eval`, any class — is refused before
//! anything could happen. `BUILD` states are ignored (they would set attributes of objects).
//! Reference: the opcode table in CPython's `Lib/pickletools.py`.

use std::any::Any;
use std::cell::{Cell, Ref, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// How deeply containers may nest. Real checkpoints nest a handful of levels; a limit keeps
/// every walk over a value (and its drop, which recurses) far from the stack's end.
pub const MAX_DEPTH: usize = 1000;

/// A tuple, list or dict: shared, so that memo references and `DUP` cost one pointer rather
/// than a copy (a small pickle that re-pushes a memoised container a million times must not
/// build a million copies), with the nesting depth of its contents.
pub struct Container<T> {
    items: RefCell<T>,
    depth: Cell<usize>,
    /// Set once the container is placed inside another. A sealed container is never modified
    /// again, so the depth recorded in every container holding it stays true and no container
    /// can come to hold itself.
    sealed: Cell<bool>,
}

impl<T> Container<T> {
    fn new(items: T, depth: usize) -> Rc<Container<T>> {
        Rc::new(Container {
            items: RefCell::new(items),
            depth: Cell::new(depth),
            sealed: Cell::new(false),
        })
    }

    /// The contents.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.items.borrow()
    }
}

/// A value on the pickle stack.
#[derive(Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer (pickles of Python ints up to 128 bits).
    Int(i128),
    /// A float.
    Float(f64),
    /// A `str`.
    Str(Rc<str>),
    /// `bytes` / `bytearray`.
    Bytes(Rc<[u8]>),
    /// A tuple (also frozensets).
    Tuple(Rc<Container<Vec<Value>>>),
    /// A list (also sets), shared so that memo references see later appends.
    List(Rc<Container<Vec<Value>>>),
    /// A dict (also `OrderedDict`) as ordered pairs, shared like lists.
    Dict(Rc<Container<Vec<(Value, Value)>>>),
    /// A reference to `module.name` that the resolver accepted.
    Global(String),
    /// Something the resolver built (a storage, a tensor).
    Object(Rc<dyn Any>),
}

/// How much of a value `Debug` shows: values end up in error messages, and a message must stay
/// one short line whatever the pickle holds.
const SHOWN_LEVELS: usize = 3;
const SHOWN_ITEMS: usize = 8;
const SHOWN_CHARS: usize = 60;

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show(self, f, SHOWN_LEVELS)
    }
}

/// Writes `v` with at most `levels` levels of nesting and [`SHOWN_ITEMS`] items per container.
fn show(v: &Value, f: &mut fmt::Formatter<'_>, levels: usize) -> fmt::Result {
    let container = matches!(v, Value::Tuple(_) | Value::List(_) | Value::Dict(_));
    if container && levels == 0 {
        return write!(f, "…");
    }
    match v {
        Value::None => write!(f, "None"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Int(i) => write!(f, "{i}"),
        Value::Float(x) => write!(f, "{x}"),
        Value::Str(s) if s.chars().count() > SHOWN_CHARS => {
            let head: String = s.chars().take(SHOWN_CHARS).collect();
            write!(f, "{head:?}…")
        }
        Value::Str(s) => write!(f, "{s:?}"),
        Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
        Value::Tuple(t) => {
            let items = t.borrow();
            show_seq(f, "(", ")", items.len(), |f, i| {
                show(&items[i], f, levels - 1)
            })
        }
        Value::List(l) => {
            let items = l.borrow();
            show_seq(f, "[", "]", items.len(), |f, i| {
                show(&items[i], f, levels - 1)
            })
        }
        Value::Dict(d) => {
            let items = d.borrow();
            show_seq(f, "{", "}", items.len(), |f, i| {
                show(&items[i].0, f, levels - 1)?;
                write!(f, ": ")?;
                show(&items[i].1, f, levels - 1)
            })
        }
        Value::Global(g) => write!(f, "<global {g}>"),
        Value::Object(_) => write!(f, "<object>"),
    }
}

/// `open item, item, … close`, eliding items past [`SHOWN_ITEMS`].
fn show_seq(
    f: &mut fmt::Formatter<'_>,
    open: &str,
    close: &str,
    len: usize,
    mut item: impl FnMut(&mut fmt::Formatter<'_>, usize) -> fmt::Result,
) -> fmt::Result {
    write!(f, "{open}")?;
    for i in 0..len.min(SHOWN_ITEMS) {
        if i > 0 {
            write!(f, ", ")?;
        }
        item(f, i)?;
    }
    if len > SHOWN_ITEMS {
        write!(f, ", … ({len} in all)")?;
    }
    write!(f, "{close}")
}

impl Value {
    /// An empty dict.
    pub fn new_dict() -> Value {
        Value::Dict(Container::new(Vec::new(), 1))
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one that fits an `i64`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => i64::try_from(*i).ok(),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// Elements of a tuple or list.
    pub fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::Tuple(t) | Value::List(t) => Some(t.borrow().clone()),
            _ => None,
        }
    }

    /// The number of elements of a tuple or list (without copying them).
    pub fn item_count(&self) -> Option<usize> {
        match self {
            Value::Tuple(t) | Value::List(t) => Some(t.borrow().len()),
            _ => None,
        }
    }

    /// The object downcast to `T`, if it is one.
    pub fn object<T: 'static>(&self) -> Option<&T> {
        match self {
            Value::Object(o) => o.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// Nesting depth: 0 for a scalar, 1 + the deepest item for a container.
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(c) | Value::List(c) => c.depth.get(),
            Value::Dict(c) => c.depth.get(),
            _ => 0,
        }
    }

    /// Marks a container as placed inside another (see [`Container::sealed`]).
    fn seal(&self) {
        match self {
            Value::Tuple(c) | Value::List(c) => c.sealed.set(true),
            Value::Dict(c) => c.sealed.set(true),
            _ => {}
        }
    }
}

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    /// The pickle references a name outside the resolver's allow-list.
    #[error("the pickle references {0}, which is not a tensor")]
    Refused(String),
    /// Damaged or unsupported content.
    #[error("{0}")]
    Malformed(String),
}

fn bad(msg: impl Into<String>) -> PickleError {
    PickleError::Malformed(msg.into())
}

/// The depth of a container about to hold `items`, sealing each of them (they now live inside
/// another container); refused past [`MAX_DEPTH`].
fn adopt<'v>(items: impl IntoIterator<Item = &'v Value>) -> Result<usize, PickleError> {
    let mut deepest = 0;
    for v in items {
        v.seal();
        deepest = deepest.max(v.depth());
    }
    if deepest >= MAX_DEPTH {
        return Err(bad(format!(
            "the pickle nests containers more than {MAX_DEPTH} levels deep"
        )));
    }
    Ok(deepest + 1)
}

fn tuple(items: Vec<Value>) -> Result<Value, PickleError> {
    let depth = adopt(&items)?;
    Ok(Value::Tuple(Container::new(items, depth)))
}

fn list(items: Vec<Value>) -> Result<Value, PickleError> {
    let depth = adopt(&items)?;
    Ok(Value::List(Container::new(items, depth)))
}

/// Refuses to modify a container that already sits inside another (what a self-referential
/// structure needs), then records the depth its new items give it.
fn grow<T>(c: &Container<T>, items_depth: usize, what: &str) -> Result<(), PickleError> {
    if c.sealed.get() {
        return Err(bad(format!(
            "the pickle adds to a {what} that is already inside another container \
             (a self-referential structure?)"
        )));
    }
    c.depth.set(c.depth.get().max(items_depth));
    Ok(())
}

/// Most arguments any call the resolvers interpret takes; longer argument tuples are refused
/// before they are copied.
const MAX_CALL_ARGS: usize = 16;

/// Decides what referenced names mean; the only place where a pickle can ask for behaviour.
pub trait Resolver {
    /// Accepts `module.name` (it becomes a [`Value::Global`]) or refuses it.
    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError>;
    /// Resolves a persistent id (`BINPERSID`), e.g. a reference to tensor storage.
    fn persistent_load(&mut self, pid: Value) -> Result<Value, PickleError>;
    /// Interprets a call of an accepted global with positional arguments (`REDUCE`, `NEWOBJ`).
    fn call(&mut self, func: &str, args: Vec<Value>) -> Result<Value, PickleError>;
}

/// Reads one pickle from the start of `data`; returns the value and the number of bytes used
/// (files may hold several pickles one after another).
pub fn load(data: &[u8], resolver: &mut dyn Resolver) -> Result<(Value, usize), PickleError> {
    Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        resolver,
    }
    .run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack heights at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    resolver: &'a mut dyn Resolver,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| bad("the pickle ends early (truncated file?)"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn len64(&mut self) -> Result<usize, PickleError> {
        usize::try_from(self.u64()?).map_err(|_| bad("length out of range"))
    }

    /// A newline-terminated line (text opcodes).
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("the pickle ends early (truncated file?)"))?;
        let s = String::from_utf8_lossy(&rest[..nl]).into_owned();
        self.pos += nl + 1;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        Ok(Value::Str(Rc::from(std::str::from_utf8(b).map_err(
            |_| bad("a string in the pickle is not UTF-8"),
        )?)))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(bad("pickle stack underflow at a mark"));
        }
        self.stack
            .pop()
            .ok_or_else(|| bad("pickle stack underflow"))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        self.stack
            .last_mut()
            .ok_or_else(|| bad("pickle stack underflow"))
    }

    /// Pops everything above the last MARK (and the mark).
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| bad("pickle has no mark"))?;
        if m > self.stack.len() {
            return Err(bad("pickle mark above the stack"));
        }
        Ok(self.stack.split_off(m))
    }

    fn push_global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        self.resolver.global(module, name)?;
        self.stack.push(Value::Global(format!("{module}.{name}")));
        Ok(())
    }

    fn call(&mut self, func: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Global(name) = func else {
            return Err(bad(format!(
                "the pickle calls {func:?}, which is not a function"
            )));
        };
        let args = match args {
            Value::Tuple(t) if t.borrow().len() <= MAX_CALL_ARGS => t.borrow().clone(),
            Value::Tuple(t) => {
                return Err(bad(format!(
                    "{name} is called with {} arguments",
                    t.borrow().len()
                )));
            }
            other => return Err(bad(format!("call arguments are {other:?}, not a tuple"))),
        };
        self.resolver.call(&name, args)
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(bad("odd number of dict items"));
        }
        let Value::Dict(d) = self.top()? else {
            return Err(bad("SETITEMS on something that is not a dict"));
        };
        let d = d.clone();
        grow(&d, adopt(&items)?, "dict")?;
        let mut d = d.items.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        let Value::List(l) = self.top()? else {
            return Err(bad("APPEND on something that is not a list"));
        };
        let l = l.clone();
        grow(&l, adopt(&items)?, "list")?;
        l.items.borrow_mut().extend(items);
        Ok(())
    }

    fn memo_put(&mut self, idx: u32) -> Result<(), PickleError> {
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| bad("memo of an empty stack"))?;
        self.memo.insert(idx, v);
        Ok(())
    }

    fn memo_get(&mut self, idx: u32) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&idx)
            .cloned()
            .ok_or_else(|| bad(format!("pickle memo {idx} is not set")))?;
        self.stack.push(v);
        Ok(())
    }

    fn run(mut self) -> Result<(Value, usize), PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(bad(format!("pickle protocol {p} is not supported")));
                    }
                }
                0x95 => {
                    // FRAME: only a size hint.
                    self.u64()?;
                }
                b'.' => {
                    // STOP
                    let v = self.pop()?;
                    return Ok((v, self.pos));
                }
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Value::new_dict()),
                b']' => self.stack.push(list(Vec::new())?),
                b')' => self.stack.push(tuple(Vec::new())?),
                0x8f => self.stack.push(list(Vec::new())?), // EMPTY_SET as a list
                0x90 => {
                    // ADDITEMS
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                0x91 => {
                    // FROZENSET
                    let items = self.pop_mark()?;
                    self.stack.push(tuple(items)?);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(tuple(items)?);
                }
                0x85..=0x87 => {
                    // TUPLE1..3
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(tuple(items)?);
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(list(items)?);
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::new_dict());
                    self.set_items(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    // MEMOIZE
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v as i128));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i128));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v as i128));
                }
                0x8a | 0x8b => {
                    // LONG1 / LONG4: little-endian two's complement.
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.u32()? as usize
                    };
                    if n > 16 {
                        return Err(bad("integer in the pickle is too large"));
                    }
                    let b = self.take(n)?;
                    let mut v: i128 = 0;
                    for (i, &byte) in b.iter().enumerate() {
                        v |= (byte as i128) << (8 * i);
                    }
                    if n > 0 && n < 16 && b[n - 1] & 0x80 != 0 {
                        v -= 1i128 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'I' => {
                    let l = self.line()?;
                    let v = match l.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        s => Value::Int(s.parse().map_err(|_| bad("bad INT in pickle"))?),
                    };
                    self.stack.push(v);
                }
                b'L' => {
                    let l = self.line()?;
                    let v = l
                        .trim_end_matches('L')
                        .parse()
                        .map_err(|_| bad("bad LONG in pickle"))?;
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                b'F' => {
                    let l = self.line()?;
                    self.stack.push(Value::Float(
                        l.parse().map_err(|_| bad("bad FLOAT in pickle"))?,
                    ));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.len64()?;
                    let v = self.utf8(n)?;
                    self.stack.push(v);
                }
                b'T' | b'U' | b'B' | b'C' | 0x8e | 0x96 => {
                    // BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                    let n = match op {
                        b'T' | b'B' => self.u32()? as usize,
                        b'U' | b'C' => self.u8()? as usize,
                        _ => self.len64()?,
                    };
                    let b = Rc::from(self.take(n)?);
                    self.stack.push(Value::Bytes(b));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push_global(&module, &name)?;
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module.as_str(), name.as_str()) {
                        (Some(m), Some(n)) => {
                            let (m, n) = (m.to_string(), n.to_string());
                            self.push_global(&m, &n)?;
                        }
                        _ => return Err(bad("STACK_GLOBAL needs two strings")),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.call(func, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.call(cls, args)?;
                    self.stack.push(v);
                }
                0x92 => {
                    // NEWOBJ_EX: keyword arguments are not interpreted.
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    if matches!(&kwargs, Value::Dict(d) if !d.borrow().is_empty()) {
                        return Err(bad("keyword arguments in NEWOBJ_EX are not supported"));
                    }
                    let v = self.call(cls, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD: would set the object's state; data-only reading ignores it.
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.resolver.persistent_load(pid)?;
                    self.stack.push(v);
                }
                b'P' => {
                    let pid = self.line()?;
                    let v = self.resolver.persistent_load(Value::Str(pid.into()))?;
                    self.stack.push(v);
                }
                b'i' | b'o' | 0x82..=0x84 => {
                    // INST, OBJ, EXT1/2/4: old ways to create objects; never in tensor files.
                    return Err(bad(format!(
                        "pickle opcode 0x{op:02x} (object creation) is not supported"
                    )));
                }
                other => {
                    return Err(bad(format!(
                        "unknown pickle opcode 0x{other:02x} at byte {}",
                        self.pos - 1
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts nothing; calls are never reached.
    struct Strict;

    impl Resolver for Strict {
        fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
            Err(PickleError::Refused(format!("{module}.{name}")))
        }
        fn persistent_load(&mut self, _: Value) -> Result<Value, PickleError> {
            Err(bad("no persistent ids"))
        }
        fn call(&mut self, f: &str, _: Vec<Value>) -> Result<Value, PickleError> {
            Err(PickleError::Refused(f.to_string()))
        }
    }

    // Bytes below were produced by CPython 3's `pickle.dumps(..., protocol=N)`.

    #[test]
    fn reads_plain_containers_protocol_2() {
        // pickle.dumps({'a': [1, -2, 3.5], 'b': (None, True)}, protocol=2)
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00eX\x01\x00\x00\x00bq\x03N\x88\x86q\x04u.";
        let (v, used) = load(data, &mut Strict).unwrap();
        assert_eq!(used, data.len());
        assert_eq!(
            format!("{v:?}"),
            r#"{"a": [1, -2, 3.5], "b": (None, true)}"#
        );
    }

    #[test]
    fn reads_protocol_4_frames_and_memoize() {
        // pickle.dumps({'k': ['x', 'x']}, protocol=4)
        let data = b"\x80\x04\x95\x12\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01k\x94]\x94(\x8c\x01x\x94h\x03es.";
        let (v, _) = load(data, &mut Strict).unwrap();
        assert_eq!(format!("{v:?}"), r#"{"k": ["x", "x"]}"#);
    }

    #[test]
    fn long_integers_are_twos_complement() {
        // pickle.dumps([2**70, -2**40], protocol=2)
        let data = b"\x80\x02]q\x00(\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00@\x8a\x06\x00\x00\x00\x00\x00\xffe.";
        let (v, _) = load(data, &mut Strict).unwrap();
        let items = v.items().unwrap();
        assert!(matches!(items[0], Value::Int(i) if i == 1i128 << 70));
        assert!(matches!(items[1], Value::Int(i) if i == -(1i128 << 40)));
    }

    #[test]
    fn refuses_os_system_before_calling_anything() {
        // class E: __reduce__ = lambda self: (os.system, ('echo hi',)); pickle.dumps(E(), protocol=2)
        let data = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03.";
        let err = load(data, &mut Strict).unwrap_err();
        assert_eq!(err, PickleError::Refused("posix.system".into()));
    }

    #[test]
    fn refuses_stack_global_too() {
        // pickle.dumps(E(), protocol=4): STACK_GLOBAL with 'posix', 'system'
        let data = b"\x80\x04\x95\"\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x07echo hi\x94\x85\x94R\x94.";
        let err = load(data, &mut Strict).unwrap_err();
        assert_eq!(err, PickleError::Refused("posix.system".into()));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let data = b"\x80\x02]q\x00(K\x01";
        for n in 0..data.len() {
            assert!(load(&data[..n], &mut Strict).is_err());
        }
    }
}
