//! The special functions behind the tests and intervals: ln Γ, the regularised incomplete beta
//! function, erfc, and the normal and Student t distributions with their quantiles. Written
//! out here rather than pulled in from a crate, so that every number in a study table traces to
//! code in this repository; they agree with scipy to about 1e-14 relative or better in the
//! range the studies use (the tests below and `tests/studies/studies_stats.rs`).

use std::f64::consts::{PI, SQRT_2};

/// Convergence threshold of the series and continued fractions.
const EPS: f64 = 1e-16;
/// Stand-in for zero in Lentz's method, which divides by partial denominators.
const TINY: f64 = 1e-300;
/// Iteration cap; the fractions converge in far fewer steps for the arguments the tests use.
const MAX_ITER: usize = 1000;

/// Natural logarithm of the gamma function for `x > 0`: the Lanczos approximation with
/// `g = 7` and nine coefficients (Lanczos 1964; Press et al., *Numerical Recipes*, 3rd ed., §6.1),
/// with the reflection formula `Γ(x)Γ(1 − x) = π / sin(πx)` below 1/2.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let series = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    let t = x + G + 0.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// Regularised incomplete beta function `I_x(a, b) = B(x; a, b) / B(a, b)`, given `x` and
/// `y = 1 − x` separately so that callers who know `1 − x` exactly lose nothing to
/// cancellation. Evaluated by the continued fraction of Press et al., *Numerical Recipes*
/// (3rd ed., §6.4, modified Lentz), on the side `x < (a + 1)/(a + b + 2)` where it converges
/// fast, with `I_x(a, b) = 1 − I_{1−x}(b, a)` on the other.
pub fn inc_beta(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let ln_front = a * x.ln() + b * y.ln() - ln_beta(a, b);
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, y) / b
    }
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The continued fraction for `I_x(a, b)` (Numerical Recipes `betacf`).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = m as f64;
        // Even step, then odd step, of the fraction's terms.
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Complementary error function `erfc(x) = 2/√π ∫ₓ^∞ e^{−t²} dt`, as the regularised upper
/// incomplete gamma function `Q(1/2, x²)` for `x ≥ 0` (series below `x² = 1.5`, continued
/// fraction above; Numerical Recipes §6.2) and `2 − erfc(−x)` for `x < 0`.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    let s = x * x;
    if s < 1.5 {
        1.0 - lower_gamma_half_series(s)
    } else {
        upper_gamma_half_fraction(s)
    }
}

/// `ln Γ(1/2) = ln √π`, exact, so erfc needs no Lanczos sum.
const LN_GAMMA_HALF: f64 = 0.572_364_942_924_7;

/// `P(1/2, s)` by its power series.
fn lower_gamma_half_series(s: f64) -> f64 {
    let mut term = 2.0; // 1/a with a = 1/2
    let mut sum = term;
    let mut ap = 0.5;
    for _ in 0..MAX_ITER {
        ap += 1.0;
        term *= s / ap;
        sum += term;
        if term.abs() < sum.abs() * EPS {
            break;
        }
    }
    sum * (-s + 0.5 * s.ln() - LN_GAMMA_HALF).exp()
}

/// `Q(1/2, s)` by its continued fraction (modified Lentz).
fn upper_gamma_half_fraction(s: f64) -> f64 {
    let a = 0.5;
    let mut b = s + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..=MAX_ITER {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    (-s + a * s.ln() - LN_GAMMA_HALF).exp() * h
}

/// Standard normal CDF `Φ(z) = erfc(−z/√2) / 2`.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / SQRT_2)
}

/// Standard normal quantile `Φ⁻¹(p)` (scipy's `ndtri`): `−∞` at 0, `+∞` at 1, NaN outside
/// `[0, 1]`; found by bisection on [`normal_cdf`] until the bracket stops shrinking, using the
/// symmetry `Φ⁻¹(p) = −Φ⁻¹(1 − p)` so the search always runs in the lower tail, where `Φ` is
/// accurate to a relative error rather than an absolute one.
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p > 0.5 {
        return -normal_quantile(1.0 - p);
    }
    // Φ(−40) ≈ 1e-350 is below every positive double, so the root lies in [−40, 0].
    bisect_increasing(normal_cdf, p, -40.0, 0.0)
}

