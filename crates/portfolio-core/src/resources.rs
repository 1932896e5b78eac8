//! The nine portfolio collections and the portfolio profile, declared once. Adding a resource
//! is adding a `ResourceSpec` here and to [`RESOURCES`]: routes, validation, storage in every
//! adapter, the public view, export and the OpenAPI document follow from the declaration.
//!
//! For public display a resource also needs its `show…` flag in `PROFILE` (its `section_flag`),
//! which a test checks.

use kernel::record::{FieldKind, FieldSpec, Preset, Schema};
use kernel::settings::SettingsKind;

use crate::model::{Features, Ordering, ResourceSpec};

const fn text(name: &'static str, max: usize) -> FieldSpec {
    FieldSpec::optional(name, FieldKind::Text { min: 1, max })
}
const fn long(name: &'static str, max: usize) -> FieldSpec {
    FieldSpec::optional(name, FieldKind::LongText { min: 0, max })
}
const fn url(name: &'static str) -> FieldSpec {
    FieldSpec::optional(name, FieldKind::Url { max: 500 })
}
const fn date(name: &'static str) -> FieldSpec {
    FieldSpec::optional(name, FieldKind::Date)
}
const fn tags(name: &'static str) -> FieldSpec {
    FieldSpec::optional(
        name,
        FieldKind::Tags {
            max_items: 30,
            max_len: 50,
        },
    )
}
const fn flag(name: &'static str, preset: bool) -> FieldSpec {
    FieldSpec::optional(name, FieldKind::Bool).preset(Preset::Bool(preset))
}

pub static PROJECTS: ResourceSpec = ResourceSpec {
    name: "projects",
    collection: "projects",
    label: "Project",
    section_flag: "showProjects",
    schema: Schema {
        fields: &[
            text("title", 200).required(),
            long("description", 5000),
            url("image"),
            url("url"),
            url("githubUrl"),
            tags("tags"),
            tags("technologies"),
            date("startDate"),
            date("endDate"),
            flag("featured", false),
        ],
    },
    ordering: Ordering::Manual,
    features: Features {
        reorder: true,
        ..Features::NONE
    },
};

pub static COMPANIES: ResourceSpec = ResourceSpec {
    name: "companies",
    collection: "companies",
    label: "Company",
    section_flag: "showCompanies",
    schema: Schema {
        fields: &[
            text("name", 200).required(),
            url("logo"),
            url("website"),
            long("description", 2000),
            text("industry", 100),
            text("location", 100),
            FieldSpec::optional(
                "foundedYear",
                FieldKind::Integer {
                    min: 1800,
                    max: 2100,
                },
            ),
        ],
    },
    ordering: Ordering::Newest,
    features: Features::NONE,
};

pub static SKILLS: ResourceSpec = ResourceSpec {
    name: "skills",
    collection: "skills",
    label: "Skill",
    section_flag: "showSkills",
    schema: Schema {
        fields: &[
            text("name", 100).required(),
            text("category", 50).preset(Preset::Text("other")),
            FieldSpec::optional("level", FieldKind::Integer { min: 0, max: 100 }),
            text("icon", 200),
            text("color", 30),
        ],
    },
    ordering: Ordering::Manual,
    features: Features {
        reorder: true,
        group_by: Some("category"),
        ..Features::NONE
    },
};

pub static EXPERIENCES: ResourceSpec = ResourceSpec {
    name: "experiences",
    collection: "experiences",
    label: "Experience",
    section_flag: "showExperiences",
    schema: Schema {
        fields: &[
            text("title", 200).required(),
            text("company", 200),
            FieldSpec::optional("companyId", FieldKind::Ref("companies")),
            text("location", 100),
            date("startDate").required(),
            date("endDate"),
            flag("current", false),
            long("description", 5000),
            FieldSpec::optional(
                "achievements",
                FieldKind::Tags {
                    max_items: 30,
                    max_len: 500,
                },
            ),
            tags("technologies"),
        ],
    },
    ordering: Ordering::LatestBy("startDate"),
    features: Features::NONE,
};

pub static EDUCATION: ResourceSpec = ResourceSpec {
    name: "education",
    collection: "educations",
    label: "Education entry",
    section_flag: "showEducation",
    schema: Schema {
        fields: &[
            text("institution", 200).required(),
            text("degree", 200).required(),
            text("field", 200),
            date("startDate"),
            date("endDate"),
            FieldSpec::optional(
                "gpa",
                FieldKind::Decimal {
                    min: 0.0,
                    max: 10.0,
                },
            ),
            long("description", 2000),
        ],
    },
    ordering: Ordering::LatestBy("startDate"),
    features: Features::NONE,
};

