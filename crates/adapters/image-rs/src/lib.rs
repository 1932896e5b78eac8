//! `ImageRsProcessor`: the [`ImageProcessor`] port with the `image` crate (JPEG, PNG, WebP and
//! GIF codecs only). Each job runs on tokio's blocking pool behind a semaphore, so pictures never
//! stall the event loop and at most `concurrency` are decoded at once (decoding is where the
//! memory goes: 4 bytes per pixel). The pixel count is checked from the header, before a pixel
//! is decoded, and the decoder's own allocation limit is set from it too.
//!
//! What is stored is made from pixels only: the image is turned upright by its EXIF
//! orientation, then encoded afresh (JPEG quality 85 through `jpeg-encoder`, PNG, lossless WebP — the only WebP
//! encoder in pure Rust —, GIF with every frame), so no EXIF, GPS, XMP, ICC profile, text chunk
//! or comment of the upload survives. An animated WebP keeps its first frame.

use std::io::Cursor;
use std::sync::Arc;

use async_trait::async_trait;
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{
    AnimationDecoder as _, ColorType, DynamicImage, Frame, GenericImageView as _,
    ImageDecoder as _, ImageFormat, ImageReader, Limits,
};
use media_core::FileKind;
use media_core::ports::{EncodedImage, ImageError, ImageJob, ImageProcessor, ProcessedImage};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

/// JPEG quality of stored pictures and thumbnails.
const JPEG_QUALITY: u8 = 85;
/// What each animation frame costs of the pixel budget at least, so that thousands of tiny
/// frames cannot make encoding slow while staying under it.
const MIN_FRAME_PIXELS: u64 = 4096;
/// Most frames an animation may have; every one of them is kept until it is encoded again.
const MAX_FRAMES: usize = 1000;

pub struct ImageRsProcessor {
    permits: Arc<Semaphore>,
}

impl ImageRsProcessor {
    /// At most `concurrency` pictures processed at once.
    #[must_use]
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }
}

#[async_trait]
impl ImageProcessor for ImageRsProcessor {
    #[tracing::instrument(skip_all, fields(kind = job.kind.name(), bytes = job.source.len()))]
    async fn process(&self, job: ImageJob) -> Result<ProcessedImage, ImageError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ImageError::Failed(e.to_string()))?;
        let span = tracing::Span::current();
        match tokio::task::spawn_blocking(move || span.in_scope(|| process(&job)))
            .in_current_span()
            .await
        {
            Ok(outcome) => outcome,
            // A codec that panics on some input has refused that input.
            Err(error) if error.is_panic() => Err(ImageError::Undecodable(
                "the decoder could not read this file".to_owned(),
            )),
            Err(error) => Err(ImageError::Failed(error.to_string())),
        }
    }
}

/// The whole job, synchronously (on a blocking thread).
///
/// # Errors
/// As [`ImageProcessor::process`].
pub fn process(job: &ImageJob) -> Result<ProcessedImage, ImageError> {
    let format = match job.kind {
        FileKind::Jpeg => ImageFormat::Jpeg,
        FileKind::Png => ImageFormat::Png,
        FileKind::WebP => ImageFormat::WebP,
        FileKind::Gif => return animation(job),
        FileKind::Pdf => return Err(ImageError::Failed("a PDF is not a picture".to_owned())),
    };
    let mut reader = ImageReader::with_format(Cursor::new(&job.source), format);
    reader.limits(limits(job.max_pixels));
    let mut decoder = reader.into_decoder().map_err(|e| refused(e, job))?;
    check_pixels(decoder.dimensions(), job.max_pixels)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| refused(e, job))?;
    image.apply_orientation(orientation);
    let image = fit(image, job.max_side);
    let thumbnail = thumbnail(&image, job.thumbnail_side);
    Ok(ProcessedImage {
        image: encode(&image, job.kind)?,
        thumbnail: encode(&thumbnail, job.kind)?,
    })
}

/// What decoding a GIF would cost, read from its frame headers without decoding a pixel: each
/// frame is decoded at its own size (which may exceed the canvas) and then becomes a whole
/// canvas, so it costs the larger of the two. Refused over the budget or [`MAX_FRAMES`].
fn check_animation(job: &ImageJob) -> Result<(), ImageError> {
    let mut options = gif::DecodeOptions::new();
    options.skip_frame_decoding(true);
    let undecodable = |error: gif::DecodingError| ImageError::Undecodable(error.to_string());
    let mut decoder = options
        .read_info(Cursor::new(&job.source))
        .map_err(undecodable)?;
    let canvas = u64::from(decoder.width()) * u64::from(decoder.height());
    let mut spent = 0_u64;
    let mut frames = 0_usize;
    while let Some(frame) = decoder.next_frame_info().map_err(undecodable)? {
        frames += 1;
        if frames > MAX_FRAMES {
            return Err(ImageError::Undecodable(format!(
                "an animation may have at most {MAX_FRAMES} frames"
            )));
        }
        let own = u64::from(frame.width) * u64::from(frame.height);
        spent = spent.saturating_add(own.max(canvas).max(MIN_FRAME_PIXELS));
        if spent > job.max_pixels {
            return Err(ImageError::TooManyPixels {
                max: job.max_pixels,
            });
        }
    }
    Ok(())
}