/// Survival function of Student's t with `df` degrees of freedom, both tails:
/// `P(|T| ≥ |t|) = I_{ν/(ν+t²)}(ν/2, 1/2)` (Abramowitz & Stegun 26.5.27, 26.7.1).
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    let t2 = t * t;
    inc_beta(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
}

/// Student t CDF `P(T ≤ t)`, from the two-sided tail by symmetry.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * student_t_two_sided(t, df);
    if t < 0.0 { tail } else { 1.0 - tail }
}

/// Student t quantile `t_{ν, p}` for `0.5 ≤ p < 1` (the ones confidence bands need; lower
/// quantiles follow by symmetry), by bisection on the upper tail `P(T > t) = 1 − p`.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if !(0.0..1.0).contains(&p) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let upper = 1.0 - p;
    // The upper tail decreases in t: search for the t where −tail(t) = −upper.
    let minus_tail = |t: f64| -0.5 * student_t_two_sided(t, df);
    let mut hi = 1.0;
    while minus_tail(hi) < -upper {
        hi *= 2.0;
    }
    bisect_increasing(minus_tail, -upper, 0.0, hi)
}

/// The `x` in `[lo, hi]` with `f(x) = target` for an increasing `f`, by bisection until the
/// bracket cannot shrink further in double precision.
fn bisect_increasing(f: impl Fn(f64) -> f64, target: f64, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..2100 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn ln_gamma_at_known_points() {
        assert!(close(ln_gamma(0.5), 0.5 * PI.ln(), 1e-14));
        assert!(close(ln_gamma(10.0), 362_880f64.ln(), 1e-14));
        assert!(ln_gamma(1.0).abs() < 1e-14 && ln_gamma(2.0).abs() < 1e-14);
        // Γ(0.1) = 9.513507698668731836…
        assert!(close(ln_gamma(0.1), 9.513_507_698_668_732f64.ln(), 1e-14));
        assert!(close(ln_gamma(100.5), 361.435_540_467_777_57, 1e-14));
    }

    #[test]
    fn erfc_and_normal_at_known_points() {
        // erfc(0.5) = 0.4795001221869535, erfc(2) = 0.004677734981047266,
        // erfc(5) = 1.5374597944280347e-12 (scipy.special.erfc).
        assert!(close(erfc(0.5), 0.479_500_122_186_953_5, 1e-14));
        assert!(close(erfc(2.0), 0.004_677_734_981_047_266, 1e-13));
        assert!(close(erfc(5.0), 1.537_459_794_428_034_7e-12, 1e-13));
        assert!(close(erfc(-1.0), 1.842_700_792_949_715, 1e-14));
        assert_eq!(normal_cdf(0.0), 0.5);
        assert!(close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-14));
        assert!(close(normal_quantile(0.025), -1.959_963_984_540_054, 1e-14));
        assert!(close(normal_quantile(1e-10), -6.361_340_902_404_056, 1e-13));
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert!(normal_quantile(1.5).is_nan());
    }

    #[test]
    fn student_t_matches_closed_forms() {
        // ν = 1 is Cauchy: P(|T| ≥ t) = 1 − 2 atan(t)/π; ν = 2: 1 − t/√(2 + t²).
        for t in [0.1, 1.0, 3.0, 30.0] {
            let cauchy = 1.0 - 2.0 * f64::atan(t) / PI;
            assert!(close(student_t_two_sided(t, 1.0), cauchy, 1e-13), "t={t}");
            let two = 1.0 - t / (2.0 + t * t).sqrt();
            assert!(close(student_t_two_sided(t, 2.0), two, 1e-12), "t={t}");
        }
        // t_{10, 0.975} = 2.228138851986274 (scipy.stats.t.ppf).
        assert!(close(
            student_t_quantile(0.975, 10.0),
            2.228_138_851_986_274,
            1e-13
        ));
        assert!(close(student_t_cdf(-1.0, 1.0), 0.25, 1e-14));
    }
}
