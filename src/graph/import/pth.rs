//! PyTorch checkpoints written by `torch.save`: the zip format (torch ≥ 1.6: `<name>/data.pkl`
//! plus one `<name>/data/<key>` entry per storage and a `byteorder` entry) and the legacy format
//! (a magic number, protocol version and system info pickled one after another, then the object,
//! then the list of storage keys, then each storage as an element count and raw bytes).
//!
//! The object pickle is read by [`super::pickle`] with an allow-list of names: dicts
//! (`collections.OrderedDict`), tensor rebuilding (`torch._utils._rebuild_tensor_v2`,
//! `_rebuild_tensor`, `_rebuild_parameter`, `_rebuild_parameter_with_state`) and the typed
//! storage classes (`torch.FloatStorage`, …) that persistent ids name. Anything else is refused,
//! so loading a checkpoint never runs code from it.
//!
//! Which dict is the state dict: the top-level object when it is a dict of tensors; otherwise
//! the first of its entries `state_dict`, `model_state_dict`, `model`, `net`, `network`,
//! `module`, `ema` that is one; otherwise its only entry that is one (so `{"epoch": 3,
//! "state_dict": {...}, "optimizer": {...}}` works). Integer tensors (e.g.
//! `num_batches_tracked`) are skipped, like the `.safetensors` reader does.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use super::pickle::{self, PickleError, Resolver, Value};
use super::safetensors::f16_to_f32;
use super::{ImportError, NamedTensor};

/// Element type of a storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    /// float32.
    F32,
    /// float64.
    F64,
    /// float16.
    F16,
    /// bfloat16.
    BF16,
    /// An integer or bool type of the given byte size (read only to be skipped).
    Int(usize),
}

impl StorageDtype {
    /// From a storage class name such as `FloatStorage`.
    fn from_class(name: &str) -> Option<StorageDtype> {
        Some(match name {
            "FloatStorage" => StorageDtype::F32,
            "DoubleStorage" => StorageDtype::F64,
            "HalfStorage" => StorageDtype::F16,
            "BFloat16Storage" => StorageDtype::BF16,
            "LongStorage" => StorageDtype::Int(8),
            "IntStorage" => StorageDtype::Int(4),
            "ShortStorage" => StorageDtype::Int(2),
            "CharStorage" | "ByteStorage" | "BoolStorage" => StorageDtype::Int(1),
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageDtype::F32 => 4,
            StorageDtype::F64 => 8,
            StorageDtype::F16 | StorageDtype::BF16 => 2,
            StorageDtype::Int(n) => n,
        }
    }

    /// Decodes one little-endian element.
    fn decode(self, b: &[u8]) -> f32 {
        match self {
            StorageDtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            StorageDtype::F64 => f64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f32,
            StorageDtype::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            StorageDtype::BF16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
            StorageDtype::Int(_) => 0.0,
        }
    }
}

/// A storage named by a persistent id.
#[derive(Clone, Debug)]
struct StorageRef {
    key: String,
    dtype: StorageDtype,
}

/// A tensor as a strided view of a storage (`_rebuild_tensor_v2`'s arguments).
#[derive(Clone, Debug)]
struct TensorRef {
    storage: StorageRef,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

const STORAGE_CLASSES: &[&str] = &[
    "FloatStorage",
    "DoubleStorage",
    "HalfStorage",
    "BFloat16Storage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
];

/// The allow-list and the meaning of each allowed call; remembers the element type of every
/// storage it has seen (the legacy format's storage records need it).
#[derive(Default)]
struct TorchResolver {
    storage_dtypes: HashMap<String, StorageDtype>,
}

fn malformed(msg: impl Into<String>) -> PickleError {
    PickleError::Malformed(msg.into())
}

/// Most dimensions a tensor may have (torch itself stops at 64).
const MAX_RANK: usize = 64;

fn usize_list(v: &Value, what: &str) -> Result<Vec<usize>, PickleError> {
    // Checked before the items are copied: a memoised huge tuple can be referenced often.
    if v.item_count().is_some_and(|n| n > MAX_RANK) {
        return Err(malformed(format!(
            "tensor {what} has more than {MAX_RANK} dimensions"
        )));
    }
    v.items()
        .ok_or_else(|| malformed(format!("tensor {what} is not a tuple")))?
        .iter()
        .map(|x| {
            x.as_int()
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| malformed(format!("tensor {what} holds {x:?}")))
        })
        .collect()
}

impl Resolver for TorchResolver {
    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        let ok = match module {
            "collections" => name == "OrderedDict",
            "torch._utils" => matches!(
                name,
                "_rebuild_tensor"
                    | "_rebuild_tensor_v2"
                    | "_rebuild_parameter"
                    | "_rebuild_parameter_with_state"
            ),
            "torch" => STORAGE_CLASSES.contains(&name),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(PickleError::Refused(format!("{module}.{name}")))
        }
    }