/// A GIF, every frame of it (each frame is a whole canvas once decoded).
fn animation(job: &ImageJob) -> Result<ProcessedImage, ImageError> {
    let mut decoder = GifDecoder::new(Cursor::new(&job.source)).map_err(|e| refused(e, job))?;
    check_pixels(decoder.dimensions(), job.max_pixels)?;
    check_animation(job)?;
    decoder
        .set_limits(limits(job.max_pixels))
        .map_err(|e| refused(e, job))?;
    let mut frames = Vec::new();
    for frame in decoder.into_frames() {
        let frame = frame.map_err(|e| refused(e, job))?;
        let delay = frame.delay();
        let canvas = fit(DynamicImage::ImageRgba8(frame.into_buffer()), job.max_side);
        frames.push(Frame::from_parts(canvas.to_rgba8(), 0, 0, delay));
    }
    let Some(first) = frames.first() else {
        return Err(ImageError::Undecodable("the GIF has no frames".to_owned()));
    };
    let first = DynamicImage::ImageRgba8(first.buffer().clone());
    let (width, height) = first.dimensions();
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(failed)?;
        encoder.encode_frames(frames).map_err(failed)?;
    }
    Ok(ProcessedImage {
        image: EncodedImage {
            bytes,
            width,
            height,
        },
        thumbnail: encode(&thumbnail(&first, job.thumbnail_side), FileKind::Gif)?,
    })
}

/// The decoder's allocation ceiling: the largest allowed picture at 8 bytes a pixel (16-bit
/// RGBA), plus room for the decoder's own tables.
fn limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    limits
}

fn check_pixels((width, height): (u32, u32), max_pixels: u64) -> Result<(), ImageError> {
    if u64::from(width) * u64::from(height) > max_pixels {
        Err(ImageError::TooManyPixels { max: max_pixels })
    } else {
        Ok(())
    }
}

/// A decoding error as the port reports it: over the limits, or not an image of its kind.
fn refused(error: image::ImageError, job: &ImageJob) -> ImageError {
    match error {
        image::ImageError::Limits(_) => ImageError::TooManyPixels {
            max: job.max_pixels,
        },
        image::ImageError::IoError(error) => ImageError::Failed(error.to_string()),
        other => ImageError::Undecodable(other.to_string()),
    }
}

fn failed(error: image::ImageError) -> ImageError {
    ImageError::Failed(error.to_string())
}

/// Scaled down (never up) to fit `side` × `side`, keeping its proportions.
fn fit(image: DynamicImage, side: u32) -> DynamicImage {
    if image.width() <= side && image.height() <= side {
        image
    } else {
        image.resize(side, side, FilterType::Triangle)
    }
}

/// The thumbnail: a fast box-filtered reduction, or the image itself when already small.
fn thumbnail(image: &DynamicImage, side: u32) -> DynamicImage {
    if image.width() <= side && image.height() <= side {
        image.clone()
    } else {
        image.thumbnail(side, side)
    }
}

/// Pixels as an 8-bit buffer the encoders take: grey or colour, with alpha only if it had one.
fn eight_bit(image: &DynamicImage, keep_alpha: bool) -> DynamicImage {
    match image.color() {
        ColorType::L8 | ColorType::Rgb8 => image.clone(),
        ColorType::La8 | ColorType::Rgba8 if keep_alpha => image.clone(),
        color if color.has_alpha() && keep_alpha => DynamicImage::ImageRgba8(image.to_rgba8()),
        _ => DynamicImage::ImageRgb8(image.to_rgb8()),
    }
}

/// Encodes pixels as a baseline JPEG (4:2:0 below quality 90), with `jpeg-encoder`'s SIMD
/// paths; nothing but a JFIF header precedes the image.
fn jpeg(image: &DynamicImage) -> Result<EncodedImage, ImageError> {
    let (width, height) = (image.width(), image.height());
    let too_wide = || ImageError::Failed(format!("{width}x{height} is too large for a JPEG"));
    let (w, h) = (
        u16::try_from(width).map_err(|_| too_wide())?,
        u16::try_from(height).map_err(|_| too_wide())?,
    );
    let pixels = eight_bit(image, false);
    let color = match pixels.color() {
        ColorType::L8 => jpeg_encoder::ColorType::Luma,
        _ => jpeg_encoder::ColorType::Rgb,
    };
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, JPEG_QUALITY)
        .encode(pixels.as_bytes(), w, h, color)
        .map_err(|e| ImageError::Failed(e.to_string()))?;
    Ok(EncodedImage {
        bytes,
        width,
        height,
    })
}

/// Encodes pixels as `kind`, with no metadata at all.
fn encode(image: &DynamicImage, kind: FileKind) -> Result<EncodedImage, ImageError> {
    let mut bytes = Vec::new();
    match kind {
        FileKind::Jpeg => return jpeg(image),
        FileKind::Png => image.write_with_encoder(PngEncoder::new_with_quality(
            &mut bytes,
            CompressionType::Default,
            PngFilter::Adaptive,
        )),
        FileKind::WebP => {
            eight_bit(image, true).write_with_encoder(WebPEncoder::new_lossless(&mut bytes))
        }
        FileKind::Gif => {
            GifEncoder::new_with_speed(&mut bytes, 10).encode_frame(Frame::new(image.to_rgba8()))
        }
        FileKind::Pdf => return Err(ImageError::Failed("a PDF is not a picture".to_owned())),
    }
    .map_err(failed)?;
    Ok(EncodedImage {
        bytes,
        width: image.width(),
        height: image.height(),
    })
}
