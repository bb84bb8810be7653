//! The MSP's uploaded logo: checked, measured and always stored as a PNG.
//!
//! A PNG is decoded once to prove it is one (and to refuse a decompression bomb before it
//! reaches a browser). An SVG is never served as SVG: it could carry scripts, links or
//! references to other files. It is rasterised to a PNG with `resvg`, with no fonts (text
//! in a logo must be converted to paths), no external files and only embedded (data URL)
//! images.

use resvg::tiny_skia;
use resvg::usvg;
use sha2::{Digest, Sha256};

use crate::core::error::CoreError;

/// The largest upload: 256 KB.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// The largest PNG accepted, per side, in pixels.
pub const MAX_PNG_SIDE_PX: u32 = 4096;
/// An SVG is drawn this high (three times the height pages show it at)...
pub const SVG_RASTER_HEIGHT_PX: u32 = 144;
/// ...unless that would make it wider than this.
pub const SVG_RASTER_MAX_WIDTH_PX: u32 = 720;

/// Where Vouch serves an MSP's uploaded logo: `{public_url}brand/{msp id}/logo/{version}.png`.
pub fn uploaded_logo_url(public_url: &url::Url, msp_id: uuid::Uuid, version: &str) -> url::Url {
    public_url
        .join(&format!("brand/{msp_id}/logo/{version}.png"))
        .unwrap_or_else(|_| public_url.clone())
}

/// What the admin uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoFormat {
    Png,
    Svg,
}

impl LogoFormat {
    /// A file's format from its first bytes: PNG's signature, else SVG (whose parser then
    /// says what is wrong with anything else).
    pub fn sniff(bytes: &[u8]) -> LogoFormat {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            LogoFormat::Png
        } else {
            LogoFormat::Svg
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            LogoFormat::Png => "image/png",
            LogoFormat::Svg => "image/svg+xml",
        }
    }
}

/// A logo ready to store: PNG bytes and their size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedLogo {
    pub png: Vec<u8>,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    /// `true` when an SVG was rasterised.
    pub rasterised: bool,
}

fn invalid(problem: impl Into<String>) -> CoreError {
    CoreError::InvalidInput {
        field: "logo",
        problem: problem.into(),
    }
}

/// Checks `bytes` as a logo of `format` and turns it into the PNG Vouch serves.
pub fn prepare(format: LogoFormat, bytes: &[u8]) -> Result<PreparedLogo, CoreError> {
    if bytes.is_empty() {
        return Err(invalid(
            "is empty: send the PNG or SVG file as the request body",
        ));
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(invalid(format!(
            "is {} KB; a logo may be at most {} KB. Export it smaller (a logo is shown about 48 pixels high)",
            bytes.len().div_ceil(1024),
            MAX_LOGO_BYTES / 1024
        )));
    }
    let (png, width, height) = match format {
        LogoFormat::Png => {
            let (width, height) = check_png(bytes)?;
            (bytes.to_vec(), width, height)
        }
        LogoFormat::Svg => rasterise_svg(bytes)?,
    };
    Ok(PreparedLogo {
        sha256: hex::encode(Sha256::digest(&png)),
        png,
        width,
        height,
        rasterised: format == LogoFormat::Svg,
    })
}

/// Decodes the whole PNG (a truncated or corrupt file is refused here, not shown broken).
fn check_png(bytes: &[u8]) -> Result<(u32, u32), CoreError> {
    const NOT_PNG: &str = "is not a readable PNG image: export it again as PNG (or send an SVG with Content-Type image/svg+xml)";
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    // Refuses a small file that would unpack to gigabytes before it is unpacked.
    decoder.set_limits(png::Limits {
        bytes: (MAX_PNG_SIDE_PX * MAX_PNG_SIDE_PX * 4) as usize,
    });
    let mut reader = decoder.read_info().map_err(|_| invalid(NOT_PNG))?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    if width > MAX_PNG_SIDE_PX || height > MAX_PNG_SIDE_PX {
        return Err(invalid(format!(
            "is {width}×{height} pixels; at most {MAX_PNG_SIDE_PX} on each side"
        )));
    }
    let mut frame = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| invalid(NOT_PNG))?
    ];
    reader
        .next_frame(&mut frame)
        .map_err(|_| invalid(NOT_PNG))?;
    Ok((width, height))
}

