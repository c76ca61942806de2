//! ONNX operators: how each one folds into a constant or maps to IR nodes.

use std::rc::Rc;

use super::convert::{Attrs, Converter, Dyn, Val, identity, input_name, output_name};
use super::proto::{NodeProto, data_type as dt};
use super::tensor::{
    Const, Data, axis, broadcast_dims, folded_numel, numel, squeezed_dims, unsqueezed_dims,
};
use crate::graph::{BatchNorm, Conv2d, Linear, NodeId, Op, Pool2d, Unary};

/// Ops evaluated at import time when all their inputs are constants.
const FOLDABLE: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Cast",
    "Concat",
    "Gather",
    "Reshape",
    "Slice",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Identity",
    "Dropout",
    "Flatten",
    "Expand",
    "Equal",
    "Where",
];

pub(super) fn usizes(v: &[i64], what: &str) -> Result<Vec<usize>, String> {
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| format!("{what} {v:?} has a negative entry")))
        .collect()
}

fn pair(v: Option<Vec<i64>>, default: usize, what: &str) -> Result<[usize; 2], String> {
    match v {
        None => Ok([default, default]),
        Some(v) if v.len() == 2 => {
            let u = usizes(&v, what)?;
            Ok([u[0], u[1]])
        }
        Some(v) => Err(format!(
            "{what} {v:?}: only 2-D windows (rank-4 tensors) are supported"
        )),
    }
}

/// Resolves a `Reshape` target against the input dims (`0` copies, `-1` is inferred).
pub(super) fn reshape_target(
    input: &[usize],
    target: &[i64],
    allow_zero: bool,
) -> Result<Vec<usize>, String> {
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => out.push(
                *input
                    .get(i)
                    .ok_or_else(|| format!("Reshape target {target:?} copies a missing dim"))?,
            ),
            t if t >= 0 => out.push(t as usize),
            _ => return Err(format!("Reshape target {target:?} is invalid")),
        }
    }
    let total = numel(input);
    let known = numel(&out);
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {target:?}"));
        }
        out[i] = total / known;
    }
    if numel(&out) != total {
        return Err(format!("cannot reshape {input:?} to {target:?}"));
    }
    Ok(out)
}

/// Padding `[top, left, bottom, right]` and output size of a 2-D window op.
fn window(
    a: &Attrs,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> Result<([usize; 4], [usize; 2]), String> {
    if stride.contains(&0) || dilation.contains(&0) || kernel.contains(&0) {
        return Err("zero stride, dilation or kernel size".into());
    }
    let overflow = || "window arithmetic overflows (stride, dilation, kernel or pads too large)";
    let auto = a.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    let pads = match auto.as_str() {
        "NOTSET" | "" => match a.ints("pads") {
            None => [0; 4],
            Some(p) if p.len() == 4 => {
                let u = usizes(&p, "pads")?;
                [u[0], u[1], u[2], u[3]]
            }
            Some(p) => return Err(format!("pads {p:?}: expected 4 values")),
        },
        "VALID" => [0; 4],
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut p = [0; 4];
            for d in 0..2 {
                let out = input[d].div_ceil(stride[d]);
                let span = window_span(kernel[d], dilation[d]).ok_or_else(overflow)?;
                let total = out
                    .saturating_sub(1)
                    .checked_mul(stride[d])
                    .and_then(|v| v.checked_add(span))
                    .ok_or_else(overflow)?
                    .saturating_sub(input[d]);
                let (small, large) = (total / 2, total - total / 2);
                // SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
                let (begin, end) = if auto == "SAME_UPPER" {
                    (small, large)
                } else {
                    (large, small)
                };
                p[d] = begin;
                p[d + 2] = end;
            }
            p
        }
        other => return Err(format!("auto_pad '{other}' is not supported")),
    };
    let mut out = [0; 2];
    for d in 0..2 {
        let span = window_span(kernel[d], dilation[d]).ok_or_else(overflow)?;
        let padded = input[d]
            .checked_add(pads[d])
            .and_then(|v| v.checked_add(pads[d + 2]))
            .ok_or_else(overflow)?;
        if padded < span {
            return Err(format!(
                "window {span} is larger than the padded input {padded}"
            ));
        }
        let num = padded - span;
        out[d] = if ceil_mode {
            let mut o = num.div_ceil(stride[d]) + 1;
            // The last window must start inside the input or the leading padding (torch's rule).
            if (o - 1).saturating_mul(stride[d]) >= input[d] + pads[d] {
                o -= 1;
            }
            o
        } else {
            num / stride[d] + 1
        };
    }
    Ok((pads, out))
}

/// `dilation·(kernel − 1) + 1`, the extent of a dilated window, or `None` on overflow.
fn window_span(kernel: usize, dilation: usize) -> Option<usize> {
    dilation.checked_mul(kernel - 1)?.checked_add(1)
}

fn constant_attr(a: &Attrs) -> Result<Const, String> {
    if let Some(t) = a.tensor("value") {
        return Const::from_proto(t);
    }
    if a.has("value_float") {
        return Ok(Const::f32(vec![], vec![a.float("value_float", 0.0)]));
    }
    if let Some(v) = a.floats("value_floats") {
        return Ok(Const::f32(vec![v.len()], v));
    }
    if a.has("value_int") {
        return Ok(Const::i64(vec![], vec![a.int("value_int", 0)]));
    }
    if let Some(v) = a.ints("value_ints") {
        return Ok(Const::i64(vec![v.len()], v));
    }
    Err("Constant without a supported value attribute".into())
}

