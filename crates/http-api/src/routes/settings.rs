//! Preference sets (`/settings/preferences`, `/notifications/preferences`,
//! `/email/preferences`): one handler per verb, given the kind by the route table.

use actix_web::{HttpResponse, web};
use kernel::settings::{SettingsDocument, SettingsKind, SettingsService};

use crate::auth::Authenticated;
use crate::body::RecordJson;
use crate::envelope;
use crate::problem::ApiError;
use crate::record_json::{Audience, SettingsBody};

type Settings = web::Data<SettingsService>;

fn answer(message: &str, kind: &'static SettingsKind, document: &SettingsDocument) -> HttpResponse {
    envelope::ok(
        message,
        SettingsBody {
            schema: &kind.schema,
            fields: &document.fields,
            document: Some(document),
            audience: Audience::Owner,
        },
    )
}

pub async fn get(
    kind: &'static SettingsKind,
    settings: Settings,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let document = settings.get(kind, &caller.0.user_id).await?;
    Ok(answer("Preferences retrieved", kind, &document))
}

pub async fn update(
    kind: &'static SettingsKind,
    settings: Settings,
    caller: Authenticated,
    RecordJson(body): RecordJson,
) -> Result<HttpResponse, ApiError> {
    let document = settings.update(kind, &caller.0.user_id, body).await?;
    Ok(answer("Preferences updated", kind, &document))
}

pub async fn reset(
    kind: &'static SettingsKind,
    settings: Settings,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let document = settings.reset(kind, &caller.0.user_id).await?;
    Ok(answer("Preferences reset to defaults", kind, &document))
}
