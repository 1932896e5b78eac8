//! Uploads over HTTP against the in-process app: each accepted type, each refusal, what is
//! stored (upright, without metadata) and how it is served.

use std::io::Cursor;
use std::time::Duration;

use crate::support::{Reply, TestApp, spawn_app, spawn_app_with, token};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const BOUNDARY: &str = "console-upload-boundary";

/// One multipart part: field name, file name, declared type, bytes.
type Part<'a> = (&'a str, &'a str, &'a str, &'a [u8]);

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, content_type, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(app: &TestApp, path: &str, access: &str, parts: &[Part<'_>]) -> Reply {
    app.send(
        app.http
            .post(app.url(path))
            .bearer_auth(access)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart(parts)),
    )
    .await
}

async fn upload_file(app: &TestApp, path: &str, access: &str, bytes: &[u8]) -> Reply {
    upload(
        app,
        path,
        access,
        &[("file", "upload.bin", "application/octet-stream", bytes)],
    )
    .await
}

/// A file as served: status, headers and bytes.
async fn fetch(app: &TestApp, url: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let response = app.http.get(url).send().await.expect("file fetched");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("file read").to_vec();
    (status, headers, bytes)
}

/// A picture with some structure (so that re-encoding has something to keep).
fn picture(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    }))
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .expect("encoded");
    bytes
}

fn animated_gif() -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut bytes);
        let frames = [Rgba([255, 0, 0, 255]), Rgba([0, 0, 255, 255])]
            .map(|colour| image::Frame::new(RgbaImage::from_pixel(12, 10, colour)));
        encoder.encode_frames(frames).expect("gif encoded");
    }
    bytes
}

const GPS_MARKER: &[u8] = b"GPS-SECRET-PLACE";

/// A JPEG carrying an EXIF block: orientation 6 (turn 90° clockwise to show) and a GPS IFD
/// whose GPSAreaInformation holds [`GPS_MARKER`].
fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let plain = encoded(&picture(width, height), ImageFormat::Jpeg);
    // TIFF, big-endian: IFD0 at 8 with two entries (Orientation, GPS IFD pointer), then the GPS
    // IFD with one entry (GPSAreaInformation, UNDEFINED, pointing at the marker).
    let mut tiff: Vec<u8> = b"MM\0\x2a\0\0\0\x08".to_vec();
    let ifd0 = 8_u32;
    let gps_ifd = ifd0 + 2 + 2 * 12 + 4;
    let marker_at = gps_ifd + 2 + 12 + 4;
    tiff.extend_from_slice(&2_u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]);
    tiff.extend_from_slice(&gps_ifd.to_be_bytes());
    tiff.extend_from_slice(&0_u32.to_be_bytes());
    tiff.extend_from_slice(&1_u16.to_be_bytes());
    tiff.extend_from_slice(&[0x00, 0x1c, 0, 7]);
    tiff.extend_from_slice(&(GPS_MARKER.len() as u32).to_be_bytes());
    tiff.extend_from_slice(&marker_at.to_be_bytes());
    tiff.extend_from_slice(&0_u32.to_be_bytes());
    tiff.extend_from_slice(GPS_MARKER);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend_from_slice(&[0xFF, 0xE1]);
    jpeg.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    jpeg.extend_from_slice(&app1);
    jpeg.extend_from_slice(&plain[2..]);
    jpeg
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let mut typed = kind.to_vec();
    typed.extend_from_slice(data);
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    chunk
}

/// A PNG with a `tEXt` chunk inserted after its header.
fn png_with_text(text: &[u8]) -> Vec<u8> {
    let plain = encoded(&picture(30, 20), ImageFormat::Png);
    let header_end = 8 + 25;
    let mut png = plain[..header_end].to_vec();
    png.extend_from_slice(&png_chunk(b"tEXt", text));
    png.extend_from_slice(&plain[header_end..]);
    png
}

