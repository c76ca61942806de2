//! Colormaps as piecewise-linear curves through control points.
//!
//! - Unsigned maps: `viridis` and `inferno` (van der Walt & Smith, matplotlib 2.0's perceptually
//!   uniform maps), through 33 of their published colours (every 8th of the 256-entry table);
//!   linear interpolation between them stays within 2/255 of the full table.
//! - Signed maps: `bwr` (blue–white–red) and `coldnhot` (cyan–blue–black–red–yellow–white),
//!   defined as zennit's colour-map language defines them (`'00f,80:fff,f00'` and
//!   `'0ff,00f,80:000,f00,ff0,fff'`): colours at positions on a 0–255 scale, unplaced colours
//!   spread evenly between placed ones (positions truncated to integers), linear in between.
//! - `gray`: black to white.

use std::str::FromStr;

/// A colormap from `[0, 1]` to RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    /// Perceptually uniform, dark blue → green → yellow.
    Viridis,
    /// Perceptually uniform, black → purple → orange → pale yellow.
    Inferno,
    /// Diverging blue → white → red (zennit's `bwr`).
    Bwr,
    /// Diverging cyan → blue → black → red → yellow → white (zennit's `coldnhot`).
    Coldnhot,
    /// Black → white.
    Gray,
}

/// viridis at table entries `round(k·255/32)`, `k = 0..=32`.
const VIRIDIS: [u32; 33] = [
    0x440154, 0x470d60, 0x48186a, 0x482374, 0x472d7b, 0x453781, 0x424086, 0x3e4989, 0x3b528b,
    0x375b8d, 0x33638d, 0x2f6b8e, 0x2c728e, 0x297a8e, 0x26828e, 0x23898e, 0x21918c, 0x1f978b,
    0x1f9f88, 0x21a685, 0x27ad81, 0x31b57b, 0x3dbc74, 0x4cc26c, 0x5cc863, 0x6ece58, 0x81d34d,
    0x95d840, 0xaadc32, 0xc0df25, 0xd5e21a, 0xeae51a, 0xfde725,
];

/// inferno at table entries `round(k·255/32)`, `k = 0..=32`.
const INFERNO: [u32; 33] = [
    0x000004, 0x040312, 0x0b0724, 0x150b37, 0x210c4a, 0x2f0a5b, 0x3d0965, 0x4a0c6b, 0x57106e,
    0x64156e, 0x71196e, 0x7d1e6d, 0x8a226a, 0x972766, 0xa32c61, 0xb0315b, 0xbc3754, 0xc63d4d,
    0xd04545, 0xda4e3c, 0xe35933, 0xeb6429, 0xf1711f, 0xf67e14, 0xf98c0a, 0xfb9b06, 0xfcaa0f,
    0xfbba1f, 0xf9c932, 0xf5d949, 0xf2e865, 0xf3f586, 0xfcffa4,
];

fn hex(c: u32) -> [f32; 3] {
    [
        ((c >> 16) & 0xff) as f32,
        ((c >> 8) & 0xff) as f32,
        (c & 0xff) as f32,
    ]
}

/// A zennit colour-map source: `(position on 0..=255 or None, colour)`.
type Source = &'static [(Option<u8>, u32)];

const BWR: Source = &[(None, 0x0000ff), (Some(0x80), 0xffffff), (None, 0xff0000)];
const COLDNHOT: Source = &[
    (None, 0x00ffff),
    (None, 0x0000ff),
    (Some(0x80), 0x000000),
    (None, 0xff0000),
    (None, 0xffff00),
    (None, 0xffffff),
];

/// Places a zennit source on the 0–255 scale as zennit's `ColorMap._make_palette` does: the first
/// colour at 0 (and also at its index, if it has one), the last unplaced colour at 255, runs of
/// unplaced colours spread evenly (`int()` of the interpolated position) between placed ones.
fn place(source: Source) -> Vec<(f32, [f32; 3])> {
    let mut out: Vec<(f32, [f32; 3])> = Vec::new();
    let (first_index, first) = source[0];
    out.push((0.0, hex(first)));
    if let Some(i) = first_index.filter(|&i| i > 0) {
        out.push((i as f32, hex(first)));
    }
    let rest = &source[1..];
    let mut pending: Vec<u32> = Vec::new();
    for (n, &(index, colour)) in rest.iter().enumerate() {
        let index = match index {
            Some(i) => i as f32,
            None if n < rest.len() - 1 => {
                pending.push(colour);
                continue;
            }
            None => 255.0,
        };
        let last = out.last().expect("first colour placed").0;
        let k = pending.len();
        for (j, c) in pending.drain(..).enumerate() {
            let alpha = (j + 1) as f64 / (k + 1) as f64;
            let pos = (last as f64 * (1.0 - alpha) + index as f64 * alpha).trunc();
            out.push((pos as f32, hex(c)));
        }
        out.push((index, hex(colour)));
    }
    out
}