pub static CERTIFICATIONS: ResourceSpec = ResourceSpec {
    name: "certifications",
    collection: "certifications",
    label: "Certification",
    section_flag: "showCertifications",
    schema: Schema {
        fields: &[
            text("name", 200).required(),
            text("issuer", 200).required(),
            date("issueDate"),
            date("expiryDate"),
            text("credentialId", 200),
            url("credentialUrl"),
        ],
    },
    ordering: Ordering::LatestBy("issueDate"),
    features: Features::NONE,
};

pub static BLOG: ResourceSpec = ResourceSpec {
    name: "blog",
    collection: "blogs",
    label: "Blog post",
    section_flag: "showBlog",
    schema: Schema {
        fields: &[
            text("title", 200).required(),
            text("slug", 120),
            long("content", 100_000),
            long("excerpt", 500),
            url("coverImage"),
            tags("tags"),
            flag("published", false).read_only(),
            date("publishedAt").read_only(),
        ],
    },
    ordering: Ordering::Newest,
    features: Features {
        slug_from: Some("title"),
        publishing: true,
        public_when: Some("published"),
        ..Features::NONE
    },
};

pub static TESTIMONIALS: ResourceSpec = ResourceSpec {
    name: "testimonials",
    collection: "testimonials",
    label: "Testimonial",
    section_flag: "showTestimonials",
    schema: Schema {
        fields: &[
            text("name", 100).required(),
            text("role", 100),
            text("company", 100),
            FieldSpec::optional("content", FieldKind::LongText { min: 1, max: 2000 }).required(),
            url("avatar"),
            FieldSpec::optional("rating", FieldKind::Integer { min: 1, max: 5 }),
            flag("featured", false),
        ],
    },
    ordering: Ordering::Manual,
    features: Features {
        reorder: true,
        ..Features::NONE
    },
};

pub static CONTACTS: ResourceSpec = ResourceSpec {
    name: "contacts",
    collection: "contacts",
    label: "Contact link",
    section_flag: "showContacts",
    schema: Schema {
        fields: &[
            text("platform", 50).required(),
            url("url").required(),
            text("icon", 200),
            flag("active", true),
        ],
    },
    ordering: Ordering::Manual,
    features: Features {
        reorder: true,
        public_when: Some("active"),
        ..Features::NONE
    },
};

/// Every portfolio collection, in the order the public portfolio lists its sections.
pub static RESOURCES: [&ResourceSpec; 9] = [
    &PROJECTS,
    &EXPERIENCES,
    &SKILLS,
    &EDUCATION,
    &CERTIFICATIONS,
    &COMPANIES,
    &BLOG,
    &TESTIMONIALS,
    &CONTACTS,
];

/// The resource served under `/portfolio/<name>`.
#[must_use]
pub fn resource(name: &str) -> Option<&'static ResourceSpec> {
    RESOURCES.iter().copied().find(|spec| spec.name == name)
}

/// The profile fields that hold the URL of an uploaded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileFile {
    Avatar,
    Resume,
}

impl ProfileFile {
    /// The profile field it sets.
    #[must_use]
    pub fn field(self) -> &'static str {
        match self {
            Self::Avatar => "avatar",
            Self::Resume => "resumeUrl",
        }
    }
}

/// The portfolio profile: public details and the visibility of each section.
pub static PROFILE: SettingsKind = SettingsKind {
    name: "portfolio-profile",
    collection: "portfolioprofiles",
    schema: Schema {
        fields: &[
            text("headline", 200),
            long("bio", 2000),
            url("avatar"),
            url("resumeUrl"),
            text("location", 100),
            flag("availableForHire", false),
            url("portfolioUrl"),
            text("theme", 50).preset(Preset::Text("default")),
            flag("isPublic", false).private(),
            flag("showProjects", true).private(),
            flag("showExperiences", true).private(),
            flag("showSkills", true).private(),
            flag("showEducation", true).private(),
            flag("showCertifications", true).private(),
            flag("showCompanies", true).private(),
            flag("showBlog", true).private(),
            flag("showTestimonials", true).private(),
            flag("showContacts", true).private(),
        ],
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_has_its_flag_in_the_profile() {
        for spec in RESOURCES {
            assert!(
                PROFILE.schema.field(spec.section_flag).is_some(),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn resource_names_and_collections_are_unique() {
        let mut names: Vec<_> = RESOURCES.iter().map(|s| s.name).collect();
        let mut collections: Vec<_> = RESOURCES.iter().map(|s| s.collection).collect();
        names.sort_unstable();
        names.dedup();
        collections.sort_unstable();
        collections.dedup();
        assert_eq!(
            (names.len(), collections.len()),
            (RESOURCES.len(), RESOURCES.len())
        );
    }

    #[test]
    fn every_reference_names_a_resource() {
        for spec in RESOURCES {
            for field in spec.schema.fields {
                if let FieldKind::Ref(target) = field.kind {
                    assert!(resource(target).is_some(), "{}.{}", spec.name, field.name);
                }
            }
        }
    }
}
