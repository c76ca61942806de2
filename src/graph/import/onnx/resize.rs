//! ONNX `Resize` (opsets 10–18) and `Upsample` (opsets 7–9) of an image tensor over its
//! spatial axes, as one [`Op::Resize`]: nearest or linear, with the coordinate
//! transformations torch's exporter writes (`asymmetric`, `half_pixel`,
//! `pytorch_half_pixel`, `align_corners`) and the target given as constant `scales` or
//! `sizes`.

use super::convert::{Attrs, Converter, Dyn, Val};
use super::proto::NodeProto;
use super::tensor::axis;
use crate::graph::{CoordinateMode, NearestRounding, Op, Resize, ResizeMode};

/// The attribute `name` (default `default`) parsed by `parse`, or an error naming the
/// attribute, its value and the values supported.
fn choice<T>(
    a: &Attrs,
    name: &str,
    default: &str,
    parse: impl Fn(&str) -> Option<T>,
    supported: &str,
) -> Result<T, String> {
    let value = a.string(name).unwrap_or_else(|| default.into());
    parse(&value).ok_or_else(|| {
        format!("attribute {name} = '{value}' is not supported (supported: {supported})")
    })
}

fn mode(a: &Attrs, rounding: NearestRounding) -> Result<ResizeMode, String> {
    choice(
        a,
        "mode",
        "nearest",
        |v| match v {
            "nearest" => Some(ResizeMode::Nearest(rounding)),
            "linear" | "bilinear" => Some(ResizeMode::Linear),
            _ => None,
        },
        "nearest, linear",
    )
}

impl Converter {
    /// `Resize` and `Upsample` of a rank-4 tensor: batch and channel scales must be 1, the
    /// target a constant; cubic interpolation, antialiasing, `tf_crop_and_resize` and
    /// aspect-ratio policies other than `stretch` are refused by attribute and value.
    pub(super) fn resize(&mut self, n: &NodeProto, a: &Attrs, name: &str) -> Result<Val, String> {
        let x = self.dyn_in(n, 0)?;
        if x.rank() != 4 {
            return Err(format!(
                "resize of a rank-{} tensor (only images [N, C, H, W] are supported)",
                x.rank()
            ));
        }
        let x = self.plain(&x, name);
        let (mode, coordinates) = self.resize_modes(n, a)?;
        let (size, scale) = self.resize_target(n, a, &x)?;
        self.check_size(
            &[x.shape[0], x.shape[1], size[0], size[1]],
            "the resized tensor",
        )?;
        // The engine builds one dense [out, in] matrix per axis.
        self.check_size(&[size[0], x.shape[2]], "the row interpolation matrix")?;
        self.check_size(&[size[1], x.shape[3]], "the column interpolation matrix")?;
        let op = Op::Resize(Resize {
            mode,
            coordinates,
            size,
            scale,
        });
        let node = self.push(name, op, vec![x.node]);
        Ok(Val::Dyn(Dyn {
            node,
            shape: vec![x.shape[0], x.shape[1], size[0], size[1]],
            ..x
        }))
    }