/// A valid PNG header declaring 100 000 × 100 000 pixels (40 GB decoded) over a few bytes.
fn png_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = 100_000_u32.to_be_bytes().to_vec();
    header.extend_from_slice(&100_000_u32.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&png_chunk(b"IHDR", &header));
    png.extend_from_slice(&png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend_from_slice(&png_chunk(b"IEND", &[]));
    png
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn signed_in(app: &TestApp, email: &str) -> String {
    token(&app.register(email).await, "accessToken")
}

#[tokio::test]
async fn each_accepted_picture_type_is_stored_re_encoded_with_a_thumbnail_and_served_safely() {
    let app = spawn_app().await;
    let access = signed_in(&app, "ada@example.com").await;
    let big = picture(800, 400);
    let cases = [
        (encoded(&big, ImageFormat::Jpeg), "image/jpeg"),
        (encoded(&big, ImageFormat::Png), "image/png"),
        (encoded(&big, ImageFormat::WebP), "image/webp"),
        (animated_gif(), "image/gif"),
    ];
    for (bytes, mime) in cases {
        let reply = upload_file(&app, "/upload/image", &access, &bytes).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{mime}: {:?}",
            reply.body
        );
        let data = reply.data();
        assert_eq!(data["mimeType"], mime);
        let url = data["url"].as_str().unwrap_or_default();
        assert!(url.starts_with(&format!("{}/uploads/", app.base)), "{url}");
        let (status, headers, stored) = fetch(&app, url).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert_eq!(headers["content-type"], mime);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cross-origin-resource-policy"], "cross-origin");
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(data["size"], json!(stored.len()));
        let decoded = image::load_from_memory(&stored).expect("a stored picture decodes");
        assert_eq!(
            (json!(decoded.width()), json!(decoded.height())),
            (data["width"].clone(), data["height"].clone())
        );
        let thumbnail = data["thumbnailUrl"].as_str().unwrap_or_default();
        let (status, headers, thumb) = fetch(&app, thumbnail).await;
        assert_eq!(
            (status, &headers["content-type"]),
            (StatusCode::OK, &mime.parse().expect("header"))
        );
        let thumb = image::load_from_memory(&thumb).expect("the thumbnail decodes");
        assert!(thumb.width() <= 320 && thumb.height() <= 320, "{mime}");
        // An identical ETag is a 304.
        let etag = headers["etag"].clone();
        let again = app
            .http
            .get(thumbnail)
            .header("if-none-match", etag)
            .send()
            .await
            .expect("sent");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
    let frames = {
        let reply = upload_file(&app, "/upload/image", &access, &animated_gif()).await;
        let (_, _, stored) = fetch(&app, reply.data()["url"].as_str().unwrap_or_default()).await;
        let decoder = image::codecs::gif::GifDecoder::new(Cursor::new(stored)).expect("gif");
        image::AnimationDecoder::into_frames(decoder).count()
    };
    assert_eq!(frames, 2, "an animation keeps its frames");
    // The API's own answers keep their stricter policy.
    let me = app.get("/auth/me", Some(&access)).await;
    assert_eq!(me.headers["cross-origin-resource-policy"], "same-site");
}

#[tokio::test]
async fn a_pdf_is_stored_as_sent_and_several_pictures_go_in_one_request() {
    let app = spawn_app().await;
    let access = signed_in(&app, "ada@example.com").await;
    for path in ["/upload/document", "/upload/resume"] {
        let reply = upload_file(&app, path, &access, PDF).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.data()["mimeType"], "application/pdf");
        assert!(reply.data().get("thumbnailUrl").is_none());
        let (status, headers, stored) =
            fetch(&app, reply.data()["url"].as_str().unwrap_or_default()).await;
        assert_eq!((status, stored.as_slice()), (StatusCode::OK, PDF));
        assert_eq!(headers["content-type"], "application/pdf");
        // Downloaded, never opened as a page of the API's origin (a PDF may carry scripts).
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename="),
            "{disposition}"
        );
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; sandbox"
        );
    }
    let jpeg = encoded(&picture(40, 30), ImageFormat::Jpeg);
    let png = encoded(&picture(30, 40), ImageFormat::Png);
    let reply = upload(
        &app,
        "/upload/images",
        &access,
        &[
            ("files", "a.jpg", "image/jpeg", &jpeg),
            ("files", "b.png", "image/png", &png),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let kinds: Vec<&str> = reply
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["mimeType"].as_str())
        .collect();
    assert_eq!(kinds, ["image/jpeg", "image/png"]);
    // One bad file fails the request and keeps none of it.
    let reply = upload(
        &app,
        "/upload/images",
        &access,
        &[
            ("files", "c.jpg", "image/jpeg", &jpeg),
            ("files", "x.jpg", "image/jpeg", b"not a picture at all"),
        ],
    )
    .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_FILE_TYPE")
    );
    let export = app.get("/users/account/export", Some(&access)).await;
    assert_eq!(
        export.body["files"].as_array().map(Vec::len),
        Some(2 + 2 * 2),
        "two PDFs and two pictures with their thumbnails: {:?}",
        export.body["files"]
    );
}