    fn persistent_load(&mut self, pid: Value) -> Result<Value, PickleError> {
        // ('storage', storage class, key, location, numel[, view metadata])
        if pid.item_count().is_some_and(|n| n > 6) {
            return Err(malformed(format!("unexpected persistent id {pid:?}")));
        }
        let items = pid
            .items()
            .ok_or_else(|| malformed("persistent id is not a tuple"))?;
        if items.first().and_then(Value::as_str) != Some("storage") || items.len() < 5 {
            return Err(malformed(format!("unexpected persistent id {pid:?}")));
        }
        let dtype = match &items[1] {
            Value::Global(g) => g
                .strip_prefix("torch.")
                .and_then(StorageDtype::from_class)
                .ok_or_else(|| malformed(format!("unknown storage type {g}")))?,
            other => return Err(malformed(format!("storage type {other:?}"))),
        };
        let key = match &items[2] {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            other => return Err(malformed(format!("storage key {other:?}"))),
        };
        if items.len() > 5 && !matches!(items[5], Value::None) {
            return Err(malformed(
                "storage views (checkpoints from torch < 0.4) are not supported",
            ));
        }
        self.storage_dtypes.insert(key.clone(), dtype);
        Ok(Value::Object(Rc::new(StorageRef { key, dtype })))
    }

    fn call(&mut self, func: &str, args: Vec<Value>) -> Result<Value, PickleError> {
        match func {
            "collections.OrderedDict" => {
                if !args.is_empty() {
                    return Err(malformed("OrderedDict with arguments"));
                }
                Ok(Value::new_dict())
            }
            "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
                if args.len() < 4 {
                    return Err(malformed(format!("{func} with {} arguments", args.len())));
                }
                let storage = args[0]
                    .object::<StorageRef>()
                    .ok_or_else(|| malformed("tensor without a storage"))?
                    .clone();
                let offset = args[1]
                    .as_int()
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| malformed("bad storage offset"))?;
                let size = usize_list(&args[2], "size")?;
                let stride = usize_list(&args[3], "stride")?;
                if size.len() != stride.len() {
                    return Err(malformed("tensor size and stride differ in length"));
                }
                Ok(Value::Object(Rc::new(TensorRef {
                    storage,
                    offset,
                    size,
                    stride,
                })))
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                match args.into_iter().next() {
                    Some(t) if t.object::<TensorRef>().is_some() => Ok(t),
                    _ => Err(malformed("parameter without a tensor")),
                }
            }
            // Storage classes are accepted as names inside persistent ids, never as calls.
            other => Err(PickleError::Refused(other.to_string())),
        }
    }
}

/// Where the raw bytes of each storage are.
enum Storages<'a> {
    /// Zip entries `<prefix>data/<key>`.
    Zip {
        archive: zip::ZipArchive<std::io::Cursor<&'a [u8]>>,
        prefix: String,
        big_endian: bool,
        /// Most bytes one entry may unpack to ([`entry_limit`]).
        limit: usize,
    },
    /// Byte ranges in the legacy file.
    Legacy {
        data: &'a [u8],
        ranges: HashMap<String, (usize, usize)>,
        big_endian: bool,
    },
}

impl Storages<'_> {
    fn bytes(&mut self, key: &str) -> Result<(Vec<u8>, bool), String> {
        match self {
            Storages::Zip {
                archive,
                prefix,
                big_endian,
                limit,
            } => {
                let name = format!("{prefix}data/{key}");
                Ok((read_entry(archive, &name, *limit)?, *big_endian))
            }
            Storages::Legacy {
                data,
                ranges,
                big_endian,
            } => {
                let &(start, end) = ranges
                    .get(key)
                    .ok_or_else(|| format!("storage '{key}' is missing"))?;
                Ok((data[start..end].to_vec(), *big_endian))
            }
        }
    }
}

