//! Constant tensors of an ONNX graph (initialisers, `Constant` nodes and folded shape
//! arithmetic) and the operations constant folding needs, with ONNX's semantics
//! (numpy-style broadcasting, negative axes counted from the end, clamped slices).

use super::proto::{TensorProto, data_type as dt};

/// Element values: every float type becomes f32, every integer and bool type i64.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// Float values.
    F32(Vec<f32>),
    /// Integer values.
    I64(Vec<i64>),
}

/// A constant tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    /// Shape (empty for a scalar).
    pub dims: Vec<usize>,
    /// Values.
    pub data: Data,
}

/// Element count of `dims`; saturates instead of overflowing, so a crafted shape compares as
/// too large rather than wrapping to a small number (a zero dim still gives 0).
pub fn numel(dims: &[usize]) -> usize {
    dims.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
}

/// Most elements a constant computed at import time (`ConstantOfShape`, a broadcast, a
/// `Gather` or `Concat` of constants) may have unless an input is already that large: 2²⁶,
/// 256 MiB of f32 or 512 MiB of i64. Folded constants are shape arithmetic and small masks in
/// real models; a crafted `ConstantOfShape([3·10⁹])` is refused before any allocation.
pub const MAX_FOLDED_ELEMENTS: usize = 1 << 26;

/// The element count of a constant about to be built with `dims`, refused past
/// [`MAX_FOLDED_ELEMENTS`] or `allowance` (the size of an input it is computed from), whichever
/// is larger.
pub fn folded_numel(dims: &[usize], allowance: usize) -> Result<usize, String> {
    let n = numel(dims);
    let limit = MAX_FOLDED_ELEMENTS.max(allowance);
    if n > limit {
        return Err(format!(
            "a constant of shape {dims:?} would have more than {limit} elements"
        ));
    }
    Ok(n)
}

/// Normalises a possibly negative axis for a tensor of rank `rank`.
pub fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if (0..r).contains(&v) {
        Ok(v as usize)
    } else {
        Err(format!("axis {a} is out of range for rank {rank}"))
    }
}

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Calls `f` with each multi-index of `dims` in row-major order.
fn for_each_index(dims: &[usize], mut f: impl FnMut(&[usize])) {
    let n = numel(dims);
    let mut idx = vec![0; dims.len()];
    for _ in 0..n {
        f(&idx);
        for d in (0..dims.len()).rev() {
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// The dims of `t`, refused when one is negative.
fn proto_dims(t: &TensorProto) -> Result<Vec<usize>, String> {
    t.dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| format!("tensor '{}' has dims {:?}", t.name, t.dims))
        })
        .collect()
}

/// The error for a data type we do not decode.
fn unsupported_type(t: &TensorProto) -> String {
    format!(
        "tensor '{}' has ONNX data type {}, which is not supported",
        t.name, t.data_type
    )
}

/// `raw_data` split into `n` little-endian words of `size` bytes, refused unless it holds
/// exactly that many bytes (a crafted length must not be read past or half-read).
fn raw_words(t: &TensorProto, n: usize, size: usize) -> Result<Vec<&[u8]>, String> {
    let raw = &t.raw_data;
    if n.checked_mul(size) != Some(raw.len()) {
        return Err(format!(
            "tensor '{}' has {} bytes of data for {n} elements",
            t.name,
            raw.len()
        ));
    }
    Ok(raw.chunks_exact(size).collect())
}

