//! Minimal PNG drawing of a relevance heatmap for the `concepts` command: a symmetric
//! blue–white–red colour scale centred on zero, scaled by the largest magnitude (zennit's `bwr`
//! convention: red positive, blue negative).

use crate::methods::MethodError;

/// RGB of value `v` in `[-1, 1]` on the blue–white–red scale.
fn bwr(v: f32) -> [u8; 3] {
    let v = v.clamp(-1.0, 1.0);
    let fade = |t: f32| (255.0 * (1.0 - t)).round() as u8;
    if v >= 0.0 {
        [255, fade(v), fade(v)]
    } else {
        [fade(-v), fade(-v), 255]
    }
}

/// PNG bytes of an `h × w` map.
pub fn heatmap_png(map: &[f32], h: usize, w: usize) -> Result<Vec<u8>, MethodError> {
    let scale = map.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-30);
    let mut img = ::image::RgbImage::new(w as u32, h as u32);
    for (i, v) in map.iter().enumerate().take(h * w) {
        img.put_pixel((i % w) as u32, (i / w) as u32, ::image::Rgb(bwr(v / scale)));
    }
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        ::image::ImageFormat::Png,
    )
    .map_err(|e| MethodError::Invalid(format!("encoding PNG: {e}")))?;
    Ok(bytes)
}
