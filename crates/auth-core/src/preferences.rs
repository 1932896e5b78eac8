//! App preferences (`/settings/preferences`): one document per user, defaults on first read.

use kernel::record::{FieldKind, FieldSpec, Preset, Schema};
use kernel::settings::SettingsKind;

pub static APP_PREFERENCES: SettingsKind = SettingsKind {
    name: "app-preferences",
    collection: "preferences",
    schema: Schema {
        fields: &[
            FieldSpec::optional("theme", FieldKind::Choice(&["light", "dark", "system"]))
                .preset(Preset::Text("system")),
            FieldSpec::optional("language", FieldKind::Text { min: 2, max: 16 })
                .preset(Preset::Text("en")),
            FieldSpec::optional("timezone", FieldKind::Text { min: 1, max: 64 })
                .preset(Preset::Text("UTC")),
            FieldSpec::optional(
                "dateFormat",
                FieldKind::Choice(&["MM/DD/YYYY", "DD/MM/YYYY", "YYYY-MM-DD"]),
            )
            .preset(Preset::Text("YYYY-MM-DD")),
            FieldSpec::optional("timeFormat", FieldKind::Choice(&["12h", "24h"]))
                .preset(Preset::Text("24h")),
            FieldSpec::optional("itemsPerPage", FieldKind::Integer { min: 5, max: 100 })
                .preset(Preset::Int(10)),
            FieldSpec::optional("compactMode", FieldKind::Bool).preset(Preset::Bool(false)),
            FieldSpec::optional("reducedMotion", FieldKind::Bool).preset(Preset::Bool(false)),
        ],
    },
};