/// The node's name, or else its first output's, or else its operator's (names the IR nodes).
fn node_name(n: &NodeProto) -> String {
    if n.name.is_empty() {
        n.output
            .first()
            .cloned()
            .unwrap_or_else(|| n.op_type.clone())
    } else {
        n.name.clone()
    }
}

impl Converter {
    /// Converts one ONNX node: nodes that make constants from attributes or shapes first, then
    /// any foldable node whose inputs are all constants, then the run-time operators.
    pub fn node(&mut self, n: &NodeProto) -> Result<(), String> {
        let a = Attrs(&n.attribute);
        if let Some(c) = self.constant_source(n, &a)? {
            return self.set_outputs(n, vec![Val::Const(Rc::new(c))]);
        }
        let all_const = n
            .input
            .iter()
            .filter(|i| !i.is_empty())
            .all(|i| matches!(self.values.get(i), Some(Val::Const(_))));
        if all_const && FOLDABLE.contains(&n.op_type.as_str()) {
            let c = self.fold(n, &a)?;
            return self.set_outputs(n, vec![Val::Const(Rc::new(c))]);
        }
        if n.op_type == "Split" {
            let outs = self.split(n, &a, &node_name(n))?;
            return self.set_outputs(n, outs);
        }
        let out = self.run_time(n, &a, &node_name(n))?;
        self.set_outputs(n, vec![out])
    }

    /// The constant made by `Constant`, `Shape` and `ConstantOfShape`, which are constants
    /// whatever their inputs (shapes are static); `None` for every other operator.
    fn constant_source(&self, n: &NodeProto, a: &Attrs) -> Result<Option<Const>, String> {
        Ok(Some(match n.op_type.as_str() {
            "Constant" => constant_attr(a)?,
            "Shape" => self.shape_of(n, a)?,
            "ConstantOfShape" => self.constant_of_shape(n, a)?,
            _ => return Ok(None),
        }))
    }

    /// `Shape`: the dimensions of input 0, sliced by `start` and `end`.
    fn shape_of(&self, n: &NodeProto, a: &Attrs) -> Result<Const, String> {
        let dims = match self.input(n, 0)? {
            Val::Const(c) => c.dims.clone(),
            Val::Dyn(d) => d.shape.clone(),
        };
        let r = dims.len() as i64;
        let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let start = clampi(a.int("start", 0));
        let end = clampi(a.int("end", r));
        let dims: Vec<i64> = dims[start..end.max(start)]
            .iter()
            .map(|&d| d as i64)
            .collect();
        Ok(Const::i64(vec![dims.len()], dims))
    }

    /// `ConstantOfShape`: a tensor of the shape in input 0 filled with the one-element `value`.
    fn constant_of_shape(&self, n: &NodeProto, a: &Attrs) -> Result<Const, String> {
        let shape = usizes(&self.const_in(n, 0)?.ints(), "shape")?;
        let fill = match a.tensor("value") {
            Some(t) => Const::from_proto(t)?,
            None => Const::f32(vec![1], vec![0.0]),
        };
        let count = folded_numel(&shape, 0)?;
        match fill.data {
            Data::F32(v) if v.len() == 1 => Ok(Const::f32(shape, vec![v[0]; count])),
            Data::I64(v) if v.len() == 1 => Ok(Const::i64(shape, vec![v[0]; count])),
            _ => Err("ConstantOfShape value must have one element".into()),
        }
    }

    /// Maps an operator on a run-time tensor to IR nodes, by family.
    fn run_time(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        match n.op_type.as_str() {
            "Identity" | "Dropout" | "Cast" => self.pass_through(n, a),
            "Relu" | "Sigmoid" | "Tanh" | "Clip" | "HardSigmoid" | "HardSwish" => {
                self.activation(n, a, name)
            }
            "LeakyRelu" | "Elu" | "Selu" | "PRelu" => self.signed_activation(n, a, name),
            "Conv" => self.conv(n, a, name),
            "MaxPool" | "AveragePool" => self.pool(n, a, name),
            "GlobalAveragePool" | "GlobalMaxPool" => self.global_pool(n, name),
            "BatchNormalization" => self.batchnorm(n, a, name),
            "Gemm" => self.gemm(n, a, name),
            "MatMul" => self.matmul(n, name),
            "Add" | "Sub" | "Mul" | "Div" => self.binary(n, name),
            "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze" => self.reshaping(n, a, name),
            "Transpose" => self.transpose(n, a, name),
            "Concat" => self.concat(n, a, name),
            "Softmax" => self.softmax(n, a, name),
            "Pad" => self.pad(n, a, name),
            "Gelu" => self.gelu(n, a, name),
            "LayerNormalization" => self.layer_norm(n, a, name),
            "ChannelShuffle" => self.channel_shuffle(n, name),
            "ReduceMean" | "ReduceMax" | "ReduceSum" => self.reduce(n, a, name),
            "Slice" => self.slice(n, name),
            "Resize" | "Upsample" => self.resize(n, a, name),
            "Neg" | "Abs" | "Sqrt" | "Pow" | "Reciprocal" | "Exp" => self.unary_function(n, name),
            "Expand" => self.expand(n, name),
            "Where" | "Equal" => Err(format!(
                "{} of a run-time tensor is not supported (only of constants, which are folded \
                 at import)",
                n.op_type
            )),
            "Erf" => Err(
                "Erf is supported only inside GELU's pattern x·0.5·(1 + erf(x/√2)), which this \
                 node is not part of"
                    .into(),
            ),
            other => Err(format!(
                "{other} on a run-time tensor is not supported (only on constants)"
            )),
        }
    }