#[tokio::test]
async fn metadata_is_gone_from_the_stored_picture_and_it_stands_upright() {
    let app = spawn_app().await;
    let access = signed_in(&app, "ada@example.com").await;
    let jpeg = jpeg_with_exif(40, 20);
    assert!(contains(&jpeg, GPS_MARKER) && contains(&jpeg, b"Exif\0\0"));
    let reply = upload_file(&app, "/upload/image", &access, &jpeg).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    // Orientation 6: a 40 × 20 sensor image is shown 20 wide and 40 high.
    assert_eq!(
        (
            reply.data()["width"].clone(),
            reply.data()["height"].clone()
        ),
        (json!(20), json!(40))
    );
    for url in [
        reply.data()["url"].as_str(),
        reply.data()["thumbnailUrl"].as_str(),
    ] {
        let (_, _, stored) = fetch(&app, url.unwrap_or_default()).await;
        assert!(!contains(&stored, GPS_MARKER), "the GPS data survived");
        assert!(!contains(&stored, b"Exif"), "an EXIF block survived");
        assert!(
            !stored.windows(2).any(|w| w == [0xFF, 0xE1]),
            "an APP1 segment survived"
        );
    }
    let png = png_with_text(b"Comment\0secret-location");
    let reply = upload_file(&app, "/upload/image", &access, &png).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let (_, _, stored) = fetch(&app, reply.data()["url"].as_str().unwrap_or_default()).await;
    assert!(!contains(&stored, b"secret-location") && !contains(&stored, b"tEXt"));
}