    /// The interpolation and the coordinate transformation: `Upsample` and opset-10 `Resize`
    /// map output pixel `i` to `i / s` and take the pixel below (their only transformation);
    /// later `Resize` reads `coordinate_transformation_mode` and `nearest_mode`.
    fn resize_modes(
        &self,
        n: &NodeProto,
        a: &Attrs,
    ) -> Result<(ResizeMode, CoordinateMode), String> {
        if n.op_type == "Upsample" || self.opset < 11 {
            return Ok((mode(a, NearestRounding::Floor)?, CoordinateMode::Asymmetric));
        }
        let rounding = choice(
            a,
            "nearest_mode",
            "round_prefer_floor",
            |v| match v {
                "round_prefer_floor" => Some(NearestRounding::RoundPreferFloor),
                "round_prefer_ceil" => Some(NearestRounding::RoundPreferCeil),
                "floor" => Some(NearestRounding::Floor),
                "ceil" => Some(NearestRounding::Ceil),
                _ => None,
            },
            "round_prefer_floor, round_prefer_ceil, floor, ceil",
        )?;
        let coordinates = choice(
            a,
            "coordinate_transformation_mode",
            "half_pixel",
            |v| match v {
                "half_pixel" => Some(CoordinateMode::HalfPixel),
                "pytorch_half_pixel" => Some(CoordinateMode::PytorchHalfPixel),
                "align_corners" => Some(CoordinateMode::AlignCorners),
                "asymmetric" => Some(CoordinateMode::Asymmetric),
                _ => None,
            },
            "half_pixel, pytorch_half_pixel, align_corners, asymmetric",
        )?;
        if a.int("antialias", 0) != 0 {
            return Err(format!(
                "attribute antialias = {} is not supported (only 0)",
                a.int("antialias", 0)
            ));
        }
        let policy = a
            .string("keep_aspect_ratio_policy")
            .unwrap_or_else(|| "stretch".into());
        if policy != "stretch" {
            return Err(format!(
                "attribute keep_aspect_ratio_policy = '{policy}' is not supported (only 'stretch')"
            ));
        }
        Ok((mode(a, rounding)?, coordinates))
    }

    /// Output `[H, W]` and the scales the coordinate transformation divides by, from the
    /// constant `scales` (output length `⌊L·s⌋`) or `sizes` (scale = output / input length),
    /// over all four axes or the opset-18 `axes`; the batch and channel axes must keep their
    /// length.
    fn resize_target(
        &self,
        n: &NodeProto,
        a: &Attrs,
        x: &Dyn,
    ) -> Result<([usize; 2], [f32; 2]), String> {
        let (scales, sizes) = match (n.op_type.as_str(), self.opset) {
            ("Upsample", _) if a.has("scales") => (a.floats("scales"), None),
            ("Upsample", _) | ("Resize", ..=10) => (Some(self.const_in(n, 1)?.floats()), None),
            _ => {
                let scales = self.const_opt(n, 2)?.map(|c| c.floats());
                let sizes = self.const_opt(n, 3)?.map(|c| c.ints());
                (
                    scales.filter(|s| !s.is_empty()),
                    sizes.filter(|s| !s.is_empty()),
                )
            }
        };
        let axes: Vec<usize> = match a.ints("axes") {
            Some(v) => v.iter().map(|&v| axis(v, 4)).collect::<Result<_, _>>()?,
            None => (0..4).collect(),
        };
        let mut out = x.shape.clone();
        let mut scale = [1.0f32; 4];
        match (scales, sizes) {
            (Some(s), None) if s.len() == axes.len() => {
                for (&ax, &v) in axes.iter().zip(&s) {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(format!("scales {s:?}: each scale must be positive"));
                    }
                    out[ax] = (x.shape[ax] as f64 * f64::from(v)).floor() as usize;
                    scale[ax] = v;
                }
            }
            (None, Some(s)) if s.len() == axes.len() => {
                for (&ax, &v) in axes.iter().zip(&s) {
                    out[ax] = usize::try_from(v)
                        .ok()
                        .filter(|&v| v > 0)
                        .ok_or_else(|| format!("sizes {s:?}: each size must be positive"))?;
                    scale[ax] = out[ax] as f32 / x.shape[ax] as f32;
                }
            }
            (Some(_), Some(_)) => return Err("both scales and sizes are given".into()),
            (s, z) => {
                return Err(format!(
                    "scales {s:?} / sizes {z:?} do not give one value per resized axis {axes:?}"
                ));
            }
        }
        if out[0] != x.shape[0] || out[1] != x.shape[1] {
            return Err(format!(
                "resizing {:?} to {out:?} changes the batch or channel axis (only the spatial \
                 axes may be resized)",
                x.shape
            ));
        }
        if out[2] == 0 || out[3] == 0 {
            return Err(format!("resizing {:?} to an empty {out:?}", x.shape));
        }
        Ok(([out[2], out[3]], [scale[2], scale[3]]))
    }
}
