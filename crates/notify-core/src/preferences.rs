//! Notification and email preferences: one document of each per user, defaults on first read.

use kernel::record::{FieldKind, FieldSpec, Preset, Schema};
use kernel::settings::SettingsKind;

const fn toggle(name: &'static str, preset: bool) -> FieldSpec {
    FieldSpec::optional(name, FieldKind::Bool).preset(Preset::Bool(preset))
}

/// In-app and push toggles, per category.
pub static NOTIFICATION_PREFERENCES: SettingsKind = SettingsKind {
    name: "notification-preferences",
    collection: "notificationpreferences",
    schema: Schema {
        fields: &[
            toggle("inAppNotifications", true),
            toggle("pushNotifications", false),
            toggle("securityAlerts", true),
            toggle("accountActivity", true),
            toggle("chatMessages", true),
            toggle("mentions", true),
            toggle("productUpdates", false),
        ],
    },
};

/// Which optional emails a user receives. Security emails (verification, reset, password
/// changed, account deletion) are not listed: they always go out.
pub static EMAIL_PREFERENCES: SettingsKind = SettingsKind {
    name: "email-preferences",
    collection: "emailpreferences",
    schema: Schema {
        fields: &[
            toggle("accountActivity", true),
            toggle("marketing", false),
            toggle("weeklyDigest", false),
            toggle("productUpdates", false),
            toggle("tips", false),
        ],
    },
};
