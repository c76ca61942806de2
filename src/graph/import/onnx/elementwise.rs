//! Element-wise ONNX operators on activations: `Neg`, `Abs`, `Sqrt`, `Pow` with a constant
//! exponent, `Reciprocal`, `Exp` (one [`Op::Unary`] each) and `Expand` (an [`Op::Expand`]).

use super::convert::{Converter, Dyn, Val};
use super::proto::NodeProto;
use super::tensor::broadcast_dims;
use crate::graph::{Op, Unary};

impl Converter {
    /// An element-wise function of a run-time tensor; `Pow` needs one constant exponent.
    pub(super) fn unary_function(&mut self, n: &NodeProto, name: &str) -> Result<Val, String> {
        let x = match self.input(n, 0)? {
            Val::Dyn(d) => d.clone(),
            Val::Const(_) => {
                return Err(format!(
                    "{} of a constant base by a run-time exponent is not supported",
                    n.op_type
                ));
            }
        };
        let f = match n.op_type.as_str() {
            "Neg" => Unary::Neg,
            "Abs" => Unary::Abs,
            "Sqrt" => Unary::Sqrt,
            "Reciprocal" => Unary::Reciprocal,
            "Exp" => Unary::Exp,
            _ => {
                let p = self.const_in(n, 1)?;
                if p.numel() != 1 {
                    return Err(format!(
                        "exponent of shape {:?} (one constant exponent is supported)",
                        p.dims
                    ));
                }
                Unary::Pow(p.scalar()?)
            }
        };
        Ok(Val::Dyn(self.apply_unary(&x, f, name)))
    }

    /// `f(x)` as a new node, `x`'s shape and layout kept.
    pub(super) fn apply_unary(&mut self, x: &Dyn, f: Unary, name: &str) -> Dyn {
        let node = self.push(name, Op::Unary(f), vec![x.node]);
        Dyn { node, ..x.clone() }
    }

    /// `Expand` of a run-time tensor to the constant shape input 1 (numpy broadcasting, so
    /// the result may also be larger than that shape): nothing when the shape stays, else
    /// an [`Op::Expand`] of the value in logical order, the batch axis unchanged.
    pub(super) fn expand(&mut self, n: &NodeProto, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        let target: Vec<usize> = self
            .const_in(n, 1)?
            .ints()
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| format!("shape with a negative entry {v}")))
            .collect::<Result<_, _>>()?;
        let shape = broadcast_dims(&x.shape, &target)?;
        if shape == x.shape {
            return Ok(Val::Dyn(x));
        }
        if shape.len() > 4 || shape.len() != x.rank() || shape[0] != x.shape[0] {
            return Err(format!(
                "expanding a tensor of shape {:?} to {shape:?} (only axes after the batch of a \
                 tensor of rank ≤ 4 may be broadcast)",
                x.shape
            ));
        }
        self.check_size(&shape, "the expanded tensor")?;
        let x = self.plain(&x, name);
        let mut dims = [1; 4];
        dims[..shape.len()].copy_from_slice(&shape);
        let node = self.push(name, Op::Expand([dims[1], dims[2], dims[3]]), vec![x.node]);
        Ok(Val::Dyn(Dyn { node, shape, ..x }))
    }
}
