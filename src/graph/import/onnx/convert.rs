//! The conversion state: every ONNX value is either a constant or a tensor produced by an IR
//! node, seen through a *layout* (which logical ONNX axis each IR axis holds), so transposes
//! cost nothing until an op needs the logical order.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::proto::{AttributeProto, GraphProto, NodeProto, TensorProto, TypeProto};
use super::tensor::Const;
use super::{InputHint, OnnxModel};
use crate::graph::card::Layout;
use crate::graph::{Graph, Init, Node, NodeId, Op, ParamSpec, ParamStore};

/// A value computed by the graph at run time.
#[derive(Clone, Debug)]
pub struct Dyn {
    /// The IR node holding it.
    pub node: NodeId,
    /// Its logical ONNX shape, batch (dim 0) taken as 1.
    pub shape: Vec<usize>,
    /// For IR axis `i < rank`, the logical axis it holds (identity unless a transpose was
    /// absorbed); IR axes from `rank` to 3 are size 1.
    pub axes: Vec<usize>,
    /// Name of the ONNX transpose that made the layout non-identity, to name a later Permute.
    pub origin: Option<String>,
}

impl Dyn {
    /// The IR tensor's dims (batch 1).
    pub fn ir_dims(&self) -> [usize; 4] {
        let mut d = [1; 4];
        for (i, &a) in self.axes.iter().enumerate() {
            d[i] = self.shape[a];
        }
        d
    }

    /// True when IR order is the logical order.
    pub fn is_plain(&self) -> bool {
        self.axes.iter().enumerate().all(|(i, &a)| i == a)
    }

    /// Logical rank.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The IR axis holding logical axis `a`.
    pub fn ir_axis(&self, a: usize) -> usize {
        self.axes
            .iter()
            .position(|&x| x == a)
            .expect("axis present")
    }
}

/// An ONNX value during conversion.
#[derive(Clone, Debug)]
pub enum Val {
    /// Known at import time.
    Const(Rc<Const>),
    /// Computed by the graph.
    Dyn(Dyn),
}

/// Conversion state.
pub struct Converter {
    /// Default-domain opset.
    pub opset: i64,
    /// Every value seen so far by name.
    pub values: HashMap<String, Val>,
    /// How many node inputs and graph outputs read each value.
    pub uses: HashMap<String, usize>,
    /// IR nodes built so far.
    pub nodes: Vec<Node>,
    /// Parameter specs.
    pub specs: Vec<ParamSpec>,
    /// Parameter values.
    pub params: ParamStore,
    /// For Conv/Linear nodes: the ONNX value they produce, so a bias-add is folded into them
    /// only when it reads exactly that value (not an alias another node also reads).
    pub producers: HashMap<NodeId, String>,
    /// Node names taken so far.
    names: HashSet<String>,
    /// Per base name, the suffix `#k` to try next, so that 40 000 nodes sharing one name take
    /// linear, not quadratic, time.
    name_next: HashMap<String, usize>,
    /// Most elements any run-time tensor of the graph may have ([`activation_limit`]).
    pub max_elements: usize,
    /// For each value, the operator types of the nodes reading it.
    pub readers: HashMap<String, Vec<String>>,
    /// Zero pads `[top, left, bottom, right]` not yet applied, by the value they would have
    /// made: the value is the unpadded tensor and the convolutions reading it pad it.
    pub zero_pads: HashMap<String, [usize; 4]>,
}

/// Most elements one run-time tensor (the input, an activation, a padded input) may have: 2²⁶
/// (256 MiB of f32, beyond the activations of real classifiers at their input sizes) or
/// 16 × the model's initialiser elements, whichever is larger, so the limit grows with the
/// model's real size. A crafted 100000² input or a Conv padded by 10⁸ is refused at import
/// instead of aborting at the first prediction.
pub fn activation_limit(initialiser_elements: usize) -> usize {
    initialiser_elements.saturating_mul(16).max(1 << 26)
}

