//! The public portfolio: what anyone may read of a user whose profile is public.

use std::sync::Arc;

use kernel::UserId;
use kernel::record::{FieldKind, Record, Value};

use crate::model::{ItemView, ResourceSpec};
use crate::ports::{OwnerDirectory, PublicOwner};
use crate::resources::{PROFILE, RESOURCES, resource};
use crate::service::{PortfolioError, PortfolioService};

/// A public portfolio: the owner, the profile's public fields and every visible section.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicPortfolio {
    pub owner: PublicOwner,
    pub profile: Record,
    pub sections: Vec<(&'static ResourceSpec, Vec<ItemView>)>,
}

/// Reads public portfolios. Private profiles, hidden sections and unknown users all look
/// alike: not found.
#[derive(Clone)]
pub struct PublicPortfolioReader {
    directory: Arc<dyn OwnerDirectory>,
    portfolio: PortfolioService,
}

impl PublicPortfolioReader {
    pub fn new(directory: Arc<dyn OwnerDirectory>, portfolio: PortfolioService) -> Self {
        Self {
            directory,
            portfolio,
        }
    }

    /// # Errors
    /// [`PortfolioError::NotFound`] unless the user exists and the profile is public.
    pub async fn portfolio(&self, username: &str) -> Result<PublicPortfolio, PortfolioError> {
        let (owner, profile) = self.public_owner(username).await?;
        let mut sections = Vec::new();
        for spec in RESOURCES {
            if shows(&profile, spec) {
                sections.push((spec, self.visible(spec, &owner.id, &profile).await?));
            }
        }
        let public_fields = profile
            .iter()
            .filter(|(name, _)| PROFILE.schema.field(name).is_some_and(|f| f.public))
            .map(|(name, value)| (name.to_owned(), value.clone()))
            .collect();
        Ok(PublicPortfolio {
            owner,
            profile: public_fields,
            sections,
        })
    }

    /// One visible section.
    ///
    /// # Errors
    /// [`PortfolioError::NotFound`] as for [`PublicPortfolioReader::portfolio`], and when the
    /// section is hidden or unknown.
    pub async fn section(
        &self,
        username: &str,
        section: &str,
    ) -> Result<(UserId, Vec<ItemView>), PortfolioError> {
        let spec = resource(section).ok_or(PortfolioError::NotFound)?;
        let (owner, profile) = self.public_owner(username).await?;
        if !shows(&profile, spec) {
            return Err(PortfolioError::NotFound);
        }
        let items = self.visible(spec, &owner.id, &profile).await?;
        Ok((owner.id, items))
    }

    /// The section's public items; a reference into a hidden section (an experience's
    /// company while companies are hidden) is left out, linked object and id alike.
    async fn visible(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        profile: &Record,
    ) -> Result<Vec<ItemView>, PortfolioError> {
        let mut items = self.portfolio.visible(spec, owner).await?;
        let hidden_references: Vec<&str> = spec
            .schema
            .fields
            .iter()
            .filter(|field| match field.kind {
                FieldKind::Ref(target) => resource(target).is_none_or(|t| !shows(profile, t)),
                _ => false,
            })
            .map(|field| field.name)
            .collect();
        if !hidden_references.is_empty() {
            for view in &mut items {
                view.linked
                    .retain(|(field, _)| !hidden_references.contains(field));
                for field in &hidden_references {
                    view.item.fields.set(field, Value::Null);
                }
            }
        }
        Ok(items)
    }

    async fn public_owner(&self, username: &str) -> Result<(PublicOwner, Record), PortfolioError> {
        let username = username.to_ascii_lowercase();
        let owner = self
            .directory
            .owner_by_username(&username)
            .await?
            .ok_or(PortfolioError::NotFound)?;
        // Anonymous reads never create a profile; without one a portfolio is private.
        let profile = self
            .portfolio
            .stored_profile(&owner.id)
            .await?
            .ok_or(PortfolioError::NotFound)?;
        if profile.get("isPublic") == Some(&Value::Bool(true)) {
            Ok((owner, profile))
        } else {
            Err(PortfolioError::NotFound)
        }
    }
}

fn shows(profile: &Record, spec: &ResourceSpec) -> bool {
    profile.get(spec.section_flag) != Some(&Value::Bool(false))
}
