//! Recognises the decomposed forms exporters write for operations the IR has as one op, and
//! rewrites each into one synthetic node before conversion, so that the graph a user explains
//! has one `Gelu`, one `LayerNormalization` or one `ChannelShuffle` where their model had one:
//!
//! - GELU: `Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)` (torch.onnx below opset 20);
//! - LayerNorm: `d = Sub(x, ReduceMean(x)); Div(d, Sqrt(Add(ReduceMean(Pow(d, 2)), ε)))`
//!   (torch.onnx below opset 17), over the same single axis;
//! - channel shuffle: `Reshape(Transpose(Reshape(x, [N, g, C/g, H, W]), [0, 2, 1, 3, 4]), …)`
//!   (ShuffleNet);
//! - a reshape through a flat view: `Gather(Reshape(x, [-1]), arange(k) of shape S, axis 0)`,
//!   how the dynamo exporter writes `as_strided` (ConvNeXt's head), which is `Reshape(x, S)`
//!   when `k` is all of `x` (the converter checks that).
//!
//! A pattern is rewritten only when its intermediate values are read by the pattern alone and
//! its constants have the values the formula needs; anything else is left for the converter,
//! which refuses what it cannot express by name.

use std::collections::HashMap;

use super::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};
use super::tensor::Const;

/// The nodes of `graph` with the patterns above replaced by synthetic nodes (`Gelu`,
/// `LayerNormalization` with a `relevance_axes` attribute, `ChannelShuffle`).
pub fn fuse(graph: &GraphProto) -> Vec<NodeProto> {
    let scalars = scalar_constants(graph);
    let mut f = Fusion {
        nodes: graph.node.iter().cloned().map(Some).collect(),
        producer: HashMap::new(),
        uses: HashMap::new(),
        scalars,
        graph,
    };
    for (i, n) in graph.node.iter().enumerate() {
        for o in &n.output {
            f.producer.insert(o.clone(), i);
        }
        for input in n.input.iter().filter(|s| !s.is_empty()) {
            *f.uses.entry(input.clone()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *f.uses.entry(o.name.clone()).or_default() += 1;
    }
    for i in 0..f.nodes.len() {
        let op = f.nodes[i].as_ref().map(|n| n.op_type.clone());
        match op.as_deref() {
            Some("Erf") => f.gelu(i),
            Some("ReduceMean") => f.layer_norm(i),
            Some("Reshape") => f.channel_shuffle(i),
            Some("Gather") => f.flat_gather(i),
            _ => {}
        }
    }
    f.nodes.into_iter().flatten().collect()
}

/// One-element float constants by value name (initialisers and `Constant` nodes).
fn scalar_constants(graph: &GraphProto) -> HashMap<String, f32> {
    let mut out = HashMap::new();
    let mut add = |name: &str, c: Const| {
        if c.numel() == 1
            && let Ok(v) = c.scalar()
        {
            out.insert(name.to_string(), v);
        }
    };
    for t in &graph.initializer {
        if let Ok(c) = Const::from_proto(t) {
            add(&t.name, c);
        }
    }
    for n in &graph.node {
        if n.op_type == "Constant"
            && let (Some(a), Some(o)) = (
                n.attribute.iter().find(|a| a.name == "value"),
                n.output.first(),
            )
            && let Some(t) = &a.t
            && let Ok(c) = Const::from_proto(t)
        {
            add(o, c);
        }
    }
    out
}

struct Fusion<'g> {
    nodes: Vec<Option<NodeProto>>,
    producer: HashMap<String, usize>,
    uses: HashMap<String, usize>,
    scalars: HashMap<String, f32>,
    graph: &'g GraphProto,
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

impl Fusion<'_> {
    fn node(&self, i: usize) -> Option<&NodeProto> {
        self.nodes.get(i).and_then(|n| n.as_ref())
    }

    /// The live node producing `value`.
    fn made_by(&self, value: &str, op: &str) -> Option<usize> {
        let i = *self.producer.get(value)?;
        (self.node(i)?.op_type == op).then_some(i)
    }

    /// The only node reading `value`, if it is `op` and nothing else reads the value.
    fn sole_reader(&self, value: &str, op: &str) -> Option<usize> {
        if self.uses.get(value).copied() != Some(1) {
            return None;
        }
        self.nodes.iter().position(|n| {
            n.as_ref()
                .is_some_and(|n| n.op_type == op && n.input.iter().any(|s| s == value))
        })
    }

    fn uses(&self, value: &str) -> usize {
        self.uses.get(value).copied().unwrap_or(0)
    }

    fn out(&self, i: usize) -> String {
        self.node(i)
            .and_then(|n| n.output.first().cloned())
            .unwrap_or_default()
    }

    /// For a binary node, the operand other than `value` and whether it is the scalar `want`.
    fn other_is(&self, i: usize, value: &str, want: f32) -> bool {
        let Some(n) = self.node(i) else { return false };
        if n.input.len() != 2 {
            return false;
        }
        let other = if n.input[0] == value {
            &n.input[1]
        } else {
            &n.input[0]
        };
        other != value && self.scalars.get(other).is_some_and(|&v| close(v, want))
    }

    /// The operand of binary node `i` that is not `value`.
    fn other_operand(&self, i: usize, value: &str) -> Option<String> {
        let n = self.node(i)?;
        match n.input.as_slice() {
            [a, b] if a == value => Some(b.clone()),
            [a, b] if b == value => Some(a.clone()),
            _ => None,
        }
    }

    /// Replaces nodes `remove` and `last` by `fused` (which takes `last`'s place).
    fn replace(&mut self, remove: &[usize], last: usize, fused: NodeProto) {
        for &i in remove {
            self.nodes[i] = None;
        }
        self.nodes[last] = Some(fused);
    }

    fn synthetic(
        &self,
        last: usize,
        op: &str,
        inputs: Vec<String>,
        attrs: Vec<AttributeProto>,
    ) -> NodeProto {
        let template = self.node(last).expect("live node");
        NodeProto {
            input: inputs,
            output: vec![self.out(last)],
            name: template.name.clone(),
            op_type: op.to_string(),
            domain: String::new(),
            attribute: attrs,
        }
    }

    /// `erf` at node `e`: `Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)` → `Gelu(x)`.
    fn gelu(&mut self, e: usize) {
        let Some(erf_in) = self.node(e).and_then(|n| n.input.first().cloned()) else {
            return;
        };
        if self.uses(&erf_in) != 1 {
            return;
        }
        let scaled = self
            .made_by(&erf_in, "Div")
            .filter(|&d| self.node(d).is_some_and(|n| n.input.len() == 2))
            .filter(|&d| {
                let n = self.node(d).expect("live");
                self.scalars
                    .get(&n.input[1])
                    .is_some_and(|&v| close(v, std::f32::consts::SQRT_2))
            })
            .or_else(|| {
                self.made_by(&erf_in, "Mul").filter(|&m| {
                    let n = self.node(m).expect("live");
                    n.input.len() == 2
                        && self
                            .scalars
                            .get(&n.input[1])
                            .is_some_and(|&v| close(v, std::f32::consts::FRAC_1_SQRT_2))
                })
            });
        let Some(scaled) = scaled else { return };
        let x = self.node(scaled).expect("live").input[0].clone();
        let erf_out = self.out(e);
        let Some(plus) = self
            .sole_reader(&erf_out, "Add")
            .filter(|&a| self.other_is(a, &erf_out, 1.0))
        else {
            return;
        };
        let plus_out = self.out(plus);
        let Some(times_x) = self
            .sole_reader(&plus_out, "Mul")
            .filter(|&m| self.other_operand(m, &plus_out).as_deref() == Some(x.as_str()))
        else {
            return;
        };
        let times_out = self.out(times_x);
        let Some(half) = self
            .sole_reader(&times_out, "Mul")
            .filter(|&m| self.other_is(m, &times_out, 0.5))
        else {
            return;
        };
        let fused = self.synthetic(half, "Gelu", vec![x], vec![]);
        self.replace(&[scaled, e, plus, times_x], half, fused);
    }

    /// The reduced axes of a `ReduceMean` with `keepdims` 1 (attribute before opset 18, or a
    /// constant input the converter would fold — only the attribute form is recognised here).
    fn mean_axes(&self, i: usize) -> Option<Vec<i64>> {
        let n = self.node(i)?;
        let attr = |name: &str| n.attribute.iter().find(|a| a.name == name);
        if attr("keepdims").is_some_and(|a| a.i == 0) || n.input.len() != 1 {
            return None;
        }
        attr("axes").map(|a| a.ints.clone())
    }

    /// `ReduceMean` at node `r1` starting a decomposed LayerNorm → `LayerNormalization(x)`
    /// with `epsilon` and the reduced axes.
    fn layer_norm(&mut self, r1: usize) {
        let Some(axes) = self.mean_axes(r1).filter(|a| a.len() == 1) else {
            return;
        };
        let x = self.node(r1).expect("live").input[0].clone();
        let mean = self.out(r1);
        let Some(sub) = self.sole_reader(&mean, "Sub") else {
            return;
        };
        if self.node(sub).expect("live").input != [x.clone(), mean.clone()] {
            return;
        }
        let d = self.out(sub);
        if self.uses(&d) != 2 {
            return;
        }
        let readers: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.node(i).is_some_and(|n| n.input.contains(&d)))
            .collect();
        let [first, second] = readers[..] else { return };
        let (pow, div) = match (
            self.node(first).map(|n| n.op_type.as_str()),
            self.node(second).map(|n| n.op_type.as_str()),
        ) {
            (Some("Pow"), Some("Div")) => (first, second),
            (Some("Div"), Some("Pow")) => (second, first),
            _ => return,
        };
        let pow_node = self.node(pow).expect("live");
        if pow_node.input.len() != 2
            || pow_node.input[0] != d
            || !self
                .scalars
                .get(&pow_node.input[1])
                .is_some_and(|&v| close(v, 2.0))
        {
            return;
        }
        let pow_out = self.out(pow);
        let Some(r2) = self
            .sole_reader(&pow_out, "ReduceMean")
            .filter(|&r| self.mean_axes(r) == Some(axes.clone()))
        else {
            return;
        };
        let var = self.out(r2);
        let Some(add) = self.sole_reader(&var, "Add") else {
            return;
        };
        let Some(eps_name) = self.other_operand(add, &var) else {
            return;
        };
        let Some(&eps) = self.scalars.get(&eps_name) else {
            return;
        };
        let add_out = self.out(add);
        let Some(sqrt) = self.sole_reader(&add_out, "Sqrt") else {
            return;
        };
        let sqrt_out = self.out(sqrt);
        if self.node(div).expect("live").input != [d.clone(), sqrt_out.clone()]
            || self.uses(&sqrt_out) != 1
        {
            return;
        }
        let attrs = vec![
            AttributeProto {
                name: "epsilon".into(),
                f: eps,
                r#type: 1,
                ..Default::default()
            },
            AttributeProto {
                name: "relevance_axes".into(),
                ints: axes,
                r#type: 7,
                ..Default::default()
            },
        ];
        let fused = self.synthetic(div, "LayerNormalization", vec![x], attrs);
        self.replace(&[r1, sub, pow, r2, add, sqrt], div, fused);
    }

    /// The integer constant `name` (an initialiser), if it is one.
    fn int_constant(&self, name: &str) -> Option<Const> {
        let t = self.graph.initializer.iter().find(|t| t.name == name)?;
        Const::from_proto(t).ok()
    }

    /// `Gather` at node `g` reading a flat reshape with indices `0, 1, …, k − 1` along axis 0 →
    /// `Reshape(x, shape of the indices)`, the shape given by a new `Constant` node.
    fn flat_gather(&mut self, g: usize) {
        let n = self.node(g).expect("live");
        let axis = n
            .attribute
            .iter()
            .find(|a| a.name == "axis")
            .map_or(0, |a| a.i);
        if axis != 0 || n.input.len() != 2 {
            return;
        }
        let (flat, indices) = (n.input[0].clone(), n.input[1].clone());
        let Some(r) = self.made_by(&flat, "Reshape") else {
            return;
        };
        if self.uses(&flat) != 1 {
            return;
        }
        let rn = self.node(r).expect("live");
        let is_flat = rn.input.len() == 2
            && self
                .int_constant(&rn.input[1])
                .is_some_and(|c| c.dims.len() == 1 && c.numel() == 1);
        let Some(idx) = self.int_constant(&indices) else {
            return;
        };
        let ascending = idx.ints().iter().enumerate().all(|(i, &v)| v == i as i64);
        if !is_flat || !ascending || idx.dims.is_empty() {
            return;
        }
        let x = rn.input[0].clone();
        let shape_name = format!("{}/shape", self.out(g));
        let shape = TensorProto {
            dims: vec![idx.dims.len() as i64],
            data_type: 7,
            int64_data: idx.dims.iter().map(|&d| d as i64).collect(),
            ..Default::default()
        };
        let constant = NodeProto {
            input: vec![],
            output: vec![shape_name.clone()],
            name: shape_name.clone(),
            op_type: "Constant".into(),
            domain: String::new(),
            attribute: vec![AttributeProto {
                name: "value".into(),
                r#type: 4,
                t: Some(shape),
                ..Default::default()
            }],
        };
        let reshape = self.synthetic(g, "Reshape", vec![x, shape_name], vec![]);
        // The reshape takes the Reshape's place (before the Gather), the shape just before it.
        self.nodes[r] = Some(constant);
        self.nodes[g] = Some(reshape);
    }

    /// `Reshape` at node `r1` starting a channel shuffle → `ChannelShuffle(x, shape₁, shape₂)`;
    /// the converter checks the shapes.
    fn channel_shuffle(&mut self, r1: usize) {
        let n = self.node(r1).expect("live");
        if n.input.len() != 2 {
            return;
        }
        let (x, shape1) = (n.input[0].clone(), n.input[1].clone());
        let split = self.out(r1);
        let Some(t) = self.sole_reader(&split, "Transpose").filter(|&t| {
            self.node(t)
                .and_then(|n| n.attribute.iter().find(|a| a.name == "perm"))
                .is_some_and(|a| a.ints == [0, 2, 1, 3, 4])
        }) else {
            return;
        };
        let swapped = self.out(t);
        let Some(r2) = self.sole_reader(&swapped, "Reshape") else {
            return;
        };
        let r2n = self.node(r2).expect("live");
        if r2n.input.len() != 2 || r2n.input[0] != swapped {
            return;
        }
        let shape2 = r2n.input[1].clone();
        let fused = self.synthetic(r2, "ChannelShuffle", vec![x, shape1, shape2], vec![]);
        self.replace(&[r1, t], r2, fused);
    }
}
