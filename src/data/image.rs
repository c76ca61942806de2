//! Image files → model input tensors, following torchvision's PIL pipeline: convert to RGB (or
//! L), `Resize` with Pillow's bilinear filter, optional `CenterCrop`, `ToTensor`, `Normalize`.

use std::path::Path;

use super::DataError;
use super::resize::{Filter, resize_u8};
use crate::graph::ModelCard;
use crate::graph::card::ResizeMode;
use crate::tensor::{T4, from_vec};

/// An 8-bit image with interleaved channels (1 = grey, 3 = RGB).
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 or 3.
    pub channels: usize,
    /// Row-major interleaved values.
    pub pixels: Vec<u8>,
}

/// Decodes an image file; grey stays grey, colour (with or without alpha, 8 or 16 bit) becomes
/// RGB with alpha dropped (as PIL's `convert("RGB")`).
pub fn load_image(path: &Path) -> Result<Image, DataError> {
    let bytes =
        std::fs::read(path).map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
    decode_image(&bytes).map_err(|reason| DataError::file(path, reason))
}

/// Decodes image bytes (format sniffed from the content).
pub fn decode_image(bytes: &[u8]) -> Result<Image, String> {
    if is_truncated_jpeg(bytes) {
        // The JPEG decoder fills missing scan data with grey instead of failing (PIL raises
        // "image file is truncated"); a half-grey scan must not be classified silently.
        return Err("truncated JPEG: no end-of-image marker after the last scan".into());
    }
    let img = ::image::load_from_memory(bytes).map_err(|e| format!("not a readable image: {e}"))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err("image has zero size".into());
    }
    Ok(if img.color().has_color() {
        Image {
            width: w,
            height: h,
            channels: 3,
            pixels: img.to_rgb8().into_raw(),
        }
    } else {
        Image {
            width: w,
            height: h,
            channels: 1,
            pixels: img.to_luma8().into_raw(),
        }
    })
}

/// True for JPEG data whose last start-of-scan marker (`FF DA`) has no end-of-image marker
/// (`FF D9`) after it. Inside entropy-coded data `FF` is always followed by `00` or a restart
/// marker, so `FF D9` there is the real end (an EXIF thumbnail's end comes before the scans).
fn is_truncated_jpeg(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return false;
    }
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi < sos,
        (Some(_), None) => true,
        (None, _) => false, // no scan at all: the decoder reports that itself
    }
}

impl Image {
    /// The image with `channels` channels: grey is replicated to RGB; RGB is converted to grey
    /// with ITU-R 601-2 luma (PIL's `convert("L")`: `(299R + 587G + 114B) / 1000`, rounded).
    pub fn with_channels(&self, channels: usize) -> Image {
        if channels == self.channels {
            return self.clone();
        }
        let pixels = if channels == 3 {
            self.pixels.iter().flat_map(|&v| [v, v, v]).collect()
        } else {
            self.pixels
                .chunks_exact(3)
                .map(|p| {
                    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000)
                        >> 16) as u8
                })
                .collect()
        };
        Image {
            width: self.width,
            height: self.height,
            channels,
            pixels,
        }
    }

    /// Resize to `w×h` with `filter` (Pillow-exact).
    pub fn resize(&self, filter: Filter, w: usize, h: usize) -> Image {
        if w == self.width && h == self.height {
            return self.clone();
        }
        Image {
            width: w,
            height: h,
            channels: self.channels,
            pixels: resize_u8(
                filter,
                &self.pixels,
                self.width,
                self.height,
                self.channels,
                w,
                h,
            ),
        }
    }

    /// torchvision's `Resize(size)`: the shorter side becomes `size`, the longer one keeps the ratio.
    pub fn resize_shorter(&self, filter: Filter, size: usize) -> Image {
        let (w, h) = (self.width, self.height);
        let (short, long) = if w <= h { (w, h) } else { (h, w) };
        let new_long = size * long / short;
        if w <= h {
            self.resize(filter, size, new_long)
        } else {
            self.resize(filter, new_long, size)
        }
    }

    /// torchvision's `CenterCrop((h, w))` (offsets rounded half to even, like Python's `round`;
    /// zero-padded if the image is smaller).
    pub fn center_crop(&self, h: usize, w: usize) -> Image {
        let off = |have: usize, want: usize| -> i64 {
            round_half_even((have as f64 - want as f64) / 2.0)
        };
        let (top, left) = (off(self.height, h), off(self.width, w));
        let c = self.channels;
        let mut pixels = vec![0u8; w * h * c];
        for y in 0..h {
            let sy = y as i64 + top;
            if sy < 0 || sy >= self.height as i64 {
                continue;
            }
            for x in 0..w {
                let sx = x as i64 + left;
                if sx < 0 || sx >= self.width as i64 {
                    continue;
                }
                let src = (sy as usize * self.width + sx as usize) * c;
                pixels[(y * w + x) * c..(y * w + x + 1) * c]
                    .copy_from_slice(&self.pixels[src..src + c]);
            }
        }
        Image {
            width: w,
            height: h,
            channels: c,
            pixels,
        }
    }

    /// Brings the image to the card's input size and channels (no normalisation).
    pub fn fit(&self, card: &ModelCard) -> Image {
        let [h, w] = card.input_size;
        let img = self.with_channels(card.channels);
        match card.resize {
            ResizeMode::Stretch => img.resize(card.resample, w, h),
            ResizeMode::ShorterSideCrop { size } => {
                img.resize_shorter(card.resample, size).center_crop(h, w)
            }
        }
    }

    /// Planar `[C, H, W]` float values `pixel·scale + shift` per channel.
    pub fn to_planar(&self, affine: &[(f32, f32)]) -> Vec<f32> {
        let (c, n) = (self.channels, self.width * self.height);
        let mut out = vec![0f32; c * n];
        for (i, px) in self.pixels.chunks_exact(c).enumerate() {
            for ch in 0..c {
                let (s, b) = affine[ch];
                out[ch * n + i] = px[ch] as f32 * s + b;
            }
        }
        out
    }
}

