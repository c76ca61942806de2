//! Image files → model input tensors, following torchvision's PIL pipeline: convert to RGB (or
//! L), `Resize` with Pillow's bilinear filter, optional `CenterCrop`, `ToTensor`, `Normalize`.

use std::path::Path;

use super::DataError;
use super::resize::{Filter, Size, resize_u8, resize_u8_region};
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
    decode_image_described(bytes).map(|d| d.image)
}

/// A decoded image with what the file held before conversion.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The pixels as [`decode_image`] gives them (grey or RGB, 8 bits).
    pub image: Image,
    /// The file format sniffed from the content (`PNG`, `JPEG`, `BMP`, `TIFF`).
    pub format: String,
    /// The colour mode stored in the file, in PIL's names where PIL has one: `L`, `LA`, `RGB`,
    /// `RGBA`, with `;16` for 16 bits per channel and `;32F` for floats. A palette PNG is
    /// expanded by the decoder and reads as `RGB` or `RGBA`.
    pub mode: String,
}

/// Decodes image bytes like [`decode_image`] and names the file's format and colour mode.
pub fn decode_image_described(bytes: &[u8]) -> Result<Decoded, String> {
    if is_truncated_jpeg(bytes) {
        // The JPEG decoder fills missing scan data with grey instead of failing (PIL raises
        // "image file is truncated"); a half-grey scan must not be classified silently.
        return Err("truncated JPEG: no end-of-image marker after the last scan".into());
    }
    let (img, format) = decode_within_limits(bytes)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err("image has zero size".into());
    }
    let mode = colour_mode(img.color()).to_string();
    let image = if img.color().has_color() {
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
    };
    Ok(Decoded {
        image,
        format: format.map_or_else(|| "unknown".to_string(), format_name),
        mode,
    })
}

/// PIL's name of an image crate colour type (see [`Decoded::mode`]).
fn colour_mode(colour: ::image::ColorType) -> &'static str {
    use ::image::ColorType as C;
    match colour {
        C::L8 => "L",
        C::La8 => "LA",
        C::Rgb8 => "RGB",
        C::Rgba8 => "RGBA",
        C::L16 => "L;16",
        C::La16 => "LA;16",
        C::Rgb16 => "RGB;16",
        C::Rgba16 => "RGBA;16",
        C::Rgb32F => "RGB;32F",
        C::Rgba32F => "RGBA;32F",
        _ => "other",
    }
}

/// The upper-case name of a format, as PIL's `Image.format`.
fn format_name(format: ::image::ImageFormat) -> String {
    format
        .extensions_str()
        .first()
        .map_or("unknown", |e| match *e {
            "jpg" => "jpeg",
            "tif" => "tiff",
            e => e,
        })
        .to_ascii_uppercase()
}

/// Largest image side decoded, in pixels: well above any camera or scanner output the
/// workbench is meant for, and it bounds the decode (and every resize after it) before the
/// pixels are allocated.
pub const MAX_IMAGE_SIDE: u32 = 16384;
/// Largest single allocation the decoder may make, in bytes (an 8-bit RGB image of about
/// 9000×9000).
pub const MAX_DECODE_BYTES: u64 = 1 << 28;

/// Decodes `bytes` after reading the header's dimensions: a header claiming more than
/// [`MAX_IMAGE_SIDE`] per side, or pixels over [`MAX_DECODE_BYTES`], is refused before any
/// pixel is allocated.
fn decode_within_limits(
    bytes: &[u8],
) -> Result<(::image::DynamicImage, Option<::image::ImageFormat>), String> {
    let unreadable = |e: ::image::ImageError| unreadable_reason(&e);
    let reader = || {
        ::image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot read: {e}"))
    };
    let (w, h) = reader()?.into_dimensions().map_err(unreadable)?;
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(format!(
            "image is {w}×{h} pixels; at most {MAX_IMAGE_SIDE} per side are accepted"
        ));
    }
    let mut limits = ::image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = reader()?;
    reader.limits(limits);
    let format = reader.format();
    let decoded = reader.decode().map_err(|e| match e {
        ::image::ImageError::Limits(_) => format!(
            "image is {w}×{h} pixels, more than {} MiB to decode",
            MAX_DECODE_BYTES >> 20
        ),
        e => unreadable(e),
    })?;
    Ok((decoded, format))
}

