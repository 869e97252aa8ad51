//! `/samples/…` and `/files/…` are served like a CDN serves them.

mod support;

use support::*;

#[tokio::test]
async fn every_sample_decodes_in_its_declared_format() {
    let emulator = start().await;
    let expected = [
        ("person.png", "image/png", image::ImageFormat::Png),
        ("person.jpg", "image/jpeg", image::ImageFormat::Jpeg),
        ("garment.png", "image/png", image::ImageFormat::Png),
        ("garment-2.png", "image/png", image::ImageFormat::Png),
        ("garment-3.png", "image/png", image::ImageFormat::Png),
    ];
    for (name, content_type, format) in expected {
        let response = client().get(format!("{}/samples/{name}", emulator.url())).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], content_type, "{name}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), format, "{name}");
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (256, 384), "{name}");
    }
}

#[tokio::test]
async fn the_three_garments_are_different_products() {
    let emulator = start().await;
    let mut centres = Vec::new();
    for name in ["garment.png", "garment-2.png", "garment-3.png"] {
        let bytes = client().get(format!("{}/samples/{name}", emulator.url())).send().await.unwrap().bytes().await.unwrap();
        centres.push(image::load_from_memory(&bytes).unwrap().to_rgba8().get_pixel(128, 200).0);
    }
    assert!(centres[0] != centres[1] && centres[1] != centres[2] && centres[0] != centres[2], "{centres:?}");
}

#[tokio::test]
async fn an_unknown_sample_is_not_found() {
    let emulator = start().await;
    assert_eq!(client().get(format!("{}/samples/garment-4.png", emulator.url())).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn files_carry_content_length_and_an_etag_that_revalidates() {
    let emulator = start().await;
    let output = json_of(run(&emulator, &try_on_input(&emulator, "etag")).await.unwrap()).await;
    let url = output["images"][0]["url"].as_str().unwrap();
    let response = client().get(url).send().await.unwrap();
    let length: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong ETag: {etag}");
    assert_eq!(response.bytes().await.unwrap().len(), length);

    let again = client().get(url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let changed = client().get(url).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(changed.status(), 200);
}

#[tokio::test]
async fn an_unknown_file_is_not_found() {
    let emulator = start().await;
    assert_eq!(client().get(format!("{}/files/0000000000000000.png", emulator.url())).send().await.unwrap().status(), 404);
}