fn round_half_even(v: f64) -> i64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - v.signum()) as i64
    } else {
        r as i64
    }
}

/// The model input `[1, C, H, W]` for an image, per the card (resize, crop, normalise).
pub fn preprocess(img: &Image, card: &ModelCard) -> T4 {
    let fitted = img.fit(card);
    let values = fitted.to_planar(&card.normalization.affine(card.channels));
    from_vec(values, [1, fitted.channels, fitted.height, fitted.width])
}

/// Loads one input file — an image, or a preprocessed `.npy` tensor `[C, H, W]` /
/// `[1, C, H, W]` used as is — as a `[1, C, H, W]` tensor.
pub fn load_input(path: &Path, card: &ModelCard) -> Result<T4, DataError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        let (shape, values) = super::npy::read_npy(path)?;
        let dims: [usize; 4] = match shape.as_slice() {
            [c, h, w] => [1, *c, *h, *w],
            [1, c, h, w] => [1, *c, *h, *w],
            other => {
                return Err(DataError::file(
                    path,
                    format!("expected a [C, H, W] float tensor, got shape {other:?}"),
                ));
            }
        };
        if dims[1] != card.channels || [dims[2], dims[3]] != card.input_size {
            return Err(DataError::file(
                path,
                format!(
                    "tensor is {:?} but the model takes [{}, {}, {}]",
                    &dims[1..],
                    card.channels,
                    card.input_size[0],
                    card.input_size[1]
                ),
            ));
        }
        return Ok(from_vec(values, dims));
    }
    Ok(preprocess(&load_image(path)?, card))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding_and_center_crop_offsets() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(-0.5), 0);
        let img = Image {
            width: 5,
            height: 1,
            channels: 1,
            pixels: vec![0, 1, 2, 3, 4],
        };
        // (5 − 2) / 2 = 1.5 → 2
        assert_eq!(img.center_crop(1, 2).pixels, vec![2, 3]);
    }

    #[test]
    fn grey_and_colour_conversions() {
        let grey = Image {
            width: 1,
            height: 1,
            channels: 1,
            pixels: vec![9],
        };
        assert_eq!(grey.with_channels(3).pixels, vec![9, 9, 9]);
        let rgb = Image {
            width: 1,
            height: 1,
            channels: 3,
            pixels: vec![255, 0, 0],
        };
        // PIL: 255·299/1000 = 76.2 → 76
        assert_eq!(rgb.with_channels(1).pixels, vec![76]);
    }

    #[test]
    fn imagenet_normalisation_matches_formula() {
        let img = Image {
            width: 1,
            height: 1,
            channels: 3,
            pixels: vec![255, 0, 128],
        };
        let card = ModelCard {
            input_size: [1, 1],
            ..ModelCard::default()
        };
        let v = crate::tensor::to_vec(&preprocess(&img, &card));
        let expect = [
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (128.0 / 255.0 - 0.406) / 0.225,
        ];
        for (a, b) in v.iter().zip(expect) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