#[tokio::test]
async fn content_decides_the_type_whatever_the_name_or_declared_type_say() {
    let app = spawn_app().await;
    let access = signed_in(&app, "ada@example.com").await;
    let html = b"<html><script>alert(document.cookie)</script></html>";
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    let refusals: [(&str, Part<'_>); 5] = [
        ("/upload/image", ("file", "cat.jpg", "image/jpeg", html)),
        ("/upload/image", ("file", "cat.svg", "image/svg+xml", svg)),
        ("/upload/image", ("file", "resume.jpg", "image/jpeg", PDF)),
        (
            "/upload/document",
            ("file", "cv.pdf", "application/pdf", html),
        ),
        (
            "/users/profile/avatar",
            ("file", "me.png", "image/png", b"GIF8"),
        ),
    ];
    for (path, part) in refusals {
        let reply = upload(&app, path, &access, &[part]).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_FILE_TYPE"),
            "{path} {}: {:?}",
            part.1,
            reply.body
        );
        assert!(reply.is_problem());
    }
    // A picture called a web page is a picture, and is served as one.
    let png = encoded(&picture(8, 8), ImageFormat::Png);
    let reply = upload(
        &app,
        "/upload/image",
        &access,
        &[("file", "evil.html", "text/html", &png)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert!(
        reply.data()["url"]
            .as_str()
            .is_some_and(|url| url.ends_with(".png"))
    );
    let (_, headers, _) = fetch(&app, reply.data()["url"].as_str().unwrap_or_default()).await;
    assert_eq!(headers["content-type"], "image/png");
    // Starts like a JPEG, is not one.
    let mut broken = vec![0xFF, 0xD8, 0xFF, 0xE0];
    broken.extend_from_slice(&[0x42; 200]);
    let reply = upload_file(&app, "/upload/image", &access, &broken).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_IMAGE")
    );
    // Not multipart at all, no file, an empty one, another part.
    let reply = app
        .post("/upload/image", json!({"file": "x"}), Some(&access))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
    );
    let reply = upload(&app, "/upload/image", &access, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let text_only = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{BOUNDARY}--\r\n"
    );
    let reply = app
        .send(
            app.http
                .post(app.url("/upload/image"))
                .bearer_auth(&access)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(text_only),
        )
        .await;
    assert_eq!(
        (reply.status, reply.fields()),
        (StatusCode::BAD_REQUEST, vec!["note".to_owned()])
    );
    let reply = upload_file(&app, "/upload/image", &access, b"").await;
    assert_eq!(
        (reply.status, reply.fields()),
        (StatusCode::BAD_REQUEST, vec!["file".to_owned()])
    );
    let reply = upload(
        &app,
        "/upload/image",
        &access,
        &[("avatar", "a.png", "image/png", &png)],
    )
    .await;
    assert_eq!(
        (reply.status, reply.fields()),
        (StatusCode::BAD_REQUEST, vec!["avatar".to_owned()])
    );
    let reply = upload(
        &app,
        "/upload/image",
        &access,
        &[
            ("file", "a.png", "image/png", &png),
            ("file", "b.png", "image/png", &png),
        ],
    )
    .await;
    assert_eq!(
        (reply.status, reply.fields()),
        (StatusCode::BAD_REQUEST, vec!["file".to_owned()])
    );
    // Without a token nothing is read.
    let reply = app
        .send(
            app.http
                .post(app.url("/upload/image"))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(multipart(&[("file", "a.png", "image/png", &png)])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_before_it_is_decoded() {
    let app = spawn_app_with(&[("UPLOAD_MAX_IMAGE_PIXELS", "1000000")]).await;
    let access = signed_in(&app, "ada@example.com").await;
    let bomb = png_bomb();
    assert!(bomb.len() < 100);
    let reply = upload_file(&app, "/upload/image", &access, &bomb).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "IMAGE_TOO_LARGE"),
        "{:?}",
        reply.body
    );
    // A real picture of few bytes and many pixels: 2000 × 1000 of one colour.
    let flat = encoded(
        &DynamicImage::ImageRgb8(RgbImage::new(2000, 1000)),
        ImageFormat::Png,
    );
    assert!(flat.len() < 50_000, "{}", flat.len());
    let reply = upload_file(&app, "/upload/image", &access, &flat).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "IMAGE_TOO_LARGE")
    );
    let export = app.get("/users/account/export", Some(&access)).await;
    assert_eq!(export.body["files"], json!([]));
}

/// A GIF whose canvas is 1 × 1 but whose frames are `side` × `side` each: the canvas says
/// nothing of what decoding the frames costs.
fn gif_with_oversized_frames(side: u16, frames: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut bytes, 1, 1, &[0, 0, 0, 255, 255, 255]).unwrap();
        let pixels = vec![0_u8; usize::from(side) * usize::from(side)];
        for _ in 0..frames {
            let mut frame = gif::Frame::from_indexed_pixels(side, side, pixels.clone(), None);
            frame.delay = 10;
            encoder.write_frame(&frame).unwrap();
        }
    }
    bytes
}

#[tokio::test]
async fn an_animation_is_counted_by_its_frames_own_sizes_not_by_its_canvas() {
    let app = spawn_app_with(&[("UPLOAD_MAX_IMAGE_PIXELS", "1000000")]).await;
    let access = signed_in(&app, "ada@example.com").await;
    // Three frames of 4 MP each under a 1 × 1 canvas: 12 MP to decode, over a 1 MP budget.
    let bomb = gif_with_oversized_frames(2000, 3);
    assert!(bomb.len() < 200_000, "{}", bomb.len());
    let reply = upload_file(&app, "/upload/image", &access, &bomb).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "IMAGE_TOO_LARGE"),
        "{:?}",
        reply.body
    );
    // Frames within the budget, one by one and together, are still taken.
    let small = gif_with_oversized_frames(500, 3);
    let reply = upload_file(&app, "/upload/image", &access, &small).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let export = app.get("/users/account/export", Some(&access)).await;
    let stored: Vec<&str> = export.body["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|file| file["url"].as_str())
        .collect();
    assert!(
        stored.contains(&reply.data()["url"].as_str().unwrap_or_default()),
        "{stored:?}"
    );
    assert!(
        !stored.is_empty() && stored.len() <= 2,
        "the small one and its thumbnail: {stored:?}"
    );
}