/// Why the decoder refused a file, in words that never quote the file: the decoders' own
/// messages can echo the bytes they stumbled on (`Illegal start bytes:726F`), and the file
/// may be something that is not ours to show (a link to a private file, a patient record).
pub(crate) fn unreadable_reason(e: &::image::ImageError) -> String {
    use ::image::error::{ImageError, ImageFormatHint};
    let format = |hint: ImageFormatHint| match hint {
        ImageFormatHint::Exact(f) => format!("{f:?} ").to_uppercase(),
        _ => String::new(),
    };
    match e {
        ImageError::Decoding(d) => format!(
            "not a readable {}image: the data are damaged or not an image of that format",
            format(d.format_hint())
        ),
        ImageError::Unsupported(u) => format!(
            "not a readable image: {}format not supported (PNG, JPEG, BMP and TIFF are)",
            format(u.format_hint())
        ),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "not a readable image: the file ends early (truncated)".into()
        }
        other => format!("not a readable image: {other}"),
    }
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
        let [w, h] = self.shorter_side_dims(size);
        self.resize(filter, w, h)
    }

    /// `[width, height]` after torchvision's `Resize(size)`.
    fn shorter_side_dims(&self, size: usize) -> [usize; 2] {
        let (w, h) = (self.width, self.height);
        let (short, long) = if w <= h { (w, h) } else { (h, w) };
        let new_long = size * long / short;
        if w <= h {
            [size, new_long]
        } else {
            [new_long, size]
        }
    }

    /// `resize_shorter(filter, size).center_crop(h, w)` computing only the part of the resized
    /// image the crop keeps: a 1×30000 image at size 256 would otherwise build a 256×7.68 M
    /// intermediate (5.9 GB) to keep 224×224 of it.
    pub fn resize_shorter_and_crop(
        &self,
        filter: Filter,
        size: usize,
        h: usize,
        w: usize,
    ) -> Image {
        let [rw, rh] = self.shorter_side_dims(size);
        let (top, left) = (crop_offset(rh, h), crop_offset(rw, w));
        let kept = |offset: i64, want: usize, have: usize| {
            offset.clamp(0, have as i64) as usize
                ..(offset + want as i64).clamp(0, have as i64) as usize
        };
        let (ys, xs) = (kept(top, h, rh), kept(left, w, rw));
        let part = Image {
            width: xs.len(),
            height: ys.len(),
            channels: self.channels,
            pixels: resize_u8_region(
                filter,
                &self.pixels,
                Size {
                    w: self.width,
                    h: self.height,
                    channels: self.channels,
                },
                [rw, rh],
                xs.clone(),
                ys.clone(),
            ),
        };
        // The kept part sits at (xs.start, ys.start) of the resized image; place it in the
        // (zero-padded) crop exactly where center_crop would.
        part.crop_at(top - ys.start as i64, left - xs.start as i64, h, w)
    }

    /// torchvision's `CenterCrop((h, w))` (offsets rounded half to even, like Python's `round`;
    /// zero-padded if the image is smaller).
    pub fn center_crop(&self, h: usize, w: usize) -> Image {
        let (top, left) = (crop_offset(self.height, h), crop_offset(self.width, w));
        self.crop_at(top, left, h, w)
    }

    /// The `h×w` window whose top-left corner is at (`top`, `left`) (may be negative or reach
    /// past the edges; outside pixels are zero).
    fn crop_at(&self, top: i64, left: i64, h: usize, w: usize) -> Image {
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
                img.resize_shorter_and_crop(card.resample, size, h, w)
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

/// torchvision's `CenterCrop` offset of a `want`-long window in a `have`-long side.
fn crop_offset(have: usize, want: usize) -> i64 {
    round_half_even((have as f64 - want as f64) / 2.0)
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

/// Whether a preprocessed tensor `[N, C, H, W]` fits the model: `C` its channels and `H × W`
/// its input size; `Err` says what does not fit.
pub fn check_tensor_dims(dims: [usize; 4], card: &ModelCard) -> Result<(), String> {
    if dims[1] != card.channels || [dims[2], dims[3]] != card.input_size {
        return Err(format!(
            "tensor is {:?} but the model takes [{}, {}, {}]",
            &dims[1..],
            card.channels,
            card.input_size[0],
            card.input_size[1]
        ));
    }
    Ok(())
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
        check_tensor_dims(dims, card).map_err(|reason| DataError::file(path, reason))?;
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
    fn resize_and_crop_in_one_step_equals_resize_then_crop() {
        for (w, h) in [(7, 5), (5, 13), (1, 40), (30, 2), (9, 9)] {
            for channels in [1, 3] {
                let img = Image {
                    width: w,
                    height: h,
                    channels,
                    pixels: (0..w * h * channels)
                        .map(|i| (i * 37 % 251) as u8)
                        .collect(),
                };
                for filter in [Filter::Bilinear, Filter::Bicubic] {
                    for (size, ch, cw) in [(6, 4, 4), (3, 5, 2), (8, 8, 8), (2, 1, 3)] {
                        assert_eq!(
                            img.resize_shorter_and_crop(filter, size, ch, cw),
                            img.resize_shorter(filter, size).center_crop(ch, cw),
                            "{w}×{h}×{channels} {filter:?} size {size} crop {ch}×{cw}"
                        );
                    }
                }
            }
        }
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
