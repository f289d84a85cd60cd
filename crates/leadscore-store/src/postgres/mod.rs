//! PostgreSQL adapter (being written).

use crate::{Result, StoreError};

#[derive(Debug)]
pub struct PgStore;

impl PgStore {
    pub async fn open(_url: &str) -> Result<PgStore> {
        Err(StoreError::Invalid("PostgreSQL support is not built yet".into()))
    }
}