fn evenly(table: &[u32; 33]) -> Vec<(f32, [f32; 3])> {
    table
        .iter()
        .enumerate()
        .map(|(k, &c)| ((k as f32 * 255.0 / 32.0).round(), hex(c)))
        .collect()
}

impl Colormap {
    /// Names accepted by [`Colormap::from_str`].
    pub const NAMES: &'static [&'static str] = &["viridis", "inferno", "bwr", "coldnhot", "gray"];

    /// Control points `(position on 0..=255, RGB 0..=255)`, increasing in position.
    pub fn stops(self) -> Vec<(f32, [f32; 3])> {
        match self {
            Colormap::Viridis => evenly(&VIRIDIS),
            Colormap::Inferno => evenly(&INFERNO),
            Colormap::Bwr => place(BWR),
            Colormap::Coldnhot => place(COLDNHOT),
            Colormap::Gray => vec![(0.0, [0.0; 3]), (255.0, [255.0; 3])],
        }
    }

    /// True for the diverging maps meant for signed values (zero at the centre).
    pub fn is_diverging(self) -> bool {
        matches!(self, Colormap::Bwr | Colormap::Coldnhot)
    }

    /// The 256-entry table: entry `i` is the curve at position `i`, rounded.
    pub fn lut(self) -> Vec<[u8; 3]> {
        let stops = self.stops();
        (0..256)
            .map(|i| {
                let c = interpolate(&stops, i as f32);
                [c[0].round() as u8, c[1].round() as u8, c[2].round() as u8]
            })
            .collect()
    }

    /// The colour of `t ∈ [0, 1]` (clamped) as RGB bytes.
    pub fn rgb(self, t: f32) -> [u8; 3] {
        let c = interpolate(&self.stops(), t.clamp(0.0, 1.0) * 255.0);
        [c[0].round() as u8, c[1].round() as u8, c[2].round() as u8]
    }
}

/// The piecewise-linear curve through `stops` at `pos` (clamped to the ends).
fn interpolate(stops: &[(f32, [f32; 3])], pos: f32) -> [f32; 3] {
    let last = stops.len() - 1;
    if pos <= stops[0].0 {
        return stops[0].1;
    }
    if pos >= stops[last].0 {
        return stops[last].1;
    }
    let k = stops
        .windows(2)
        .position(|w| pos >= w[0].0 && pos < w[1].0)
        .unwrap_or(last - 1);
    let ((p0, c0), (p1, c1)) = (stops[k], stops[k + 1]);
    let a = (pos - p0) / (p1 - p0);
    [
        c0[0] * (1.0 - a) + c1[0] * a,
        c0[1] * (1.0 - a) + c1[1] * a,
        c0[2] * (1.0 - a) + c1[2] * a,
    ]
}

impl FromStr for Colormap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "viridis" => Colormap::Viridis,
            "inferno" => Colormap::Inferno,
            "bwr" => Colormap::Bwr,
            "coldnhot" => Colormap::Coldnhot,
            "gray" | "grey" => Colormap::Gray,
            _ => {
                return Err(format!(
                    "unknown colormap '{s}'; use one of {}",
                    Colormap::NAMES.join(", ")
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zennit_sources_are_placed_like_zennit() {
        let pos: Vec<f32> = Colormap::Coldnhot.stops().iter().map(|s| s.0).collect();
        // 00f halfway between 0 and 128; f00 and ff0 at thirds between 128 and 255 (truncated).
        assert_eq!(pos, vec![0.0, 64.0, 128.0, 170.0, 212.0, 255.0]);
        let pos: Vec<f32> = Colormap::Bwr.stops().iter().map(|s| s.0).collect();
        assert_eq!(pos, vec![0.0, 128.0, 255.0]);
        assert_eq!(Colormap::Bwr.rgb(0.0), [0, 0, 255]);
        assert_eq!(Colormap::Bwr.rgb(128.0 / 255.0), [255, 255, 255]);
        assert_eq!(Colormap::Bwr.rgb(1.0), [255, 0, 0]);
    }
}
