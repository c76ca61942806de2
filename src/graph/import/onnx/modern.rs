//! ONNX operators of the architectures after ResNet (ConvNeXt, ShuffleNet, MnasNet,
//! EfficientNet-Lite): LayerNorm, GELU, channel shuffle, channel splits and slices, means
//! over axes, point-wise `MatMul` on channel-last tensors, layer scale, and `Pad`.

use super::convert::{Attrs, Converter, Dyn, Val, input_name, output_name};
use super::ops::{reshape_target, usizes};
use super::proto::NodeProto;
use super::tensor::{Const, axis};
use crate::graph::{Conv2d, LayerNorm, Op, PadMode, Pool2d};

/// The logical axis IR axis 1 (the channels) holds; a rank-1 value has none.
fn channel_axis(x: &Dyn) -> Result<usize, String> {
    x.axes
        .get(1)
        .copied()
        .ok_or_else(|| format!("a tensor of shape {:?} has no channel axis", x.shape))
}

impl Converter {
    /// When `x` is the value a Conv/Linear node produces and `n` (a transpose) is its only
    /// reader, `n`'s output becomes the value that node produces, so a bias or scale after
    /// the transpose still folds into it.
    pub(super) fn carry_producer(&mut self, n: &NodeProto, x: &Dyn) -> Result<(), String> {
        let xname = input_name(n, 0)?;
        if self.producers.get(&x.node) == Some(xname)
            && self.uses.get(xname).copied().unwrap_or(0) == 1
        {
            let output = output_name(n)?.clone();
            self.producers.insert(x.node, output);
        }
        Ok(())
    }

    /// ONNX `Gelu` (opset 20, and the form [`super::fuse`] recognises): the exact GELU only.
    pub(super) fn gelu(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let approximate = a.string("approximate").unwrap_or_else(|| "none".into());
        if approximate != "none" {
            return Err(format!(
                "attribute approximate = '{approximate}' is not supported (only 'none', the exact \
                 GELU)"
            ));
        }
        let x = self.dyn_in(n, 0)?;
        let node = self.push(name, Op::Gelu, vec![x.node]);
        Ok(Val::Dyn(Dyn { node, ..x }))
    }