/// The next unused name `base`, `base#2`, `base#3`, … in `taken`, where `next` remembers per
/// base where to resume the search.
fn unique_name(
    base: &str,
    next: &mut HashMap<String, usize>,
    mut taken: impl FnMut(&str) -> bool,
) -> String {
    let k = next.entry(base.to_string()).or_insert(1);
    let mut candidate = if *k == 1 {
        base.to_string()
    } else {
        format!("{base}#{k}")
    };
    while taken(&candidate) {
        *k += 1;
        candidate = format!("{base}#{k}");
    }
    candidate
}

/// Identity axes of rank `r`.
pub fn identity(r: usize) -> Vec<usize> {
    (0..r).collect()
}

/// Makes an ONNX name usable as a node name: no whitespace, control characters or commas
/// (node lists in messages are comma-separated).
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || c == ',' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Typed access to a node's attributes.
pub struct Attrs<'a>(pub &'a [AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    /// INT attribute or `default`.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    /// FLOAT attribute or `default`.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    /// INTS attribute, if present.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
    /// STRING attribute, if present.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
    /// TENSOR attribute, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorProto> {
        self.get(name).and_then(|a| a.t.as_ref())
    }
    /// Whether an attribute is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// FLOATS attribute, if present.
    pub fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.get(name).map(|a| a.floats.clone())
    }
}

fn dims_of(t: &Option<TypeProto>) -> Option<Vec<Option<usize>>> {
    let shape = t.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| d.dim_value.filter(|&v| v > 0).map(|v| v as usize))
            .collect(),
    )
}

impl Converter {
    /// Appends an IR node under a unique version of `name`.
    pub fn push(&mut self, name: &str, op: Op, inputs: Vec<NodeId>) -> NodeId {
        let base = sanitize(name);
        let names = &self.names;
        let unique = unique_name(&base, &mut self.name_next, |c| names.contains(c));
        self.names.insert(unique.clone());
        self.nodes.push(Node {
            name: unique,
            op,
            inputs,
        });
        self.nodes.len() - 1
    }

    /// Stores a parameter under `key` (or a unique variant if `key` already holds other
    /// values) and returns the key used.
    pub fn param(
        &mut self,
        key: &str,
        shape: Vec<usize>,
        values: Vec<f32>,
        trainable: bool,
    ) -> Result<String, String> {
        let mut unique = key.to_string();
        let mut k = 2;
        while let Ok(p) = self.params.get(&unique) {
            if p.shape == shape && p.values() == values {
                return Ok(unique);
            }
            unique = format!("{key}#{k}");
            k += 1;
        }
        self.params
            .insert_values(unique.clone(), values, shape.clone())
            .map_err(|e| e.to_string())?;
        self.specs.push(ParamSpec {
            key: unique.clone(),
            shape,
            init: Init::Zeros,
            trainable,
        });
        Ok(unique)
    }

    /// The value named `name`.
    pub fn value(&self, name: &str) -> Result<&Val, String> {
        self.values
            .get(name)
            .ok_or_else(|| format!("value '{name}' is used before it is computed"))
    }

    /// Input `i` of `n`, if given (absent or empty-named inputs are omitted optionals).
    pub fn input_opt(&self, n: &NodeProto, i: usize) -> Result<Option<&Val>, String> {
        match n.input.get(i) {
            Some(name) if !name.is_empty() => self.value(name).map(Some),
            _ => Ok(None),
        }
    }

    /// Input `i` of `n`.
    pub fn input(&self, n: &NodeProto, i: usize) -> Result<&Val, String> {
        self.input_opt(n, i)?
            .ok_or_else(|| format!("input {i} is missing"))
    }

    /// Input `i` as a constant.
    pub fn const_in(&self, n: &NodeProto, i: usize) -> Result<Rc<Const>, String> {
        match self.input(n, i)? {
            Val::Const(c) => Ok(c.clone()),
            Val::Dyn(_) => Err(format!(
                "input {i} ('{}') must be a constant (an initialiser or foldable shape arithmetic)",
                n.input[i]
            )),
        }
    }

    /// Optional input `i` as a constant.
    pub fn const_opt(&self, n: &NodeProto, i: usize) -> Result<Option<Rc<Const>>, String> {
        match self.input_opt(n, i)? {
            None => Ok(None),
            Some(_) => self.const_in(n, i).map(Some),
        }
    }

