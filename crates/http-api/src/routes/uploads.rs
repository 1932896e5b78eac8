//! Uploads: `/api/v1/upload/*` (a file stored, its URL answered), the routes that also point a
//! field at the new file (`/users/profile/avatar`, `/portfolio/profile/avatar`, `.../resume`),
//! and `/uploads/…`, where stored files are served. Multipart parts are handed to the media core
//! as they arrive, so the limit and the type are enforced while the body is being read.

use actix_multipart::{Field, MultipartError};
use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use auth_core::IdentityService;
use futures_util::StreamExt as _;
use kernel::UserId;
use media_core::{Family, MediaError, MediaService, Purpose, SourceError, Upload, Variant};
use portfolio_core::PortfolioService;
use portfolio_core::ports::ContentListener as _;
use portfolio_core::resources::ProfileFile;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::dto::UserDto;
use crate::envelope::{self, Envelope};
use crate::page_cache::PageCache;
use crate::problem::{ApiError, ErrorCode, Problem};
use crate::routes::portfolio::profile_answer;
use crate::upload_body::{Exceeded, PART_HEADER_LIMIT, bounded_multipart};

type Media = web::Data<MediaService>;

/// A stored upload.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadDto {
    /// Where the file is served (its name is a hash of its content: it never changes).
    #[schema(
        example = "http://localhost:3000/uploads/65f1c0ffee0123456789abcd/images/3f2a9c0d1e2b3c4d5e6f708192a3b4c5.jpg"
    )]
    pub url: String,
    /// Pictures only: a reduced copy (at most 320 px on its longest side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// The type decided from the content.
    #[schema(example = "image/jpeg")]
    pub mime_type: &'static str,
    /// Bytes of the stored file (pictures: as re-encoded).
    pub size: u64,
    /// Pictures only, in pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

impl From<Upload> for UploadDto {
    fn from(upload: Upload) -> Self {
        Self {
            mime_type: upload.kind.mime(),
            size: upload.size,
            width: upload.dimensions.map(|(width, _)| width),
            height: upload.dimensions.map(|(_, height)| height),
            url: upload.url,
            thumbnail_url: upload.thumbnail_url,
        }
    }
}

/// A file's bytes, as the document describes them.
#[derive(ToSchema)]
#[schema(format = Binary)]
#[allow(dead_code, reason = "describes a binary body for the OpenAPI document")]
pub struct FileBytes(String);

/// One file, in the multipart part `file`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "describes the multipart body for the OpenAPI document"
)]
pub struct FileForm {
    /// The file; its type is decided from its content, whatever its name or part type says.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Several pictures, each in a multipart part named `files`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "describes the multipart body for the OpenAPI document"
)]
pub struct FilesForm {
    /// The pictures (at most `UPLOAD_MAX_FILES`), each its own part.
    #[schema(value_type = Vec<FileBytes>, min_items = 1)]
    files: Vec<Vec<u8>>,
}

/// What a picture upload may answer besides its success.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "describes answers for the OpenAPI document")]
enum PictureRefusals {
    /// `VALIDATION_ERROR`: no file part, too many, an empty file or another part;
    /// `BAD_REQUEST`: a malformed multipart body
    #[response(status = 400)]
    BadRequest(Problem),
    /// `UNAUTHORIZED`: no valid access token
    #[response(status = 401)]
    Unauthorized(Problem),
    /// `FILE_TOO_LARGE` (over `UPLOAD_MAX_IMAGE_SIZE` bytes), `IMAGE_TOO_LARGE` (over
    /// `UPLOAD_MAX_IMAGE_PIXELS` pixels) or `STORAGE_QUOTA_EXCEEDED` (the caller's files would
    /// pass `UPLOAD_QUOTA_BYTES`); nothing of the request is kept
    #[response(status = 413)]
    TooLarge(Problem),
    /// `UNSUPPORTED_FILE_TYPE`: the content is not an accepted picture, whatever its name or
    /// part type; `UNSUPPORTED_MEDIA_TYPE`: the body is not multipart/form-data
    #[response(status = 415)]
    Unsupported(Problem),
    /// `INVALID_IMAGE`: it starts like a picture but does not decode
    #[response(status = 422)]
    Undecodable(Problem),
}

