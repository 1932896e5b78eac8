//! The error every storage port returns; adapters translate driver errors into it.

/// A storage failure, as the cores need to see it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; `key` names the constrained field.
    #[error("duplicate value for unique key `{key}`")]
    Duplicate { key: &'static str },
    /// The backend failed or could not be reached.
    #[error("storage backend failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }

    pub fn message(message: impl Into<String>) -> Self {
        Self::Backend(message.into().into())
    }
}
