//! The HTTP edge: envelopes for every kind of error, request ids, body limits, security
//! headers, CORS, rate limits, health and the API documents.

use crate::support::{PASSWORD, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_problem_shape() {
    let app = spawn_app().await;
    let missing = app.get("/no/such/route", None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    assert!(missing.is_problem());
    assert_eq!(missing.body["path"], "/api/v1/no/such/route");
    assert_eq!(missing.body["type"], "about:blank");
    let wrong_method = app.send(app.http.put(app.url("/auth/login"))).await;
    assert_eq!(
        (wrong_method.status, wrong_method.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
    );
    assert!(wrong_method.is_problem());
}

#[tokio::test]
async fn a_405_lists_the_methods_of_its_route_in_allow() {
    let app = spawn_app().await;
    let token = crate::support::token(&app.register("ada@example.com").await, "accessToken");
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/auth/login", "POST"),
        (reqwest::Method::GET, "/auth/logout", "POST"),
        (reqwest::Method::DELETE, "/portfolio/profile", "GET, PATCH"),
        (reqwest::Method::PUT, "/portfolio/projects", "GET, POST"),
        (
            reqwest::Method::POST,
            "/portfolio/projects/0123456789abcdef01234567",
            "GET, PATCH, DELETE",
        ),
        (
            reqwest::Method::TRACE,
            "/settings/preferences",
            "GET, PATCH",
        ),
        (reqwest::Method::POST, "/health", "GET"),
        (
            reqwest::Method::POST,
            "/public/portfolio/ada/projects",
            "GET",
        ),
    ] {
        let reply = app
            .send(
                app.http
                    .request(method.clone(), app.url(path))
                    .bearer_auth(&token),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            "{method} {path}"
        );
        assert!(reply.is_problem(), "{method} {path}");
        assert_eq!(reply.headers["allow"], allow, "{method} {path}");
    }
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_huge_bodies_are_refused_cleanly() {
    let app = spawn_app().await;
    let broken = app
        .send(
            app.http
                .post(app.url("/auth/login"))
                .header("content-type", "application/json")
                .body("{\"email\": "),
        )
        .await;
    assert_eq!(
        (broken.status, broken.code()),
        (StatusCode::BAD_REQUEST, "INVALID_JSON")
    );
    assert!(broken.is_problem());
    let form = app
        .send(
            app.http
                .post(app.url("/auth/login"))
                .header("content-type", "text/plain")
                .body("email=a"),
        )
        .await;
    assert_eq!(
        (form.status, form.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
    );
    assert!(form.is_problem());
    let huge = json!({"name": "x".repeat(1024 * 1024 + 10), "email": "big@example.com", "password": PASSWORD});
    let reply = app.post("/auth/register", huge, None).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );
    assert!(reply.is_problem());
    assert_eq!(
        app.login("big@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "nothing was stored"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let app = spawn_app().await;
    let plain = app.get("/health", None).await;
    assert_eq!(plain.headers["x-request-id"].len(), 24);
    let given = app
        .send(
            app.http
                .get(app.url("/nope"))
                .header("x-request-id", "client-chosen-id-123"),
        )
        .await;
    assert_eq!(given.headers["x-request-id"], "client-chosen-id-123");
    assert_eq!(given.body["requestId"], "client-chosen-id-123");
    let hostile = app
        .send(
            app.http
                .get(app.url("/health"))
                .header("x-request-id", "bad id with spaces"),
        )
        .await;
    assert_ne!(hostile.headers["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn security_headers_are_strict_and_nothing_advertises_the_stack() {
    let app = spawn_app().await;
    let reply = app.get("/health", None).await;
    let h = &reply.headers;
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(h.get("x-powered-by").is_none() && h.get("server").is_none());
    assert!(
        h.get("strict-transport-security").is_none(),
        "HSTS only in production"
    );
    let error = app.get("/nope", None).await;
    assert_eq!(
        error.headers["x-content-type-options"], "nosniff",
        "errors carry the headers too"
    );
}

#[tokio::test]
async fn production_adds_hsts() {
    let secret_a = "a".repeat(40);
    let secret_b = "b".repeat(40);
    let app = spawn_app_with(&[
        ("APP_ENV", "production"),
        ("JWT_ACCESS_SECRET", &secret_a),
        ("JWT_REFRESH_SECRET", &secret_b),
        ("CORS_ORIGIN", "https://console.test"),
        ("FRONTEND_URL", "https://console.test"),
        ("UPLOAD_BASE_URL", "https://files.console.test/uploads"),
        (
            "JOB_PAYLOAD_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ),
    ])
    .await;
    let reply = app.get("/health", None).await;
    assert!(
        reply.headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=31536000")
    );
}

#[tokio::test]
async fn cors_allows_configured_origins_with_credentials_and_cached_preflights() {
    let app = spawn_app_with(&[("CORS_ORIGIN", "https://a.test,https://b.test")]).await;
    for origin in ["https://a.test", "https://b.test"] {
        let preflight = app
            .send(
                app.http
                    .request(reqwest::Method::OPTIONS, app.url("/auth/login"))
                    .header("origin", origin)
                    .header("access-control-request-method", "POST")
                    .header(
                        "access-control-request-headers",
                        "content-type,authorization",
                    ),
            )
            .await;
        assert_eq!(preflight.status, StatusCode::OK);
        assert_eq!(preflight.headers["access-control-allow-origin"], origin);
        assert_eq!(
            preflight.headers["access-control-allow-credentials"],
            "true"
        );
        assert_eq!(preflight.headers["access-control-max-age"], "86400");
    }
    let stranger = app
        .send(
            app.http
                .get(app.url("/health"))
                .header("origin", "https://evil.test"),
        )
        .await;
    assert!(
        stranger
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn auth_writes_are_rate_limited_with_retry_after() {
    let app = spawn_app_with(&[("THROTTLE_AUTH_LIMIT", "3")]).await;
    for _ in 0..3 {
        assert_eq!(
            app.login("nobody@example.com", PASSWORD).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = app.login("nobody@example.com", PASSWORD).await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS")
    );
    assert!(limited.is_problem());
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        app.get("/health", None).await.status,
        StatusCode::OK,
        "reads are under the general limit only"
    );
    let registered = app
        .post(
            "/auth/register",
            json!({"name": "Ada", "email": "ada@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a limited write does nothing"
    );
}

#[tokio::test]
async fn no_spelling_of_an_auth_path_escapes_the_auth_limit() {
    let app = spawn_app_with(&[("THROTTLE_AUTH_LIMIT", "5")]).await;
    let spellings = [
        "/api/v1/%61uth/login",
        "/api/v1/auth/%6cogin",
        "/api/v1/%61%75%74%68/login",
        "/api/v1/auth%2Flogin",
        "/api/v1/auth/login/",
        "/api/v1//auth/login",
        "/api/v1/auth/login",
    ];
    let mut credential_checks = 0;
    for path in spellings {
        for _ in 0..8 {
            let reply = app
                .send(
                    app.http
                        .post(format!("{}{path}", app.base))
                        .json(&json!({"email": "nobody@example.com", "password": PASSWORD})),
                )
                .await;
            match reply.status {
                StatusCode::UNAUTHORIZED => credential_checks += 1,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::NOT_FOUND => {}
                other => panic!("{path}: unexpected {other}"),
            }
        }
    }
    assert_eq!(
        credential_checks, 5,
        "every spelling that reaches the login handler shares one limit"
    );
}

#[tokio::test]
async fn the_general_limit_applies_to_every_api_request() {
    let app = spawn_app_with(&[("THROTTLE_LIMIT", "5")]).await;
    for _ in 0..5 {
        assert_eq!(app.get("/nope", None).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.get("/nope", None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.get("/health", None).await.status,
        StatusCode::OK,
        "health checks are never limited"
    );
}

#[tokio::test]
async fn health_and_readiness_report_the_embedded_mode() {
    let app = spawn_app().await;
    let live = app.get("/health", None).await;
    assert_eq!(
        (live.status, live.data()["mode"].as_str()),
        (StatusCode::OK, Some("embedded"))
    );
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    let names: Vec<&str> = ready
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["storage", "queue"]);
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_with_errors_and_bearer_auth() {
    let app = spawn_app().await;
    let reply = app.send(app.http.get(app.url("/docs/openapi.json"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum schema")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(codes.contains(&"VALIDATION_ERROR") && codes.contains(&"TOO_MANY_REQUESTS"));
    assert_eq!(
        doc["components"]["schemas"]["Problem"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    assert_eq!(
        doc["components"]["schemas"]["ProjectCreate"]["required"],
        serde_json::json!(["title"])
    );
    let operations = operations(&doc);
    assert!(operations.len() > 60, "{} operations", operations.len());
    for (path, method, operation) in operations {
        assert!(
            operation["responses"]["429"].is_object(),
            "{method} {path} lacks the 429 answer"
        );
        assert!(
            operation["responses"]["500"].is_object(),
            "{method} {path} lacks the 500 answer"
        );
    }
    assert_eq!(
        doc["paths"]["/api/v1/auth/me"]["get"]["security"][0]["bearer"],
        json!([])
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// Every operation of the document: path, method (upper case) and the operation.
fn operations(doc: &serde_json::Value) -> Vec<(String, reqwest::Method, &serde_json::Value)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().iter().map(|(method, operation)| {
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                (path.clone(), method, operation)
            })
        })
        .collect()
}

/// The path with each `{parameter}` replaced by a value that reaches the handler.
fn concrete(path: &str, username: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => "0123456789abcdef01234567",
            "{username}" => username,
            "{queueName}" => "email",
            "{jobId}" => "0123456789abcdef01234567",
            other if other.starts_with('{') => panic!("no sample value for {other} in {path}"),
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Served and documented are the same thing: every documented operation reaches its handler
/// (without a token, those that need one answer 401, which only their handler does, so nothing
/// is changed), and on every documented path every other method is a 405 whose `Allow` lists
/// the documented ones, so no method is served that the document does not describe.
#[tokio::test]
async fn every_documented_operation_is_served_and_nothing_else_on_its_path() {
    let app = spawn_app().await;
    let owner = crate::support::token(&app.register("ada@example.com").await, "accessToken");
    let public = app
        .patch("/portfolio/profile", json!({"isPublic": true}), &owner)
        .await;
    assert_eq!(public.status, StatusCode::OK);
    let doc = app
        .send(app.http.get(app.url("/docs/openapi.json")))
        .await
        .body;
    let mut documented: std::collections::BTreeMap<String, Vec<reqwest::Method>> =
        std::collections::BTreeMap::new();
    for (path, method, operation) in operations(&doc) {
        let url = format!("{}{}", app.base, concrete(&path, "ada"));
        let mut request = app.http.request(method.clone(), &url);
        if method != reqwest::Method::GET {
            request = request.json(&json!({}));
        }
        let reply = app.send(request).await;
        let needs_token = operation["security"].is_array();
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&reply.status),
            "{method} {path} is documented but not served: {}",
            reply.status
        );
        assert_eq!(
            reply.status == StatusCode::UNAUTHORIZED,
            needs_token,
            "{method} {path}: the document says a token is {}needed, the server answered {}",
            if needs_token { "" } else { "not " },
            reply.status
        );
        documented.entry(path).or_default().push(method);
    }
    for (path, methods) in documented {
        let url = format!("{}{}", app.base, concrete(&path, "ada"));
        let allow: std::collections::BTreeSet<&str> = methods.iter().map(|m| m.as_str()).collect();
        for method in [
            reqwest::Method::GET,
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::PATCH,
            reqwest::Method::DELETE,
        ] {
            if methods.contains(&method) {
                continue;
            }
            let reply = app
                .send(app.http.request(method.clone(), &url).json(&json!({})))
                .await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is served but not documented"
            );
            let answered: std::collections::BTreeSet<&str> = reply.headers["allow"]
                .to_str()
                .unwrap()
                .split(", ")
                .collect();
            assert_eq!(answered, allow, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_declares_errors_as_problem_json_and_bodies_as_closed() {
    let app = spawn_app().await;
    let doc = app
        .send(app.http.get(app.url("/docs/openapi.json")))
        .await
        .body;
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let content = response["content"].as_object();
                let json_problem = content
                    .and_then(|c| c.get("application/json"))
                    .is_some_and(|c| c["schema"] == problem);
                assert!(!json_problem, "{method} {path} {status}");
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/problem+json"]["schema"], problem,
                        "{method} {path} {status}"
                    );
                }
            }
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            let body = match body["$ref"].as_str() {
                Some(name) => &doc["components"]["schemas"][name.rsplit('/').next().unwrap()],
                None => body,
            };
            if body.is_object() {
                assert_eq!(
                    body["additionalProperties"],
                    json!(false),
                    "{method} {path}: an unknown field is a 400"
                );
            }
        }
    }
    let export = &doc["paths"]["/api/v1/users/account/export"]["get"]["responses"]["200"];
    assert!(export["content"]["text/csv"].is_object());
    let deleted = &doc["paths"]["/api/v1/portfolio/projects/{id}"]["delete"]["responses"]["200"];
    assert_eq!(
        deleted["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/MessageEnvelope"
    );
}

#[tokio::test]
async fn the_docs_page_works_offline() {
    let app = spawn_app().await;
    let page = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "the page loads nothing from elsewhere"
    );
    let redirect = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::OK, "/docs leads to the page");
}