/// What a document upload may answer besides its success.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "describes answers for the OpenAPI document")]
enum DocumentRefusals {
    /// `VALIDATION_ERROR`: no `file` part, an empty file or another part; `BAD_REQUEST`: a
    /// malformed multipart body
    #[response(status = 400)]
    BadRequest(Problem),
    /// `UNAUTHORIZED`: no valid access token
    #[response(status = 401)]
    Unauthorized(Problem),
    /// `FILE_TOO_LARGE` (over `UPLOAD_MAX_DOCUMENT_SIZE` bytes) or `STORAGE_QUOTA_EXCEEDED` (the
    /// caller's files would pass `UPLOAD_QUOTA_BYTES`); nothing of the request is kept
    #[response(status = 413)]
    TooLarge(Problem),
    /// `UNSUPPORTED_FILE_TYPE`: the content is not a PDF, whatever its name or part type;
    /// `UNSUPPORTED_MEDIA_TYPE`: the body is not multipart/form-data
    #[response(status = 415)]
    Unsupported(Problem),
}

/// The bytes a multipart body may spend besides its files (part headers, boundaries).
const FRAMING_ALLOWANCE: u64 = 16 * 1024;

/// Reads the parts named `field` of a multipart body, at most `max` of them, storing each as
/// it arrives. Every byte of the body counts against the route's limit, declared or not;
/// anything else in the body is refused, and files already stored by this request are removed
/// when a later part fails.
async fn receive(
    media: &MediaService,
    owner: &UserId,
    purpose: Purpose,
    field: &str,
    max: usize,
    request: &HttpRequest,
    body: web::Payload,
) -> Result<Vec<Upload>, ApiError> {
    let too_large = || -> ApiError {
        MediaError::TooLarge {
            limit: media.max_bytes(purpose),
        }
        .into()
    };
    // A declared length no upload could have is refused before a byte is read.
    let most = (media.max_bytes(purpose) + FRAMING_ALLOWANCE).saturating_mul(max as u64);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > most) {
        return Err(too_large());
    }
    let (mut multipart, budget) = bounded_multipart(request.headers(), body, most);
    // A limit of the body, once gone over, is the reason whatever error the parser reports.
    let over_limit = |error: ApiError| match budget.exceeded() {
        Some(Exceeded::Body) => too_large(),
        Some(Exceeded::PartHeader) => ApiError::new(
            ErrorCode::BadRequest,
            format!("A multipart part's header is over {PART_HEADER_LIMIT} bytes"),
        ),
        None => error,
    };
    let mut uploads = Vec::new();
    let outcome = async {
        loop {
            budget.expect_header();
            let Some(part) = multipart.next().await else {
                break;
            };
            budget.header_read();
            let part = part.map_err(|error| over_limit(malformed(error)))?;
            let name = part.name().unwrap_or_default().to_owned();
            if name != field {
                return Err(ApiError::field(
                    &name,
                    "unknown",
                    format!("is not a part of this upload (send `{field}`)"),
                ));
            }
            if uploads.len() == max {
                return Err(ApiError::field(
                    field,
                    "count",
                    format!("must be at most {max} file(s)"),
                ));
            }
            let upload = media
                .upload(owner, purpose, chunks(part))
                .await
                .map_err(|error| match error {
                    MediaError::Empty => ApiError::field(field, "required", "must not be empty"),
                    other => over_limit(other.into()),
                })?;
            uploads.push(upload);
        }
        Ok(())
    }
    .await;
    match outcome {
        Err(error) => {
            media.discard(&uploads).await;
            Err(error)
        }
        Ok(()) if uploads.is_empty() => Err(ApiError::field(field, "required", "is required")),
        Ok(()) => Ok(uploads),
    }
}

/// A part's bytes as the media core reads them.
fn chunks(part: Field) -> impl futures_util::Stream<Item = Result<web::Bytes, SourceError>> {
    part.map(|chunk| chunk.map_err(|error| SourceError(error.to_string())))
}

/// A multipart body that cannot be read: the wrong content type (415) or broken framing (400).
fn malformed(error: MultipartError) -> ApiError {
    match error {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible
        | MultipartError::BoundaryMissing => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The body must be multipart/form-data",
        ),
        other => {
            tracing::info!(error = %other, "malformed multipart body");
            ApiError::new(ErrorCode::BadRequest, "The multipart body is malformed")
        }
    }
}

/// The one file of a single-file route.
async fn one(
    media: &MediaService,
    caller: &Authenticated,
    purpose: Purpose,
    request: &HttpRequest,
    body: web::Payload,
) -> Result<Upload, ApiError> {
    let mut uploads = receive(media, &caller.0.user_id, purpose, "file", 1, request, body).await?;
    uploads.pop().ok_or_else(ApiError::internal)
}

