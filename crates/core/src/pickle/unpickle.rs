//! A restricted unpickler for PyTorch state dicts: it interprets the pickle opcodes that
//! `torch.save` emits into plain values and builds nothing but dicts, tuples, lists, numbers,
//! strings and tensor descriptions.
//!
//! Nothing is ever called: `GLOBAL` is accepted only for the handful of names a state dict
//! needs (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//! `torch._utils._rebuild_parameter[_with_state]`, the `torch.*Storage` types), and `REDUCE`
//! on those is interpreted here (an empty dict, a tensor description). Any other global is
//! refused with its name, like `torch.load(weights_only=True)` does. Every read is bounds
//! checked, containers share their contents (`Rc`) so references cannot blow memory up, and
//! nesting is bounded so that nothing recurses deeply.

use std::collections::HashMap;
use std::rc::Rc;

use candle_core::DType;

/// Why a pickle was refused.
#[derive(Debug, PartialEq)]
pub(crate) enum PickleError {
    /// A global outside the allow-list: `module.name`.
    Forbidden(String),
    /// Anything else: malformed, truncated, or not a state dict.
    Invalid(String),
}

type PResult<T> = Result<T, PickleError>;

fn invalid(message: impl Into<String>) -> PickleError {
    PickleError::Invalid(message.into())
}

/// The element type of a `torch.*Storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    U8,
    Bool,
}

impl StorageType {
    fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// The candle dtype a tensor of this storage is read as (booleans as `u8`).
    pub(crate) fn dtype(self) -> DType {
        match self {
            Self::F64 => DType::F64,
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::BF16 => DType::BF16,
            Self::I64 => DType::I64,
            Self::I32 => DType::I32,
            Self::I16 => DType::I16,
            Self::U8 | Self::Bool => DType::U8,
        }
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        self.dtype().size_in_bytes()
    }
}

/// A storage named by a persistent id: `archive/data/<key>`.
#[derive(Debug, PartialEq)]
pub(crate) struct StorageRef {
    pub ty: StorageType,
    pub key: String,
    /// Elements in the storage.
    pub numel: u64,
}

/// A tensor: a strided view of a storage, checked to lie inside it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: Rc<StorageRef>,
    /// In elements.
    pub offset: u64,
    pub shape: Vec<usize>,
    /// In elements.
    pub stride: Vec<usize>,
}

impl TensorRef {
    /// Whether the elements are contiguous and in row-major order.
    pub(crate) fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&size, &stride) in self.shape.iter().zip(&self.stride).rev() {
            if size != 1 && stride != expected {
                return false;
            }
            expected = expected.saturating_mul(size);
        }
        true
    }
}

/// The globals a state dict may name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Storage(StorageType),
}