    /// `Identity`, `Dropout` (inference) and `Cast` to a float type leave the tensor as it is:
    /// the engine computes in f32 throughout.
    fn pass_through(&self, n: &NodeProto, a: &Attrs) -> Result<Val, String> {
        if n.op_type == "Cast" {
            match a.int("to", dt::FLOAT as i64) as i32 {
                dt::FLOAT | dt::DOUBLE | dt::FLOAT16 | dt::BFLOAT16 => {}
                other => return Err(format!("Cast of a tensor to ONNX type {other}")),
            }
        }
        Ok(Val::Dyn(self.dyn_in(n, 0)?))
    }

    /// Element-wise activations; the hard ones are built from IR ops.
    fn activation(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        match n.op_type.as_str() {
            "Relu" => self.unary(n, name, Op::Relu),
            "Sigmoid" => self.unary(n, name, Op::Sigmoid),
            "Tanh" => self.unary(n, name, Op::Tanh),
            "Clip" => self.clip(n, a, name),
            "HardSigmoid" => {
                let x = self.dyn_in(n, 0)?;
                let (alpha, beta) = (a.float("alpha", 0.2), a.float("beta", 0.5));
                let node = self.hard_sigmoid(&x, alpha, beta, name)?;
                Ok(Val::Dyn(Dyn { node, ..x }))
            }
            _ => {
                // HardSwish: x · hard_sigmoid(x) with PyTorch's slope and offset.
                let x = self.dyn_in(n, 0)?;
                let gate = self.hard_sigmoid(&x, 1.0 / 6.0, 0.5, &format!("{name}/gate"))?;
                let node = self.push(name, Op::Mul, vec![x.node, gate]);
                Ok(Val::Dyn(Dyn { node, ..x }))
            }
        }
    }

    /// `GlobalAveragePool` and `GlobalMaxPool` of an NCHW tensor: an adaptive average pool to
    /// 1 × 1, or a max pool over the whole map.
    fn global_pool(&mut self, n: &NodeProto, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        if x.rank() != 4 {
            return Err(format!("input of rank {} (expected 4)", x.rank()));
        }
        let x = self.plain(&x, name);
        let [_, c, h, w] = x.ir_dims();
        let op = if n.op_type == "GlobalAveragePool" {
            Op::AdaptiveAvgPool2d { output: [1, 1] }
        } else {
            Op::MaxPool2d(Pool2d {
                kernel: [h, w],
                stride: [1, 1],
                padding: [0; 4],
                dilation: [1, 1],
                ceil_mode: false,
                count_include_pad: true,
            })
        };
        let node = self.push(name, op, vec![x.node]);
        Ok(Val::Dyn(Dyn {
            node,
            shape: vec![1, c, 1, 1],
            axes: identity(4),
            origin: None,
        }))
    }

    /// `Flatten`, `Reshape`, `Squeeze` and `Unsqueeze` of a run-time tensor: each a reshape to
    /// a target its attributes or constant inputs give.
    fn reshaping(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let target = match n.op_type.as_str() {
            "Flatten" => {
                let ax = axis(a.int("axis", 1), x.rank() + 1)?;
                if ax != 1 {
                    return Err(format!(
                        "Flatten at axis {ax} (only axis 1, keeping the batch, is supported)"
                    ));
                }
                vec![1, x.shape[1..].iter().product()]
            }
            "Reshape" => {
                let t = self.const_in(n, 1)?.ints();
                reshape_target(&x.shape, &t, a.int("allowzero", 0) != 0)?
            }
            "Squeeze" => squeezed_dims(&x.shape, self.axes_arg(n, a)?.as_deref())?,
            _ => unsqueezed_dims(&x.shape, self.axes_arg(n, a)?.as_deref().unwrap_or(&[]))?,
        };
        Ok(Val::Dyn(self.reshape(&x, target, name)?))
    }

    /// `Transpose` of a run-time tensor: only its axis order changes (no IR node); a permute is
    /// inserted when a consumer needs the plain order. The batch dimension must stay first.
    fn transpose(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        self.carry_producer(n, &x)?;
        let r = x.rank();
        let perm = match a.ints("perm") {
            Some(p) => usizes(&p, "perm")?,
            None => (0..r).rev().collect(),
        };
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        if sorted != identity(r) {
            return Err(format!("perm {perm:?} for rank {r}"));
        }
        if perm[0] != 0 {
            return Err(format!(
                "perm {perm:?} moves the batch dimension, which is not supported"
            ));
        }
        let mut inverse = vec![0; r];
        for (j, &p) in perm.iter().enumerate() {
            inverse[p] = j;
        }
        let t = Dyn {
            node: x.node,
            shape: perm.iter().map(|&p| x.shape[p]).collect(),
            axes: x.axes.iter().map(|&ax| inverse[ax]).collect(),
            origin: Some(name.to_string()),
        };
        Ok(Val::Dyn(if t.is_plain() {
            Dyn { origin: None, ..t }
        } else {
            t
        }))
    }