/// Points a field at a new upload with `set` (which answers the URL it replaced), then removes
/// the replaced file; when setting fails, the upload is removed instead.
async fn attach<T, E: Into<ApiError>>(
    media: &MediaService,
    owner: &UserId,
    upload: Upload,
    set: impl Future<Output = Result<(T, Option<String>), E>>,
) -> Result<T, ApiError> {
    match set.await {
        Ok((updated, previous)) => {
            media
                .discard_replaced(owner, previous.as_deref(), &upload)
                .await;
            Ok(updated)
        }
        Err(error) => {
            media.discard(std::slice::from_ref(&upload)).await;
            Err(error.into())
        }
    }
}

fn created(upload: Upload) -> HttpResponse {
    envelope::created("File uploaded", UploadDto::from(upload))
}

/// Upload a picture (JPEG, PNG, WebP or GIF): stored re-encoded without metadata, upright,
/// with a thumbnail.
#[utoipa::path(post, path = "/api/v1/upload/image", operation_id = "uploadImage", tag = "uploads", security(("bearer" = [])),
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = Envelope<UploadDto>),
        PictureRefusals,
    ))]
pub async fn image(
    media: Media,
    caller: Authenticated,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = one(&media, &caller, Purpose::Image, &request, body).await?;
    Ok(created(upload))
}

/// Upload several pictures at once, each in a part named `files`.
#[utoipa::path(post, path = "/api/v1/upload/images", operation_id = "uploadImages", tag = "uploads", security(("bearer" = [])),
    request_body(content = FilesForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored, in the order sent", body = Envelope<Vec<UploadDto>>),
        PictureRefusals,
    ))]
pub async fn images(
    media: Media,
    caller: Authenticated,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let max = media.policy().max_files;
    let uploads = receive(
        &media,
        &caller.0.user_id,
        Purpose::Image,
        "files",
        max,
        &request,
        body,
    )
    .await?;
    let data: Vec<UploadDto> = uploads.into_iter().map(UploadDto::from).collect();
    Ok(envelope::created("Files uploaded", data))
}

/// Upload a document (PDF), stored as sent.
#[utoipa::path(post, path = "/api/v1/upload/document", operation_id = "uploadDocument", tag = "uploads", security(("bearer" = [])),
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = Envelope<UploadDto>),
        DocumentRefusals,
    ))]
pub async fn document(
    media: Media,
    caller: Authenticated,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = one(&media, &caller, Purpose::Document, &request, body).await?;
    Ok(created(upload))
}

/// Upload an avatar picture (at most 512 px a side), without setting it anywhere.
#[utoipa::path(post, path = "/api/v1/upload/avatar", operation_id = "uploadAvatar", tag = "uploads", security(("bearer" = [])),
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = Envelope<UploadDto>),
        PictureRefusals,
    ))]
pub async fn avatar(
    media: Media,
    caller: Authenticated,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = one(&media, &caller, Purpose::Avatar, &request, body).await?;
    Ok(created(upload))
}

/// Upload a resume (PDF), without setting it anywhere.
#[utoipa::path(post, path = "/api/v1/upload/resume", operation_id = "uploadResume", tag = "uploads", security(("bearer" = [])),
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = Envelope<UploadDto>),
        DocumentRefusals,
    ))]
pub async fn resume(
    media: Media,
    caller: Authenticated,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = one(&media, &caller, Purpose::Resume, &request, body).await?;
    Ok(created(upload))
}

/// Upload a picture and make it the caller's `avatar`; the previous avatar file is deleted.
#[utoipa::path(post, path = "/api/v1/users/profile/avatar", operation_id = "setUserAvatar", tag = "users", security(("bearer" = [])),
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The user, with `avatar` set", body = Envelope<UserDto>),
        (status = 404, description = "`USER_NOT_FOUND`: the account was deleted meanwhile", body = Problem),
        PictureRefusals,
    ))]
pub async fn user_avatar(
    media: Media,
    identity: web::Data<IdentityService>,
    public_cache: web::Data<PageCache>,
    caller: Authenticated,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = one(&media, &caller, Purpose::UserAvatar, &request, body).await?;
    let url = upload.url.clone();
    let owner = &caller.0.user_id;
    let user = attach(
        &media,
        owner,
        upload,
        identity.set_avatar(&caller.0, Some(url)),
    )
    .await?;
    // The avatar appears on the public portfolio.
    public_cache.content_changed(owner);
    Ok(envelope::ok("Avatar updated", UserDto::from(user)))
}