impl Global {
    fn resolve(module: &str, name: &str) -> PResult<Self> {
        match (module, name) {
            ("collections", "OrderedDict") => Ok(Self::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Self::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Ok(Self::RebuildParameter),
            ("torch._utils", "_rebuild_parameter_with_state") => Ok(Self::RebuildParameterWithState),
            ("torch", storage) => StorageType::from_class(storage)
                .map(Self::Storage)
                .ok_or_else(|| PickleError::Forbidden(format!("{module}.{name}"))),
            _ => Err(PickleError::Forbidden(format!("{module}.{name}"))),
        }
    }
}

/// A container's items, with the container's nesting depth.
#[derive(Debug, Clone, PartialEq)]
struct Items<T> {
    items: Vec<T>,
    depth: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Tuple(Rc<Items<Value>>),
    List(Rc<Items<Value>>),
    Dict(Rc<Items<(Value, Value)>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

/// Containers nested deeper than this are refused (a state dict nests about 4 deep).
const MAX_DEPTH: u32 = 64;
/// Elements copied when a shared container is modified; bounds the work a forged pickle causes.
const MAX_COPIED: usize = 50_000_000;

impl Value {
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(t) | Value::List(t) => t.depth,
            Value::Dict(d) => d.depth,
            _ => 0,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a class",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

fn items<T>(items: Vec<T>, depth_of: impl Fn(&T) -> u32) -> PResult<Rc<Items<T>>> {
    let depth = 1 + items.iter().map(depth_of).max().unwrap_or(0);
    if depth > MAX_DEPTH {
        return Err(invalid(format!("containers nest more than {MAX_DEPTH} deep")));
    }
    Ok(Rc::new(Items { items, depth }))
}

fn tuple(values: Vec<Value>) -> PResult<Value> {
    items(values, Value::depth).map(Value::Tuple)
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    copied: usize,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            invalid(format!("the pickle ends in the middle of an instruction (byte {}): it is truncated", self.pos))
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> PResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn line(&mut self) -> PResult<String> {
        let rest = &self.data[self.pos..];
        let n =
            rest.iter().take(512).position(|&b| b == b'\n').ok_or_else(|| invalid("a GLOBAL name is unterminated"))?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| invalid("a GLOBAL name is not UTF-8"))?.to_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn string(&mut self, len: u64) -> PResult<Value> {
        let len = usize::try_from(len).map_err(|_| invalid("a string is too long"))?;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| invalid("a string is not UTF-8"))?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn pop(&mut self) -> PResult<Value> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(invalid("an instruction pops past a MARK"));
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => Err(invalid("an instruction pops an empty stack")),
        }
    }

    fn top(&mut self) -> PResult<&mut Value> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(invalid("an instruction reads past a MARK"));
        }
        self.stack.last_mut().ok_or_else(|| invalid("an instruction reads an empty stack"))
    }