fn rasterise_svg(bytes: &[u8]) -> Result<(Vec<u8>, u32, u32), CoreError> {
    let options = usvg::Options {
        // Only images embedded in the SVG itself; never a file or an address.
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: usvg::ImageHrefResolver::default_data_resolver(),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_data(bytes, &options).map_err(|err| {
        invalid(format!(
            "is not an SVG image Vouch can read ({err}): export it again as plain SVG"
        ))
    })?;
    let size = tree.size();
    if !(size.width() >= 1.0 && size.height() >= 1.0) {
        return Err(invalid(
            "has no size: give the SVG a width and height or a viewBox",
        ));
    }
    let mut scale = SVG_RASTER_HEIGHT_PX as f32 / size.height();
    if size.width() * scale > SVG_RASTER_MAX_WIDTH_PX as f32 {
        scale = SVG_RASTER_MAX_WIDTH_PX as f32 / size.width();
    }
    let width = ((size.width() * scale).round() as u32).max(1);
    let height = ((size.height() * scale).round() as u32).max(1);
    let mut pixmap = tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| invalid("has a size Vouch cannot draw"))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    let png = pixmap.encode_png().map_err(|err| {
        tracing::error!(error = %err, "encoding a rasterised logo failed");
        invalid("could not be converted to PNG: send a PNG instead")
    })?;
    Ok((png, width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="50" viewBox="0 0 200 50"><rect width="200" height="50" fill="#1d4ed8"/><script>alert(1)</script></svg>"##;

    #[test]
    fn an_svg_becomes_a_png_of_the_display_height_and_loses_its_script() {
        let logo = prepare(LogoFormat::Svg, SVG.as_bytes()).unwrap();
        assert!(logo.rasterised);
        assert_eq!((logo.width, logo.height), (576, 144));
        assert_eq!(&logo.png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(!String::from_utf8_lossy(&logo.png).contains("script"));
        // And it is a PNG Vouch itself accepts.
        assert_eq!(check_png(&logo.png).unwrap(), (576, 144));
    }

    #[test]
    fn a_very_wide_svg_is_drawn_no_wider_than_the_maximum() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="10"><rect width="2000" height="10"/></svg>"#;
        let logo = prepare(LogoFormat::Svg, svg.as_bytes()).unwrap();
        assert_eq!((logo.width, logo.height), (720, 4));
    }

    #[test]
    fn an_svg_reads_no_file() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10"><image width="10" height="10" xlink:href="/etc/passwd"/></svg>"#;
        // Drawn, without the image (an empty, transparent logo rather than a file's bytes).
        let logo = prepare(LogoFormat::Svg, svg.as_bytes()).unwrap();
        assert_eq!(logo.height, SVG_RASTER_HEIGHT_PX);
    }

    #[test]
    fn bad_logos_are_refused_with_what_to_do() {
        let problem = |format, bytes: &[u8]| match prepare(format, bytes) {
            Err(CoreError::InvalidInput { field, problem }) => {
                assert_eq!(field, "logo");
                problem
            }
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(problem(LogoFormat::Png, b"").contains("empty"));
        assert!(problem(LogoFormat::Png, b"GIF89a....").contains("not a readable PNG"));
        assert!(problem(LogoFormat::Svg, b"<html>").contains("not an SVG"));
        let big = vec![b' '; MAX_LOGO_BYTES + 1];
        assert!(problem(LogoFormat::Svg, &big).contains("at most 256 KB"));
        // A truncated PNG: its header alone is not enough.
        let png = prepare(LogoFormat::Svg, SVG.as_bytes()).unwrap().png;
        assert!(problem(LogoFormat::Png, &png[..png.len() / 2]).contains("not a readable PNG"));
    }
}