/// The `n` values of `t` from `raw_data` (little-endian, the element type's width).
fn decode_raw(t: &TensorProto, n: usize) -> Result<Data, String> {
    Ok(match t.data_type {
        dt::FLOAT => Data::F32(
            raw_words(t, n, 4)?
                .iter()
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        dt::DOUBLE => Data::F32(
            raw_words(t, n, 8)?
                .iter()
                .map(|b| f64::from_le_bytes((*b).try_into().expect("8")) as f32)
                .collect(),
        ),
        dt::FLOAT16 | dt::BFLOAT16 => {
            let bits = raw_words(t, n, 2)?
                .iter()
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            Data::F32(half_floats(t.data_type, bits))
        }
        dt::INT64 => Data::I64(
            raw_words(t, n, 8)?
                .iter()
                .map(|b| i64::from_le_bytes((*b).try_into().expect("8")))
                .collect(),
        ),
        dt::INT32 | dt::INT16 | dt::INT8 | dt::UINT16 | dt::UINT8 | dt::BOOL => {
            raw_small_integers(t, n)?
        }
        dt::UINT32 | dt::UINT64 => {
            let size = if t.data_type == dt::UINT32 { 4 } else { 8 };
            Data::I64(
                raw_words(t, n, size)?
                    .iter()
                    .map(|b| {
                        let mut w = [0u8; 8];
                        w[..size].copy_from_slice(b);
                        u64::from_le_bytes(w) as i64
                    })
                    .collect(),
            )
        }
        _ => return Err(unsupported_type(t)),
    })
}

/// Raw integers narrower than 64 bits (and bools), widened to i64 with their own signedness.
fn raw_small_integers(t: &TensorProto, n: usize) -> Result<Data, String> {
    let size = match t.data_type {
        dt::INT32 => 4,
        dt::INT16 | dt::UINT16 => 2,
        _ => 1,
    };
    Ok(Data::I64(
        raw_words(t, n, size)?
            .iter()
            .map(|b| match t.data_type {
                dt::INT32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
                dt::INT16 => i16::from_le_bytes([b[0], b[1]]) as i64,
                dt::UINT16 => u16::from_le_bytes([b[0], b[1]]) as i64,
                dt::INT8 => b[0] as i8 as i64,
                _ => b[0] as i64,
            })
            .collect(),
    ))
}

/// The values of `t` from its typed field (ONNX keeps half floats and every integer narrower
/// than 64 bits in `int32_data`, unsigned 32/64-bit ones in `uint64_data`).
fn decode_typed(t: &TensorProto) -> Result<Data, String> {
    Ok(match t.data_type {
        dt::FLOAT => Data::F32(t.float_data.clone()),
        dt::DOUBLE => Data::F32(t.double_data.iter().map(|&v| v as f32).collect()),
        dt::FLOAT16 | dt::BFLOAT16 => {
            let bits = t.int32_data.iter().map(|&v| v as u16).collect();
            Data::F32(half_floats(t.data_type, bits))
        }
        dt::INT64 => Data::I64(t.int64_data.clone()),
        dt::INT32 | dt::INT16 | dt::INT8 | dt::UINT16 | dt::UINT8 | dt::BOOL => {
            Data::I64(t.int32_data.iter().map(|&v| v as i64).collect())
        }
        dt::UINT32 | dt::UINT64 => Data::I64(t.uint64_data.iter().map(|&v| v as i64).collect()),
        _ => return Err(unsupported_type(t)),
    })
}

/// IEEE half or bfloat16 bit patterns as f32 (`data_type` says which).
fn half_floats(data_type: i32, bits: Vec<u16>) -> Vec<f32> {
    bits.into_iter()
        .map(|h| {
            if data_type == dt::FLOAT16 {
                super::super::safetensors::f16_to_f32(h)
            } else {
                f32::from_bits((h as u32) << 16)
            }
        })
        .collect()
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// The elements at the given flat positions.
    fn select(&self, positions: &[usize]) -> Data {
        match self {
            Data::F32(v) => Data::F32(positions.iter().map(|&i| v[i]).collect()),
            Data::I64(v) => Data::I64(positions.iter().map(|&i| v[i]).collect()),
        }
    }
}

impl Const {
    /// A float tensor.
    pub fn f32(dims: Vec<usize>, values: Vec<f32>) -> Const {
        debug_assert_eq!(numel(&dims), values.len());
        Const {
            dims,
            data: Data::F32(values),
        }
    }

    /// An integer tensor.
    pub fn i64(dims: Vec<usize>, values: Vec<i64>) -> Const {
        debug_assert_eq!(numel(&dims), values.len());
        Const {
            dims,
            data: Data::I64(values),
        }
    }

    /// Decodes a `TensorProto`; tensors stored outside the file are refused.
    pub fn from_proto(t: &TensorProto) -> Result<Const, String> {
        if t.data_location == 1 || !t.external_data.is_empty() {
            return Err(format!(
                "tensor '{}' keeps its data in an external file, which is not supported; save the \
                 model with all tensors inside the .onnx file",
                t.name
            ));
        }
        let dims = proto_dims(t)?;
        let n = numel(&dims);
        // An empty tensor has no raw bytes either way; decoding it as raw checks its (zero)
        // byte count instead of the typed field.
        let data = if !t.raw_data.is_empty() || n == 0 {
            decode_raw(t, n)?
        } else {
            decode_typed(t)?
        };
        if data.len() != n {
            return Err(format!(
                "tensor '{}' of shape {dims:?} holds {} values",
                t.name,
                data.len()
            ));
        }
        Ok(Const { dims, data })
    }

    /// Element count.
    pub fn numel(&self) -> usize {
        numel(&self.dims)
    }

    /// Values as floats.
    pub fn floats(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Values as integers (floats are truncated toward zero, as a cast does).
    pub fn ints(&self) -> Vec<i64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
        }
    }

    /// The single value of a one-element tensor, as a float.
    pub fn scalar(&self) -> Result<f32, String> {
        match self.floats().as_slice() {
            [v] => Ok(*v),
            v => Err(format!("expected one value, got {}", v.len())),
        }
    }

    /// `Cast` to an ONNX data type: float types → f32, integer/bool types → i64.
    pub fn cast(&self, to: i32) -> Result<Const, String> {
        let data = match to {
            dt::FLOAT | dt::DOUBLE | dt::FLOAT16 | dt::BFLOAT16 => Data::F32(self.floats()),
            dt::BOOL => Data::I64(self.floats().iter().map(|&v| (v != 0.0) as i64).collect()),
            dt::INT64
            | dt::INT32
            | dt::INT16
            | dt::INT8
            | dt::UINT8
            | dt::UINT16
            | dt::UINT32
            | dt::UINT64 => Data::I64(self.ints()),
            other => return Err(format!("Cast to ONNX data type {other} is not supported")),
        };
        Ok(Const {
            dims: self.dims.clone(),
            data,
        })
    }

    /// The same values with new dims (same element count).
    pub fn reshaped(&self, dims: Vec<usize>) -> Result<Const, String> {
        if numel(&dims) != self.numel() {
            return Err(format!("cannot reshape {:?} to {dims:?}", self.dims));
        }
        Ok(Const {
            dims,
            data: self.data.clone(),
        })
    }

    /// `Transpose`: output dim `i` is input dim `perm[i]`.
    pub fn transpose(&self, perm: &[usize]) -> Result<Const, String> {
        let mut sorted = perm.to_vec();
        sorted.sort_unstable();
        if !sorted.iter().copied().eq(0..self.dims.len()) {
            return Err(format!("permutation {perm:?} for rank {}", self.dims.len()));
        }
        let out_dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let in_strides = strides(&self.dims);
        let mut pos = Vec::with_capacity(self.numel());
        for_each_index(&out_dims, |idx| {
            pos.push(idx.iter().zip(perm).map(|(&i, &p)| i * in_strides[p]).sum());
        });
        Ok(Const {
            dims: out_dims,
            data: self.data.select(&pos),
        })
    }

    /// `Gather` along `axis` with integer indices (negative ones count from the end).
    pub fn gather(&self, indices: &Const, axis_attr: i64) -> Result<Const, String> {
        let ax = axis(axis_attr, self.dims.len())?;
        let n = self.dims[ax] as i64;
        let idx: Vec<usize> = indices
            .ints()
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + n } else { i };
                if (0..n).contains(&j) {
                    Ok(j as usize)
                } else {
                    Err(format!("Gather index {i} out of range for size {n}"))
                }
            })
            .collect::<Result<_, _>>()?;
        let mut out_dims = self.dims[..ax].to_vec();
        out_dims.extend(&indices.dims);
        out_dims.extend(&self.dims[ax + 1..]);
        let (outer, inner) = (numel(&self.dims[..ax]), numel(&self.dims[ax + 1..]));
        let mut pos = Vec::with_capacity(folded_numel(&out_dims, self.numel())?);
        for o in 0..outer {
            for &i in &idx {
                pos.extend((0..inner).map(|k| (o * self.dims[ax] + i) * inner + k));
            }
        }
        Ok(Const {
            dims: out_dims,
            data: self.data.select(&pos),
        })
    }

    /// `Slice` with per-axis starts, ends and steps (clamped like ONNX and numpy).
    pub fn slice(
        &self,
        starts: &[i64],
        ends: &[i64],
        axes: Option<&[i64]>,
        steps: Option<&[i64]>,
    ) -> Result<Const, String> {
        let rank = self.dims.len();
        let default_axes: Vec<i64> = (0..starts.len() as i64).collect();
        let axes = axes.unwrap_or(&default_axes);
        if starts.len() != ends.len() || axes.len() != starts.len() {
            return Err("Slice starts, ends and axes differ in length".into());
        }
        // Per dimension: first index, step, count.
        let mut spec: Vec<(i64, i64, usize)> = self.dims.iter().map(|&d| (0, 1, d)).collect();
        for (k, &a) in axes.iter().enumerate() {
            let ax = axis(a, rank)?;
            let d = self.dims[ax] as i64;
            let step = steps.map_or(1, |s| s[k]);
            if step == 0 {
                return Err("Slice step 0".into());
            }
            let norm = |v: i64| if v < 0 { v + d } else { v };
            let (start, end) = (norm(starts[k]), norm(ends[k]));
            // In i128: starts, ends and steps are arbitrary i64 in a crafted file.
            let (d, step) = (d as i128, step as i128);
            let (start, end) = (start as i128, end as i128);
            let (start, count) = if step > 0 {
                let s = start.clamp(0, d);
                let e = end.clamp(0, d);
                (s, if e > s { (e - s + step - 1) / step } else { 0 })
            } else {
                let s = start.clamp(-1, d - 1);
                let e = end.clamp(-1, d - 1);
                (s, if s > e { (s - e - step - 1) / -step } else { 0 })
            };
            let (start, step) = (start as i64, step as i64);
            spec[ax] = (start, step, count as usize);
        }
        let out_dims: Vec<usize> = spec.iter().map(|s| s.2).collect();
        let in_strides = strides(&self.dims);
        let mut pos = Vec::with_capacity(numel(&out_dims));
        for_each_index(&out_dims, |idx| {
            pos.push(
                idx.iter()
                    .enumerate()
                    .map(|(d, &i)| ((spec[d].0 + i as i64 * spec[d].1) as usize) * in_strides[d])
                    .sum(),
            );
        });
        Ok(Const {
            dims: out_dims,
            data: self.data.select(&pos),
        })
    }

    /// `Concat` along `axis`; all parts integer or all float.
    pub fn concat(parts: &[Const], axis_attr: i64) -> Result<Const, String> {
        let first = parts.first().ok_or("Concat of nothing")?;
        let rank = first.dims.len();
        let ax = axis(axis_attr, rank)?;
        for p in parts {
            if p.dims.len() != rank
                || p.dims[..ax] != first.dims[..ax]
                || p.dims[ax + 1..] != first.dims[ax + 1..]
            {
                return Err(format!(
                    "Concat of shapes {:?} and {:?}",
                    first.dims, p.dims
                ));
            }
        }
        let mut out_dims = first.dims.clone();
        out_dims[ax] = parts
            .iter()
            .fold(0usize, |acc, p| acc.saturating_add(p.dims[ax]));
        folded_numel(&out_dims, 0)?;
        let outer = numel(&first.dims[..ax]);
        let all_int = parts.iter().all(|p| matches!(p.data, Data::I64(_)));
        let mut ints = Vec::new();
        let mut floats = Vec::new();
        for o in 0..outer {
            for p in parts {
                let block = numel(&p.dims[ax..]);
                let range = o * block..(o + 1) * block;
                if all_int {
                    ints.extend_from_slice(&p.ints()[range]);
                } else {
                    floats.extend_from_slice(&p.floats()[range]);
                }
            }
        }
        Ok(Const {
            dims: out_dims,
            data: if all_int {
                Data::I64(ints)
            } else {
                Data::F32(floats)
            },
        })
    }

    /// `Unsqueeze`: inserts size-1 dims at `axes` (positions in the output).
    pub fn unsqueeze(&self, axes: &[i64]) -> Result<Const, String> {
        self.reshaped(unsqueezed_dims(&self.dims, axes)?)
    }

    /// `Squeeze`: removes the size-1 dims at `axes` (all size-1 dims when `None`).
    pub fn squeeze(&self, axes: Option<&[i64]>) -> Result<Const, String> {
        let dims = squeezed_dims(&self.dims, axes)?;
        self.reshaped(dims)
    }

    /// Element-wise `Add`, `Sub`, `Mul` or `Div` with broadcasting; integer if both are.
    pub fn binary(op: &str, a: &Const, b: &Const) -> Result<Const, String> {
        let dims = broadcast_dims(&a.dims, &b.dims)?;
        folded_numel(&dims, a.numel().max(b.numel()))?;
        let (pa, pb) = (a.broadcast_positions(&dims), b.broadcast_positions(&dims));
        let data = match (&a.data, &b.data) {
            (Data::I64(x), Data::I64(y)) => Data::I64(
                pa.iter()
                    .zip(&pb)
                    .map(|(&i, &j)| {
                        let (u, v) = (x[i], y[j]);
                        Ok(match op {
                            "Add" => u.wrapping_add(v),
                            "Sub" => u.wrapping_sub(v),
                            "Mul" => u.wrapping_mul(v),
                            _ => u.checked_div(v).ok_or("integer division by zero")?,
                        })
                    })
                    .collect::<Result<_, &str>>()?,
            ),
            _ => {
                let (x, y) = (a.floats(), b.floats());
                Data::F32(
                    pa.iter()
                        .zip(&pb)
                        .map(|(&i, &j)| {
                            let (u, v) = (x[i], y[j]);
                            match op {
                                "Add" => u + v,
                                "Sub" => u - v,
                                "Mul" => u * v,
                                _ => u / v,
                            }
                        })
                        .collect(),
                )
            }
        };
        Ok(Const { dims, data })
    }

    /// ONNX `Equal` with broadcasting: 1 where the elements are equal, 0 elsewhere (booleans
    /// are held as integers).
    pub fn equal(a: &Const, b: &Const) -> Result<Const, String> {
        let dims = broadcast_dims(&a.dims, &b.dims)?;
        folded_numel(&dims, a.numel().max(b.numel()))?;
        let (pa, pb) = (a.broadcast_positions(&dims), b.broadcast_positions(&dims));
        let same: Vec<i64> = match (&a.data, &b.data) {
            (Data::I64(x), Data::I64(y)) => pa
                .iter()
                .zip(&pb)
                .map(|(&i, &j)| i64::from(x[i] == y[j]))
                .collect(),
            _ => {
                let (x, y) = (a.floats(), b.floats());
                pa.iter()
                    .zip(&pb)
                    .map(|(&i, &j)| i64::from(x[i] == y[j]))
                    .collect()
            }
        };
        Ok(Const::i64(dims, same))
    }

    /// ONNX `Where` with broadcasting: `x` where `condition` is non-zero, `y` elsewhere (floats
    /// unless both `x` and `y` are integers).
    pub fn select(condition: &Const, x: &Const, y: &Const) -> Result<Const, String> {
        let dims = broadcast_dims(&broadcast_dims(&condition.dims, &x.dims)?, &y.dims)?;
        folded_numel(&dims, condition.numel().max(x.numel()).max(y.numel()))?;
        let pc = condition.broadcast_positions(&dims);
        let (px, py) = (x.broadcast_positions(&dims), y.broadcast_positions(&dims));
        let cond = condition.floats();
        let pick = |k: usize| cond[pc[k]] != 0.0;
        Ok(match (&x.data, &y.data) {
            (Data::I64(a), Data::I64(b)) => {
                let v = (0..pc.len())
                    .map(|k| if pick(k) { a[px[k]] } else { b[py[k]] })
                    .collect();
                Const::i64(dims, v)
            }
            _ => {
                let (a, b) = (x.floats(), y.floats());
                let v = (0..pc.len())
                    .map(|k| if pick(k) { a[px[k]] } else { b[py[k]] })
                    .collect();
                Const::f32(dims, v)
            }
        })
    }

    /// For each element of a tensor of shape `target` (which `self` broadcasts to), the flat
    /// position of the element of `self` it reads.
    pub fn broadcast_positions(&self, target: &[usize]) -> Vec<usize> {
        let pad = target.len() - self.dims.len();
        let s = strides(&self.dims);
        let mut pos = Vec::with_capacity(numel(target));
        for_each_index(target, |idx| {
            pos.push(
                self.dims
                    .iter()
                    .enumerate()
                    .map(|(d, &n)| if n == 1 { 0 } else { idx[d + pad] * s[d] })
                    .sum(),
            );
        });
        pos
    }

    /// The tensor broadcast to `target` dims (materialised).
    pub fn broadcast_to(&self, target: &[usize]) -> Result<Const, String> {
        let dims = broadcast_dims(&self.dims, target)?;
        if dims != target {
            return Err(format!("cannot broadcast {:?} to {target:?}", self.dims));
        }
        folded_numel(target, self.numel())?;
        let pos = self.broadcast_positions(target);
        Ok(Const {
            dims,
            data: self.data.select(&pos),
        })
    }
}

