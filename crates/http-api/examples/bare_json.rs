//! The benchmark's baseline: a bare actix-web server answering every GET with one fixed JSON
//! body (read from a file), on as many workers as `console-api` uses. Usage:
//! `bare_json <port> <body-file>`.

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8088);
    let body = web::Bytes::from(std::fs::read(args.next().unwrap_or_default())?);
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    HttpServer::new(move || {
        let body = body.clone();
        App::new().default_service(web::to(move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .workers(workers)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