    /// Input `i` as a run-time tensor.
    pub fn dyn_in(&self, n: &NodeProto, i: usize) -> Result<Dyn, String> {
        match self.input(n, i)? {
            Val::Dyn(d) => Ok(d.clone()),
            Val::Const(_) => Err(format!(
                "input {i} is a constant where a tensor was expected"
            )),
        }
    }

    /// The value in plain (logical) IR order, inserting a Permute if it is transposed.
    pub fn plain(&mut self, v: &Dyn, consumer: &str) -> Dyn {
        if v.is_plain() {
            return v.clone();
        }
        let mut perm = [0, 1, 2, 3];
        for (j, p) in perm.iter_mut().enumerate().take(v.rank()) {
            *p = v.ir_axis(j);
        }
        let name = match &v.origin {
            Some(o) => o.clone(),
            None => format!("{consumer}/permute"),
        };
        let op = if moves_only_unit_axes(&v.ir_dims(), &perm) {
            // Same values in the same memory order (e.g. a pooled [N, C, 1, 1] seen as NHWC):
            // a reshape, which keeps a pooled head recognisable to CAM.
            let mut dims = [1; 4];
            dims[..v.rank()].copy_from_slice(&v.shape);
            Op::Reshape([dims[1], dims[2], dims[3]])
        } else {
            Op::Permute(perm)
        };
        let node = self.push(&name, op, vec![v.node]);
        Dyn {
            node,
            shape: v.shape.clone(),
            axes: identity(v.rank()),
            origin: None,
        }
    }

    /// A constant as an IR `Constant` node broadcasting against `like`: aligned to its rank
    /// (numpy rules), arranged in its IR layout and padded to rank 4.
    pub fn const_node(&mut self, c: &Const, name: &str, like: &Dyn) -> Result<NodeId, String> {
        let c = self.ir_const(c, like)?;
        let key = self.param(name, c.dims.clone(), c.floats(), false)?;
        Ok(self.push(name, Op::Constant(key), vec![]))
    }

    /// A constant arranged like `like`'s IR tensor (rank 4), for broadcasting against it.
    pub fn ir_const(&self, c: &Const, like: &Dyn) -> Result<Const, String> {
        let r = like.rank();
        if c.dims.len() > r {
            return Err(format!(
                "constant of shape {:?} has a higher rank than the tensor {:?}",
                c.dims, like.shape
            ));
        }
        let mut dims = vec![1; r - c.dims.len()];
        dims.extend(&c.dims);
        if dims[0] != 1 {
            return Err(format!(
                "constant of shape {:?} varies along the batch dimension",
                c.dims
            ));
        }
        let aligned = c.reshaped(dims)?.transpose(&like.axes)?;
        let mut ir = aligned.dims.clone();
        ir.resize(4, 1);
        aligned.reshaped(ir)
    }

    /// Refuses a run-time tensor of logical shape `shape` with more than
    /// [`Converter::max_elements`] elements.
    pub fn check_size(&self, shape: &[usize], what: &str) -> Result<(), String> {
        let n = super::tensor::numel(shape);
        if n > self.max_elements {
            return Err(format!(
                "{what} of shape {shape:?} would have {} elements, more than the {} this \
                 model may create",
                if n == usize::MAX {
                    "over 2^64".to_string()
                } else {
                    n.to_string()
                },
                self.max_elements
            ));
        }
        Ok(())
    }

    /// Refuses a window op whose input, padded by `padding` (`[top, left, bottom, right]`),
    /// would be too large ([`Converter::check_size`]).
    pub fn check_padded(&self, x: &Dyn, padding: [usize; 4]) -> Result<(), String> {
        let grow = |d: usize, a: usize, b: usize| d.saturating_add(a).saturating_add(b);
        let [n, c, h, w] = x.ir_dims();
        let padded = [
            n,
            c,
            grow(h, padding[0], padding[2]),
            grow(w, padding[1], padding[3]),
        ];
        self.check_size(&padded, "the padded input")
    }