    /// `LeakyRelu`, `Elu`, `Selu` (ONNX's default constants) and `PRelu` with a slope that is
    /// one value or one per channel.
    pub(super) fn signed_activation(
        &mut self,
        n: &NodeProto,
        a: &Attrs,
        name: &str,
    ) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let op = match n.op_type.as_str() {
            "LeakyRelu" => Op::LeakyRelu {
                alpha: a.float("alpha", 0.01),
            },
            "Elu" => Op::Elu {
                alpha: a.float("alpha", 1.0),
                scale: 1.0,
            },
            "Selu" => Op::Elu {
                alpha: a.float("alpha", 1.673_263_2),
                scale: a.float("gamma", 1.050_701),
            },
            _ => {
                let slope = self.const_in(n, 1)?;
                let c = x.ir_dims()[1];
                let ir = self.ir_const(&slope, &x)?;
                if ir.dims[0] != 1
                    || ir.dims[2] != 1
                    || ir.dims[3] != 1
                    || ![1, c].contains(&ir.dims[1])
                {
                    return Err(format!(
                        "slope of shape {:?} for a tensor of shape {:?} (one slope, or one per \
                         channel, is supported)",
                        slope.dims, x.shape
                    ));
                }
                let values = ir.broadcast_to(&[1, c, 1, 1])?.floats();
                let key = self.param(input_name(n, 1)?, vec![c], values, true)?;
                Op::PRelu { slope: key }
            }
        };
        let node = self.push(name, op, vec![x.node]);
        Ok(Val::Dyn(Dyn { node, ..x }))
    }

    /// `LayerNormalization` over the axes from `axis` on (or the `relevance_axes` of a fused
    /// decomposition): these must hold the channels and otherwise only size-1 axes, which is
    /// ConvNeXt's channel-last form (`Transpose` to NHWC, normalise the last axis).
    pub(super) fn layer_norm(
        &mut self,
        n: &NodeProto,
        a: &Attrs,
        name: &str,
    ) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let r = x.rank();
        let axes: Vec<usize> = match a.ints("relevance_axes") {
            Some(v) => v.iter().map(|&v| axis(v, r)).collect::<Result<_, _>>()?,
            None => (axis(a.int("axis", -1), r)?..r).collect(),
        };
        let channel_axis = channel_axis(&x)?;
        let over_channels = axes.contains(&channel_axis)
            && axes
                .iter()
                .all(|&ax| ax == channel_axis || x.shape[ax] == 1);
        if !over_channels || channel_axis == 0 {
            return Err(format!(
                "attribute axis = {} normalises axes {axes:?} of a tensor of shape {:?}; only \
                 normalisation over the channels is supported",
                a.int("axis", -1),
                x.shape
            ));
        }
        let c = x.ir_dims()[1];
        let mut affine = |i: usize| -> Result<Option<String>, String> {
            let Some(v) = self.const_opt(n, i)? else {
                return Ok(None);
            };
            if v.numel() != c {
                return Err(format!(
                    "input {i} has {} values for {c} channels",
                    v.numel()
                ));
            }
            Ok(Some(self.param(
                input_name(n, i)?,
                vec![c],
                v.floats(),
                true,
            )?))
        };
        let weight = affine(1)?;
        let bias = affine(2)?;
        let op = Op::LayerNorm(LayerNorm {
            weight,
            bias,
            eps: a.float("epsilon", 1e-5),
        });
        let output = output_name(n)?.clone();
        let node = self.push(name, op, vec![x.node]);
        // A decomposed LayerNorm's γ and β follow as Mul and Add, which fold into it.
        self.producers.insert(node, output);
        Ok(Val::Dyn(Dyn { node, ..x }))
    }

    /// The synthetic `ChannelShuffle(x, shape₁, shape₂)` of [`super::fuse`]: `shape₁` must
    /// split the channels into `[g, C/g]` and `shape₂` restore `x`'s shape.
    pub(super) fn channel_shuffle(&mut self, n: &NodeProto, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        if x.rank() != 4 {
            return Err(format!("channel shuffle of a rank-{} tensor", x.rank()));
        }
        let x = self.plain(&x, name);
        let split = reshape_target(&x.shape, &self.const_in(n, 1)?.ints(), false)?;
        let [b, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
        let fits =
            split.len() == 5 && split[0] == b && split[1] * split[2] == c && split[3..] == [h, w];
        let swapped = if fits {
            vec![b, split[2], split[1], h, w]
        } else {
            vec![]
        };
        if !fits || reshape_target(&swapped, &self.const_in(n, 2)?.ints(), false)? != x.shape {
            return Err(format!(
                "Reshape to {split:?}, Transpose [0, 2, 1, 3, 4] and Reshape of a tensor of \
                 shape {:?} is not a channel shuffle",
                x.shape
            ));
        }
        let node = self.push(name, Op::ChannelShuffle { groups: split[1] }, vec![x.node]);
        Ok(Val::Dyn(Dyn { node, ..x }))
    }

    /// `ReduceMean`, `ReduceMax` and `ReduceSum` over the spatial axes (a global average or
    /// max pooling; a sum is the average times the area) or, for the mean and the sum, over
    /// the channels alone; the batch axis may not be reduced. In LRP a spatial mean or sum is
    /// average pooling (the Norm rule, zennit's treatment of `AdaptiveAvgPool2d`), a maximum is
    /// max pooling (winner takes all), and the constant factor of a sum passes relevance on.
    pub(super) fn reduce(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let r = x.rank();
        let given = self.axes_arg(n, a)?;
        let axes: Vec<usize> = match &given {
            Some(v) if !v.is_empty() => v.iter().map(|&v| axis(v, r)).collect::<Result<_, _>>()?,
            _ if a.int("noop_with_empty_axes", 0) != 0 => return Ok(Val::Dyn(x)),
            _ => (0..r).collect(),
        };
        let mut reduced_ir: Vec<usize> = axes
            .iter()
            .filter(|&&ax| x.shape[ax] != 1)
            .map(|&ax| x.ir_axis(ax))
            .collect();
        reduced_ir.sort_unstable();
        let dims = x.ir_dims();
        let spatial: Vec<usize> = (2..4).filter(|&i| dims[i] != 1).collect();
        let over_channels = reduced_ir == [1];
        let over_space = !reduced_ir.is_empty() && reduced_ir == spatial;
        let op = n.op_type.as_str();
        let expressible = reduced_ir.is_empty() || over_space || over_channels && op != "ReduceMax";
        if !expressible {
            return Err(format!(
                "attribute axes = {:?} reduces axes of a tensor of shape {:?} that are neither \
                 all the spatial ones (a global pooling){}",
                given.unwrap_or_default(),
                x.shape,
                if op == "ReduceMax" {
                    ""
                } else {
                    " nor the channels alone"
                }
            ));
        }
        let count = reduced_ir.iter().map(|&i| dims[i]).product::<usize>();
        let node = if reduced_ir.is_empty() {
            x.node
        } else if op == "ReduceMax" {
            let pool = Pool2d {
                kernel: [dims[2], dims[3]],
                stride: [1, 1],
                padding: [0; 4],
                dilation: [1, 1],
                ceil_mode: false,
                count_include_pad: true,
            };
            self.push(name, Op::MaxPool2d(pool), vec![x.node])
        } else {
            let mean_name = if op == "ReduceSum" {
                format!("{name}/mean")
            } else {
                name.to_string()
            };
            let mean = if over_channels {
                self.push(&mean_name, Op::ChannelMean, vec![x.node])
            } else {
                self.push(
                    &mean_name,
                    Op::AdaptiveAvgPool2d { output: [1, 1] },
                    vec![x.node],
                )
            };
            if op == "ReduceSum" {
                let area = self.scalar_node(count as f32, &format!("{name}/count"))?;
                self.push(name, Op::Mul, vec![mean, area])
            } else {
                mean
            }
        };
        let mut kept = x.shape.clone();
        for &ax in &axes {
            kept[ax] = 1;
        }
        let pooled = Dyn {
            node,
            shape: kept,
            axes: x.axes.clone(),
            origin: x.origin.clone(),
        };
        if a.int("keepdims", 1) != 0 {
            return Ok(Val::Dyn(pooled));
        }
        let target: Vec<usize> = (0..r)
            .filter(|ax| !axes.contains(ax))
            .map(|ax| x.shape[ax])
            .collect();
        Ok(Val::Dyn(self.reshape(&pooled, target, name)?))
    }

    /// The channel range `[start, end)` of an axis-1 slice or split, as a `ChannelSlice`
    /// (nothing when it is the whole axis).
    fn channel_range(&mut self, x: &Dyn, start: usize, end: usize, name: &str) -> Dyn {
        let [_, c, _, _] = x.ir_dims();
        let node = if start == 0 && end == c {
            x.node
        } else {
            self.push(
                name,
                Op::ChannelSlice {
                    start,
                    len: end - start,
                },
                vec![x.node],
            )
        };
        let mut shape = x.shape.clone();
        shape[x.axes[1]] = end - start;
        Dyn {
            node,
            shape,
            axes: x.axes.clone(),
            origin: x.origin.clone(),
        }
    }

    /// `Slice` of a run-time tensor: a step-1 range of the channels (other axes whole).
    pub(super) fn slice(&mut self, n: &NodeProto, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let r = x.rank();
        if self.opset < 10 {
            return Err("Slice of a tensor before opset 10".into());
        }
        let starts = self.const_in(n, 1)?.ints();
        let ends = self.const_in(n, 2)?.ints();
        let axes = match self.const_opt(n, 3)? {
            Some(c) => c.ints(),
            None => (0..starts.len() as i64).collect(),
        };
        let steps = match self.const_opt(n, 4)? {
            Some(c) => c.ints(),
            None => vec![1; starts.len()],
        };
        if starts.len() != ends.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err("starts, ends, axes and steps differ in length".into());
        }
        let mut out = x.clone();
        for i in 0..axes.len() {
            let ax = axis(axes[i], r)?;
            let dim = x.shape[ax] as i64;
            let clampi = |v: i64| (if v < 0 { v + dim } else { v }).clamp(0, dim) as usize;
            let (s, e) = (clampi(starts[i]), clampi(ends[i]));
            if s == 0 && e == dim as usize && steps[i] == 1 {
                continue;
            }
            if ax != channel_axis(&x)? || steps[i] != 1 || e <= s {
                return Err(format!(
                    "slice {}..{} step {} of axis {ax} of a tensor of shape {:?} (only step-1 \
                     ranges of the channels are supported)",
                    starts[i], ends[i], steps[i], x.shape
                ));
            }
            out = self.channel_range(&out, s, e, name);
        }
        Ok(Val::Dyn(out))
    }

    /// `Split` of a run-time tensor along the channels into `ChannelSlice`s.
    pub(super) fn split(
        &mut self,
        n: &NodeProto,
        a: &Attrs,
        name: &str,
    ) -> Result<Vec<Val>, String> {
        let x = self.dyn_in(n, 0)?;
        let ax = axis(a.int("axis", 0), x.rank())?;
        let size = x.shape[ax];
        let count = n.output.len();
        let sizes = match (a.ints("split"), self.const_opt(n, 1)?) {
            (Some(v), _) => usizes(&v, "split")?,
            (None, Some(c)) => usizes(&c.ints(), "split")?,
            (None, None) => {
                let parts = usize::try_from(a.int("num_outputs", count as i64))
                    .map_err(|_| "negative num_outputs")?
                    .max(1);
                let each = size.div_ceil(parts);
                (0..parts)
                    .map(|i| each.min(size.saturating_sub(i * each)))
                    .collect()
            }
        };
        if sizes.iter().sum::<usize>() != size || sizes.len() != count {
            return Err(format!(
                "split {sizes:?} of axis {ax} (size {size}) into {count} outputs"
            ));
        }
        if ax != channel_axis(&x)? {
            return Err(format!(
                "attribute axis = {ax}: only splits of the channels are supported"
            ));
        }
        let mut start = 0;
        let mut outs = Vec::with_capacity(count);
        for (i, len) in sizes.into_iter().enumerate() {
            let part = self.channel_range(&x, start, start + len, &format!("{name}/{i}"));
            outs.push(Val::Dyn(part));
            start += len;
        }
        Ok(outs)
    }

    /// `MatMul` of a channel-last tensor `[N, …, C]` (channels on IR axis 1) by a constant
    /// `[C, K]`: a 1×1 convolution (ConvNeXt's point-wise `nn.Linear` layers).
    pub(super) fn pointwise_matmul(
        &mut self,
        n: &NodeProto,
        name: &str,
        x: &Dyn,
        b: &Const,
    ) -> Result<Val, String> {
        let (cin, cout) = (b.dims[0], b.dims[1]);
        if x.shape[x.rank() - 1] != cin {
            return Err(format!("MatMul of shapes {:?} and {:?}", x.shape, b.dims));
        }
        let w = b.transpose(&[1, 0])?;
        let weight = self.param(input_name(n, 1)?, vec![cout, cin, 1, 1], w.floats(), true)?;
        let op = Op::Conv2d(Conv2d {
            weight,
            bias: None,
            stride: [1, 1],
            padding: [0; 4],
            dilation: [1, 1],
            groups: 1,
        });
        let output = output_name(n)?.clone();
        let node = self.push(name, op, vec![x.node]);
        self.producers.insert(node, output);
        let mut shape = x.shape.clone();
        shape[x.rank() - 1] = cout;
        Ok(Val::Dyn(Dyn {
            node,
            shape,
            axes: x.axes.clone(),
            origin: x.origin.clone(),
        }))
    }

    /// Folds `x · c` into the Conv/Linear producing `x` when that is exact: `x` is read only
    /// here and `c` is constant per channel (ConvNeXt's layer scale, a linear map merged into
    /// the layer before it: `(W ⋆ x + b)·γ = (γW) ⋆ x + γb`), or into a LayerNorm without
    /// affine parameters as its γ.
    pub(super) fn fold_scale(
        &mut self,
        n: &NodeProto,
        xi: usize,
        x: &Dyn,
        c: &Const,
    ) -> Result<bool, String> {
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
        if ir.dims[0] != 1 || ir.dims[2] != 1 || ir.dims[3] != 1 {
            return Ok(false);
        }
        if ![1, channels].contains(&ir.dims[1]) {
            return Ok(false);
        }
        let scale = ir.broadcast_to(&[1, channels, 1, 1])?.floats();
        let (weight, bias) = match &mut self.nodes[x.node].op {
            Op::Conv2d(conv) => (conv.weight.clone(), conv.bias.clone()),
            Op::Linear(lin) => (lin.weight.clone(), lin.bias.clone()),
            Op::LayerNorm(ln) if ln.weight.is_none() && ln.bias.is_none() => {
                // The γ of a decomposed LayerNorm (`Mul` after the `Div`).
                let key = input_name(n, 1 - xi)?.clone();
                let gamma = self.param(&key, vec![channels], scale, true)?;
                if let Op::LayerNorm(ln) = &mut self.nodes[x.node].op {
                    ln.weight = Some(gamma);
                }
                self.producers.insert(x.node, output_name(n)?.clone());
                return Ok(true);
            }
            _ => return Ok(false),
        };
        let scaled = |cv: &mut Converter, key: &str| -> Result<String, String> {
            let p = cv.params.get(key).map_err(|e| e.to_string())?;
            let shape = p.shape.clone();
            let per_row = p.values().len() / channels;
            let values: Vec<f32> = p
                .values()
                .iter()
                .enumerate()
                .map(|(i, v)| v * scale[i / per_row])
                .collect();
            cv.param(&format!("{key}/scaled"), shape, values, true)
        };
        let weight = scaled(self, &weight)?;
        let bias = bias.map(|b| scaled(self, &b)).transpose()?;
        match &mut self.nodes[x.node].op {
            Op::Conv2d(conv) => (conv.weight, conv.bias) = (weight, bias),
            Op::Linear(lin) => (lin.weight, lin.bias) = (weight, bias),
            _ => unreachable!("checked above"),
        }
        self.producers.insert(x.node, output_name(n)?.clone());
        Ok(true)
    }

    /// `Pad` of a run-time NCHW tensor over its spatial axes: a zero pad read only by
    /// convolutions is folded into their padding (which may be asymmetric, as TensorFlow's
    /// "same" padding is; [`Converter::zero_pads`]); any other becomes an [`Op::Pad`].
    pub(super) fn pad(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let r = x.rank();
        let pads = match (self.opset >= 11, a.ints("pads")) {
            (false, Some(p)) => p,
            (false, None) => return Err("Pad without pads".into()),
            (true, _) => self.const_in(n, 1)?.ints(),
        };
        let value = match (self.opset >= 11, self.const_opt(n, 2).ok().flatten()) {
            (true, Some(v)) if v.numel() > 0 => v.scalar()?,
            (true, _) => 0.0,
            (false, _) => a.float("value", 0.0),
        };
        let axes: Vec<usize> = match self.const_opt(n, 3).ok().flatten() {
            Some(c) if self.opset >= 18 => c
                .ints()
                .iter()
                .map(|&v| axis(v, r))
                .collect::<Result<_, _>>()?,
            _ => (0..r).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(format!("pads {pads:?} for {} axes", axes.len()));
        }
        let mode_name = a.string("mode").unwrap_or_else(|| "constant".into());
        let mode = match mode_name.as_str() {
            "constant" => PadMode::Constant(value),
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            other => {
                return Err(format!(
                    "attribute mode = '{other}' is not supported (constant, reflect, edge)"
                ));
            }
        };
        // A rank-4 value is padded where its IR holds the axis, so a pad of tf2onnx's NHWC
        // value (its layout tracked, not executed) needs no transpose: only the axis an IR
        // spatial dimension holds may be padded.
        let x = if r == 4 { x } else { self.plain(&x, name) };
        let mut ir = [0usize; 4]; // top, left, bottom, right
        let mut shape = x.shape.clone();
        for (k, &ax) in axes.iter().enumerate() {
            let (begin, end) = (pads[k], pads[k + axes.len()]);
            if begin < 0 || end < 0 {
                return Err(format!(
                    "attribute pads = {pads:?}: negative pads (cropping) are not supported"
                ));
            }
            if begin == 0 && end == 0 {
                continue;
            }
            let ir_axis = if r == 4 { x.ir_axis(ax) } else { ax };
            if r != 4 || ir_axis < 2 {
                return Err(format!(
                    "attribute pads = {pads:?} pads axis {ax} of a tensor of shape {:?} (only \
                     the spatial axes of image tensors)",
                    x.shape
                ));
            }
            ir[ir_axis - 2] = begin as usize;
            ir[ir_axis] = end as usize;
            shape[ax] = shape[ax].saturating_add(begin as usize + end as usize);
        }
        if matches!(mode, PadMode::Reflect) {
            let [_, _, h, w] = x.ir_dims();
            if ir[0].max(ir[2]) >= h || ir[1].max(ir[3]) >= w {
                return Err(format!(
                    "attribute pads = {pads:?}: a reflect pad must be smaller than the tensor \
                     {:?}",
                    x.shape
                ));
            }
        }
        self.check_padded(&x, ir)?;
        if ir == [0; 4] {
            return Ok(Val::Dyn(x));
        }
        let output = output_name(n)?;
        let only_convs = self
            .readers
            .get(output)
            .is_some_and(|ops| ops.iter().all(|op| op == "Conv"));
        if mode == PadMode::Constant(0.0) && only_convs && x.is_plain() {
            // The value stays unpadded; each reading Conv adds these pads to its own.
            self.zero_pads.insert(output.clone(), ir);
            return Ok(Val::Dyn(x));
        }
        let node = self.push(name, Op::Pad { pads: ir, mode }, vec![x.node]);
        Ok(Val::Dyn(Dyn {
            node,
            shape,
            axes: x.axes.clone(),
            origin: x.origin.clone(),
        }))
    }
}