/// Sends a request head and part of a body over a raw connection, then reads the answer
/// without sending the rest.
async fn answer_before_the_body_ends(app: &TestApp, head: &str, body_start: &[u8]) -> String {
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connected");
    stream.write_all(head.as_bytes()).await.expect("head sent");
    stream.write_all(body_start).await.expect("body sent");
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered while the body was still open")
        .expect("read");
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// A `POST /upload/image` whose body is one chunk of `chunk` (no length declared, and the body
/// never ends): the answer the server gives meanwhile.
async fn chunked_image_upload(app: &TestApp, access: &str, chunk: &[u8]) -> String {
    let port = app.base.rsplit(':').next().unwrap_or_default();
    let mut body = format!("{:x}\r\n", chunk.len()).into_bytes();
    body.extend_from_slice(chunk);
    body.extend_from_slice(b"\r\n");
    let head = format!(
        "POST /api/v1/upload/image HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {access}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    answer_before_the_body_ends(app, &head, &body).await
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_while_it_is_still_arriving() {
    let app = spawn_app_with(&[("UPLOAD_MAX_IMAGE_SIZE", "20000")]).await;
    let access = signed_in(&app, "ada@example.com").await;
    let big = encoded(&picture(300, 300), ImageFormat::Png);
    assert!(big.len() > 20_000, "{}", big.len());
    let reply = upload_file(&app, "/upload/image", &access, &big).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "FILE_TOO_LARGE")
    );
    let port = app.base.rsplit(':').next().unwrap_or_default();
    let part_head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    );
    // Chunked: no length is declared, so only counting the bytes can stop it.
    let mut chunk = part_head.into_bytes();
    chunk.extend_from_slice(&[0xFF, 0xD8, 0xFF]);
    chunk.resize(30_000, 0x42);
    let answer = chunked_image_upload(&app, &access, &chunk).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("FILE_TOO_LARGE"), "{answer}");
    // A declared length no file could fit is refused before any of the body.
    let head = format!(
        "POST /api/v1/upload/image HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {access}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 104857600\r\n\r\n"
    );
    let answer = answer_before_the_body_ends(&app, &head, b"").await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // The JSON limit is another limit: a 20 KB picture fits the default upload limit.
    let other = spawn_app_with(&[("JSON_BODY_LIMIT", "1024")]).await;
    let access = signed_in(&other, "bob@example.com").await;
    let reply = upload_file(&other, "/upload/image", &access, &big).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
}

#[tokio::test]
async fn a_part_header_that_never_ends_is_refused_after_a_few_kilobytes() {
    let app = spawn_app().await;
    let access = signed_in(&app, "ada@example.com").await;
    // Chunked, and the part's header section goes on without its blank line.
    let mut chunk = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\nX-Padding: "
    )
    .into_bytes();
    chunk.resize(256 * 1024, b'a');
    let answer = chunked_image_upload(&app, &access, &chunk).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("header is over 16384 bytes"), "{answer}");
    // Many small parts: each is counted, and the count of parts is capped by the route.
    let parts: Vec<Part<'_>> = (0..3)
        .map(|_| ("file", "a.pdf", "application/pdf", PDF))
        .collect();
    let reply = upload(&app, "/upload/document", &access, &parts).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "VALIDATION_ERROR")
    );
    let export = app.get("/users/account/export", Some(&access)).await;
    assert_eq!(export.body["files"], json!([]), "nothing of either is kept");
}

/// A GET over a raw connection, so the path reaches the server exactly as written.
async fn raw_get(app: &TestApp, path: &str) -> String {
    let port = app.base.rsplit(':').next().unwrap_or_default();
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    answer_before_the_body_ends(app, &head, b"").await
}