    /// Removes the parameters no node reads (weights replaced by folded copies).
    fn drop_unread_params(&mut self) {
        let read: HashSet<String> = self
            .nodes
            .iter()
            .flat_map(|n| n.op.param_keys())
            .map(str::to_string)
            .collect();
        self.specs.retain(|s| read.contains(&s.key));
        let unread: Vec<String> = self
            .params
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| !read.contains(k))
            .collect();
        for k in unread {
            self.params.remove(&k);
        }
    }

    /// Records the outputs of a node; extra outputs must be unused.
    pub fn set_outputs(&mut self, n: &NodeProto, vals: Vec<Val>) -> Result<(), String> {
        for v in &vals {
            if let Val::Dyn(d) = v {
                self.check_size(&d.shape, "the output")?;
            }
        }
        let count = vals.len();
        for (name, v) in n.output.iter().zip(vals) {
            self.values.insert(name.clone(), v);
        }
        if let Some(extra) = n.output[count.min(n.output.len())..]
            .iter()
            .find(|o| !o.is_empty() && self.uses.get(*o).copied().unwrap_or(0) > 0)
        {
            return Err(format!(
                "its output '{extra}' is used, which is not supported"
            ));
        }
        Ok(())
    }
}

/// Builds the IR graph of `graph`.
pub fn convert(graph: &GraphProto, opset: i64, hint: &InputHint) -> Result<OnnxModel, String> {
    let mut cv = Converter {
        opset,
        values: HashMap::new(),
        uses: HashMap::new(),
        nodes: Vec::new(),
        specs: Vec::new(),
        params: ParamStore::new(),
        producers: HashMap::new(),
        names: HashSet::new(),
        name_next: HashMap::new(),
        max_elements: 0,
        readers: HashMap::new(),
        zero_pads: HashMap::new(),
    };
    let nodes = super::fuse::fuse(graph);
    for n in &nodes {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *cv.uses.entry(i.clone()).or_default() += 1;
            cv.readers
                .entry(i.clone())
                .or_default()
                .push(n.op_type.clone());
        }
    }
    for o in &graph.output {
        *cv.uses.entry(o.name.clone()).or_default() += 1;
        cv.readers
            .entry(o.name.clone())
            .or_default()
            .push(String::new());
    }
    let mut initialiser_elements = 0usize;
    for t in &graph.initializer {
        let c = Const::from_proto(t).map_err(|e| format!("initialiser {e}"))?;
        initialiser_elements = initialiser_elements.saturating_add(c.numel());
        cv.values.insert(t.name.clone(), Val::Const(Rc::new(c)));
    }
    cv.max_elements = activation_limit(initialiser_elements);
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !cv.values.contains_key(&i.name))
        .collect();
    let input = match inputs.as_slice() {
        [one] => *one,
        [] => return Err("the model has no input".into()),
        many => {
            return Err(format!(
                "the model has {} inputs ({}); relevance imports single-input image models",
                many.len(),
                many.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    let (input_dyn, input_info) = input_value(&mut cv, graph, input, hint)?;
    cv.values.insert(input.name.clone(), Val::Dyn(input_dyn));

    for n in &nodes {
        cv.node(n).map_err(|e| {
            let name = if n.name.is_empty() {
                ""
            } else {
                n.name.as_str()
            };
            format!("node '{name}' ({}): {e}", n.op_type)
        })?;
    }

    let out_name = &graph.output.first().ok_or("the model has no output")?.name;
    let out = match cv.value(out_name)? {
        Val::Dyn(d) => d.clone(),
        Val::Const(_) => return Err(format!("the output '{out_name}' is a constant")),
    };
    let out = cv.plain(&out, out_name);
    let num_classes = out.shape.get(1).copied().unwrap_or(1);
    cv.drop_unread_params();
    let graph = Graph {
        nodes: cv.nodes,
        output: out.node,
        param_specs: cv.specs,
    };
    graph.validate().map_err(|e| e.to_string())?;
    Ok(OnnxModel {
        graph,
        params: cv.params,
        input_size: input_info.0,
        channels: input_info.1,
        layout: input_info.2,
        num_classes,
        opset,
        producer: String::new(),
    })
}

/// `[H, W]`, channels and layout of the model input.
type InputInfo = ([usize; 2], usize, Layout);

/// The graph input as an NCHW IR input node, and its `[H, W]`, channels and layout.
///
/// An input of shape `[N, H, W, C]` (C ∈ {1, 3} and dim 1 not) or one read only by
/// `Transpose(0, 3, 1, 2)` is NHWC; the IR input is then NCHW and the value's layout records
/// the difference.
fn input_value(
    cv: &mut Converter,
    graph: &GraphProto,
    input: &super::proto::ValueInfoProto,
    hint: &InputHint,
) -> Result<(Dyn, InputInfo), String> {
    let dims = dims_of(&input.r#type)
        .ok_or_else(|| format!("the input '{}' has no tensor shape", input.name))?;
    if dims.len() != 4 {
        return Err(format!(
            "the input '{}' has rank {}; relevance imports image models with a rank-4 input",
            input.name,
            dims.len()
        ));
    }
    let consumers: Vec<&NodeProto> = graph
        .node
        .iter()
        .filter(|n| n.input.contains(&input.name))
        .collect();
    let to_nchw = !consumers.is_empty()
        && consumers.iter().all(|n| {
            n.op_type == "Transpose" && Attrs(&n.attribute).ints("perm") == Some(vec![0, 3, 1, 2])
        });
    let looks_nhwc = matches!(dims[3], Some(1 | 3)) && !matches!(dims[1], Some(1 | 3));
    let layout =
        if to_nchw || looks_nhwc || (hint.layout == Some(Layout::Nhwc) && dims[1].is_none()) {
            Layout::Nhwc
        } else {
            Layout::Nchw
        };
    if let Some(l) = hint.layout
        && l != layout
    {
        return Err(format!(
            "the card says layout {l:?} but the model's input '{}' is {layout:?} (shape {})",
            input.name,
            show_dims(&dims)
        ));
    }
    let (c, h, w) = match layout {
        Layout::Nchw => (dims[1], dims[2], dims[3]),
        Layout::Nhwc => (dims[3], dims[1], dims[2]),
    };
    let pick = |model: Option<usize>, card: Option<usize>, fallback: usize, what: &str| match (
        model, card,
    ) {
        (Some(m), Some(c)) if m != c => Err(format!(
            "the card says {what} {c} but the model's input '{}' is fixed at {m} (shape {})",
            input.name,
            show_dims(&dims)
        )),
        (Some(m), _) => Ok(m),
        (None, Some(c)) => Ok(c),
        (None, None) => Ok(fallback),
    };
    let channels = pick(c, hint.channels, 3, "channels")?;
    let height = pick(
        h,
        hint.input_size.map(|s| s[0]),
        hint.fallback_size[0],
        "height",
    )?;
    let width = pick(
        w,
        hint.input_size.map(|s| s[1]),
        hint.fallback_size[1],
        "width",
    )?;
    cv.check_size(
        &[1, channels, height, width],
        &format!("the input '{}'", input.name),
    )?;
    let node = cv.push(&input.name, Op::Input, vec![]);
    let d = match layout {
        Layout::Nchw => Dyn {
            node,
            shape: vec![1, channels, height, width],
            axes: identity(4),
            origin: None,
        },
        Layout::Nhwc => Dyn {
            node,
            shape: vec![1, height, width, channels],
            axes: vec![0, 3, 1, 2],
            origin: None,
        },
    };
    Ok((d, ([height, width], channels, layout)))
}

fn show_dims(dims: &[Option<usize>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The name of input `i` of `n`; a malformed node without it is an error, not a panic.
pub fn input_name(n: &NodeProto, i: usize) -> Result<&String, String> {
    n.input
        .get(i)
        .ok_or_else(|| format!("input {i} is missing"))
}

/// The name of the first output of `n`; a malformed node without one is an error, not a panic.
pub fn output_name(n: &NodeProto) -> Result<&String, String> {
    n.output
        .first()
        .ok_or_else(|| "the node has no output".to_string())
}

/// True when permuting IR dims `dims` by `perm` (output axis `j` takes input axis `perm[j]`)
/// keeps the batch first and every axis longer than 1 in its order: a pure reshape.
fn moves_only_unit_axes(dims: &[usize; 4], perm: &[usize; 4]) -> bool {
    let long_in: Vec<usize> = (1..4).filter(|&a| dims[a] > 1).collect();
    let long_out: Vec<usize> = perm[1..].iter().copied().filter(|&a| dims[a] > 1).collect();
    perm[0] == 0 && long_in == long_out
}