    fn pop_mark(&mut self) -> PResult<Vec<Value>> {
        let mark = self.marks.pop().ok_or_else(|| invalid("an instruction needs a MARK that is not there"))?;
        if mark > self.stack.len() {
            return Err(invalid("a MARK points past the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, key: u64) -> PResult<()> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> PResult<()> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| invalid(format!("memo entry {key} is read before it is set")))?;
        self.stack.push(v);
        Ok(())
    }

    fn charge<T>(&mut self, rc: &Rc<Items<T>>) -> PResult<()> {
        if Rc::strong_count(rc) > 1 {
            self.copied = self.copied.saturating_add(rc.items.len());
            if self.copied > MAX_COPIED {
                return Err(invalid("the pickle copies too many shared containers"));
            }
        }
        Ok(())
    }

    fn extend_list(&mut self, values: Vec<Value>) -> PResult<()> {
        let mut list = match self.pop()? {
            Value::List(l) => l,
            other => return Err(invalid(format!("APPEND on {}", other.kind()))),
        };
        self.charge(&list)?;
        let depth = values.iter().map(Value::depth).max().unwrap_or(0) + 1;
        if depth > MAX_DEPTH {
            return Err(invalid(format!("containers nest more than {MAX_DEPTH} deep")));
        }
        let l = Rc::make_mut(&mut list);
        l.items.extend(values);
        l.depth = l.depth.max(depth);
        self.stack.push(Value::List(list));
        Ok(())
    }

    fn set_items(&mut self, values: Vec<Value>) -> PResult<()> {
        if !values.len().is_multiple_of(2) {
            return Err(invalid("SETITEMS with an odd number of values"));
        }
        let mut dict = match self.pop()? {
            Value::Dict(d) => d,
            other => return Err(invalid(format!("SETITEM on {}", other.kind()))),
        };
        self.charge(&dict)?;
        let depth = values.iter().map(Value::depth).max().unwrap_or(0) + 1;
        if depth > MAX_DEPTH {
            return Err(invalid(format!("containers nest more than {MAX_DEPTH} deep")));
        }
        let d = Rc::make_mut(&mut dict);
        let mut it = values.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.items.push((k, v));
        }
        d.depth = d.depth.max(depth);
        self.stack.push(Value::Dict(dict));
        Ok(())
    }

    fn reduce(&mut self) -> PResult<()> {
        let args = self.pop()?;
        let callable = self.pop()?;
        let Value::Global(global) = callable else {
            return Err(invalid(format!("REDUCE calls {}", callable.kind())));
        };
        let Value::Tuple(args) = args else {
            return Err(invalid(format!("REDUCE with {} as arguments", args.kind())));
        };
        let args = &args.items;
        let value = match global {
            Global::OrderedDict if args.is_empty() => Value::Dict(items(Vec::new(), |_| 0)?),
            Global::OrderedDict => return Err(invalid("OrderedDict is built with arguments")),
            Global::RebuildTensorV2 => Value::Tensor(Rc::new(rebuild_tensor(args)?)),
            Global::RebuildParameter | Global::RebuildParameterWithState => match args.first() {
                Some(Value::Tensor(t)) => Value::Tensor(Rc::clone(t)),
                _ => return Err(invalid("_rebuild_parameter without a tensor")),
            },
            Global::Storage(_) => return Err(invalid("a storage class is called")),
        };
        self.stack.push(value);
        Ok(())
    }

    fn run(mut self) -> PResult<Value> {
        loop {
            let at = self.pos;
            let op = self.byte()?;
            match op {
                0x80 => {
                    let proto = self.byte()?;
                    if proto > 5 {
                        return Err(invalid(format!("pickle protocol {proto} is unknown")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(Global::resolve(&module, &name)?));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(Global::resolve(&m, &n)?)),
                        _ => return Err(invalid("STACK_GLOBAL without two strings")),
                    }
                }
                b'q' => {
                    let k = self.byte()?;
                    self.memo_put(u64::from(k))?;
                }
                b'r' => {
                    let k = u32::from_le_bytes(self.le()?);
                    self.memo_put(u64::from(k))?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.byte()?;
                    self.memo_get(u64::from(k))?;
                }
                b'j' => {
                    let k = u32::from_le_bytes(self.le()?);
                    self.memo_get(u64::from(k))?;
                }
                b'}' => self.stack.push(Value::Dict(items(Vec::new(), |_| 0)?)),
                b']' => self.stack.push(Value::List(items(Vec::new(), Value::depth)?)),
                b')' => self.stack.push(tuple(Vec::new())?),
                b'd' => {
                    let values = self.pop_mark()?;
                    self.stack.push(Value::Dict(items(Vec::new(), |_| 0)?));
                    self.set_items(values)?;
                }
                b'l' => {
                    let values = self.pop_mark()?;
                    self.stack.push(Value::List(items(values, Value::depth)?));
                }
                b't' => {
                    let values = self.pop_mark()?;
                    self.stack.push(tuple(values)?);
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut values = Vec::with_capacity(n);
                    for _ in 0..n {
                        values.push(self.pop()?);
                    }
                    values.reverse();
                    self.stack.push(tuple(values)?);
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let values = self.pop_mark()?;
                    self.set_items(values)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_list(vec![v])?;
                }
                b'e' => {
                    let values = self.pop_mark()?;
                    self.extend_list(values)?;
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.byte()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = usize::from(self.byte()?);
                    if n > 8 {
                        return Err(invalid(format!("a {n}-byte integer does not fit in 64 bits")));
                    }
                    let bytes = self.take(n)?;
                    let mut buf = [0u8; 8];
                    buf[..n].copy_from_slice(bytes);
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        buf[n..].fill(0xff); // sign-extend
                    }
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.stack.push(Value::Float(v));
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'X' => {
                    let n = u32::from_le_bytes(self.le()?);
                    let s = self.string(u64::from(n))?;
                    self.stack.push(s);
                }
                0x8c => {
                    let n = self.byte()?;
                    let s = self.string(u64::from(n))?;
                    self.stack.push(s);
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.le()?);
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = persistent_storage(&pid)?;
                    self.stack.push(Value::Storage(Rc::new(storage)));
                }
                b'R' => self.reduce()?,
                b'b' => {
                    // `__setstate__`: a state dict's `_metadata`, a parameter's attributes.
                    let _state = self.pop()?;
                    match self.top()? {
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => return Err(invalid(format!("BUILD on {}", other.kind()))),
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "pickle opcode 0x{other:02x} at byte {at} is not one that PyTorch state dicts use"
                    )))
                }
            }
        }
    }
}