/// Reads the float tensors of the state dict in a `torch.save` file.
pub fn read(path: &Path) -> Result<Vec<NamedTensor>, ImportError> {
    let data =
        std::fs::read(path).map_err(|e| ImportError::file(path, format!("cannot read: {e}")))?;
    read_bytes(&data).map_err(|e| match e {
        ReadError::Pickle(PickleError::Refused(global)) => ImportError::Refused {
            path: path.to_path_buf(),
            global,
        },
        ReadError::Pickle(PickleError::Malformed(m)) | ReadError::Other(m) => {
            ImportError::file(path, format!("not a readable PyTorch checkpoint: {m}"))
        }
    })
}

enum ReadError {
    Pickle(PickleError),
    Other(String),
}

impl From<PickleError> for ReadError {
    fn from(e: PickleError) -> Self {
        ReadError::Pickle(e)
    }
}

impl From<String> for ReadError {
    fn from(e: String) -> Self {
        ReadError::Other(e)
    }
}

/// Most elements all tensors of a file together may expand to: its size in bytes (a float
/// storage element takes at least 2 bytes, so views that do not overlap stay well below), and
/// at least 2²⁶ (256 MiB of f32) so that small files with broadcast (stride-0) views still
/// load. A crafted view claiming 2⁴⁰ elements of a one-element storage is refused here.
pub fn element_limit(file_len: usize) -> usize {
    file_len.max(1 << 26)
}

/// Most bytes one zip entry may unpack to: `torch.save` stores entries uncompressed, so a
/// real entry is smaller than the file; 8× the file (at least 64 MiB) leaves room for
/// recompressed archives while refusing a deflate bomb.
fn entry_limit(file_len: usize) -> usize {
    file_len.saturating_mul(8).max(1 << 26)
}

/// Reads the zip entry `name`, refusing one that unpacks to more than `limit` bytes.
fn read_entry(
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let entry = archive
        .by_name(name)
        .map_err(|e| format!("cannot open '{name}': {e}"))?;
    let mut out = Vec::with_capacity((entry.size() as usize).min(limit));
    entry
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot read '{name}': {e}"))?;
    if out.len() > limit {
        return Err(format!("'{name}' unpacks to more than {limit} bytes"));
    }
    Ok(out)
}

/// Reads the state dict from the bytes of a `torch.save` file.
fn read_bytes(data: &[u8]) -> Result<Vec<NamedTensor>, ReadError> {
    let (root, mut storages) = if data.starts_with(b"PK\x03\x04") {
        read_zip(data)?
    } else {
        read_legacy(data)?
    };
    let dict = state_dict(&root)?;
    let limit = element_limit(data.len());
    let mut expanded = 0usize;
    // Each storage is read once, however many tensors view it.
    let mut read: HashMap<String, Rc<(Vec<u8>, bool)>> = HashMap::new();
    let mut out = Vec::new();
    for (key, t) in dict {
        if let StorageDtype::Int(_) = t.storage.dtype {
            continue;
        }
        let numel = element_count(&t.size).ok_or_else(|| {
            format!(
                "tensor '{key}' has size {:?}, whose product overflows",
                t.size
            )
        })?;
        expanded = expanded.saturating_add(numel);
        if expanded > limit {
            return Err(format!(
                "tensor '{key}' of size {:?} takes the tensors past {limit} elements, the most a \
                 {}-byte file may expand to",
                t.size,
                data.len()
            )
            .into());
        }
        let storage = match read.get(&t.storage.key) {
            Some(s) => s.clone(),
            None => {
                let s = Rc::new(storages.bytes(&t.storage.key)?);
                read.insert(t.storage.key.clone(), s.clone());
                s
            }
        };
        let (bytes, big_endian) = (&storage.0, storage.1);
        let values =
            strided_values(&t, bytes, big_endian).map_err(|m| format!("tensor '{key}': {m}"))?;
        out.push(NamedTensor {
            key,
            shape: t.size.clone(),
            values,
        });
    }
    Ok(out)
}

fn read_zip(data: &[u8]) -> Result<(Value, Storages<'_>), ReadError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("damaged zip archive: {e}"))?;
    let pkl = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .filter(|n| n == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| n.len())
        .ok_or_else(|| "the zip archive has no data.pkl (not a torch.save file)".to_string())?;
    let prefix = pkl[..pkl.len() - "data.pkl".len()].to_string();
    let limit = entry_limit(data.len());
    let big_endian = match read_entry(&mut archive, &format!("{prefix}byteorder"), limit) {
        Ok(b) => match String::from_utf8_lossy(&b).trim() {
            "little" => false,
            "big" => true,
            other => return Err(format!("unknown byte order '{other}'").into()),
        },
        Err(_) => false, // files from torch < 1.10 have no byteorder entry: little endian
    };
    let pickle_bytes = read_entry(&mut archive, &pkl, limit)?;
    let (root, _) = pickle::load(&pickle_bytes, &mut TorchResolver::default())?;
    Ok((
        root,
        Storages::Zip {
            archive,
            prefix,
            big_endian,
            limit,
        },
    ))
}