/// Numpy broadcasting of two shapes.
pub fn broadcast_dims(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| {
        let pad = r - s.len();
        if i < pad { 1 } else { s[i - pad] }
    };
    (0..r)
        .map(|i| match (get(a, i), get(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// The dims left by `Squeeze` with `axes` (every size-1 dim when `None`).
pub fn squeezed_dims(dims: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>, String> {
    let remove: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&x| axis(x, dims.len()))
            .collect::<Result<_, _>>()?,
        None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
    };
    if let Some(&bad) = remove.iter().find(|&&i| dims[i] != 1) {
        return Err(format!("Squeeze of axis {bad} with size {}", dims[bad]));
    }
    Ok(dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !remove.contains(i))
        .map(|(_, &d)| d)
        .collect())
}

/// The dims `Unsqueeze` with `axes` gives.
pub fn unsqueezed_dims(dims: &[usize], axes: &[i64]) -> Result<Vec<usize>, String> {
    let out_rank = dims.len() + axes.len();
    let ones: Vec<usize> = axes
        .iter()
        .map(|&a| axis(a, out_rank))
        .collect::<Result<_, _>>()?;
    let mut it = dims.iter();
    Ok((0..out_rank)
        .map(|i| {
            if ones.contains(&i) {
                1
            } else {
                *it.next().unwrap_or(&1)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(dims: Vec<usize>) -> Const {
        let n = numel(&dims) as i64;
        Const::i64(dims, (0..n).collect())
    }

    #[test]
    fn transpose_gather_slice_follow_numpy() {
        // numpy: np.arange(6).reshape(2, 3).T.ravel() == [0, 3, 1, 4, 2, 5]
        let t = iota(vec![2, 3]).transpose(&[1, 0]).unwrap();
        assert_eq!(t.dims, vec![3, 2]);
        assert_eq!(t.ints(), vec![0, 3, 1, 4, 2, 5]);
        // np.take(np.arange(24).reshape(2, 3, 4), [2, -3], axis=1)[1, :, 1] == [21, 13]
        let g = iota(vec![2, 3, 4])
            .gather(&Const::i64(vec![2], vec![2, -3]), 1)
            .unwrap();
        assert_eq!(g.dims, vec![2, 2, 4]);
        assert_eq!(g.ints()[8..16], [20, 21, 22, 23, 12, 13, 14, 15]);
        // np.arange(10)[8:1:-3] == [8, 5, 2]; [-3:100] == [7, 8, 9]
        let v = iota(vec![10]);
        assert_eq!(
            v.slice(&[8], &[1], None, Some(&[-3])).unwrap().ints(),
            vec![8, 5, 2]
        );
        assert_eq!(
            v.slice(&[-3], &[100], None, None).unwrap().ints(),
            vec![7, 8, 9]
        );
        // scalar gather (index tensor of rank 0) removes the axis
        let s = iota(vec![4])
            .gather(&Const::i64(vec![], vec![3]), 0)
            .unwrap();
        assert_eq!((s.dims.clone(), s.ints()), (vec![], vec![3]));
    }

    #[test]
    fn a_transpose_that_is_not_a_permutation_is_refused() {
        // A hostile model's perm may name axes the tensor lacks, or one axis twice.
        for perm in [[0, 110], [1, 1], [0, 0]] {
            assert!(iota(vec![2, 3]).transpose(&perm).is_err(), "{perm:?}");
        }
        assert!(iota(vec![2, 3]).transpose(&[0]).is_err());
    }

    #[test]
    fn concat_squeeze_broadcast() {
        let c = Const::concat(&[iota(vec![2, 1]), iota(vec![2, 2])], 1).unwrap();
        assert_eq!(c.ints(), vec![0, 0, 1, 1, 2, 3]);
        assert_eq!(iota(vec![1, 3, 1]).squeeze(None).unwrap().dims, vec![3]);
        assert_eq!(
            iota(vec![3]).unsqueeze(&[0, -1]).unwrap().dims,
            vec![1, 3, 1]
        );
        let a = Const::f32(vec![2, 1], vec![1.0, 2.0]);
        let b = Const::f32(vec![3], vec![10.0, 20.0, 30.0]);
        let s = Const::binary("Sub", &a, &b).unwrap();
        assert_eq!(s.dims, vec![2, 3]);
        assert_eq!(s.floats(), vec![-9.0, -19.0, -29.0, -8.0, -18.0, -28.0]);
        assert!(Const::binary("Add", &iota(vec![2]), &iota(vec![3])).is_err());
    }
}