fn int(v: &Value, what: &str) -> PResult<u64> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        _ => Err(invalid(format!("{what} is {} instead of a non-negative int", v.kind()))),
    }
}

fn usizes(v: &Value, what: &str) -> PResult<Vec<usize>> {
    match v {
        Value::Tuple(t) => t
            .items
            .iter()
            .map(|x| int(x, what).and_then(|i| usize::try_from(i).map_err(|_| invalid(format!("{what} is too large")))))
            .collect(),
        _ => Err(invalid(format!("{what} is {} instead of a tuple", v.kind()))),
    }
}

/// `('storage', torch.FloatStorage, '0', 'cpu', 6)`.
fn persistent_storage(pid: &Value) -> PResult<StorageRef> {
    let Value::Tuple(t) = pid else {
        return Err(invalid(format!("a persistent id is {} instead of a tuple", pid.kind())));
    };
    match t.items.as_slice() {
        [Value::Str(tag), Value::Global(Global::Storage(ty)), Value::Str(key), Value::Str(_location), numel]
            if &**tag == "storage" =>
        {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(format!("storage key `{key}` is not a plain name")));
            }
            Ok(StorageRef { ty: *ty, key: key.to_string(), numel: int(numel, "a storage size")? })
        }
        _ => Err(invalid("a persistent id is not a ('storage', type, key, location, size) tuple")),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
fn rebuild_tensor(args: &[Value]) -> PResult<TensorRef> {
    let [Value::Storage(storage), offset, size, stride, ..] = args else {
        return Err(invalid("_rebuild_tensor_v2 is called without (storage, offset, size, stride, ...)"));
    };
    if !(6..=7).contains(&args.len()) {
        return Err(invalid(format!("_rebuild_tensor_v2 is called with {} arguments", args.len())));
    }
    let offset = int(offset, "a tensor offset")?;
    let shape = usizes(size, "a tensor size")?;
    let stride = usizes(stride, "a tensor stride")?;
    if shape.len() != stride.len() {
        return Err(invalid(format!("a tensor has {} sizes but {} strides", shape.len(), stride.len())));
    }
    // The last element the view touches must lie inside the storage.
    let mut numel: u64 = 1;
    let mut last: u64 = offset;
    for (&n, &s) in shape.iter().zip(&stride) {
        numel = numel.checked_mul(n as u64).ok_or_else(|| invalid("a tensor size overflows"))?;
        let reach = (n as u64).saturating_sub(1).checked_mul(s as u64).ok_or_else(|| invalid("a stride overflows"))?;
        last = last.checked_add(reach).ok_or_else(|| invalid("a stride overflows"))?;
    }
    if numel > 0 && last >= storage.numel {
        return Err(invalid(format!(
            "a tensor of shape {shape:?} (offset {offset}, stride {stride:?}) reaches past its storage of {} elements",
            storage.numel
        )));
    }
    if numel > storage.numel {
        return Err(invalid(format!(
            "a tensor of shape {shape:?} repeats the {} elements of its storage (stride {stride:?}); \
             such views are not read",
            storage.numel
        )));
    }
    Ok(TensorRef { storage: Rc::clone(storage), offset, shape, stride })
}