async fn profile_file(
    media: &MediaService,
    portfolio: &PortfolioService,
    caller: &Authenticated,
    file: ProfileFile,
    request: &HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let purpose = match file {
        ProfileFile::Avatar => Purpose::ProfileAvatar,
        ProfileFile::Resume => Purpose::ProfileResume,
    };
    let upload = one(media, caller, purpose, request, body).await?;
    let url = upload.url.clone();
    let owner = &caller.0.user_id;
    let document = attach(
        media,
        owner,
        upload,
        portfolio.set_profile_file(owner, file, &url),
    )
    .await?;
    Ok(profile_answer("Portfolio profile updated", &document))
}

/// Upload a picture and make it the portfolio profile's `avatar`; the previous one is deleted.
// The 200's schema is the generated profile's: `declared_routes::profile_upload_areas` sets it.
#[utoipa::path(post, path = "/api/v1/portfolio/profile/avatar", operation_id = "setProfileAvatar", tag = "portfolio", security(("bearer" = [])),
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The portfolio profile, with `avatar` set", body = inline(Envelope<serde_json::Value>)),
        PictureRefusals,
    ))]
pub async fn profile_avatar(
    media: Media,
    portfolio: web::Data<PortfolioService>,
    caller: Authenticated,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    profile_file(
        &media,
        &portfolio,
        &caller,
        ProfileFile::Avatar,
        &request,
        body,
    )
    .await
}

/// Upload a PDF and make it the portfolio profile's `resumeUrl`; the previous one is deleted.
// The 200's schema is the generated profile's: `declared_routes::profile_upload_areas` sets it.
#[utoipa::path(post, path = "/api/v1/portfolio/profile/resume", operation_id = "setProfileResume", tag = "portfolio", security(("bearer" = [])),
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The portfolio profile, with `resumeUrl` set", body = inline(Envelope<serde_json::Value>)),
        DocumentRefusals,
    ))]
pub async fn profile_resume(
    media: Media,
    portfolio: web::Data<PortfolioService>,
    caller: Authenticated,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    profile_file(
        &media,
        &portfolio,
        &caller,
        ProfileFile::Resume,
        &request,
        body,
    )
    .await
}

/// The parts of a stored file's path: the owner's id, what the file was uploaded as, and the
/// content hash (`-thumb` for a thumbnail) with the extension. `MediaService::open` accepts only
/// names the server gave.
#[derive(Debug, Deserialize)]
pub struct FilePath {
    owner: String,
    folder: String,
    name: String,
}

/// Headers of every served file: the type is ours (never the uploader's), browsers must not
/// guess another, pages of other origins may show it, its name never changes content, and
/// opened on its own it runs nothing. A document is a download: a PDF may carry scripts (or be
/// an HTML polyglot), and browsers' PDF viewers ignore a sandbox, so it never opens as a page
/// of the API's origin.
fn file_headers(
    response: &mut actix_web::HttpResponseBuilder,
    kind: media_core::FileKind,
    name: &str,
) {
    response
        .content_type(kind.mime())
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ));
    if kind.family() == Family::Document {
        response.insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ));
    }
}

/// `GET /uploads/{owner}/{folder}/{name}`: a stored file, with `ETag` (304 on `If-None-Match`),
/// a one-year immutable cache, `nosniff` and `Cross-Origin-Resource-Policy: cross-origin`. Only
/// names the server gave are served; no listing exists. Not an operation of the API (nor in its
/// document): the URLs the upload routes answer point here.
pub async fn serve(
    media: Media,
    path: web::Path<FilePath>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let FilePath {
        owner,
        folder,
        name,
    } = path.into_inner();
    let Some((key, body)) = media.open(&format!("{owner}/{folder}/{name}")).await? else {
        return Err(ApiError::new(ErrorCode::NotFound, "File not found"));
    };
    let tag = match key.variant {
        Variant::Original => format!("\"{}\"", key.hash),
        Variant::Thumbnail => format!("\"{}-thumb\"", key.hash),
    };
    let matched = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == tag));
    let mut response = if matched {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    file_headers(&mut response, key.kind, &name);
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.insert_header((header::ETAG, value));
    }
    if matched {
        return Ok(response.finish());
    }
    Ok(response.body(SizedStream::new(body.size, body.chunks)))
}
