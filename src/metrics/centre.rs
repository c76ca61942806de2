//! Centre of mass of a map: where its relevance sits.
//!
//! With masses `m_i = max(R_i, 0)` (or `|R_i|`) at pixel `i = (r, c)` and `M = Σ m_i`:
//!
//! `row = Σ m_i r_i / M`, `col = Σ m_i c_i / M`
//!
//! in pixel coordinates, where pixel `(r, c)` is the unit square whose centre is at `(r, c)`
//! (0-based; the top-left pixel's centre is `(0, 0)`). As fractions of the image extent measured
//! from its top-left corner: `row_fraction = (row + ½) / H`, `col_fraction = (col + ½) / W`, so
//! a uniform map gives `(½, ½)` and fractions stay comparable across resolutions.

use serde::Serialize;

use super::MapView;

/// Which part of the map carries mass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mass {
    /// `max(R, 0)`: positive relevance only.
    Positive,
    /// `|R|`.
    Absolute,
}

/// A centre of mass.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CentreOfMass {
    /// Row in pixel coordinates (pixel centres at integers).
    pub row: f64,
    /// Column in pixel coordinates.
    pub col: f64,
    /// `(row + ½) / H`.
    pub row_fraction: f64,
    /// `(col + ½) / W`.
    pub col_fraction: f64,
    /// Total mass `M`.
    pub mass: f64,
}

/// How a centre of mass is normalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComNormalisation {
    /// By the total mass `M` (the physical centre of mass; a uniform map gives `(½, ½)`).
    #[default]
    Mass,
    /// By the image area `W·H` instead of `M`, as in the brain-MRI thesis this project
    /// reproduces: the mass-normalised fractions times the mean mass `M / (W·H)`, so a faint or
    /// sparse map sits nearer the top-left corner. Only comparable between maps scaled alike
    /// (e.g. min-max scaled CAMs).
    Area,
}

impl std::str::FromStr for ComNormalisation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mass" => Ok(ComNormalisation::Mass),
            "area" => Ok(ComNormalisation::Area),
            _ => Err(format!("unknown normalisation '{s}'; valid: mass, area")),
        }
    }
}

impl CentreOfMass {
    /// `(row_fraction, col_fraction)` under `normalisation` for a map of `[h, w]` pixels.
    pub fn fractions(&self, normalisation: ComNormalisation, [h, w]: [usize; 2]) -> (f64, f64) {
        let scale = match normalisation {
            ComNormalisation::Mass => 1.0,
            ComNormalisation::Area => self.mass / (h * w) as f64,
        };
        (self.row_fraction * scale, self.col_fraction * scale)
    }
}

/// The centre of mass of `map`, `None` when the mass is zero.
pub fn centre_of_mass(map: &MapView, mass: Mass) -> Option<CentreOfMass> {
    let (mut total, mut sr, mut sc) = (0.0f64, 0.0f64, 0.0f64);
    for r in 0..map.height {
        for c in 0..map.width {
            let v = map.at(r, c) as f64;
            let m = match mass {
                Mass::Positive => v.max(0.0),
                Mass::Absolute => v.abs(),
            };
            total += m;
            sr += m * r as f64;
            sc += m * c as f64;
        }
    }
    if total <= 0.0 {
        return None;
    }
    let (row, col) = (sr / total, sc / total);
    Some(CentreOfMass {
        row,
        col,
        row_fraction: (row + 0.5) / map.height as f64,
        col_fraction: (col + 0.5) / map.width as f64,
        mass: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // 2×4 map: mass 1 at (0, 0) and 3 at (1, 3); a negative value ignored.
        let v = [1.0, 0.0, -9.0, 0.0, 0.0, 0.0, 0.0, 3.0];
        let m = MapView::new(&v, [2, 4]).unwrap();
        let c = centre_of_mass(&m, Mass::Positive).unwrap();
        assert!((c.row - 0.75).abs() < 1e-12 && (c.col - 2.25).abs() < 1e-12);
        assert!((c.row_fraction - 1.25 / 2.0).abs() < 1e-12);
        // Area normalisation: Σ m·(r + ½)/H / (W·H) = (1·0.5/2 + 3·1.5/2) / 8.
        let (row, col) = c.fractions(ComNormalisation::Area, [2, 4]);
        assert!((row - (0.25 + 2.25) / 8.0).abs() < 1e-12);
        assert!((col - (1.0 * 0.5 / 4.0 + 3.0 * 3.5 / 4.0) / 8.0).abs() < 1e-12);
        assert!((c.col_fraction - 2.75 / 4.0).abs() < 1e-12);
        assert_eq!(c.mass, 4.0);
        let a = centre_of_mass(&m, Mass::Absolute).unwrap();
        assert!((a.col - (9.0 * 2.0 + 3.0 * 3.0) / 13.0).abs() < 1e-12);
        let u = [1.0f32; 15];
        let c = centre_of_mass(&MapView::new(&u, [3, 5]).unwrap(), Mass::Positive).unwrap();
        assert!((c.row_fraction - 0.5).abs() < 1e-12 && (c.col_fraction - 0.5).abs() < 1e-12);
        assert!(centre_of_mass(&MapView::new(&[-1.0], [1, 1]).unwrap(), Mass::Positive).is_none());
    }
}
