//! Real PNGs: sample inputs drawn in code, and outputs that put the person and
//! the garments side by side so a developer can see what went in.

use image::{imageops, ImageFormat, Rgba, RgbaImage};
use std::io::Cursor;

const HEIGHT: u32 = 384;
const GAP: u32 = 8;

pub fn encode_png(img: &RgbaImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).expect("PNG encoding to memory cannot fail");
    out.into_inner()
}

/// JPEG has no alpha channel, so the image is flattened to RGB first.
pub fn encode_jpeg(img: &RgbaImage) -> Vec<u8> {
    let rgb = image::DynamicImage::ImageRgba8(img.clone()).to_rgb8();
    let mut out = Cursor::new(Vec::new());
    rgb.write_to(&mut out, ImageFormat::Jpeg).expect("JPEG encoding to memory cannot fail");
    out.into_inner()
}

/// A plain figure: head and body on a light background.
pub fn sample_person() -> RgbaImage {
    let mut img = RgbaImage::from_pixel(256, HEIGHT, Rgba([236, 240, 244, 255]));
    let skin = Rgba([224, 172, 105, 255]);
    fill_ellipse(&mut img, 128, 70, 34, 42, skin);
    fill_rect(&mut img, 78, 120, 100, 150, Rgba([90, 98, 110, 255]));
    fill_rect(&mut img, 88, 270, 34, 100, Rgba([52, 60, 84, 255]));
    fill_rect(&mut img, 134, 270, 34, 100, Rgba([52, 60, 84, 255]));
    img
}

/// A red T-shirt.
pub fn sample_garment() -> RgbaImage {
    let mut img = RgbaImage::from_pixel(256, HEIGHT, Rgba([255, 255, 255, 255]));
    let red = Rgba([206, 48, 56, 255]);
    fill_rect(&mut img, 68, 110, 120, 180, red);
    fill_rect(&mut img, 28, 110, 40, 60, red);
    fill_rect(&mut img, 188, 110, 40, 60, red);
    fill_ellipse(&mut img, 128, 110, 22, 12, Rgba([255, 255, 255, 255]));
    img
}

/// Blue trousers: a different colour and outline from the T-shirt, so a
/// shop page showing all samples has distinct products.
pub fn sample_blue_trousers() -> RgbaImage {
    let mut img = RgbaImage::from_pixel(256, HEIGHT, Rgba([255, 255, 255, 255]));
    let blue = Rgba([40, 76, 160, 255]);
    fill_rect(&mut img, 72, 60, 112, 40, blue);
    fill_rect(&mut img, 72, 100, 50, 240, blue);
    fill_rect(&mut img, 134, 100, 50, 240, blue);
    fill_rect(&mut img, 72, 60, 112, 8, Rgba([24, 40, 96, 255]));
    img
}

/// A green dress: narrow at the top, flaring out towards the hem.
pub fn sample_green_dress() -> RgbaImage {
    let mut img = RgbaImage::from_pixel(256, HEIGHT, Rgba([255, 255, 255, 255]));
    let green = Rgba([46, 139, 87, 255]);
    fill_rect(&mut img, 96, 60, 64, 90, green);
    for (i, y) in (150..340).enumerate() {
        let half = 32 + i as u32 / 2;
        fill_rect(&mut img, 128 - half, y, 2 * half, 1, green);
    }
    fill_ellipse(&mut img, 128, 60, 18, 10, Rgba([255, 255, 255, 255]));
    img
}

/// A tile standing in for an input the emulator could not download (it has
/// no internet), coloured from the URL so different inputs look different.
pub fn placeholder(seed: &str) -> RgbaImage {
    let h = seed.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let color = Rgba([(h >> 16) as u8 | 0x40, (h >> 8) as u8 | 0x40, h as u8 | 0x40, 255]);
    let mut img = RgbaImage::from_pixel(256, HEIGHT, color);
    fill_rect(&mut img, 16, 16, 224, HEIGHT - 32, Rgba([255, 255, 255, 90]));
    img
}

/// Scales every image to the same height and lays them out left to right.
pub fn side_by_side(images: &[RgbaImage]) -> RgbaImage {
    let scaled: Vec<RgbaImage> = images
        .iter()
        .map(|img| {
            let w = (img.width() as u64 * HEIGHT as u64 / img.height().max(1) as u64).clamp(1, 2048) as u32;
            imageops::resize(img, w, HEIGHT, imageops::FilterType::Triangle)
        })
        .collect();
    let width = scaled.iter().map(|i| i.width()).sum::<u32>() + GAP * (scaled.len() as u32 + 1);
    let mut out = RgbaImage::from_pixel(width, HEIGHT + 2 * GAP, Rgba([255, 255, 255, 255]));
    let mut x = GAP;
    for img in &scaled {
        imageops::overlay(&mut out, img, x as i64, GAP as i64);
        x += img.width() + GAP;
    }
    out
}

fn fill_rect(img: &mut RgbaImage, x: u32, y: u32, w: u32, h: u32, color: Rgba<u8>) {
    for py in y..(y + h).min(img.height()) {
        for px in x..(x + w).min(img.width()) {
            img.put_pixel(px, py, color);
        }
    }
}

fn fill_ellipse(img: &mut RgbaImage, cx: i64, cy: i64, rx: i64, ry: i64, color: Rgba<u8>) {
    for py in (cy - ry).max(0)..(cy + ry).min(img.height() as i64) {
        for px in (cx - rx).max(0)..(cx + rx).min(img.width() as i64) {
            let (dx, dy) = (px - cx, py - cy);
            if dx * dx * ry * ry + dy * dy * rx * rx <= rx * rx * ry * ry {
                img.put_pixel(px as u32, py as u32, color);
            }
        }
    }
}