/// `torch.serialization`'s magic number, the first pickle of a legacy file.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;

fn read_legacy(data: &[u8]) -> Result<(Value, Storages<'_>), ReadError> {
    if !data.starts_with(b"\x80") {
        return Err("neither a zip archive nor a pickle (not a torch.save file)"
            .to_string()
            .into());
    }
    let mut pos = 0;
    let mut next = |resolver: &mut TorchResolver| -> Result<Value, ReadError> {
        let (v, used) = pickle::load(&data[pos..], resolver)?;
        pos += used;
        Ok(v)
    };
    let mut r = TorchResolver::default();
    if !matches!(next(&mut r)?, Value::Int(LEGACY_MAGIC)) {
        return Err(
            "a pickle without torch's magic number (not a torch.save file)"
                .to_string()
                .into(),
        );
    }
    let protocol = next(&mut r)?;
    if protocol.as_int() != Some(1001) {
        return Err(format!("unsupported legacy protocol {protocol:?}").into());
    }
    let sys_info = next(&mut r)?;
    let big_endian = match &sys_info {
        Value::Dict(d) => d
            .borrow()
            .iter()
            .find(|(k, _)| k.as_str() == Some("little_endian"))
            .is_some_and(|(_, v)| matches!(v, Value::Bool(false))),
        _ => false,
    };
    let root = next(&mut r)?;
    let keys = next(&mut TorchResolver::default())?
        .items()
        .ok_or_else(|| "the storage key list is not a list".to_string())?;
    let mut ranges = HashMap::new();
    // Each storage: element count (int64) then the elements. The element size comes from the
    // storage type, which only the object pickle names.
    for key in keys {
        let key = match key {
            Value::Str(s) => s.to_string(),
            other => return Err(format!("storage key {other:?}").into()),
        };
        let elem = r
            .storage_dtypes
            .get(&key)
            .map(|d| d.size())
            .ok_or_else(|| format!("storage '{key}' is not referenced by the object"))?;
        let head = data
            .get(pos..pos + 8)
            .ok_or_else(|| "the file ends early (truncated?)".to_string())?;
        let raw: [u8; 8] = head.try_into().expect("8 bytes");
        let count = if big_endian {
            u64::from_be_bytes(raw)
        } else {
            u64::from_le_bytes(raw)
        };
        let len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(elem))
            .ok_or_else(|| "storage size out of range".to_string())?;
        let start = pos + 8;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| "the file ends early (truncated?)".to_string())?;
        ranges.insert(key, (start, end));
        pos = end;
    }
    Ok((
        root,
        Storages::Legacy {
            data,
            ranges,
            big_endian,
        },
    ))
}

/// The tensors of `v` if it is a dict from strings to tensors (at least one).
fn tensor_dict(v: &Value) -> Option<Vec<(String, TensorRef)>> {
    let Value::Dict(d) = v else { return None };
    let d = d.borrow();
    if d.is_empty() {
        return None;
    }
    d.iter()
        .map(|(k, v)| Some((k.as_str()?.to_string(), v.object::<TensorRef>()?.clone())))
        .collect()
}

/// Keys under which training scripts commonly nest the model's state dict.
pub const NESTED_KEYS: &[&str] = &[
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "module",
    "ema",
];