    /// Axes given as an attribute (before opset 13) or as input 1.
    pub(super) fn axes_arg(&self, n: &NodeProto, a: &Attrs) -> Result<Option<Vec<i64>>, String> {
        if let Some(v) = a.ints("axes") {
            return Ok(Some(v));
        }
        Ok(self.const_opt(n, 1)?.map(|c| c.ints()))
    }

    /// Evaluates a node on constant inputs.
    fn fold(&self, n: &NodeProto, a: &Attrs) -> Result<Const, String> {
        let c = |i| self.const_in(n, i);
        match n.op_type.as_str() {
            op @ ("Add" | "Sub" | "Mul" | "Div") => {
                Const::binary(op, c(0)?.as_ref(), c(1)?.as_ref())
            }
            "Cast" => c(0)?.cast(a.int("to", dt::FLOAT as i64) as i32),
            "Concat" => {
                let parts: Vec<Const> = (0..n.input.len())
                    .map(|i| c(i).map(|x| (*x).clone()))
                    .collect::<Result<_, _>>()?;
                Const::concat(&parts, a.int("axis", 0))
            }
            "Gather" => c(0)?.gather(c(1)?.as_ref(), a.int("axis", 0)),
            "Reshape" => {
                let x = c(0)?;
                let t = reshape_target(&x.dims, &c(1)?.ints(), a.int("allowzero", 0) != 0)?;
                x.reshaped(t)
            }
            "Slice" => {
                let x = c(0)?;
                if self.opset < 10 {
                    let starts = a.ints("starts").unwrap_or_default();
                    let ends = a.ints("ends").unwrap_or_default();
                    x.slice(&starts, &ends, a.ints("axes").as_deref(), None)
                } else {
                    let axes = self.const_opt(n, 3)?.map(|v| v.ints());
                    let steps = self.const_opt(n, 4)?.map(|v| v.ints());
                    x.slice(
                        &c(1)?.ints(),
                        &c(2)?.ints(),
                        axes.as_deref(),
                        steps.as_deref(),
                    )
                }
            }
            "Squeeze" => c(0)?.squeeze(self.axes_arg(n, a)?.as_deref()),
            "Unsqueeze" => c(0)?.unsqueeze(&self.axes_arg(n, a)?.unwrap_or_default()),
            "Transpose" => {
                let x = c(0)?;
                let perm = match a.ints("perm") {
                    Some(p) => usizes(&p, "perm")?,
                    None => (0..x.dims.len()).rev().collect(),
                };
                x.transpose(&perm)
            }
            "Identity" | "Dropout" => Ok((*c(0)?).clone()),
            "Expand" => {
                let x = c(0)?;
                let target = usizes(&c(1)?.ints(), "shape")?;
                x.broadcast_to(&broadcast_dims(&x.dims, &target)?)
            }
            "Equal" => Const::equal(c(0)?.as_ref(), c(1)?.as_ref()),
            "Where" => Const::select(c(0)?.as_ref(), c(1)?.as_ref(), c(2)?.as_ref()),
            "Flatten" => {
                let x = c(0)?;
                let ax = axis(a.int("axis", 1), x.dims.len() + 1)?;
                let d = vec![numel(&x.dims[..ax]), numel(&x.dims[ax..])];
                x.reshaped(d)
            }
            other => Err(format!("{other} cannot be folded")),
        }
    }