#[tokio::test]
async fn only_names_the_server_gave_are_served_and_nothing_is_listed() {
    let app = spawn_app().await;
    let access = signed_in(&app, "ada@example.com").await;
    std::fs::write(app.data_dir().join("secret.txt"), "do not serve").expect("written");
    let png = encoded(&picture(8, 8), ImageFormat::Png);
    let reply = upload_file(&app, "/upload/image", &access, &png).await;
    let url = reply.data()["url"].as_str().unwrap_or_default().to_owned();
    let path = url.trim_start_matches(&app.base).to_owned();
    let (folder, _) = path.rsplit_once('/').unwrap_or_default();
    let owner_folder = folder
        .rsplit_once('/')
        .map(|(owner, _)| owner)
        .unwrap_or_default();
    for attempt in [
        "/uploads/../secret.txt".to_owned(),
        "/uploads/../../etc/passwd".to_owned(),
        "/uploads/%2e%2e/secret.txt".to_owned(),
        "/uploads/%2e%2e%2fsecret.txt".to_owned(),
        format!("{folder}/..%2f..%2f..%2fsecret.txt"),
        format!("{folder}/%2e%2e%2f%2e%2e%2fsecret.txt"),
        format!("{folder}/"),
        format!("{owner_folder}/"),
        "/uploads/".to_owned(),
        "/uploads/.staging/x.part".to_owned(),
        format!("{}.html", path.trim_end_matches(".png")),
    ] {
        let answer = raw_get(&app, &attempt).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{attempt}: {answer}");
        assert!(!answer.contains("do not serve"), "{attempt}");
    }
    assert!(raw_get(&app, &path).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn avatars_and_the_resume_set_their_fields_and_replace_the_previous_file() {
    let app = spawn_app().await;
    let access = signed_in(&app, "ada@example.com").await;
    let first = encoded(&picture(600, 300), ImageFormat::Jpeg);
    let second = encoded(&picture(100, 100), ImageFormat::Png);
    let reply = upload_file(&app, "/users/profile/avatar", &access, &first).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let old = reply.data()["avatar"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, _, stored) = fetch(&app, &old).await;
    let stored = image::load_from_memory(&stored).expect("decodes");
    assert_eq!(
        (stored.width(), stored.height()),
        (512, 256),
        "avatars are kept small"
    );
    let reply = upload_file(&app, "/users/profile/avatar", &access, &second).await;
    let new = reply.data()["avatar"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(old, new);
    assert_eq!(
        app.get("/auth/me", Some(&access)).await.data()["avatar"],
        json!(new)
    );
    assert_eq!(
        fetch(&app, &old).await.0,
        StatusCode::NOT_FOUND,
        "the replaced avatar is gone"
    );
    assert_eq!(fetch(&app, &new).await.0, StatusCode::OK);

    for (path, field, bytes) in [
        ("/portfolio/profile/avatar", "avatar", &first),
        ("/portfolio/profile/resume", "resumeUrl", &PDF.to_vec()),
    ] {
        let reply = upload_file(&app, path, &access, bytes).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let old = reply.data()[field].as_str().unwrap_or_default().to_owned();
        let mut changed = bytes.clone();
        if field == "resumeUrl" {
            changed.extend_from_slice(b"%% second version\n");
        } else {
            changed = second.clone();
        }
        let reply = upload_file(&app, path, &access, &changed).await;
        let new = reply.data()[field].as_str().unwrap_or_default().to_owned();
        assert_ne!(old, new);
        let profile = app.get("/portfolio/profile", Some(&access)).await;
        assert_eq!(profile.data()[field], json!(new));
        assert_eq!(fetch(&app, &old).await.0, StatusCode::NOT_FOUND, "{field}");
        // What was read back may be sent back.
        let echo = app
            .patch("/portfolio/profile", profile.data().clone(), &access)
            .await;
        assert_eq!(echo.status, StatusCode::OK, "{:?}", echo.body);
    }
    // The free upload of the same picture is another file, untouched by replacements.
    let free = upload_file(&app, "/upload/avatar", &access, &second).await;
    assert_eq!(free.status, StatusCode::CREATED);
    let reply = upload_file(&app, "/users/profile/avatar", &access, &first).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        fetch(&app, free.data()["url"].as_str().unwrap_or_default())
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deleting_the_account_deletes_its_files_and_the_export_lists_them() {
    let app = spawn_app().await;
    let access = signed_in(&app, "ada@example.com").await;
    let other = signed_in(&app, "bob@example.com").await;
    let png = encoded(&picture(20, 20), ImageFormat::Png);
    let adas = upload_file(&app, "/users/profile/avatar", &access, &png).await;
    let resume = upload_file(&app, "/portfolio/profile/resume", &access, PDF).await;
    let bobs = upload_file(&app, "/upload/image", &other, &png).await;
    let export = app.get("/users/account/export", Some(&access)).await;
    let files: Vec<Value> = export.body["files"].as_array().cloned().unwrap_or_default();
    let urls: Vec<&str> = files.iter().filter_map(|f| f["url"].as_str()).collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(urls.contains(&adas.data()["avatar"].as_str().unwrap_or_default()));
    assert!(urls.contains(&resume.data()["resumeUrl"].as_str().unwrap_or_default()));
    assert!(
        files
            .iter()
            .all(|f| f["size"].as_u64().is_some() && f["mimeType"].is_string())
    );
    let csv = app
        .http
        .get(app.url("/users/account/export?format=csv"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("files,")).count(),
        3 * 4
    );

    app.post("/users/account/request-deletion", json!({}), Some(&access))
        .await;
    let mail = app
        .mail
        .wait_for("ada@example.com", "Confirm the deletion")
        .await;
    let confirmation = mail.token().expect("token in the email");
    let reply = app
        .send(
            app.http
                .delete(app.url(&format!("/users/account?token={confirmation}")))
                .bearer_auth(&access),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    for url in urls {
        assert_eq!(fetch(&app, url).await.0, StatusCode::NOT_FOUND, "{url}");
    }
    let bobs = bobs.data()["url"].as_str().unwrap_or_default();
    assert_eq!(
        fetch(&app, bobs).await.0,
        StatusCode::OK,
        "another user's files stay"
    );
}

#[tokio::test]
async fn uploads_have_their_own_rate_limit() {
    let app = spawn_app_with(&[("THROTTLE_UPLOAD_LIMIT", "2")]).await;
    let access = signed_in(&app, "ada@example.com").await;
    for _ in 0..2 {
        assert_eq!(
            upload_file(&app, "/upload/document", &access, PDF)
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let limited = upload_file(&app, "/upload/resume", &access, PDF).await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS")
    );
    assert!(limited.headers.contains_key("retry-after"));
    // Other requests are not counted against it.
    assert_eq!(
        app.get("/auth/me", Some(&access)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_users_files_stay_within_their_quota_and_the_export_says_how_much_is_used() {
    let app = spawn_app_with(&[("UPLOAD_QUOTA_BYTES", "1000")]).await;
    let access = signed_in(&app, "ada@example.com").await;
    let other = signed_in(&app, "bob@example.com").await;
    let mut stored = 0;
    let refused = loop {
        // Distinct documents: the same bytes would be the same file.
        let pdf = format!("%PDF-1.4\n% copy {stored}\n{}", "x".repeat(200));
        let reply = upload_file(&app, "/upload/document", &access, pdf.as_bytes()).await;
        if reply.status != StatusCode::CREATED {
            break reply;
        }
        stored += 1;
        assert!(stored <= 5, "no quota");
    };
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "STORAGE_QUOTA_EXCEEDED"),
        "{:?}",
        refused.body
    );
    assert_eq!(stored, 4, "four of about 215 bytes fit in 1000");
    let export = app.get("/users/account/export", Some(&access)).await;
    let storage = &export.body["storage"];
    assert_eq!(storage["quotaBytes"], 1000);
    let used = storage["usedBytes"].as_u64().unwrap_or_default();
    assert!(used > 800 && used <= 1000, "{storage}");
    // Another user's quota is their own.
    let reply = upload_file(&app, "/upload/document", &other, PDF).await;
    assert_eq!(reply.status, StatusCode::CREATED);
}