fn state_dict(root: &Value) -> Result<Vec<(String, TensorRef)>, String> {
    if let Some(d) = tensor_dict(root) {
        return Ok(d);
    }
    let Value::Dict(entries) = root else {
        return Err(format!(
            "the file holds {}, not a dict of tensors",
            kind_of(root)
        ));
    };
    let entries = entries.borrow();
    for want in NESTED_KEYS {
        if let Some((_, v)) = entries.iter().find(|(k, _)| k.as_str() == Some(want))
            && let Some(d) = tensor_dict(v)
        {
            return Ok(d);
        }
    }
    // Each distinct dict is examined once: a crafted file can list one memoised dict of many
    // tensors under many keys, and converting it once per key would take quadratic memory.
    let mut examined = HashSet::new();
    let candidates: Vec<(String, Vec<(String, TensorRef)>)> = entries
        .iter()
        .filter(|(_, v)| matches!(v, Value::Dict(d) if examined.insert(Rc::as_ptr(d))))
        .filter_map(|(k, v)| Some((format!("{k:?}"), tensor_dict(v)?)))
        .collect();
    let keys = shown_list(entries.iter().map(|(k, _)| format!("{k:?}")), entries.len());
    match candidates.len() {
        1 => Ok(candidates.into_iter().next().expect("one").1),
        0 => Err(format!("no dict of tensors found; top-level keys: {keys}")),
        _ => Err(format!(
            "several dicts of tensors ({}); top-level keys: {keys}",
            shown_list(candidates.iter().map(|(k, _)| k.clone()), candidates.len())
        )),
    }
}

/// The first few of `len` names, comma-separated: a message stays one short line however many
/// keys a file has.
fn shown_list(names: impl Iterator<Item = String>, len: usize) -> String {
    const SHOWN: usize = 8;
    let mut shown = names.take(SHOWN).collect::<Vec<_>>().join(", ");
    if len > SHOWN {
        shown.push_str(&format!(", … ({len} in all)"));
    }
    shown
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Dict(_) => "a dict",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Object(_) => "a single tensor",
        _ => "a plain value",
    }
}

/// The product of `size`, or `None` when it overflows.
fn element_count(size: &[usize]) -> Option<usize> {
    size.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n))
}

/// The storage element a non-empty view reaches last, `offset + Σ (sizeₖ − 1)·strideₖ`, or
/// `None` when that overflows.
fn last_element(t: &TensorRef) -> Option<usize> {
    t.size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&n, &s)| {
            acc.checked_add(n.checked_sub(1)?.checked_mul(s)?)
        })
}

/// Values of a strided view in row-major order of its size: element `(i₀, …)` is storage
/// element `offset + Σ iₖ·strideₖ`. The view must fit the storage's actual bytes.
fn strided_values(t: &TensorRef, bytes: &[u8], big_endian: bool) -> Result<Vec<f32>, String> {
    let es = t.storage.dtype.size();
    let available = bytes.len() / es;
    let numel = element_count(&t.size).ok_or_else(|| format!("size {:?} overflows", t.size))?;
    if numel == 0 {
        return Ok(Vec::new());
    }
    let last = last_element(t).ok_or_else(|| {
        format!(
            "view (offset {}, size {:?}, stride {:?}) reaches past any storage",
            t.offset, t.size, t.stride
        )
    })?;
    if last >= available {
        return Err(format!(
            "view reaches element {last} of a storage with {available} elements"
        ));
    }
    let element = |i: usize| -> f32 {
        let b = &bytes[i * es..(i + 1) * es];
        if big_endian {
            let mut le = b.to_vec();
            le.reverse();
            t.storage.dtype.decode(&le)
        } else {
            t.storage.dtype.decode(b)
        }
    };
    let rank = t.size.len();
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; rank];
    for _ in 0..numel {
        let flat = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(&i, &s)| i * s)
                .sum::<usize>();
        out.push(element(flat));
        // Advance the multi-index, last dimension fastest.
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < t.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_view_walks_offset_and_strides() {
        // storage 0..12 as float32; view of size [2, 3], strides [1, 4], offset 1 (a transpose
        // of a [3, 4] block starting at element 1): rows are (1, 5, 9) and (2, 6, 10).
        let bytes: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let t = TensorRef {
            storage: StorageRef {
                key: "0".into(),
                dtype: StorageDtype::F32,
            },
            offset: 1,
            size: vec![2, 3],
            stride: vec![1, 4],
        };
        assert_eq!(
            strided_values(&t, &bytes, false).unwrap(),
            vec![1.0, 5.0, 9.0, 2.0, 6.0, 10.0]
        );
        let out_of_range = TensorRef {
            offset: 3,
            ..t.clone()
        };
        assert!(strided_values(&out_of_range, &bytes, false).is_err());
    }

    #[test]
    fn big_endian_storages_are_swapped() {
        let bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let t = TensorRef {
            storage: StorageRef {
                key: "0".into(),
                dtype: StorageDtype::F32,
            },
            offset: 0,
            size: vec![2],
            stride: vec![1],
        };
        assert_eq!(strided_values(&t, &bytes, true).unwrap(), vec![1.5, -2.0]);
    }
}