    fn unary(&mut self, n: &NodeProto, name: &str, op: Op) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let node = self.push(name, op, vec![x.node]);
        Ok(Val::Dyn(Dyn { node, ..x }))
    }

    fn clip(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let (min, max) = if self.opset < 11 {
            (
                a.float("min", f32::NEG_INFINITY),
                a.float("max", f32::INFINITY),
            )
        } else {
            let bound = |i, default| -> Result<f32, String> {
                self.const_opt(n, i)?.map_or(Ok(default), |c| c.scalar())
            };
            (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
        };
        let op = if min == 0.0 && max == f32::INFINITY {
            Op::Relu
        } else {
            Op::Clip { min, max }
        };
        self.unary(n, name, op)
    }

    /// A one-element `Constant` node.
    pub(super) fn scalar_node(&mut self, v: f32, name: &str) -> Result<NodeId, String> {
        let key = self.param(name, vec![1, 1, 1, 1], vec![v], false)?;
        Ok(self.push(name, Op::Constant(key), vec![]))
    }

    /// `clip(αx + β, 0, 1)` as Mul, Add and Clip nodes; returns the last.
    fn hard_sigmoid(
        &mut self,
        x: &Dyn,
        alpha: f32,
        beta: f32,
        name: &str,
    ) -> Result<NodeId, String> {
        let al = self.scalar_node(alpha, &format!("{name}/alpha"))?;
        let scaled = self.push(&format!("{name}/scale"), Op::Mul, vec![x.node, al]);
        let be = self.scalar_node(beta, &format!("{name}/beta"))?;
        let shifted = self.push(&format!("{name}/shift"), Op::Add, vec![scaled, be]);
        Ok(self.push(name, Op::Clip { min: 0.0, max: 1.0 }, vec![shifted]))
    }

    fn conv(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        if x.rank() != 4 {
            return Err(format!(
                "input of rank {}: only 2-D convolutions are supported",
                x.rank()
            ));
        }
        let x = self.plain(&x, name);
        let w = self.const_in(n, 1)?;
        if w.dims.len() != 4 {
            return Err(format!("weight of shape {:?}", w.dims));
        }
        let groups = usize::try_from(a.int("group", 1)).map_err(|_| "negative group")?;
        if groups == 0 || x.shape[1] != w.dims[1] * groups || w.dims[0] % groups != 0 {
            return Err(format!(
                "weight {:?} with {groups} groups does not fit {} input channels",
                w.dims, x.shape[1]
            ));
        }
        let kernel = [w.dims[2], w.dims[3]];
        if let Some(k) = a.ints("kernel_shape")
            && usizes(&k, "kernel_shape")? != kernel
        {
            return Err(format!(
                "kernel_shape {k:?} differs from the weight {:?}",
                w.dims
            ));
        }
        let stride = pair(a.ints("strides"), 1, "strides")?;
        let dilation = pair(a.ints("dilations"), 1, "dilations")?;
        // A zero `Pad` before this convolution becomes part of its padding.
        let pre = self
            .zero_pads
            .get(input_name(n, 0)?)
            .copied()
            .unwrap_or([0; 4]);
        let padded_in = [x.shape[2] + pre[0] + pre[2], x.shape[3] + pre[1] + pre[3]];
        let (own, out) = window(a, padded_in, kernel, stride, dilation, false)?;
        let padding = [0, 1, 2, 3].map(|i| own[i] + pre[i]);
        self.check_padded(&x, padding)?;
        let weight = self.param(input_name(n, 1)?, w.dims.clone(), w.floats(), true)?;
        let bias = match self.const_opt(n, 2)? {
            Some(b) => Some(self.param(input_name(n, 2)?, vec![w.dims[0]], b.floats(), true)?),
            None => None,
        };
        let op = Op::Conv2d(Conv2d {
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
        });
        let output = output_name(n)?.clone();
        let node = self.push(name, op, vec![x.node]);
        self.producers.insert(node, output);
        Ok(Val::Dyn(Dyn {
            node,
            shape: vec![1, w.dims[0], out[0], out[1]],
            axes: identity(4),
            origin: None,
        }))
    }

    fn pool(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        if x.rank() != 4 {
            return Err(format!(
                "input of rank {}: only 2-D pooling is supported",
                x.rank()
            ));
        }
        let x = self.plain(&x, name);
        let kernel = pair(a.ints("kernel_shape"), 0, "kernel_shape")?;
        let stride = pair(a.ints("strides"), 1, "strides")?;
        let dilation = pair(a.ints("dilations"), 1, "dilations")?;
        let ceil_mode = a.int("ceil_mode", 0) != 0;
        let max = n.op_type == "MaxPool";
        if !max && dilation != [1, 1] {
            return Err("dilated average pooling is not supported".into());
        }
        let (padding, out) = window(
            a,
            [x.shape[2], x.shape[3]],
            kernel,
            stride,
            dilation,
            ceil_mode,
        )?;
        self.check_padded(&x, padding)?;
        let pool = Pool2d {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
            count_include_pad: a.int("count_include_pad", 0) != 0,
        };
        let op = if max {
            Op::MaxPool2d(pool)
        } else {
            Op::AvgPool2d(pool)
        };
        let node = self.push(name, op, vec![x.node]);
        Ok(Val::Dyn(Dyn {
            node,
            shape: vec![1, x.shape[1], out[0], out[1]],
            axes: identity(4),
            origin: None,
        }))
    }

    fn batchnorm(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let mut x = self.dyn_in(n, 0)?;
        if x.rank() < 2 {
            return Err(format!("input of rank {}", x.rank()));
        }
        if x.axes[1] != 1 {
            x = self.plain(&x, name);
        }
        let c = x.shape[1];
        let mut keys = Vec::new();
        for i in 1..5 {
            let v = self.const_in(n, i)?;
            if v.numel() != c {
                return Err(format!(
                    "input {i} has {} values for {c} channels",
                    v.numel()
                ));
            }
            keys.push(self.param(input_name(n, i)?, vec![c], v.floats(), i < 3)?);
        }
        let [weight, bias, running_mean, running_var]: [String; 4] =
            keys.try_into().expect("four keys");
        let op = Op::BatchNorm(BatchNorm {
            weight,
            bias,
            running_mean,
            running_var,
            eps: a.float("epsilon", 1e-5),
            // ONNX's momentum weighs the old running value; torch's the new batch statistic.
            momentum: 1.0 - a.float("momentum", 0.9),
        });
        let node = self.push(name, op, vec![x.node]);
        Ok(Val::Dyn(Dyn { node, ..x }))
    }

    /// A Linear node `y = x Wᵀ + b` from a weight already in `[out, in]` layout.
    fn linear(
        &mut self,
        n: &NodeProto,
        name: &str,
        x: &Dyn,
        w: Const,
        bias: Option<(String, Vec<f32>)>,
    ) -> Result<Val, String> {
        if x.rank() != 2 || x.shape[1] != w.dims[1] {
            return Err(format!(
                "input of shape {:?} does not fit a weight of {} inputs",
                x.shape, w.dims[1]
            ));
        }
        let out = w.dims[0];
        let weight = self.param(input_name(n, 1)?, w.dims.clone(), w.floats(), true)?;
        let bias = match bias {
            Some((key, values)) => Some(self.param(&key, vec![out], values, true)?),
            None => None,
        };
        let output = output_name(n)?.clone();
        let node = self.push(name, Op::Linear(Linear { weight, bias }), vec![x.node]);
        self.producers.insert(node, output);
        Ok(Val::Dyn(Dyn {
            node,
            shape: vec![1, out],
            axes: identity(2),
            origin: None,
        }))
    }

    fn gemm(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        if a.int("transA", 0) != 0 {
            return Err("transA = 1 is not supported".into());
        }
        let x = self.dyn_in(n, 0)?;
        let b = self.const_in(n, 1)?;
        if b.dims.len() != 2 {
            return Err(format!("weight of shape {:?}", b.dims));
        }
        // Gemm computes α·A·B' + β·C with B' = Bᵀ when transB; Linear wants W = (B')ᵀ.
        let w = if a.int("transB", 0) != 0 {
            (*b).clone()
        } else {
            b.transpose(&[1, 0])?
        };
        let alpha = a.float("alpha", 1.0);
        let w = Const::f32(
            w.dims.clone(),
            w.floats().iter().map(|v| v * alpha).collect(),
        );
        let bias = match self.const_opt(n, 2)? {
            Some(c) => {
                let beta = a.float("beta", 1.0);
                let full = c
                    .broadcast_to(&[1, w.dims[0]])
                    .map_err(|e| format!("bias: {e}"))?;
                Some((
                    input_name(n, 2)?.clone(),
                    full.floats().iter().map(|v| v * beta).collect(),
                ))
            }
            None => None,
        };
        self.linear(n, name, &x, w, bias)
    }

    fn matmul(&mut self, n: &NodeProto, name: &str) -> Result<Val, String> {
        match (self.input(n, 0)?.clone(), self.input(n, 1)?.clone()) {
            (Val::Dyn(x), Val::Const(b)) if b.dims.len() == 2 && x.rank() == 2 => {
                let w = b.transpose(&[1, 0])?;
                self.linear(n, name, &x, w, None)
            }
            (Val::Dyn(x), Val::Const(b))
                if b.dims.len() == 2 && x.rank() > 2 && x.ir_axis(x.rank() - 1) == 1 =>
            {
                self.pointwise_matmul(n, name, &x, &b)
            }
            (Val::Dyn(x), Val::Const(b)) => Err(format!(
                "MatMul of shapes {:?} and {:?} (only [N, F] × constant [F, K] is supported)",
                x.shape, b.dims
            )),
            _ => Err("MatMul needs a constant right operand (a weight)".into()),
        }
    }

    /// Folds `x + c` into the bias of the Conv/Linear/LayerNorm producing `x` when that is
    /// exact: the layer has no bias, `x` is read only here, and `c` is constant per channel.
    fn fold_bias(&mut self, n: &NodeProto, xi: usize, x: &Dyn, c: &Const) -> Result<bool, String> {
        let xname = input_name(n, xi)?;
        if self.producers.get(&x.node) != Some(xname)
            || self.uses.get(xname).copied().unwrap_or(0) != 1
        {
            return Ok(false);
        }
        let channels = x.ir_dims()[1];
        let Ok(ir) = self.ir_const(c, x) else {
            return Ok(false);
        };
        if ir.dims[0] != 1
            || ir.dims[2] != 1
            || ir.dims[3] != 1
            || ![1, channels].contains(&ir.dims[1])
        {
            return Ok(false);
        }
        let values = ir.broadcast_to(&[1, channels, 1, 1])?.floats();
        let biasless = match &self.nodes[x.node].op {
            Op::Conv2d(conv) => conv.bias.is_none(),
            Op::Linear(lin) => lin.bias.is_none(),
            Op::LayerNorm(ln) => ln.bias.is_none(),
            _ => false,
        };
        if !biasless {
            return Ok(false);
        }
        let key = self.param(input_name(n, 1 - xi)?, vec![channels], values, true)?;
        let output = output_name(n)?.clone();
        match &mut self.nodes[x.node].op {
            Op::Conv2d(conv) => conv.bias = Some(key),
            Op::Linear(lin) => lin.bias = Some(key),
            Op::LayerNorm(ln) => ln.bias = Some(key),
            _ => unreachable!("checked above"),
        }
        self.producers.insert(x.node, output);
        Ok(true)
    }

    fn binary(&mut self, n: &NodeProto, name: &str) -> Result<Val, String> {
        let op = n.op_type.as_str();
        let (va, vb) = (self.input(n, 0)?.clone(), self.input(n, 1)?.clone());
        match (va, vb) {
            (Val::Dyn(x), Val::Dyn(y)) => {
                if x.rank() != y.rank() {
                    return Err(format!(
                        "{op} of tensors of ranks {} and {} is not supported",
                        x.rank(),
                        y.rank()
                    ));
                }
                let (x, y) = if x.axes == y.axes {
                    (x, y)
                } else {
                    (self.plain(&x, name), self.plain(&y, name))
                };
                let shape = broadcast_dims(&x.shape, &y.shape)?;
                let node = match op {
                    "Add" => self.push(name, Op::Add, vec![x.node, y.node]),
                    "Mul" => self.push(name, Op::Mul, vec![x.node, y.node]),
                    "Sub" => {
                        // a − b = a + (−b): the sum's ε-rule then shares relevance with −b.
                        let neg = self.push(
                            &format!("{name}/negate"),
                            Op::Unary(Unary::Neg),
                            vec![y.node],
                        );
                        self.push(name, Op::Add, vec![x.node, neg])
                    }
                    _ => self.push(name, Op::Div, vec![x.node, y.node]),
                };
                Ok(Val::Dyn(Dyn {
                    node,
                    shape,
                    axes: x.axes.clone(),
                    origin: x.origin.clone(),
                }))
            }
            (Val::Dyn(x), Val::Const(c)) => self.with_const(n, name, 0, x, &c),
            (Val::Const(c), Val::Dyn(x)) => self.with_const(n, name, 1, x, &c),
            (Val::Const(_), Val::Const(_)) => unreachable!("folded"),
        }
    }

    /// `x ∘ c` (or `c ∘ x` when `xi == 1`) with a constant `c`.
    fn with_const(
        &mut self,
        n: &NodeProto,
        name: &str,
        xi: usize,
        x: Dyn,
        c: &Const,
    ) -> Result<Val, String> {
        let op = n.op_type.as_str();
        let cname = input_name(n, 1 - xi)?.clone();
        let aligned = self.ir_const(c, &x)?;
        let mut logical = vec![1; x.rank().saturating_sub(c.dims.len())];
        logical.extend(&c.dims);
        let shape = broadcast_dims(&x.shape, &logical)?;
        let out = |node| Dyn {
            node,
            shape: shape.clone(),
            axes: x.axes.clone(),
            origin: x.origin.clone(),
        };
        if op == "Add" && self.fold_bias(n, xi, &x, c)? {
            return Ok(Val::Dyn(out(x.node)));
        }
        if op == "Mul" && self.fold_scale(n, xi, &x, c)? {
            return Ok(Val::Dyn(out(x.node)));
        }
        let mapped = |f: &dyn Fn(f32) -> f32| {
            Const::f32(
                aligned.dims.clone(),
                aligned.floats().iter().map(|&v| f(v)).collect(),
            )
        };
        let constant = |cv: &mut Converter, k: Const, key: &str| -> Result<NodeId, String> {
            let key = cv.param(key, k.dims.clone(), k.floats(), false)?;
            Ok(cv.push(key.as_str(), Op::Constant(key.clone()), vec![]))
        };
        let node = match (op, xi) {
            ("Add", _) => {
                let k = constant(self, aligned.clone(), &cname)?;
                self.push(name, Op::Add, vec![x.node, k])
            }
            ("Mul", _) => {
                let k = constant(self, aligned.clone(), &cname)?;
                self.push(name, Op::Mul, vec![x.node, k])
            }
            ("Sub", 0) => {
                let k = constant(self, mapped(&|v| -v), &format!("{cname}/negated"))?;
                self.push(name, Op::Add, vec![x.node, k])
            }
            ("Sub", _) => {
                // c − x = c + (−x)
                let neg = self.push(
                    &format!("{name}/negate"),
                    Op::Unary(Unary::Neg),
                    vec![x.node],
                );
                let k = constant(self, aligned.clone(), &cname)?;
                self.push(name, Op::Add, vec![neg, k])
            }
            ("Div", 0) => {
                let k = constant(self, mapped(&|v| 1.0 / v), &format!("{cname}/reciprocal"))?;
                self.push(name, Op::Mul, vec![x.node, k])
            }
            _ => {
                // c / x = c · (1/x)
                let inv = self.push(
                    &format!("{name}/reciprocal"),
                    Op::Unary(Unary::Reciprocal),
                    vec![x.node],
                );
                let k = constant(self, aligned.clone(), &cname)?;
                self.push(name, Op::Mul, vec![inv, k])
            }
        };
        Ok(Val::Dyn(out(node)))
    }

    /// A run-time reshape to the logical `target` (batch first): nothing when the IR dims do
    /// not change, otherwise Flatten or Reshape on the value in logical order.
    pub(super) fn reshape(
        &mut self,
        x: &Dyn,
        target: Vec<usize>,
        name: &str,
    ) -> Result<Dyn, String> {
        if target.is_empty() || target.len() > 4 {
            return Err(format!(
                "result of rank {} (ranks 1–4 are supported)",
                target.len()
            ));
        }
        if target[0] != x.shape[0] {
            return Err(format!(
                "reshaping {:?} to {target:?} changes the batch dimension",
                x.shape
            ));
        }
        let x = self.plain(x, name);
        let cur = x.ir_dims();
        let mut new = [1; 4];
        new[..target.len()].copy_from_slice(&target);
        let node = if cur == new {
            x.node
        } else if new[2] == 1 && new[3] == 1 {
            self.push(name, Op::Flatten, vec![x.node])
        } else {
            self.push(name, Op::Reshape([new[1], new[2], new[3]]), vec![x.node])
        };
        Ok(Dyn {
            node,
            axes: identity(target.len()),
            shape: target,
            origin: None,
        })
    }

    fn concat(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let mut parts = Vec::new();
        for i in 0..n.input.len() {
            match self.input(n, i)? {
                Val::Dyn(d) => parts.push(d.clone()),
                Val::Const(_) => {
                    return Err("Concat of a tensor with a constant is not supported".into());
                }
            }
        }
        let rank = parts[0].rank();
        if parts.iter().any(|p| p.rank() != rank) {
            return Err("Concat of tensors of different ranks".into());
        }
        let ax = axis(a.int("axis", 1), rank)?;
        let same_layout = parts.iter().all(|p| p.axes == parts[0].axes);
        if !(same_layout && parts[0].ir_axis(ax) == 1) {
            if ax != 1 {
                return Err(format!(
                    "Concat along axis {ax} (only channels are supported)"
                ));
            }
            parts = parts.iter().map(|p| self.plain(p, name)).collect();
        }
        let mut shape = parts[0].shape.clone();
        shape[ax] = parts.iter().map(|p| p.shape[ax]).sum();
        let node = self.push(name, Op::Concat, parts.iter().map(|p| p.node).collect());
        Ok(Val::Dyn(Dyn {
            node,
            shape,
            axes: parts[0].axes.clone(),
            origin: parts[0].origin.clone(),
        }))
    }

    fn softmax(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let r = x.rank();
        let default = if self.opset < 13 { 1 } else { -1 };
        let ax = axis(a.int("axis", default), r)?;
        // Before opset 13 Softmax normalises over all axes from `axis` on.
        let reduced: Vec<usize> = if self.opset < 13 {
            (ax..r).collect()
        } else {
            vec![ax]
        };
        let single = reduced.iter().all(|&d| d == ax || x.shape[d] == 1);
        if !single || x.ir_axis(ax) != 1 {
            return Err(format!(
                "Softmax over axis {ax} of shape {:?} (only the channel/feature axis is supported)",
                x.shape
            ));
        }
        let node = self.push(name, Op::Softmax, vec![x.node]);
        Ok(Val::Dyn(Dyn { node, ..x }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::import::onnx::proto::AttributeProto;

    fn attrs(pairs: &[(&str, Vec<i64>)], auto: Option<&str>) -> Vec<AttributeProto> {
        let mut v: Vec<AttributeProto> = pairs
            .iter()
            .map(|(k, ints)| AttributeProto {
                name: k.to_string(),
                ints: ints.clone(),
                ..Default::default()
            })
            .collect();
        if let Some(s) = auto {
            v.push(AttributeProto {
                name: "auto_pad".into(),
                s: s.as_bytes().to_vec(),
                ..Default::default()
            });
        }
        v
    }

    #[test]
    fn same_padding_puts_the_odd_pixel_where_onnx_says() {
        // in 7, k 4, s 2: out = ceil(7/2) = 4, total = 3·2 + 4 − 7 = 3.
        let up = attrs(&[], Some("SAME_UPPER"));
        let (p, out) = window(&Attrs(&up), [7, 7], [4, 4], [2, 2], [1, 1], false).unwrap();
        assert_eq!((p, out), ([1, 1, 2, 2], [4, 4]));
        let low = attrs(&[], Some("SAME_LOWER"));
        let (p, _) = window(&Attrs(&low), [7, 7], [4, 4], [2, 2], [1, 1], false).unwrap();
        assert_eq!(p, [2, 2, 1, 1]);
    }

    #[test]
    fn ceil_mode_drops_a_window_starting_in_the_end_padding() {
        // torch.nn.MaxPool2d(2, 2, padding=1, ceil_mode=True) on 4×4 gives 3×3, not 4×4.
        let a = attrs(&[("pads", vec![1, 1, 1, 1])], None);
        let (_, out) = window(&Attrs(&a), [4, 4], [2, 2], [2, 2], [1, 1], true).unwrap();
        assert_eq!(out, [3, 3]);
        // 5×5: ceil((5 + 2 − 2) / 2) + 1 = 4, but the 4th window would start at 6 ≥ 5 + 1.
        let (_, out) = window(&Attrs(&a), [5, 5], [2, 2], [2, 2], [1, 1], true).unwrap();
        assert_eq!(out, [3, 3]);
        // 6×6 without padding, k 3, s 2: floor → 2, ceil → 3.
        let none = attrs(&[], None);
        let (_, out) = window(&Attrs(&none), [6, 6], [3, 3], [2, 2], [1, 1], true).unwrap();
        assert_eq!(out, [3, 3]);
    }

    #[test]
    fn reshape_targets_copy_and_infer() {
        assert_eq!(
            reshape_target(&[1, 512, 7, 7], &[0, -1], false).unwrap(),
            vec![1, 25088]
        );
        assert_eq!(
            reshape_target(&[1, 6], &[1, 2, -1], false).unwrap(),
            vec![1, 2, 3]
        );
        assert!(reshape_target(&[1, 6], &[1, 4, -1], false).is_err());
    }
}