/// Interpret `data` (a `data.pkl`) as a state dict: tensor names and their descriptions, in
/// the order of the pickle.
pub(crate) fn state_dict(data: &[u8]) -> Result<Vec<(String, TensorRef)>, PickleError> {
    let machine = Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), copied: 0 };
    let value = machine.run()?;
    let Value::Dict(dict) = value else {
        return Err(invalid(format!("the checkpoint holds {} instead of a state dict", value.kind())));
    };
    let mut out = Vec::with_capacity(dict.items.len());
    for (k, v) in &dict.items {
        let Value::Str(name) = k else {
            return Err(invalid(format!("a state dict key is {} instead of a string", k.kind())));
        };
        let Value::Tensor(t) = v else {
            return Err(invalid(format!("`{name}` is {} instead of a tensor", v.kind())));
        };
        out.push((name.to_string(), TensorRef::clone(t)));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The pickle `torch.save({"w": torch.zeros(2, 3)})` writes (protocol 2), for tests.
    pub(crate) fn state_dict_pickle(storage: &str, numel: u8, shape: &[u8], stride: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend_from_slice(b"ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00w");
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storage");
        p.extend_from_slice(format!("ctorch\n{storage}\nq\x03X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK").as_bytes());
        p.extend_from_slice(&[numel, b't', b'Q', b'K', 0, b'(']);
        for s in shape {
            p.extend_from_slice(&[b'K', *s]);
        }
        p.push(b't');
        p.push(b'(');
        for s in stride {
            p.extend_from_slice(&[b'K', *s]);
        }
        p.push(b't');
        p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)Rtq\x04Rq\x05u.");
        p
    }

    #[test]
    fn reads_a_state_dict() {
        let tensors = state_dict(&state_dict_pickle("FloatStorage", 6, &[2, 3], &[3, 1])).unwrap();
        assert_eq!(tensors.len(), 1);
        let (name, t) = &tensors[0];
        assert_eq!(name, "w");
        assert_eq!(t.shape, [2, 3]);
        assert_eq!(t.storage.ty, StorageType::F32);
        assert!(t.is_contiguous());
        let transposed = state_dict(&state_dict_pickle("HalfStorage", 6, &[3, 2], &[1, 3])).unwrap();
        assert!(!transposed[0].1.is_contiguous());
    }

    #[test]
    fn refuses_foreign_globals_by_name() {
        let evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85R.";
        assert_eq!(state_dict(evil), Err(PickleError::Forbidden("os.system".into())));
        let stack_global = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.";
        assert_eq!(state_dict(stack_global), Err(PickleError::Forbidden("builtins.eval".into())));
        let storage_like = b"\x80\x02ctorch\nload\n.";
        assert_eq!(state_dict(storage_like), Err(PickleError::Forbidden("torch.load".into())));
    }

    #[test]
    fn refuses_views_outside_their_storage() {
        let err = state_dict(&state_dict_pickle("FloatStorage", 5, &[2, 3], &[3, 1])).unwrap_err();
        assert!(matches!(err, PickleError::Invalid(m) if m.contains("reaches past")));
    }

    #[test]
    fn refuses_deep_nesting_and_odd_shapes() {
        let mut deep = vec![0x80, 2, b')'];
        deep.extend(std::iter::repeat_n(0x85u8, 10_000));
        deep.push(b'.');
        assert!(matches!(state_dict(&deep), Err(PickleError::Invalid(m)) if m.contains("nest")));
        // A list that references itself many times through the memo stays cheap.
        let mut wide = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..1000 {
            wide.extend_from_slice(b"h\x00a");
        }
        wide.push(b'.');
        assert!(state_dict(&wide).is_err()); // a list, not a state dict, but no blow-up
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let good = state_dict_pickle("FloatStorage", 6, &[2, 3], &[3, 1]);
        for len in 0..good.len() {
            assert!(state_dict(&good[..len]).is_err(), "{len}");
        }
        for i in 0..good.len() {
            for value in [0x00, 0x28, 0x2e, 0x4b, 0x52, 0x85, 0x8a, 0xff] {
                let mut bad = good.clone();
                bad[i] = value;
                let _ = state_dict(&bad);
            }
        }
    }
}
